// Inspection reviews (质检复核): the review queue (mine / everyone's, by rule, score, state and
// why it is queued), inspected calls searched by transcript, and one call's review: both
// channels' waveform and the player, the transcript as turns per speaker with rule hits
// highlighted (a click plays from there), the score by section and item, the verdict form
// (agree, or override with a score and a comment; after an override a second-level review,
// which agrees with or overrides the first level's verdict), and the call's audit trail.
import { api } from "../api.js";
import { clear, errorText, field, h, table, toast } from "../dom.js";
import { fmtDate, fmtNumber, t, tOr } from "../i18n.js";
import { can, session } from "../session.js";
import { CallPlayer, ensureStyles, fmtOffset } from "./inspection_player.js";

const enc = encodeURIComponent;
const STATES = ["queued", "assigned", "escalated", "final", "any"];
const REASONS = ["", "auto_fail", "score", "review", "sample"];

export async function render(root, params) {
  ensureStyles();
  if (params[0]) return review(root, params[0]);
  return queue(root);
}

const scoreText = (v) => (v === null || v === undefined ? "—" : fmtNumber(v, { maximumFractionDigits: 1 }));
const stateText = (s) => t(`inspection.state.${s || "none"}`);

function reasonText(reason) {
  const [head] = String(reason).split(" ");
  const key = `inspection.reason.${head.replace(/:$/, "")}`;
  return `${tOr(key, head)}${reason.includes(" ") ? " " + reason.slice(reason.indexOf(" ") + 1) : ""}`;
}

function resultTable(rows) {
  return table([
    { label: "inspection.col.inspected", render: (r) => fmtDate(r.inspected_at) },
    { label: "inspection.col.call", key: "call_id" },
    { label: "inspection.col.tenant", key: "tenant" },
    { label: "inspection.col.flow", render: (r) => r.flow_id || "" },
    { label: "inspection.col.score", render: (r) => scoreText(r.score) },
    { label: "inspection.col.state", render: (r) => stateText(r.review_state) },
    { label: "inspection.col.reasons", render: (r) => r.reasons.map(reasonText).join("; ") },
  ], rows, { onRow: (r) => { location.hash = `#/reviews/${enc(r.call_id)}`; } });
}

async function ruleOptions() {
  try {
    const res = await api("GET", "/api/scorecards", { query: { tenant: session.user.role === "client" ? undefined : "*" } });
    const ids = new Set();
    for (const card of res.items) for (const s of card.document.sections || []) for (const i of s.items || []) ids.add(i.id);
    return [...ids].sort();
  } catch { return []; }
}

