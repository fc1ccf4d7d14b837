// The console's shell: login, navigation, the language switch and a hash router. Pages are ES
// modules with render(root, params) that may return a cleanup function.
import { api, setUnauthenticatedHandler } from "./api.js";
import { LOCALES, currentLocale, loadLocale, preferredLocale, t, translateDom } from "./i18n.js";
import { clear, errorText, field, h } from "./dom.js";
import { can, session } from "./session.js";

const PAGES = [
  { path: "flows", module: "./pages/flows.js", label: "nav.flows", perm: "flows.read" },
  { path: "routes", module: "./pages/routes.js", label: "routes.nav", perm: "routes.read" },
  { path: "words", module: "./pages/words.js", label: "nav.words", perm: "words.read" },
  { path: "lists", module: "./pages/lists.js", label: "nav.lists", perm: "lists.read" },
  { path: "voiceprints", module: "./pages/voiceprints.js", label: "voiceprints.nav", perm: "voiceprints.read" },
  { path: "calls", module: "./pages/calls.js", label: "nav.calls", perm: "calls.read" },
  { path: "campaigns", module: "./pages/campaigns.js", label: "campaigns.nav", perm: "campaigns.read" },
  { path: "dashboard", module: "./pages/dashboard.js", label: "nav.dashboards", perm: "stats.read" },
  { path: "reviews", module: "./pages/inspection.js", label: "inspection.nav.reviews", perm: "inspection.read" },
  { path: "scorecards", module: "./pages/scorecards.js", label: "inspection.nav.rules", perm: "inspection.read" },
  { path: "inspection-stats", module: "./pages/inspection_stats.js", label: "inspection.nav.stats", perm: "inspection.read" },
  { path: "admin", module: "./pages/admin.js", label: "nav.admin", perm: "tokens.own" },
];

let cleanup = null;

function app() { return document.getElementById("app"); }

function languageSwitch() {
  const select = h("select", { id: "lang", "aria-label": t("nav.language") },
    LOCALES.map((loc) => h("option", { value: loc, text: t(`lang.${loc}`) })));
  select.value = currentLocale();
  select.addEventListener("change", async () => {
    await loadLocale(select.value);
    await route();
  });
  return select;
}

function loginView(message) {
  const user = h("input", { name: "username", autocomplete: "username", required: true });
  const pass = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const status = h("div", { class: "form-error", role: "alert", text: message || "" });
  const form = h("form", { class: "login card", id: "login-form" },
    h("h1", { i18n: "app.title" }),
    field("login.username", user), field("login.password", pass), status,
    h("button", { type: "submit", class: "primary", i18n: "login.submit" }),
    h("div", { class: "login-lang" }, languageSwitch()));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    status.textContent = "";
    try {
      await api("POST", "/api/auth/login", { body: { username: user.value, password: pass.value } });
      await start();
    } catch (err) {
      status.textContent = errorText(err);
    }
  });
  clear(app()).append(h("main", { class: "login-page" }, form));
  user.focus();
}

function passwordView() {
  const cur = h("input", { type: "password", autocomplete: "current-password", required: true });
  const next = h("input", { type: "password", autocomplete: "new-password", required: true });
  const status = h("div", { class: "form-error", role: "alert" });
  const form = h("form", { class: "login card" }, h("h1", { i18n: "password.title" }),
    h("p", { i18n: "password.must_change" }),
    field("password.current", cur), field("password.new", next), status,
    h("button", { type: "submit", class: "primary", i18n: "password.submit" }));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("POST", "/api/auth/password", { body: { current_password: cur.value, new_password: next.value } });
      loginView(t("password.changed"));
    } catch (err) { status.textContent = errorText(err); }
  });
  clear(app()).append(h("main", { class: "login-page" }, form));
}

function shell() {
  const nav = h("nav", { class: "nav", "aria-label": t("nav.main") },
    PAGES.filter((p) => can(p.perm)).map((p) =>
      h("a", { href: `#/${p.path}`, dataset: { page: p.path }, i18n: p.label })));
  const logout = h("button", { id: "logout", class: "link", i18n: "nav.logout" });
  logout.addEventListener("click", async () => {
    // the page's timers and streams stop first: a poll answered 401 after the logout would
    // otherwise draw the login view again under the user's fingers
    if (cleanup) { try { cleanup(); } catch { /* never blocks the logout */ } cleanup = null; }
    await api("POST", "/api/auth/logout").catch(() => null);
    session.user = null;
    location.hash = "";
    loginView();
  });
  const header = h("header", { class: "top" },
    h("div", { class: "brand", i18n: "app.title" }), nav,
    h("div", { class: "who" },
      h("span", { id: "whoami", text: `${session.user.username} · ${t("role." + session.user.role)} · ${session.user.tenant}` }),
      languageSwitch(), logout));
  const main = h("main", { id: "page" });
  clear(app()).append(header, main);
  watchHeight(header);
  return main;
}

let headerWatch = null;
/** The header's height as --header-h: the editor fills the window below it, and the header is
 * as tall as its navigation wraps (the pages one may see, the language, the window's width). */
function watchHeight(header) {
  if (headerWatch) headerWatch.disconnect();
  headerWatch = new ResizeObserver(() => document.documentElement.style.setProperty("--header-h", `${header.offsetHeight}px`));
  headerWatch.observe(header);
}

async function route() {
  if (!session.user) return;
  if (cleanup) { try { cleanup(); } catch { /* a page's cleanup never blocks navigation */ } cleanup = null; }
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const page = PAGES.find((p) => p.path === parts[0] && can(p.perm)) || PAGES.find((p) => can(p.perm));
  const main = shell();
  if (!page) { main.append(h("p", { i18n: "common.nothing_allowed" })); return; }
  document.querySelectorAll(".nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page.path));
  try {
    const mod = await import(page.module);
    cleanup = (await mod.render(main, parts.slice(1))) || null;
  } catch (err) {  // a page that cannot load (not found, not yours) says so in place
    main.append(h("p", { class: "form-error page-error", role: "alert", text: errorText(err) }));
  }
  translateDom(main);
}

async function start() {
  if (!/(?:^|;\s*)ivr_csrf=/.test(document.cookie)) { loginView(); return; }  // no session
  try {
    const me = await api("GET", "/api/auth/me");
    session.user = me.user;
    session.permissions = me.permissions;
  } catch (err) {
    if (err.code === "password_change_required") { passwordView(); return; }
    loginView();
    return;
  }
  if (session.user.must_change_password) { passwordView(); return; }
  await route();
}

setUnauthenticatedHandler(() => { session.user = null; loginView(); });
window.addEventListener("hashchange", route);
await loadLocale(preferredLocale());
await start();
