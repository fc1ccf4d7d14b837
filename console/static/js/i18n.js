// One JSON catalog per language (static/i18n/<locale>.json); no user-visible string lives in
// code. A missing key renders as ⟦key⟧ so the browser tests can find untranslated text.
const STORAGE_KEY = "ivr.locale";
export const LOCALES = ["zh-CN", "en"];
let catalog = {};
let locale = "zh-CN";

export function currentLocale() { return locale; }

export function preferredLocale() {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (LOCALES.includes(saved)) return saved;
  const nav = (navigator.language || "").toLowerCase();
  return nav.startsWith("zh") ? "zh-CN" : "en";
}

export async function loadLocale(wanted) {
  const loc = LOCALES.includes(wanted) ? wanted : "zh-CN";
  const resp = await fetch(`/static/i18n/${loc}.json`, { cache: "no-cache" });
  catalog = await resp.json();
  locale = loc;
  localStorage.setItem(STORAGE_KEY, loc);
  document.documentElement.lang = loc;
  document.title = t("app.title");
}

export function has(key) { return Object.prototype.hasOwnProperty.call(catalog, key); }

export function t(key, vars) {
  let text = has(key) ? catalog[key] : `⟦${key}⟧`;
  if (vars) {
    text = text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
  }
  return text;
}

/** A label for data (a node type, a port, a field): the catalog's word if it has one, else the
 * data itself (names that come from the flow document are not translated). */
export function tOr(key, fallback) { return has(key) ? catalog[key] : fallback; }

export function translateDom(root) {
  root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  root.querySelectorAll("[data-i18n-placeholder]").forEach((el) => {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  });
  root.querySelectorAll("[data-i18n-title]").forEach((el) => {
    el.title = t(el.dataset.i18nTitle);
    el.setAttribute("aria-label", el.title);
  });
}

export function fmtNumber(n, opts) { return new Intl.NumberFormat(locale, opts).format(n); }

export function fmtDate(value) {
  if (value === null || value === undefined || value === "") return "";
  const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "medium" }).format(d);
}

export function fmtDuration(seconds) {
  const s = Math.max(0, Math.round(seconds || 0));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  if (h) return t("unit.hms", { h, m, s: r });
  if (m) return t("unit.ms", { m, s: r });
  return t("unit.s", { s: r });
}

/** A validator problem in the reader's language: the catalog's sentence for its code, and for
 * the codes whose specifics only the server's message carries (which term, which field), that
 * message too. English readers get the server's own sentence, which is already specific. */
const SPECIFIC = new Set(["bad_value", "bad_expression", "bad_template", "blocked_words", "undefined_variable", "bad_json"]);
export function problemText(p) {
  if (locale === "en" || !has(`problem.${p.code}`)) return p.message;
  const text = t(`problem.${p.code}`, { port: p.port || "", node: p.node_id || "" });
  return SPECIFIC.has(p.code) ? `${text}：${p.message}` : text;
}