async function queue(root) {
  root.append(h("h1", { i18n: "inspection.queue.title" }));
  const staff = session.user.role !== "client";
  if (can("inspection.review")) {
    const mine = h("select", { id: "queue-mine" },
      h("option", { value: "mine", i18n: "inspection.queue.mine" }), h("option", { value: "all", i18n: "inspection.queue.all" }));
    const state = h("select", { id: "queue-state" }, STATES.map((s) => h("option", { value: s, i18n: `inspection.state.${s}` })));
    const rule = h("select", { id: "queue-rule" }, h("option", { value: "", i18n: "inspection.queue.any_rule" }));
    const reason = h("select", { id: "queue-reason" }, REASONS.map((r) => h("option", { value: r, i18n: r ? `inspection.reason.${r}` : "inspection.queue.any_reason" })));
    const minScore = h("input", { id: "queue-min", type: "number", min: 0, max: 100, step: "any", class: "narrow" });
    const maxScore = h("input", { id: "queue-max", type: "number", min: 0, max: 100, step: "any", class: "narrow" });
    const tenant = staff ? h("input", { id: "queue-tenant", value: "*", class: "narrow" }) : null;
    const box = h("div", { id: "review-queue" });
    const load = async () => {
      clear(box);
      const me = mine.value === "mine";
      try {
        const res = await api("GET", "/api/reviews", { query: {
          state: me && state.value === "queued" ? "any" : state.value, reviewer: me ? session.user.username : undefined,
          rule: rule.value, reason: reason.value, min_score: minScore.value, max_score: maxScore.value,
          tenant: tenant ? tenant.value : undefined, limit: 100 } });
        box.append(resultTable(res.items));
      } catch (err) { box.append(h("p", { class: "form-error", role: "alert", text: errorText(err) })); }
    };
    const form = h("form", { class: "inline-form card", id: "queue-filters" },
      field("inspection.queue.whose", mine), field("inspection.queue.state", state), field("inspection.queue.rule", rule),
      field("inspection.queue.reason", reason), field("inspection.queue.min_score", minScore), field("inspection.queue.max_score", maxScore),
      tenant ? field("inspection.col.tenant", tenant) : null,
      h("button", { type: "submit", class: "primary", i18n: "common.search" }));
    form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
    mine.value = "all";
    root.append(h("h2", { i18n: "inspection.queue.reviews" }), form, box);
    (await ruleOptions()).forEach((id) => rule.append(h("option", { value: id, text: id })));
    await load();
  }
  // every inspected call, by what was said
  const q = h("input", { id: "inspection-q", type: "search" });
  const needs = h("input", { id: "inspection-needs", type: "checkbox" });
  const tenant = staff ? h("input", { id: "inspection-tenant", value: "*", class: "narrow" }) : null;
  const found = h("div", { id: "inspection-list" });
  const search = async () => {
    clear(found);
    try {
      const res = await api("GET", "/api/inspections", { query: { q: q.value, needs_review: needs.checked ? "true" : undefined, tenant: tenant ? tenant.value : undefined, limit: 100 } });
      found.append(resultTable(res.items));
    } catch (err) { found.append(h("p", { class: "form-error", role: "alert", text: errorText(err) })); }
  };
  const form = h("form", { class: "inline-form card", id: "inspection-search" },
    field("inspection.search.text", q), h("div", { class: "field check" }, h("label", { for: "inspection-needs" }, needs, " ", h("span", { i18n: "inspection.search.needs_review" }))),
    tenant ? field("inspection.col.tenant", tenant) : null,
    h("button", { type: "submit", class: "primary", i18n: "common.search" }));
  form.addEventListener("submit", (e) => { e.preventDefault(); search(); });
  root.append(h("h2", { i18n: "inspection.search.title" }), form, found);
  await search();
}

// -- one call --------------------------------------------------------------------------------

/** Every piece of evidence with its item, for the transcript and the waveform. */
function hitsOf(items) {
  const out = [];
  items.forEach((item) => item.evidence.forEach((ev, n) => {
    if (ev.end_ms > ev.start_ms || ev.text) out.push({ ...ev, item, key: `${item.id}-${n}` });
  }));
  return out.sort((a, b) => a.start_ms - b.start_ms);
}

