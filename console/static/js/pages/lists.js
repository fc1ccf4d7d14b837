// Black/white lists: "may we dial this number now" with every reason, search, add with expiry,
// remove, import with per-row errors.
import { api } from "../api.js";
import { clear, errorText, field, h, table, toast } from "../dom.js";
import { fmtDate, t, tOr } from "../i18n.js";
import { can, session } from "../session.js";
import { importReport, uploadTable } from "../upload.js";

const REASONS = ["other", "complaint", "opt-out", "regulator", "test", "vip", "premium"];

export async function render(root) {
  const staff = session.user.role !== "client";
  const writable = can("lists.write");
  root.append(h("h1", { i18n: "lists.title" }));

  const number = h("input", { id: "check-number", required: true, placeholder: "+8613800138000" });
  const purpose = h("select", { id: "check-purpose" }, ["marketing", "service", "inbound"].map((p) => h("option", { value: p, text: tOr(`purpose.${p}`, p) })));
  const verdict = h("div", { id: "check-result" });
  const check = h("form", { class: "inline-form card", id: "check-form" }, h("h2", { i18n: "lists.check" }),
    field("lists.number", number), field("lists.purpose", purpose), h("button", { type: "submit", class: "primary", i18n: "lists.check_button" }), verdict);
  check.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear(verdict);
    try {
      const d = await api("POST", "/api/lists/check", { body: { number: number.value, purpose: purpose.value } });
      verdict.append(h("p", { class: d.allowed ? "ok" : "bad", id: "check-verdict", text: d.allowed ? t("lists.allowed") : t("lists.refused") }),
        h("ul", {}, d.reasons.map((r) => h("li", { text: `${tOr(`reason.${r.code}`, r.code)} — ${r.message}` }))));
      if (d.retry_at) verdict.append(h("p", { text: t("lists.retry_at", { at: fmtDate(d.retry_at) }) }));
    } catch (err) { verdict.textContent = errorText(err); }
  });
  root.append(check);

  const q = h("input", { id: "list-q", type: "search", "aria-label": t("common.search") });
  const kindFilter = h("select", { id: "list-kind" }, h("option", { value: "", text: t("lists.any_kind") }),
    ["black", "white"].map((k) => h("option", { value: k, text: t(`lists.kind.${k}`) })));
  const global = h("input", { type: "checkbox", id: "list-global" });
  const listBox = h("div", { id: "list-entries" });
  const load = async () => {
    clear(listBox);
    try {
      const res = await api("GET", "/api/lists", { query: { q: q.value, kind: kindFilter.value, global: global.checked ? "true" : undefined, limit: 100 } });
      listBox.append(table([
        { label: "lists.number", key: "number" },
        { label: "lists.kind_label", render: (r) => t(`lists.kind.${r.kind}`) },
        { label: "lists.scope", render: (r) => r.tenant ? `${r.tenant}${r.campaign ? " / " + r.campaign : ""}` : t("common.global") },
        { label: "lists.reason", render: (r) => tOr(`listreason.${r.reason}`, r.reason) },
        { label: "lists.expires", render: (r) => (r.expires ? fmtDate(r.expires) : t("lists.never")) },
        { label: "common.remove", render: (r) => {
          if (!writable) return "";
          const b = h("button", { type: "button", class: "link danger", text: t("common.remove") });
          b.addEventListener("click", async () => {
            try {
              await api("DELETE", "/api/lists", { query: { number: r.number, kind: r.kind, global: r.tenant ? undefined : "true", campaign: r.campaign } });
              await load();
            } catch (err) { toast(errorText(err), "error"); }
          });
          return b;
        } },
      ], res.items));
    } catch (err) { listBox.textContent = errorText(err); }
  };
  const search = h("form", { class: "row" }, q, kindFilter, staff ? h("label", {}, global, " ", t("common.global")) : null,
    h("button", { type: "submit", i18n: "common.search" }));
  search.addEventListener("submit", (e) => { e.preventDefault(); load(); });

  if (writable) {
    const num = h("input", { id: "add-number", required: true, placeholder: "+86168*" });
    const kind = h("select", { id: "add-kind" }, ["black", "white"].map((k) => h("option", { value: k, text: t(`lists.kind.${k}`) })));
    const reason = h("select", { id: "add-reason" }, REASONS.map((r) => h("option", { value: r, text: tOr(`listreason.${r}`, r) })));
    const expires = h("input", { id: "add-expires", type: "datetime-local" });
    const status = h("div", { class: "form-error", role: "alert" });
    const add = h("form", { class: "inline-form card", id: "list-add" }, h("h2", { i18n: "lists.add" }),
      field("lists.number", num), field("lists.kind_label", kind), field("lists.reason", reason), field("lists.expires", expires), status,
      h("button", { type: "submit", class: "primary", i18n: "common.add" }));
    add.addEventListener("submit", async (e) => {
      e.preventDefault();
      status.textContent = "";
      try {
        await api("POST", "/api/lists", { body: { number: num.value, kind: kind.value, reason: reason.value,
          expires: expires.value ? new Date(expires.value).toISOString() : null } });
        num.value = "";
        await load();
      } catch (err) { status.textContent = errorText(err); }
    });
    const file = h("input", { type: "file", id: "list-file", accept: ".csv,.txt,.tsv,.xlsx" });
    const importKind = h("select", { id: "import-kind" }, ["black", "white"].map((k) => h("option", { value: k, text: t(`lists.kind.${k}`) })));
    const report = h("div");
    const imp = h("form", { class: "inline-form card", id: "list-import" }, h("h2", { i18n: "lists.import" }),
      h("p", { class: "muted", i18n: "lists.import_help" }), field("import.file", file), field("lists.kind_label", importKind),
      h("button", { type: "submit", i18n: "common.import" }), report);
    imp.addEventListener("submit", async (e) => {
      e.preventDefault();
      clear(report);
      if (!file.files[0]) return;
      try { report.append(importReport(await uploadTable("/api/lists/import", file.files[0], { kind: importKind.value }))); await load(); }
      catch (err) { report.textContent = errorText(err); }
    });
    root.append(add, imp);
  }
  root.append(h("h2", { i18n: "lists.entries" }), search, listBox);
  await load();
}
