// Campaigns: the list with state and progress, the create form, and one campaign: contacts
// upload with per-row errors, start/pause/resume/stop, live progress with ETA (the engine's
// campaign.* events over SSE when an engine is attached, else a modest poll) and the report
// with its CSV.
import { api } from "../api.js";
import { clear, confirmDialog, errorText, field, h, table, toast } from "../dom.js";
import { fmtDate, fmtDuration, fmtNumber, t, tOr } from "../i18n.js";
import { can, session } from "../session.js";
import { importReport, uploadTable } from "../upload.js";
import { campaignForm } from "../campaign_form.js";

const enc = encodeURIComponent;
const STATES = ["draft", "running", "paused", "stopped", "finished"];
const ACTIONS = { draft: ["start"], running: ["pause", "stop"], paused: ["resume", "stop"] };
const LIVE_STATES = new Set(["draft", "running", "paused"]);
const EDITABLE = new Set(["draft", "paused"]); // the API's PATCH takes these only
const POLL_S = 5; // without the event stream
const SAFETY_POLL_S = 20; // with it: only in case an event was missed
const REFRESH_MIN_S = 1; // progress events are coalesced to one status read per second

export async function render(root, params) {
  if (params[0] === "new") return create(root);
  if (params[0] && params[2] === "edit") return edit(root, params[0], params[1]);
  if (params[0]) return detail(root, params[0], params[1]);
  return list(root);
}

function pct(x) { return fmtNumber(x || 0, { style: "percent", maximumFractionDigits: 1 }); }
function stateBadge(state) { return h("span", { class: `badge state-${state}`, dataset: { state }, text: t(`campaigns.state.${state}`) }); }
function progressBar(value) { return h("progress", { max: 1, value: value || 0, "aria-label": t("campaigns.progress") }); }

async function list(root) {
  const staff = session.user.role !== "client";
  const state = h("select", { id: "campaign-state", "aria-label": t("campaigns.state_label") },
    h("option", { value: "", text: t("campaigns.any_state") }), STATES.map((s) => h("option", { value: s, text: t(`campaigns.state.${s}`) })));
  const every = h("input", { type: "checkbox", id: "campaign-every" });
  const box = h("div", { id: "campaign-list" });
  const load = async () => {
    clear(box);
    try {
      const res = await api("GET", "/api/campaigns", { query: { state: state.value, tenant: every.checked ? "*" : undefined } });
      // progress per campaign: one status read each, for the rows that move or moved
      const statuses = await Promise.all(res.items.map((c) => (c.state === "draft" ? null
        : api("GET", `/api/campaigns/${enc(c.id)}`, { query: { tenant: c.tenant } }).then((r) => r.status).catch(() => null))));
      const rows = res.items.map((c, i) => ({ ...c, status: statuses[i] }));
      box.append(table([
        { label: "campaigns.name", key: "name" },
        { label: "campaigns.id", key: "id" },
        ...(staff ? [{ label: "campaigns.tenant", key: "tenant" }] : []),
        { label: "campaigns.state_label", render: (r) => stateBadge(r.state) },
        { label: "campaigns.flow", render: (r) => `${r.flow_id} v${r.flow_version}` },
        { label: "campaigns.contacts", render: (r) => fmtNumber(r.contacts) },
        { label: "campaigns.progress", render: (r) => (r.status ? h("span", { class: "progress-cell" }, progressBar(r.status.progress), " ", pct(r.status.progress)) : "") },
        { label: "campaigns.eta", render: (r) => (r.status && r.status.eta_s != null ? fmtDuration(r.status.eta_s) : "") },
        { label: "campaigns.created", render: (r) => fmtDate(r.created_at) },
      ], rows, { onRow: (r) => { location.hash = `#/campaigns/${enc(r.id)}/${enc(r.tenant)}`; } }));
    } catch (err) { box.textContent = errorText(err); }
  };
  state.addEventListener("change", load);
  every.addEventListener("change", load);
  root.append(h("h1", { i18n: "campaigns.title" }),
    h("div", { class: "row" },
      can("campaigns.write") ? h("a", { href: "#/campaigns/new", class: "button primary", id: "campaign-new", i18n: "campaigns.new" }) : null,
      state, staff ? h("label", {}, every, " ", t("campaigns.every_tenant")) : null),
    box);
  await load();
}

async function create(root) {
  root.append(h("p", {}, h("a", { href: "#/campaigns", i18n: "campaigns.back" })),
    h("h1", { i18n: "campaigns.new" }),
    await campaignForm({ onCreated: (c) => { location.hash = `#/campaigns/${enc(c.id)}/${enc(c.tenant)}`; } }));
}

async function edit(root, id, tenant) {
  const { campaign } = await api("GET", `/api/campaigns/${enc(id)}`, { query: { tenant } });
  const back = `#/campaigns/${enc(campaign.id)}/${enc(campaign.tenant)}`;
  root.append(h("p", {}, h("a", { href: back, i18n: "campaigns.back_to_campaign" })),
    h("h1", { text: t("campaigns.edit_title", { name: campaign.name }) }),
    EDITABLE.has(campaign.state)
      ? await campaignForm({ existing: campaign, onCreated: () => { toast(t("campaigns.saved"), "ok"); location.hash = back; } })
      : h("p", { class: "form-error", text: t("campaigns.not_editable") }));
}