function turnView(turn, hits, player) {
  const mine = hits.filter((hit) => hit.item.status === "fail" && (hit.speaker === turn.speaker || hit.speaker === "any")
    && hit.start_ms < turn.end_ms && hit.end_ms > turn.start_ms);
  const text = h("div", { class: "turn-text" });
  let rest = turn.text, at = 0;
  const lower = turn.text.toLowerCase();
  const marks = [];
  for (const hit of mine) {
    const needle = (hit.text || "").trim().toLowerCase();
    const i = needle ? lower.indexOf(needle, at) : -1;
    if (i >= 0) { marks.push([i, i + needle.length, hit]); at = i + needle.length; }
  }
  at = 0;
  for (const [a, b, hit] of marks) {
    text.append(turn.text.slice(at, a));
    const mark = h("mark", { class: "hit", tabindex: "0", role: "button", dataset: { ms: String(hit.start_ms), item: hit.item.id }, title: hit.item.name, text: turn.text.slice(a, b) });
    const go = (e) => { e.stopPropagation(); player && player.seek(hit.start_ms); };
    mark.addEventListener("click", go);
    mark.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(e); } });
    text.append(mark);
    at = b;
  }
  rest = turn.text.slice(at);
  text.append(rest);
  const unplaced = mine.filter((hit) => !marks.some(([, , m]) => m === hit));
  const row = h("li", { class: `turn ${turn.speaker}${mine.length ? " has-hit" : ""}`, tabindex: "0", dataset: { ms: String(turn.start_ms) } },
    h("div", { class: "turn-head" }, h("span", { class: "who", i18n: `inspection.speaker.${turn.speaker}` }),
      h("button", { type: "button", class: "link small time", text: fmtOffset(turn.start_ms), "aria-label": t("inspection.review.play_from", { at: fmtOffset(turn.start_ms) }) })),
    text, unplaced.length ? h("div", { class: "turn-hits" }, unplaced.map((hit) => h("span", { class: "chip bad", text: hit.item.name }))) : null);
  const go = () => player && player.seek(turn.start_ms);
  row.addEventListener("click", go);
  row.addEventListener("keydown", (e) => { if (e.key === "Enter" && e.target === row) go(); });
  return row;
}

function evidenceView(item, callId, player) {
  return h("ul", { class: "evidence" }, item.evidence.map((ev) => h("li", {},
    h("button", { type: "button", class: "link small seek", dataset: { ms: String(ev.start_ms), item: item.id }, text: `▶ ${fmtOffset(ev.start_ms)}`, onclick: () => player && player.seek(ev.start_ms) }),
    " ", h("span", { class: "muted", text: t(`inspection.speaker.${ev.speaker}`) }),
    ev.text ? h("q", { text: ev.text }) : null, ev.detail ? h("span", { class: "muted", text: ` ${ev.detail}` }) : null,
    ev.node_id ? h("a", { class: "node-link", href: `#/calls/${enc(callId)}/${enc(ev.node_id)}`, text: ` ${t("inspection.review.node", { node: ev.node_id })}` }) : null)));
}

function scoreView(res, player) {
  const status = (s) => h("span", { class: `badge ${s}`, i18n: `inspection.status.${s}` });
  const sections = Object.entries(res.sections);
  return h("section", { class: "card score", id: "review-score" },
    h("div", { class: "score-head" },
      h("div", { class: `big-score ${res.passed ? "ok" : "bad"}`, id: "review-score-value", text: scoreText(res.score) }),
      h("dl", { class: "facts" },
        h("dt", { i18n: "inspection.review.result" }), h("dd", { i18n: res.auto_failed ? "inspection.review.auto_failed" : res.passed ? "inspection.review.passed" : "inspection.review.failed" }),
        h("dt", { i18n: "inspection.col.state" }), h("dd", { id: "review-state", text: stateText(res.review_state) }),
        h("dt", { i18n: "inspection.review.final_score" }), h("dd", { id: "review-final", text: scoreText(res.final_score) }),
        h("dt", { i18n: "inspection.review.decided_by" }), h("dd", { id: "review-decision", text: decisionText(res.decision) }),
        h("dt", { i18n: "inspection.review.scorecard" }), h("dd", { text: `${res.scorecard} v${res.scorecard_version}` }),
        h("dt", { i18n: "inspection.col.reasons" }), h("dd", { text: res.reasons.map(reasonText).join("; ") || "—" }))),
    h("h3", { i18n: "inspection.review.sections" }),
    table([{ label: "inspection.review.section", render: (r) => r[0] },
      { label: "inspection.col.score", render: (r) => (r[1] === null ? t("inspection.status.na") : scoreText(r[1])) }], sections),
    h("h3", { i18n: "inspection.review.items" }),
    table([
      { label: "inspection.review.item", render: (r) => h("span", {}, r.name, r.auto_fail ? h("span", { class: "chip bad", i18n: "inspection.review.auto_fail" }) : null) },
      { label: "inspection.review.section", key: "section" },
      { label: "inspection.review.status", render: (r) => status(r.status) },
      { label: "inspection.review.points", render: (r) => (r.status === "na" ? "—" : `${fmtNumber(r.earned)} / ${fmtNumber(r.points)}`) },
      { label: "inspection.review.evidence", render: (r) => h("div", {}, r.detail ? h("div", { class: "muted", text: r.detail }) : null, evidenceView(r, res.call_id, player)) },
    ], res.items));
}

