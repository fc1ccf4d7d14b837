// Which tenant a page acts on. The operator's staff (who may read the tenants) pick one, and the
// choice lives in the page's address (#/routes/acme), so a reload, a shared link or a language
// switch keeps it; a client always acts on its own tenant and sees no picker.
import { api } from "./api.js";
import { field, h } from "./dom.js";
import { can, session } from "./session.js";

/** {tenant, query, element}: the tenant acted on, the query that names it to the API (none for
 * a client: the server pins it), and the picker (null for a client). Picking one calls
 * onPick(tenantId). */
export async function tenantPicker(requested, labelKey, onPick) {
  const own = session.user.tenant;
  if (!can("tenants.read")) return { tenant: own, query: undefined, element: null };
  const items = (await api("GET", "/api/tenants")).items;
  if (!items.some((x) => x.id === own)) items.unshift({ id: own, name: own });
  const tenant = items.some((x) => x.id === requested) ? requested : own;
  const select = h("select", { id: "tenant-pick", dataset: { field: "tenant" } },
    items.map((x) => h("option", { value: x.id, text: x.name && x.name !== x.id ? `${x.name} (${x.id})` : x.id })));
  select.value = tenant;
  select.addEventListener("change", () => onPick(select.value));
  return { tenant, query: { tenant }, element: h("div", { class: "tenant-pick" }, field(labelKey, select)) };
}
