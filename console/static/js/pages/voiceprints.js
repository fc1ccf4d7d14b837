// Voiceprints: who of a tenant is enrolled (never the voiceprint itself), each person's audit
// trail (every enrolment, verification and deletion: when, by whom, with what outcome), and
// erasure on request (consent withdrawn) after a confirmation; the trail stays after erasure.
// Staff pick the tenant (kept in the address: #/voiceprints/<tenant>).
import { api } from "../api.js";
import { clear, confirmDialog, errorText, h, table, toast } from "../dom.js";
import { fmtDate, fmtNumber, t, tOr } from "../i18n.js";
import { can } from "../session.js";
import { tenantPicker } from "../tenant_picker.js";

const PAGE = 100;
const REPLAY = ":replay";  // an outcome suffix: the audio matched a sample heard before
const enc = encodeURIComponent;

function outcomeText(outcome) {
  const replay = outcome.endsWith(REPLAY);
  const base = replay ? outcome.slice(0, -REPLAY.length) : outcome;
  const text = tOr(`voiceprints.outcome.${base}`, base);
  return replay ? `${text} · ${t("voiceprints.replay")}` : text;
}

function seconds(s) { return t("voiceprints.seconds", { s: fmtNumber(s, { maximumFractionDigits: 1 }) }); }

export async function render(root, params) {
  const picker = await tenantPicker(params[0], "voiceprints.tenant", (tenant) => { location.hash = `#/voiceprints/${enc(tenant)}`; });
  const { query } = picker;
  const deletable = can("voiceprints.delete");
  let people = [];
  let done = false;

  const q = h("input", { id: "vp-q", type: "search", autocomplete: "off" });
  const listBox = h("div", { id: "vp-list" });
  const more = h("button", { type: "button", id: "vp-more", hidden: true, i18n: "common.more" });
  const audit = h("section", { class: "card", id: "vp-audit", hidden: true, "aria-live": "polite" });

  const show = () => {
    clear(listBox).append(table([
      { label: "voiceprints.person", render: (p) => h("code", { text: p.person_id }) },
      { label: "voiceprints.enrolled", render: (p) => fmtDate(p.created_at) },
      { label: "voiceprints.updated", render: (p) => fmtDate(p.updated_at) },
      { label: "voiceprints.utterances", render: (p) => fmtNumber(p.n_utterances) },
      { label: "voiceprints.speech", render: (p) => seconds(p.speech_s) },
      { label: "voiceprints.consent", render: (p) => (p.consent_given_at ? fmtDate(p.consent_given_at) : h("span", { class: "bad", text: t("voiceprints.no_consent") })) },
      { label: "voiceprints.backend", key: "backend" },
      { label: "voiceprints.actions", render: (p) => h("span", { class: "row-actions" },
        h("button", { type: "button", class: "link", dataset: { audit: p.person_id }, text: t("voiceprints.show_audit"), onclick: () => showAudit(p.person_id) }),
        deletable ? h("button", { type: "button", class: "link danger", dataset: { remove: p.person_id }, text: t("voiceprints.delete"), onclick: () => remove(p.person_id) }) : null) },
    ], people));
    more.hidden = done;
  };
  const load = async (append) => {
    try {
      const after = append && people.length ? people[people.length - 1].person_id : "";
      const res = await api("GET", "/api/voiceprints", { query: { ...query, q: q.value.trim(), after, limit: PAGE } });
      people = append ? people.concat(res.items) : res.items;
      done = res.items.length < PAGE;
      show();
    } catch (err) { clear(listBox).append(h("p", { class: "form-error", role: "alert", text: errorText(err) })); }
  };

  async function showAudit(person) {
    const heading = h("h2", { tabindex: "-1", id: "vp-audit-title", text: t("voiceprints.audit_title", { person }) });
    const close = h("button", { type: "button", class: "link", id: "vp-audit-close", i18n: "voiceprints.close" });
    close.addEventListener("click", () => { audit.hidden = true; clear(audit); });
    clear(audit).append(h("div", { class: "row spread" }, heading, close));
    audit.hidden = false;
    try {
      const res = await api("GET", `/api/voiceprints/${enc(person)}/audit`, { query });
      const rows = [...res.items].sort((a, b) => b.at - a.at);  // newest first, like the audit log
      audit.append(h("p", { class: "muted", i18n: "voiceprints.audit_help" }), table([
        { label: "voiceprints.at", render: (e) => fmtDate(e.at) },
        { label: "voiceprints.action", render: (e) => h("span", { dataset: { action: e.action }, text: tOr(`voiceprints.action.${e.action}`, e.action) }) },
        { label: "voiceprints.outcome_label", render: (e) => h("span", { dataset: { outcome: e.outcome }, text: outcomeText(e.outcome) }) },
        { label: "voiceprints.actor", key: "actor" },
      ], rows));
    } catch (err) { audit.append(h("p", { class: "form-error", role: "alert", text: errorText(err) })); }
    heading.focus();
  }

  async function remove(person) {
    const sure = await confirmDialog(t("voiceprints.confirm_delete", { person }),
      { yes: "voiceprints.delete_yes", no: "voiceprints.keep", danger: true });
    if (!sure) return;
    try {
      await api("DELETE", `/api/voiceprints/${enc(person)}`, { query });
      toast(t("voiceprints.deleted", { person }), "ok");
      await load(false);
      await showAudit(person);  // the trail stays, now ending in the deletion
    } catch (err) { toast(errorText(err), "error"); }
  }

  const search = h("form", { class: "row", id: "vp-search", role: "search" },
    h("label", { for: "vp-q", i18n: "voiceprints.search" }), q, h("button", { type: "submit", i18n: "common.search" }));
  search.addEventListener("submit", (e) => { e.preventDefault(); load(false); });
  more.addEventListener("click", () => load(true));

  root.append(h("h1", { i18n: "voiceprints.title" }), h("p", { class: "muted", i18n: "voiceprints.help" }));
  if (picker.element) root.append(picker.element);
  root.append(search, listBox, more, audit);
  await load(false);
}
