// Numbers: which published flow answers each called number of a tenant, and "*", the fallback
// for a number listed nowhere. Every role that sees flows sees its tenant's numbers; only the
// operator's admins and ops hand them out (routes.write). Staff pick the tenant (kept in the
// address: #/routes/<tenant>).
import { api } from "../api.js";
import { clear, clearFieldErrors, confirmDialog, errorText, field, h, showFieldErrors, table, toast } from "../dom.js";
import { fmtNumber, t } from "../i18n.js";
import { can, session } from "../session.js";
import { tenantPicker } from "../tenant_picker.js";

const FALLBACK = "*";
const enc = encodeURIComponent;

export async function render(root, params) {
  const picker = await tenantPicker(params[0], "routes.tenant", (tenant) => { location.hash = `#/routes/${enc(tenant)}`; });
  const { tenant, query } = picker;
  const writable = can("routes.write");
  let routes = [];
  let flows = new Map();  // flow_id -> the tenant's flow summary

  const count = h("p", { class: "muted", id: "route-count", "aria-live": "polite" });
  const filter = h("input", { id: "route-filter", type: "search", "aria-label": t("routes.filter"), "data-i18n-placeholder": "routes.filter", placeholder: t("routes.filter") });
  const listBox = h("div", { id: "route-list" });
  const form = writable ? routeForm() : null;

  const flowLabel = (id) => {
    const f = flows.get(id);
    return f && f.name && f.name !== id ? `${f.name} (${id})` : id;
  };
  const show = () => {
    const needle = filter.value.trim().toLowerCase();
    const rows = needle ? routes.filter((r) => r.number.toLowerCase().includes(needle) || flowLabel(r.flow_id).toLowerCase().includes(needle)) : routes;
    count.textContent = t("routes.count", { n: fmtNumber(routes.length) });
    clear(listBox).append(table([
      { label: "routes.number", render: (r) => (r.number === FALLBACK
        ? h("span", {}, h("code", { text: FALLBACK }), " ", h("span", { class: "badge", text: t("routes.fallback") }))
        : h("code", { text: r.number })) },
      { label: "routes.flow", render: (r) => (tenant === session.user.tenant && flows.has(r.flow_id)
        ? h("a", { href: `#/flows/${enc(r.flow_id)}`, text: flowLabel(r.flow_id) }) : flowLabel(r.flow_id)) },
      { label: "routes.version", render: (r) => {
        const f = flows.get(r.flow_id);
        return f && f.latest_version ? t("routes.version_value", { v: fmtNumber(f.latest_version) }) : h("span", { class: "bad", text: t("routes.flow_missing") });
      } },
      ...(writable ? [{ label: "routes.actions", render: (r) => h("span", { class: "row-actions" },
        h("button", { type: "button", class: "link", dataset: { change: r.number }, text: t("routes.change"), onclick: () => form.edit(r) }),
        h("button", { type: "button", class: "link danger", dataset: { remove: r.number }, text: t("routes.remove"), onclick: () => remove(r) })) }] : []),
    ], rows));
  };
  const load = async () => {
    try {
      const [r, f] = await Promise.all([api("GET", "/api/routes", { query }), api("GET", "/api/flows", { query })]);
      routes = r.items;
      flows = new Map(f.items.map((x) => [x.flow_id, x]));
      show();
      if (form) form.fillFlows();
    } catch (err) { clear(listBox).append(h("p", { class: "form-error", role: "alert", text: errorText(err) })); }
  };
  filter.addEventListener("input", show);

  async function remove(r) {
    const sure = await confirmDialog(t("routes.confirm_remove", { number: r.number, flow: flowLabel(r.flow_id) }),
      { yes: "routes.remove_yes", no: "routes.keep", danger: true });
    if (!sure) return;
    try {
      await api("DELETE", `/api/routes/${enc(r.number)}`, { query });
      toast(t("routes.removed", { number: r.number }), "ok");
      if (form && form.editing() === r.number) form.reset();
      await load();
    } catch (err) { toast(errorText(err), "error"); }
  }

  /** Route a number (new), or change the flow of one already routed ("Change" on its row). */
  function routeForm() {
    let editing = null;
    const title = h("h2", { id: "route-form-title", i18n: "routes.add_title" });
    const number = h("input", { id: "route-number", dataset: { field: "number" }, autocomplete: "off", maxlength: "64", placeholder: "+861062345678" });
    const flow = h("select", { id: "route-flow", dataset: { field: "flow_id" } });
    const noFlows = h("p", { class: "muted", id: "route-no-flows", hidden: true }, t("routes.no_published"), " ",
      h("a", { href: "#/flows", i18n: "routes.to_flows" }));
    const general = h("div", { class: "form-error", role: "alert", id: "route-error" });
    const save = h("button", { type: "submit", class: "primary", id: "route-save", i18n: "routes.save" });
    const cancel = h("button", { type: "button", id: "route-cancel", hidden: true, i18n: "routes.cancel" });
    const el = h("form", { class: "inline-form card", id: "route-form", novalidate: true }, title,
      field("routes.number", number, t("routes.number_hint")), field("routes.flow", flow), noFlows, general,
      h("div", { class: "row" }, save, cancel));
    const explain = (name, err) => {
      if (name === "number" && err.code === "invalid") return t("routes.number_invalid");
      if (name === "flow_id" && err.code === "not_published") return t("routes.not_published");
      return null;
    };
    const reset = () => {
      editing = null;
      number.value = "";
      number.readOnly = false;
      title.dataset.i18n = "routes.add_title";
      title.textContent = t("routes.add_title");
      cancel.hidden = true;
      clearFieldErrors(el, general);
    };
    el.addEventListener("submit", async (e) => {
      e.preventDefault();
      clearFieldErrors(el, general);
      const wanted = number.value.trim();
      if (!wanted) {  // an empty number has no address to PUT to: say so here
        showFieldErrors(el, { code: "invalid", details: [], field: "number", message: "" }, general, () => t("routes.number_required"));
        return;
      }
      const current = routes.find((r) => r.number === wanted);
      if (!editing && current && current.flow_id !== flow.value) {  // re-pointing a live number: ask
        const sure = await confirmDialog(t("routes.confirm_replace", { number: wanted, from: flowLabel(current.flow_id), to: flowLabel(flow.value) }),
          { yes: "routes.replace_yes", no: "routes.keep" });
        if (!sure) return;
      }
      save.disabled = true;
      try {
        await api("PUT", `/api/routes/${enc(wanted)}`, { query, body: { flow_id: flow.value } });
        toast(t("routes.saved", { number: wanted, flow: flowLabel(flow.value) }), "ok");
        reset();
        await load();
        number.focus();
      } catch (err) { showFieldErrors(el, err, general, explain); } finally { save.disabled = false; }
    });
    cancel.addEventListener("click", () => { reset(); number.focus(); });
    el.addEventListener("keydown", (e) => { if (e.key === "Escape" && editing) { reset(); number.focus(); } });
    return {
      element: el,
      reset,
      editing: () => editing,
      fillFlows() {
        const published = [...flows.values()].filter((f) => f.latest_version);
        const keep = flow.value;
        clear(flow).append(...published.map((f) => h("option", { value: f.flow_id,
          text: t("routes.flow_option", { flow: flowLabel(f.flow_id), v: fmtNumber(f.latest_version) }) })));
        if (published.some((f) => f.flow_id === keep)) flow.value = keep;
        noFlows.hidden = published.length > 0;
        save.disabled = published.length === 0;
      },
      edit(r) {
        reset();
        editing = r.number;
        number.value = r.number;
        number.readOnly = true;
        if (flows.has(r.flow_id)) flow.value = r.flow_id;
        delete title.dataset.i18n;  // a sentence with the number in it, not a bare key
        title.textContent = t("routes.change_title", { number: r.number });
        cancel.hidden = false;
        el.scrollIntoView({ block: "nearest" });
        flow.focus();
      },
    };
  }

  root.append(h("h1", { i18n: "routes.title" }), h("p", { class: "muted", i18n: "routes.help" }));
  if (picker.element) root.append(picker.element);
  if (form) root.append(form.element);
  else root.append(h("p", { class: "muted", id: "route-read-only", i18n: "routes.read_only" }));
  root.append(h("div", { class: "row" }, filter, count), listBox);
  await load();
}
