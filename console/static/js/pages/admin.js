// Administration: tenants (staff read them, admins create them), users (admins), one's own API
// tokens (everyone), the audit log (who may read it).
import { api } from "../api.js";
import { clear, clearFieldErrors, errorText, field, h, showFieldErrors, table, toast } from "../dom.js";
import { fmtDate, t } from "../i18n.js";
import { can } from "../session.js";

const ROLES = ["admin", "ops", "designer", "qa", "client"];

export async function render(root) {
  root.append(h("h1", { i18n: "admin.title" }));
  if (can("tenants.read")) root.append(await tenantsSection());
  if (can("users.manage")) root.append(await usersSection());
  root.append(await tokensSection());
  if (can("audit.read")) root.append(await auditSection());
}

/** The operator's enterprise clients: each tenant's flows, numbers, lists, voiceprints and calls
 * are its own. Admins add one here before giving it users (its id cannot change later). */
async function tenantsSection() {
  const box = h("section", { id: "tenants" }, h("h2", { i18n: "tenants.title" }));
  const list = h("div", { id: "tenant-list" });
  const ids = h("datalist", { id: "tenant-ids" });  // suggestions for the new user's tenant
  const load = async () => {
    try {
      const res = await api("GET", "/api/tenants");
      clear(ids).append(...res.items.map((x) => h("option", { value: x.id })));
      clear(list).append(table([
        { label: "tenants.id", render: (x) => h("code", { text: x.id }) },
        { label: "tenants.name", key: "name" },
        { label: "tenants.created", render: (x) => fmtDate(x.created_at) },
      ], res.items));
    } catch (err) { clear(list).append(h("p", { class: "form-error", role: "alert", text: errorText(err) })); }
  };
  box.append(list, ids);
  if (can("tenants.manage")) {
    const id = h("input", { id: "tenant-id", dataset: { field: "id" }, autocomplete: "off", maxlength: "64" });
    const name = h("input", { id: "tenant-name", dataset: { field: "name" }, autocomplete: "off", maxlength: "200" });
    const general = h("div", { class: "form-error", role: "alert", id: "tenant-error" });
    const form = h("form", { class: "inline-form card", id: "tenant-add", novalidate: true }, h("h2", { i18n: "tenants.new" }),
      field("tenants.id", id, t("tenants.id_hint")), field("tenants.name", name), general,
      h("button", { type: "submit", class: "primary", i18n: "tenants.create" }));
    const explain = (which, err) => {
      if (which === "id" && err.code === "conflict") return t("tenants.exists", { id: id.value.trim() });
      if (which === "id" && err.code === "invalid") return t("tenants.id_invalid");
      if (which === "name" && err.code === "invalid") return t("tenants.name_required");
      return null;
    };
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      clearFieldErrors(form, general);
      try {
        const created = await api("POST", "/api/tenants", { body: { id: id.value.trim(), name: name.value.trim() } });
        toast(t("tenants.created_toast", { id: created.id }), "ok");
        id.value = ""; name.value = "";
        await load();
        id.focus();
      } catch (err) { showFieldErrors(form, err, general, explain); }
    });
    box.append(form);
  }
  await load();
  return box;
}

async function usersSection() {
  const box = h("section", { id: "users" }, h("h2", { i18n: "admin.users" }));
  const list = h("div");
  const load = async () => {
    clear(list);
    const res = await api("GET", "/api/users");
    list.append(table([
      { label: "login.username", key: "username" },
      { label: "admin.role", render: (u) => t(`role.${u.role}`) },
      { label: "calls.tenant", key: "tenant" },
      { label: "admin.created", render: (u) => fmtDate(u.created_at) },
      { label: "admin.state", render: (u) => {
        const b = h("button", { type: "button", class: "small", text: u.disabled ? t("admin.enable") : t("admin.disable") });
        b.addEventListener("click", async () => {
          try { await api("PATCH", `/api/users/${u.id}`, { body: { disabled: !u.disabled } }); await load(); }
          catch (err) { toast(errorText(err), "error"); }
        });
        return h("span", {}, u.disabled ? t("admin.disabled") : t("admin.active"), " ", b);
      } },
    ], res.items));
  };
  const username = h("input", { id: "user-name", required: true, autocomplete: "off" });
  const password = h("input", { id: "user-password", type: "password", required: true, autocomplete: "new-password" });
  const role = h("select", { id: "user-role" }, ROLES.map((r) => h("option", { value: r, text: t(`role.${r}`) })));
  const tenant = h("input", { id: "user-tenant", value: "default", list: "tenant-ids", autocomplete: "off" });
  const status = h("div", { class: "form-error", role: "alert" });
  const form = h("form", { class: "inline-form card", id: "user-add" }, h("h2", { i18n: "admin.new_user" }),
    field("login.username", username), field("login.password", password), field("admin.role", role),
    field("calls.tenant", tenant), status, h("button", { type: "submit", class: "primary", i18n: "common.add" }));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    status.textContent = "";
    try {
      await api("POST", "/api/users", { body: { username: username.value, password: password.value, role: role.value, tenant: tenant.value } });
      username.value = ""; password.value = "";
      await load();
    } catch (err) { status.textContent = errorText(err); }
  });
  box.append(list, form);
  await load();
  return box;
}