/** "Second-level review · rita · agree": whose verdict the final score is. */
function decisionText(d) {
  if (!d) return "—";
  return `${t(`inspection.verdict.level${d.level}`)} · ${d.reviewer} · ${verdictText(d)}`;
}

/** A review's verdict in words: the second level agrees with or overrides the first level. */
function verdictText(r) {
  if (!r.verdict) return "";
  return t(!r.session && r.level === 2 ? `inspection.verdict.${r.verdict}_level1_short` : `inspection.verdict.${r.verdict}`);
}

/** The level-1 verdict a second-level review judges (the latest decided one). */
function judged(reviews) {
  const done = reviews.filter((r) => !r.session && r.level === 1 && r.state === "done");
  return done.length ? done[done.length - 1] : null;
}

function reviewsTable(reviews) {
  return table([
    { label: "inspection.verdict.level", render: (r) => (r.session ? t("inspection.verdict.calibration", { session: r.session }) : t(`inspection.verdict.level${r.level}`)) },
    { label: "inspection.verdict.reviewer", key: "reviewer" },
    { label: "inspection.col.state", render: (r) => t(`inspection.verdict.state_${r.state}`) },
    { label: "inspection.verdict.verdict", render: (r) => verdictText(r) },
    { label: "inspection.col.score", render: (r) => (r.state === "done" ? scoreText(r.score) : "") },
    { label: "inspection.verdict.comment", key: "comment" },
    { label: "inspection.verdict.decided", render: (r) => fmtDate(r.decided_at) },
  ], reviews);
}