async function detail(root, id, tenant) {
  const query = tenant ? { tenant } : undefined;
  const base = `/api/campaigns/${enc(id)}`;
  let current = await api("GET", base, { query });
  const title = h("h1", {});
  const facts = h("dl", { class: "facts", id: "campaign-facts" });
  const actions = h("div", { class: "row", id: "campaign-actions" });
  const actionStatus = h("div", { class: "form-error", role: "alert", id: "campaign-action-error" });
  const progress = h("section", { class: "card", id: "campaign-progress", "aria-live": "polite" });
  const report = h("section", { class: "card", id: "campaign-report" });
  const uploadBox = h("section", { class: "card", id: "campaign-upload" });

  const showFacts = (c, st) => {
    clear(title).append(c.name, " ", stateBadge(c.state));
    clear(facts).append(...[["campaigns.id", c.id], ["campaigns.tenant", c.tenant], ["campaigns.flow", `${c.flow_id} v${c.flow_version}`],
      ["campaigns.created", fmtDate(c.created_at)], ["campaigns.started", c.started_at ? fmtDate(c.started_at) : ""],
      ["campaigns.finished_at", c.finished_at ? fmtDate(c.finished_at) : ""],
      ["campaigns.window", `${c.spec.schedule.window_start}–${c.spec.schedule.window_end}`],
      ["campaigns.pacing", t("campaigns.pacing_value", { cps: fmtNumber(c.spec.pacing.calls_per_s), max: fmtNumber(c.spec.pacing.max_concurrent) })],
      ["campaigns.next_due", st.next_due_at ? fmtDate(st.next_due_at) : ""]]
      .filter(([, v]) => v).flatMap(([k, v]) => [h("dt", { i18n: k }), h("dd", { text: v })]));
  };

  const showActions = (c) => {
    clear(actions);
    if (can("campaigns.write") && EDITABLE.has(c.state)) {
      actions.append(h("a", { href: `#/campaigns/${enc(c.id)}/${enc(c.tenant)}/edit`, class: "button", id: "campaign-edit", i18n: "campaigns.edit" }));
    }
    if (!can("campaigns.control")) return;
    for (const action of ACTIONS[c.state] || []) {
      const b = h("button", { type: "button", id: `campaign-${action}`, class: action === "stop" ? "danger" : "primary", i18n: `campaigns.action.${action}` });
      b.addEventListener("click", async () => {
        actionStatus.textContent = "";
        if (action === "stop" && !(await confirmDialog(t("campaigns.confirm_stop", { name: c.name }),
          { yes: "campaigns.confirm_yes", no: "campaigns.confirm_no", danger: true }))) return;
        try {
          await api("POST", `${base}/actions/${action}`, { query });
          toast(t(`campaigns.done.${action}`), "ok");
          await refresh(true);
        } catch (err) { actionStatus.textContent = errorText(err); }
      });
      actions.append(b);
    }
  };

  const showProgress = (st) => {
    const byState = st.by_state || {};
    const done = (byState.done || 0) + (byState.skipped || 0);
    const reasons = Object.entries(st.skipped_or_deferred || {});
    clear(progress).append(...[h("h2", { i18n: "campaigns.progress" }),
      h("div", { class: "progress-line" }, progressBar(st.progress),
        h("strong", { id: "campaign-percent", dataset: { progress: st.progress, state: st.state }, text: pct(st.progress) }),
        h("span", { text: t("campaigns.done_of", { done: fmtNumber(done), total: fmtNumber(st.contacts) }) })),
      h("p", { id: "campaign-eta", text: st.eta_s != null ? t("campaigns.eta_value", { eta: fmtDuration(st.eta_s) })
        : st.state === "finished" ? t("campaigns.eta_finished") : t("campaigns.eta_unknown") }),
      h("p", { class: "muted", text: t("campaigns.rate_value", { n: fmtNumber(st.attempts_last_minute || 0) }) }),
      table([{ label: "campaigns.contact_state", render: (r) => tOr(`campaigns.cstate.${r[0]}`, r[0]) }, { label: "campaigns.count", render: (r) => fmtNumber(r[1]) }],
        Object.entries(byState)),
      reasons.length ? table([{ label: "campaigns.reason", render: (r) => tOr(`reason.${r[0]}`, r[0]) }, { label: "campaigns.count", render: (r) => fmtNumber(r[1]) }], reasons) : null]
      .filter(Boolean));
  };

  const showReport = async () => {
    try {
      const { report: r } = await api("GET", `${base}/report`, { query });
      const csvUrl = `${base}/report.csv${tenant ? `?tenant=${enc(tenant)}` : ""}`;
      const metrics = [["campaigns.m.attempts", fmtNumber(r.attempts)], ["campaigns.m.answer_rate", pct(r.answer_rate)],
        ["campaigns.m.completion", pct(r.completion)], ["campaigns.m.reached", fmtNumber(r.reached_contacts)],
        ["campaigns.m.confirmed", fmtNumber(r.confirmed)], ["campaigns.m.heard_full", fmtNumber(r.heard_full)],
        ["campaigns.m.opted_out", fmtNumber(r.opted_out)], ["campaigns.m.sms_sent", fmtNumber(r.sms_sent)],
        ["campaigns.m.amd_median", r.amd_decision_ms_median == null ? "" : `${fmtNumber(r.amd_decision_ms_median)} ms`]];
      clear(report).append(h("h2", { i18n: "campaigns.report" }),
        h("dl", { class: "facts", id: "campaign-metrics" }, ...metrics.filter(([, v]) => v).flatMap(([k, v]) => [h("dt", { i18n: k }), h("dd", { text: v })])),
        h("div", { class: "report-split" },
          table([{ label: "campaigns.disposition_label", render: (x) => tOr(`campaigns.disposition.${x[0]}`, x[0]) }, { label: "campaigns.count", render: (x) => fmtNumber(x[1]) }], Object.entries(r.dispositions || {})),
          Object.keys(r.amd || {}).length ? table([{ label: "campaigns.amd_label", render: (x) => tOr(`campaigns.amd_class.${x[0]}`, x[0]) }, { label: "campaigns.count", render: (x) => fmtNumber(x[1]) }], Object.entries(r.amd)) : null),
        h("a", { href: csvUrl, download: `campaign-${id}.csv`, id: "campaign-csv", class: "button", i18n: "campaigns.download_csv" }));
    } catch (err) { report.textContent = errorText(err); }
  };

  const showUpload = (c) => {
    clear(uploadBox);
    if (!can("campaigns.write") || !LIVE_STATES.has(c.state)) { uploadBox.hidden = true; return; }
    uploadBox.hidden = false;
    const file = h("input", { type: "file", id: "contacts-file", accept: ".csv,.txt,.tsv,.xlsx" });
    const result = h("div", { id: "contacts-result" });
    const form = h("form", { class: "inline-form", id: "contacts-form" }, field("import.file", file),
      h("button", { type: "submit", class: "primary", i18n: "campaigns.upload" }));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      clear(result);
      if (!file.files[0]) return;
      try {
        const res = await uploadTable(`${base}/contacts`, file.files[0], query);
        result.append(importReport(res));
        if (res.merged) result.append(h("p", { class: "muted", text: t("campaigns.merged", { n: fmtNumber(res.merged) }) }));
        await refresh(true);
      } catch (err) { result.textContent = errorText(err); }
    });
    const mapping = Object.entries(c.spec.contacts.variables || {});
    uploadBox.append(h("h2", { i18n: "campaigns.contacts_upload" }), h("p", { class: "muted", i18n: "campaigns.upload_help" }),
      mapping.length ? h("p", { class: "muted", text: t("campaigns.columns", { map: mapping.map(([v, cols]) => `${v} ← ${cols.join(" / ") || v}`).join("; ") }) }) : null,
      form, result);
  };

  let lastState = null;
  let lastRefresh = 0;
  let pending = null;
  const refresh = async (force) => {
    const now = Date.now();
    if (!force && now - lastRefresh < REFRESH_MIN_S * 1000) {  // coalesce a burst of events
      if (!pending) pending = setTimeout(() => { pending = null; refresh(true); }, REFRESH_MIN_S * 1000);
      return;
    }
    lastRefresh = now;
    try { current = await api("GET", base, { query }); } catch (err) { actionStatus.textContent = errorText(err); return; }
    const c = current.campaign;
    showFacts(c, current.status);
    showProgress(current.status);
    if (c.state !== lastState) { showActions(c); showUpload(c); }
    if (c.state !== lastState || c.state === "running" || force) await showReport();
    lastState = c.state;
  };

  root.append(h("p", {}, h("a", { href: "#/campaigns", i18n: "campaigns.back" })), title, facts, actions, actionStatus,
    h("div", { class: "campaign-panels" }, progress, uploadBox), report);
  await refresh(true);

  // Live: the engine's campaign events when this console has one, else a poll.
  let source = null;
  const health = await api("GET", "/api/health").catch(() => ({ engine: false }));
  if (health.engine && can("events.read")) {
    source = new EventSource(`/api/events?topics=campaign.${tenant ? `&tenant=${enc(tenant)}` : ""}`);
    const onEvent = (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.data && msg.data.campaign === id) refresh(false);
    };
    for (const topic of ["campaign.progress", "campaign.state", "campaign.attempt", "campaign.skipped", "campaign.deferred"]) source.addEventListener(topic, onEvent);
  }
  const timer = setInterval(() => { if (LIVE_STATES.has(lastState)) refresh(false); }, (source ? SAFETY_POLL_S : POLL_S) * 1000);
  return () => {
    clearInterval(timer);
    if (pending) clearTimeout(pending);
    if (source) source.close();
  };
}
