// Inspection statistics (质检统计): totals, per flow, per rule (fail rate), per reviewer
// (override rate) and per day, the results as CSV, and calibration sessions — the same calls
// given to several reviewers — with their agreement: raw shares and the chance-corrected
// kappa (Cohen's for two reviewers, Fleiss' for more).
import { api } from "../api.js";
import { clear, errorText, field, h, table, toast } from "../dom.js";
import { fmtNumber, fmtDate, t } from "../i18n.js";
import { can, session } from "../session.js";
import { ensureStyles } from "./inspection_player.js";

const enc = encodeURIComponent;
const num = (v, digits = 1) => (v === null || v === undefined ? "—" : fmtNumber(v, { maximumFractionDigits: digits }));
const pct = (v) => (v === null || v === undefined ? "—" : fmtNumber(v, { style: "percent", maximumFractionDigits: 1 }));

export async function render(root) {
  ensureStyles();
  const staff = session.user.role !== "client";
  root.append(h("h1", { i18n: "inspection.stats.title" }));
  const tenant = staff ? h("input", { id: "stats-tenant", value: "*", class: "narrow" }) : null;
  const since = h("input", { id: "stats-since", type: "date" });
  const until = h("input", { id: "stats-until", type: "date" });
  const out = h("div", { id: "stats" });
  const csv = h("a", { id: "stats-csv", class: "button-link", download: "inspections.csv", i18n: "inspection.stats.csv" });
  const epoch = (el, days = 0) => (el.value ? new Date(el.value).getTime() / 1000 + days * 86400 : undefined);
  const load = async () => {
    clear(out);
    const tq = tenant ? tenant.value : undefined;
    csv.href = `/api/inspection/export${tq ? `?tenant=${enc(tq)}` : ""}`;
    try {
      const s = await api("GET", "/api/inspection/stats", { query: { tenant: tq, since: epoch(since), until: epoch(until, 1) } });
      const tot = s.total;
      out.append(h("div", { class: "tiles", id: "stats-total" },
        [["inspection.stats.calls", num(tot.calls, 0)], ["inspection.stats.mean_score", num(tot.mean_score)],
         ["inspection.stats.passed", num(tot.passed, 0)], ["inspection.stats.needs_review", num(tot.needs_review, 0)]]
          .map(([k, v]) => h("div", { class: "tile card" }, h("div", { class: "tile-value", text: v }), h("div", { class: "muted", i18n: k })))));
      const summaryCols = (first, label) => [
        { label, render: (r) => r[0] || first },
        { label: "inspection.stats.calls", render: (r) => num(r[1].calls, 0) },
        { label: "inspection.stats.mean_score", render: (r) => num(r[1].mean_score) },
        { label: "inspection.stats.passed", render: (r) => num(r[1].passed, 0) },
        { label: "inspection.stats.needs_review", render: (r) => num(r[1].needs_review, 0) }];
      out.append(h("h2", { i18n: "inspection.stats.by_rule" }), h("div", { id: "stats-rules" }, table([
        { label: "inspection.review.item", render: (r) => r[0] },
        { label: "inspection.status.pass", render: (r) => num(r[1].pass, 0) },
        { label: "inspection.status.fail", render: (r) => num(r[1].fail, 0) },
        { label: "inspection.status.na", render: (r) => num(r[1].na, 0) },
        { label: "inspection.stats.fail_rate", render: (r) => pct(r[1].fail_rate) }], Object.entries(s.items))),
      h("h2", { i18n: "inspection.stats.by_flow" }), table(summaryCols(t("inspection.stats.no_flow"), "inspection.col.flow"), Object.entries(s.flows)),
      h("h2", { i18n: "inspection.stats.by_campaign" }), h("div", { id: "stats-campaigns" }, table(summaryCols("", "inspection.col.campaign"), Object.entries(s.campaigns || {}))),
      h("h2", { i18n: "inspection.stats.by_reviewer" }), h("div", { id: "stats-reviewers" }, table([
        { label: "inspection.verdict.reviewer", render: (r) => r[0] },
        { label: "inspection.stats.reviews", render: (r) => num(r[1].reviews, 0) },
        { label: "inspection.stats.overrides", render: (r) => num(r[1].overrides, 0) },
        { label: "inspection.stats.override_rate", render: (r) => pct(r[1].override_rate) }], Object.entries(s.reviewers))),
      h("h2", { i18n: "inspection.stats.by_day" }), table(summaryCols("", "inspection.stats.day"), Object.entries(s.days)));
    } catch (err) { out.append(h("p", { class: "form-error", role: "alert", text: errorText(err) })); }
  };
  const form = h("form", { class: "inline-form card", id: "stats-filters" },
    tenant ? field("inspection.col.tenant", tenant) : null, field("inspection.stats.since", since), field("inspection.stats.until", until),
    h("button", { type: "submit", class: "primary", i18n: "inspection.stats.show" }), csv);
  form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
  root.append(form, out);
  await load();
  if (can("inspection.review")) await calibrations(root, tenant);
}