function verdictForm(res, open, tenantQuery, reload) {
  const agree = h("input", { type: "radio", name: "verdict", value: "agree", id: "verdict-agree", checked: true });
  const override = h("input", { type: "radio", name: "verdict", value: "override", id: "verdict-override" });
  const score = h("input", { id: "verdict-score", type: "number", min: 0, max: 100, step: "any", class: "narrow" });
  const comment = h("textarea", { id: "verdict-comment", rows: 3 });
  const errors = { score: h("div", { class: "inline-error", id: "verdict-score-error" }), comment: h("div", { class: "inline-error", id: "verdict-comment-error" }) };
  const status = h("div", { class: "form-error", role: "alert", id: "verdict-error" });
  // the server checks an override's score and comment and names the field; its message is
  // shown beside it (no browser-only validation that would say it differently)
  const sync = () => { score.disabled = !override.checked; for (const el of [score, comment]) el.setAttribute("aria-required", String(override.checked)); };
  agree.addEventListener("change", sync);
  override.addEventListener("change", sync);
  sync();
  const heading = open.session ? t("inspection.verdict.calibration", { session: open.session }) : t(`inspection.verdict.level${open.level}`);
  // the second level judges the first level's verdict: agreeing confirms its score
  const first = !open.session && open.level === 2 ? judged(res.reviews) : null;
  const underReview = first ? h("div", { class: "judged", id: "verdict-judged" },
    h("p", { text: t(`inspection.verdict.judged_${first.verdict}`, { reviewer: first.reviewer, score: scoreText(first.score) }) }),
    first.comment ? h("blockquote", { text: first.comment }) : null) : null;
  const agreeLabel = first ? h("span", { text: t("inspection.verdict.agree_level1", { score: scoreText(first.score) }) }) : h("span", { i18n: "inspection.verdict.agree" });
  const overrideLabel = h("span", { i18n: first ? "inspection.verdict.override_level1" : "inspection.verdict.override" });
  const form = h("form", { class: "card verdict", id: "verdict-form", novalidate: true },
    h("h2", { i18n: "inspection.verdict.title" }), h("p", { class: "muted", id: "verdict-level", text: heading }), underReview,
    h("fieldset", {}, h("legend", { i18n: "inspection.verdict.verdict" }),
      h("label", { for: "verdict-agree" }, agree, " ", agreeLabel),
      h("label", { for: "verdict-override" }, override, " ", overrideLabel)),
    h("div", { class: "field" }, h("label", { for: "verdict-score", i18n: "inspection.verdict.score" }), score, errors.score),
    h("div", { class: "field" }, h("label", { for: "verdict-comment", i18n: "inspection.verdict.comment" }), comment, errors.comment),
    status, h("button", { type: "submit", class: "primary", id: "verdict-submit", i18n: "inspection.verdict.submit" }));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    status.textContent = errors.score.textContent = errors.comment.textContent = "";
    const body = override.checked ? { verdict: "override", score: score.value === "" ? null : Number(score.value), comment: comment.value } : { verdict: "agree", comment: comment.value };
    try {
      await api("POST", `/api/reviews/${open.id}/verdict`, { body, query: tenantQuery });
      toast(t("inspection.verdict.saved"), "ok");
      await reload();
    } catch (err) {
      const name = (err.field || "").replace(/^body\./, "");
      if (errors[name]) { errors[name].textContent = errorText(err); (name === "score" ? score : comment).focus(); } else status.textContent = errorText(err);
    }
  });
  return form;
}

/** What the audit log holds of this call's review: who assigned, decided, re-inspected. */
async function auditTrail(callId, tenantQuery) {
  const box = h("section", { id: "review-audit" }, h("h2", { i18n: "inspection.audit.title" }));
  try {
    const res = await api("GET", "/api/inspection/audit", { query: { ...(tenantQuery || {}), call_id: callId, limit: 100 } });
    const detail = (e) => {
      const d = e.detail || {};
      const parts = [];
      if (d.session) parts.push(t("inspection.verdict.calibration", { session: d.session }));
      else if (d.level) parts.push(t(`inspection.verdict.level${d.level}`));
      if (d.reviewer) parts.push(d.reviewer);
      if (d.verdict) parts.push(verdictText(d));
      if (d.score !== undefined && d.score !== null) parts.push(`${t("inspection.col.score")} ${scoreText(d.score)}`);
      if (d.final_score !== undefined && d.final_score !== null) parts.push(`${t("inspection.review.final_score")} ${scoreText(d.final_score)}`);
      return parts.join(" · ");
    };
    box.append(table([
      { label: "inspection.audit.at", render: (e) => fmtDate(e.at) },
      { label: "inspection.audit.actor", key: "actor" },
      { label: "inspection.audit.action", render: (e) => tOr(`inspection.audit.action.${e.action.replace(/^inspection\./, "")}`, e.action) },
      { label: "inspection.audit.detail", render: detail },
    ], res.items));
  } catch (err) { box.append(h("p", { class: "form-error", role: "alert", text: errorText(err) })); }
  return box;
}

function takeButton(res, tenantQuery, reload) {
  const status = h("div", { class: "form-error", role: "alert", id: "take-error" });
  const level = res.review_state === "escalated" ? "inspection.verdict.take_second" : "inspection.verdict.take";
  const button = h("button", { type: "button", class: "primary", id: "review-take", i18n: level });
  button.addEventListener("click", async () => {
    status.textContent = "";
    try {
      await api("POST", "/api/reviews", { body: { call_id: res.call_id }, query: tenantQuery });
      await reload();
    } catch (err) { status.textContent = errorText(err); }
  });
  return h("div", { class: "card verdict", id: "verdict-take" }, h("h2", { i18n: "inspection.verdict.title" }), button, status);
}

