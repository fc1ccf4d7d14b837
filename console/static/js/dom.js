// Small DOM helpers: elements are built with textContent (never innerHTML with data), so text
// from flows, calls and users can never inject markup.
import { t } from "./i18n.js";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "i18n") { el.dataset.i18n = v; el.textContent = t(v); }
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

/** A message line for an API error: the catalog's words for its code, then the server's detail. */
export function errorText(err) {
  const key = `error.${err.code || "unknown"}`;
  const head = t(key).startsWith("⟦") ? t("error.unknown") : t(key);
  return err.message && err.message !== head ? `${head}: ${err.message}` : head;
}

export function toast(text, kind = "info") {
  let box = document.getElementById("toasts");
  if (!box) { box = h("div", { id: "toasts", role: "status" }); document.body.append(box); }
  const item = h("div", { class: `toast ${kind}`, text });
  box.append(item);
  setTimeout(() => item.remove(), 5000);
}

export function field(labelKey, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id, i18n: labelKey }), input,
           hint ? h("div", { class: "hint", text: hint }) : null);
}

export function table(columns, rows, { onRow } = {}) {
  const thead = h("thead", {}, h("tr", {}, columns.map((c) => h("th", { i18n: c.label }))));
  const tbody = h("tbody");
  for (const row of rows) {
    const tr = h("tr", onRow ? { class: "clickable", tabindex: "0" } : {},
                 columns.map((c) => h("td", {}, c.render ? c.render(row) : String(row[c.key] ?? ""))));
    if (onRow) {
      tr.addEventListener("click", () => onRow(row));
      tr.addEventListener("keydown", (e) => { if (e.key === "Enter") onRow(row); });
    }
    tbody.append(tr);
  }
  if (!rows.length) tbody.append(h("tr", {}, h("td", { colspan: columns.length, class: "empty", i18n: "common.empty" })));
  return h("table", { class: "grid" }, thead, tbody);
}

/** A confirmation in the page (a modal <dialog>): Escape or the "no" button cancels, and "no"
 * has the focus first so an Enter pressed by habit never destroys anything. */
export function confirmDialog(text, { yes, no, danger = false }) {
  return new Promise((resolve) => {
    const yesButton = h("button", { type: "button", class: danger ? "primary danger-fill" : "primary", id: "confirm-yes", i18n: yes });
    const noButton = h("button", { type: "button", id: "confirm-no", i18n: no });
    const dialog = h("dialog", { id: "confirm-dialog", class: "card", "aria-labelledby": "confirm-text" },
      h("p", { id: "confirm-text", text }), h("div", { class: "row" }, yesButton, noButton));
    const done = (answer) => { dialog.close(); dialog.remove(); resolve(answer); };
    yesButton.addEventListener("click", () => done(true));
    noButton.addEventListener("click", () => done(false));
    dialog.addEventListener("cancel", (e) => { e.preventDefault(); done(false); });
    document.body.append(dialog);
    dialog.showModal();
    noButton.focus();
  });
}

/** Clears what showFieldErrors put in a form. */
export function clearFieldErrors(form, general) {
  form.querySelectorAll(".field-error").forEach((x) => x.remove());
  form.querySelectorAll("[aria-invalid]").forEach((x) => { x.removeAttribute("aria-invalid"); x.removeAttribute("aria-describedby"); });
  if (general) clear(general);
}

/** An API error shown where the reader will look: next to the input the server's error names
 * (inputs carry data-field="number"; the server says "number", "body.flow_id", "query.tenant"),
 * the rest in `general`. `explain(name, err)` may give the catalog's own sentence for a field's
 * refusal (the server's words stay in the tooltip). The first bad input gets the focus. */
export function showFieldErrors(form, err, general, explain = () => null) {
  clearFieldErrors(form, general);
  const details = err.details || [];
  const perField = err.code === "invalid" && details.length && details.every((d) => d.field && d.message);
  const problems = perField ? details : [{ field: err.field || "", message: err.message }];
  let unplaced = false;
  for (const p of problems) {
    const name = String(p.field).replace(/^(body|query|path)\./, "");
    const input = name ? form.querySelector(`[data-field="${CSS.escape(name)}"]`) : null;
    if (!input) { unplaced = true; continue; }
    const id = `${input.id || name}-error`;
    const text = explain(name, err) || errorText({ code: err.code, message: p.message });
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", id);
    (input.closest(".field") || input.parentElement).append(
      h("div", { class: "inline-error field-error", id, dataset: { field: name }, title: p.message, text }));
  }
  if (unplaced && general) general.textContent = errorText(err);
  const first = form.querySelector("[aria-invalid=true]");
  if (first) first.focus();
}
