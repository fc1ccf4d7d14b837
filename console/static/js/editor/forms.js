// Parameter forms generated from the flow JSON Schema, with inline validation (type, pattern,
// bounds, required). Every edit calls onChange(newValue); the server's validator still has the
// last word and its problems are painted on the canvas.
import { h } from "../dom.js";
import { currentLocale, has, t, tOr } from "../i18n.js";
import { resolve } from "./schema.js";

const SKIP = new Set(["type", "params", "position"]);

function labelFor(name, node) {
  return tOr(`field.${name}`, node.title || name);
}

function nonNull(schema, node) {
  const n = resolve(schema, node);
  if (n.anyOf) {
    const real = n.anyOf.filter((a) => a.type !== "null");
    if (real.length === 1) return { ...resolve(schema, real[0]), nullable: true, description: n.description };
  }
  return n;
}

function check(n, raw) {
  if (n.type === "integer" || n.type === "number") {
    if (raw === "") return n.nullable ? null : t("form.required");
    const v = Number(raw);
    if (!Number.isFinite(v) || (n.type === "integer" && !Number.isInteger(v))) return t("form.number");
    if (n.minimum !== undefined && v < n.minimum) return t("form.min", { min: n.minimum });
    if (n.exclusiveMinimum !== undefined && v <= n.exclusiveMinimum) return t("form.min", { min: n.exclusiveMinimum + 1 });
    if (n.maximum !== undefined && v > n.maximum) return t("form.max", { max: n.maximum });
    return null;
  }
  if (n.type === "string") {
    if (raw === "" && n.nullable) return null;
    if (n.minLength && raw.length < n.minLength) return t("form.required");
    if (n.maxLength && raw.length > n.maxLength) return t("form.too_long", { max: n.maxLength });
    if (n.pattern && !new RegExp(n.pattern, "u").test(raw)) return t("form.pattern");
  }
  return null;
}

/** The schema's descriptions are English; other languages show them only when translated. */
function hintFor(name, n) {
  const text = has(`hint.${name}`) ? t(`hint.${name}`) : (currentLocale() === "en" ? n.description : null);
  return text ? h("div", { class: "hint", text }) : null;
}

function scalarInput(schema, name, node, value, onChange) {
  const n = nonNull(schema, node);
  const err = h("div", { class: "inline-error", role: "alert" });
  let input;
  const enumValues = n.enum || (n.const !== undefined ? [n.const] : null);
  if (enumValues) {
    input = h("select", {}, n.nullable ? h("option", { value: "", text: "" }) : null,
      enumValues.map((v) => h("option", { value: v, text: tOr(`enum.${v}`, String(v)) })));
    input.value = value ?? "";
    input.addEventListener("change", () => onChange(input.value === "" ? null : input.value));
  } else if (n.type === "boolean") {
    input = h("input", { type: "checkbox" });
    input.checked = value ?? n.default ?? false;
    input.addEventListener("change", () => onChange(input.checked));
  } else {
    const numeric = n.type === "integer" || n.type === "number";
    input = h("input", { type: numeric ? "number" : "text", name });
    input.value = value ?? "";
    if (n.default !== undefined && n.default !== null) input.placeholder = String(n.default);
    input.addEventListener("input", () => {
      const problem = check(n, input.value);
      err.textContent = problem || "";
      input.setAttribute("aria-invalid", problem ? "true" : "false");
      if (problem) return;
      if (input.value === "") onChange(null);
      else onChange(numeric ? Number(input.value) : input.value);
    });
  }
  const id = `f-${name}-${Math.random().toString(36).slice(2, 8)}`;
  input.id = id;
  return h("div", { class: "field" },
    h("label", { for: id, text: labelFor(name, n) }), input, err,
    hintFor(name, n));
}

function listInput(schema, name, n, value, onChange) {
  const items = Array.isArray(value) ? value : [];
  const itemSchema = resolve(schema, n.items || {});
  if (itemSchema.type !== "object") {  // a list of strings: comma separated
    return jsonLike(schema, name, n, items.join(", "), (raw) => onChange(
      raw.split(/[,，]/).map((s) => s.trim()).filter(Boolean)), t("form.comma_list"));
  }
  const box = h("fieldset", { class: "list" }, h("legend", { text: labelFor(name, n) }));
  items.forEach((item, i) => {
    const remove = h("button", { type: "button", class: "link danger", text: t("form.remove") });
    remove.addEventListener("click", () => { onChange(items.filter((_, j) => j !== i)); rerender(box); });
    box.append(h("div", { class: "list-item" },
      objectForm(schema, itemSchema, item || {}, (v) => { const next = items.slice(); next[i] = v; onChange(next); }),
      remove));
  });
  const add = h("button", { type: "button", class: "small", text: t("form.add") });
  add.addEventListener("click", () => { onChange([...items, {}]); rerender(box); });
  box.append(add);
  return box;
}

function rerender(el) { el.dispatchEvent(new CustomEvent("rerender", { bubbles: true })); }

function jsonLike(schema, name, n, text, parse, hintText) {
  const err = h("div", { class: "inline-error", role: "alert" });
  const area = h("textarea", { rows: 2, name });
  area.value = text;
  area.addEventListener("input", () => {
    try { parse(area.value); err.textContent = ""; } catch { err.textContent = t("form.json"); }
  });
  const id = `f-${name}-${Math.random().toString(36).slice(2, 8)}`;
  area.id = id;
  return h("div", { class: "field" }, h("label", { for: id, text: labelFor(name, n) }), area, err,
           h("div", { class: "hint", text: hintText }));
}

function fieldFor(schema, name, node, value, onChange) {
  const n = nonNull(schema, node);
  if (n.type === "object" && n.properties) {
    return h("fieldset", {}, h("legend", { text: labelFor(name, n) }),
      objectForm(schema, n, value || {}, (v) => onChange(Object.keys(v).length ? v : (n.nullable ? null : v))));
  }
  if (n.type === "array") return listInput(schema, name, n, value, onChange);
  if (n.type === "object" || (!n.type && !n.enum && n.const === undefined)) {
    return jsonLike(schema, name, n, value === undefined || value === null ? "" : JSON.stringify(value),
      (raw) => onChange(raw.trim() === "" ? null : JSON.parse(raw)), t("form.json_hint"));
  }
  return scalarInput(schema, name, node, value, onChange);
}

/** A form for an object schema; onChange gets the whole new object (nulls removed). */
export function objectForm(schema, objSchema, value, onChange, skip = new Set()) {
  const box = h("div", { class: "object-form" });
  const current = { ...(value || {}) };
  for (const [name, prop] of Object.entries(objSchema.properties || {})) {
    if (skip.has(name)) continue;
    box.append(fieldFor(schema, name, prop, current[name], (v) => {
      if (v === null || v === undefined) delete current[name]; else current[name] = v;
      onChange({ ...current });
    }));
  }
  return box;
}

export function nodeForm(schema, typeInfo, spec, onChange) {
  let current = structuredClone(spec);
  const top = objectForm(schema, typeInfo.def, current, (v) => {
    current = { ...v, type: current.type, params: current.params };
    if (spec.position) current.position = spec.position;
    onChange(current, "top");
  }, SKIP);
  const params = objectForm(schema, typeInfo.params, current.params || {}, (v) => {
    current = { ...current, params: v };
    onChange(current, "params");
  });
  return h("div", { class: "node-form" }, top,
    h("h3", { i18n: "editor.params" }), params);
}