async function tokensSection() {
  const box = h("section", { id: "tokens" }, h("h2", { i18n: "admin.tokens" }));
  const list = h("div");
  const shown = h("div", { id: "token-shown" });
  const load = async () => {
    clear(list);
    const res = await api("GET", "/api/tokens");
    list.append(table([
      { label: "admin.token_name", key: "name" },
      { label: "admin.scopes", render: (x) => (x.scopes ? x.scopes.join(", ") : t("admin.all_scopes")) },
      { label: "admin.created", render: (x) => fmtDate(x.created_at) },
      { label: "admin.expires", render: (x) => (x.expires_at ? fmtDate(x.expires_at) : t("lists.never")) },
      { label: "admin.last_used", render: (x) => fmtDate(x.last_used_at) },
      { label: "admin.state", render: (x) => {
        if (x.revoked_at) return t("admin.revoked");
        const b = h("button", { type: "button", class: "link danger", text: t("admin.revoke") });
        b.addEventListener("click", async () => {
          try { await api("DELETE", `/api/tokens/${x.id}`); await load(); } catch (err) { toast(errorText(err), "error"); }
        });
        return b;
      } },
    ], res.items));
  };
  const name = h("input", { id: "token-name", required: true });
  const days = h("input", { id: "token-days", type: "number", min: "1", max: "3650" });
  const status = h("div", { class: "form-error", role: "alert" });
  const form = h("form", { class: "inline-form card", id: "token-add" }, h("h2", { i18n: "admin.new_token" }),
    field("admin.token_name", name), field("admin.expires_days", days), status,
    h("button", { type: "submit", class: "primary", i18n: "admin.create_token" }), shown);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    status.textContent = "";
    clear(shown);
    try {
      const res = await api("POST", "/api/tokens", { body: { name: name.value, expires_in_s: days.value ? Number(days.value) * 86400 : null } });
      shown.append(h("p", { i18n: "admin.token_once" }), h("code", { class: "token", text: res.token }));
      name.value = "";
      await load();
    } catch (err) { status.textContent = errorText(err); }
  });
  box.append(list, form);
  await load();
  return box;
}

async function auditSection() {
  const box = h("section", { id: "audit" }, h("h2", { i18n: "admin.audit" }));
  const action = h("input", { id: "audit-action" });
  const list = h("div");
  let cursor = null;
  const more = h("button", { type: "button", i18n: "common.more" });
  const load = async (append) => {
    if (!append) { clear(list); cursor = null; }
    try {
      const res = await api("GET", "/api/audit", { query: { action: action.value, cursor: append ? cursor : undefined, limit: 50 } });
      cursor = res.next_cursor;
      more.hidden = !cursor;
      list.append(table([
        { label: "calls.time", render: (x) => fmtDate(x.at) },
        { label: "admin.actor", key: "actor" },
        { label: "calls.tenant", key: "tenant" },
        { label: "admin.action", key: "action" },
        { label: "admin.resource", key: "resource" },
        { label: "admin.ip", key: "ip" },
      ], res.items));
    } catch (err) { list.textContent = errorText(err); }
  };
  const form = h("form", { class: "row" }, field("admin.action", action), h("button", { type: "submit", i18n: "common.search" }));
  form.addEventListener("submit", (e) => { e.preventDefault(); load(false); });
  more.addEventListener("click", () => load(true));
  box.append(form, list, more);
  await load(false);
  return box;
}