async function review(root, callId) {
  root.append(h("p", {}, h("a", { href: "#/reviews", i18n: "inspection.review.back" })));
  const staff = session.user.role !== "client";  // staff read any tenant's call ("*")
  let res;
  try {
    res = await api("GET", `/api/inspections/${enc(callId)}`, { query: { tenant: staff ? "*" : undefined } });
  } catch (err) {
    root.append(h("p", { class: "form-error page-error", role: "alert", text: errorText(err) }));
    return null;
  }
  const tenantQuery = staff ? { tenant: res.tenant } : undefined;
  const call = await api("GET", `/api/calls/${enc(callId)}`, { query: tenantQuery }).catch(() => null);
  root.append(h("h1", { text: t("inspection.review.title", { call: call ? `${call.from_number} → ${call.to_number}` : callId }) }),
    h("p", { class: "muted" }, `${fmtDate(res.inspected_at)} · ${res.tenant}${res.flow_id ? " · " + res.flow_id : ""} · `,
      h("a", { href: `#/calls/${enc(callId)}`, i18n: "inspection.review.call_record" })));
  const hits = hitsOf(res.items);
  let player = null;
  const layout = h("div", { class: "review-layout" });
  const leftCol = h("div", { class: "review-main" });
  const rightCol = h("div", { class: "review-side" });
  layout.append(leftCol, rightCol);
  root.append(layout);
  if (call && call.recording_url && can("calls.recording")) {
    player = new CallPlayer({ url: call.recording_url, hits: hits.filter((x) => x.item.status === "fail") });
    leftCol.append(player.element);
    try { await player.load(); } catch (err) { player.status.textContent = t("inspection.review.no_audio"); }
  } else {
    leftCol.append(h("p", { class: "muted", i18n: "inspection.review.no_audio" }));
  }
  const turns = (res.transcript && res.transcript.turns) || [];
  leftCol.append(h("h2", { i18n: "inspection.review.transcript" }),
    turns.length ? h("ol", { class: "transcript", id: "transcript" }, turns.map((turn) => turnView(turn, hits, player)))
      : h("p", { class: "muted", i18n: "inspection.review.no_speech" }));
  rightCol.append(scoreView(res, player));
  const verdictBox = h("div", { id: "verdict-box" });
  rightCol.append(verdictBox);
  const showVerdict = async () => {
    const fresh = await api("GET", `/api/inspections/${enc(callId)}`, { query: tenantQuery });
    clear(verdictBox);
    const open = fresh.reviews.find((r) => r.state === "open" && r.reviewer === session.user.username);
    if (can("inspection.review")) {
      if (open) verdictBox.append(verdictForm(fresh, open, tenantQuery, showVerdict));
      else if (["queued", "escalated"].includes(fresh.review_state)) verdictBox.append(takeButton(fresh, tenantQuery, showVerdict));
    }
    const dd = document.getElementById("review-state");
    if (dd) dd.textContent = stateText(fresh.review_state);
    const fin = document.getElementById("review-final");
    if (fin) fin.textContent = scoreText(fresh.final_score);
    const dec = document.getElementById("review-decision");
    if (dec) dec.textContent = decisionText(fresh.decision);
    verdictBox.append(h("h2", { i18n: "inspection.verdict.history" }), h("div", { id: "review-history" }, reviewsTable(fresh.reviews)));
    if (can("inspection.audit")) verdictBox.append(await auditTrail(callId, tenantQuery));
  };
  await showVerdict();
  const onResize = () => player && player.data && player.resize();
  window.addEventListener("resize", onResize);
  return () => { window.removeEventListener("resize", onResize); if (player) player.dispose(); };
}