/** Landis & Koch's words for a kappa. */
function kappaWord(k) {
  if (k === null || k === undefined) return "";
  const band = k < 0 ? "poor" : k <= 0.2 ? "slight" : k <= 0.4 ? "fair" : k <= 0.6 ? "moderate" : k <= 0.8 ? "substantial" : "almost_perfect";
  return t(`inspection.kappa.${band}`);
}

async function calibrations(root, tenantInput) {
  const box = h("div", { id: "calibration-list" });
  const detail = h("div", { id: "calibration-detail", "aria-live": "polite" });
  const session_ = h("input", { id: "cal-session", required: true, pattern: "[A-Za-z0-9_.:\\-]{1,64}" });
  const calls = h("textarea", { id: "cal-calls", rows: 3, required: true });
  const reviewers = h("input", { id: "cal-reviewers", required: true });
  const calTenant = session.user.role === "client" ? null : h("input", { id: "cal-tenant", class: "narrow" });
  const status = h("div", { class: "form-error", role: "alert", id: "cal-error" });
  const tq = () => (calTenant && calTenant.value ? { tenant: calTenant.value } : tenantInput ? { tenant: tenantInput.value } : undefined);
  const show = async (name) => {
    clear(detail);
    try {
      const a = await api("GET", `/api/calibrations/${enc(name)}`, { query: tq() });
      const method = a.kappa_method ? t(`inspection.kappa.${a.kappa_method}`) : t("inspection.kappa.none");
      detail.append(h("h3", { text: t("inspection.calibration.agreement", { session: a.session }) }),
        h("dl", { class: "facts", id: "calibration-agreement" }, ...[
          ["inspection.calibration.calls", num(a.calls, 0)], ["inspection.calibration.reviews", num(a.reviews, 0)],
          ["inspection.calibration.reviewers", num(a.reviewers, 0)],
          ["inspection.calibration.verdict_agreement", pct(a.verdict_agreement)], ["inspection.calibration.pass_agreement", pct(a.pass_agreement)],
          ["inspection.calibration.spread", num(a.mean_score_spread)], ["inspection.calibration.method", `${method} (${t("inspection.calibration.kappa_calls", { n: a.kappa_calls })})`],
          ["inspection.calibration.verdict_kappa", `${num(a.verdict_kappa, 3)} ${kappaWord(a.verdict_kappa)}`],
          ["inspection.calibration.pass_kappa", `${num(a.pass_kappa, 3)} ${kappaWord(a.pass_kappa)}`],
        ].flatMap(([k, v]) => [h("dt", { i18n: k }), h("dd", { dataset: { key: k.split(".").pop() }, text: v })])),
        h("p", { class: "muted", i18n: "inspection.calibration.kappa_explain" }));
    } catch (err) { detail.append(h("p", { class: "form-error", role: "alert", text: errorText(err) })); }
  };
  const load = async () => {
    clear(box);
    try {
      const res = await api("GET", "/api/calibrations", { query: tq() });
      box.append(table([
        { label: "inspection.calibration.session", key: "session" },
        { label: "inspection.calibration.created", render: (r) => fmtDate(r.created_at) },
        { label: "inspection.calibration.calls", render: (r) => num(r.calls, 0) },
        { label: "inspection.calibration.reviewers", render: (r) => r.reviewers.join(", ") },
        { label: "inspection.calibration.open", render: (r) => num(r.open, 0) },
        { label: "inspection.calibration.done", render: (r) => num(r.done, 0) },
      ], res.items, { onRow: (r) => show(r.session) }));
    } catch (err) { box.append(h("p", { class: "form-error", role: "alert", text: errorText(err) })); }
  };
  const form = h("form", { class: "card", id: "cal-form" }, h("h3", { i18n: "inspection.calibration.new" }),
    h("div", { class: "inline-form" }, field("inspection.calibration.session", session_), field("inspection.calibration.reviewer_names", reviewers),
      calTenant ? field("inspection.col.tenant", calTenant) : null),
    field("inspection.calibration.call_ids", calls, t("inspection.calibration.call_ids_hint")), status,
    h("button", { type: "submit", class: "primary", i18n: "inspection.calibration.start" }));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    status.textContent = "";
    try {
      await api("POST", "/api/calibrations", { query: tq(), body: { session: session_.value.trim(),
        call_ids: calls.value.split(/[\s,]+/).filter(Boolean), reviewers: reviewers.value.split(/[\s,，]+/).filter(Boolean) } });
      toast(t("inspection.calibration.started"), "ok");
      await load();
      await show(session_.value.trim());
    } catch (err) { status.textContent = errorText(err); }
  });
  root.append(h("h2", { i18n: "inspection.calibration.title" }), h("p", { class: "muted", i18n: "inspection.calibration.explain" }), form, box, detail);
  await load();
}
