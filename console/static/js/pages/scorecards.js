// Inspection rules (质检规则): a tenant's scorecards — which calls each one scores (its scope:
// flows and/or campaigns, or the tenant's default) and whether it is active — and an editor for
// one: the scorecard's settings and scope (the tenant's published flows and campaigns to tick),
// its sections (name, weight) and items (points, auto-fail, review flag) with a form per rule
// type (speaker, time window and the type's own fields), or the whole document as JSON; retire
// a card or bring it back. The server checks everything on save; its error names a field
// (sections[0].items[1].rule.max_gap_ms, scope.flows[0]) and is shown next to that field.
import { api } from "../api.js";
import { clear, errorText, h, table, toast } from "../dom.js";
import { fmtDate, t } from "../i18n.js";
import { can, session } from "../session.js";
import { ensureStyles } from "./inspection_player.js";

const enc = encodeURIComponent;
const EXPECT = ["present", "absent"];
const MATCH = ["exact", "fuzzy"];
// The fields of each rule type (inspection/rules.py, rules_call.py): [name, kind, choices]
export const RULE_FIELDS = {
  phrase: [["phrases", "list"], ["expect", "choice", EXPECT], ["match", "choice", MATCH], ["threshold", "number"]],
  lexicon: [["lexicon", "choice", ["complaint", "negative", "positive", "greeting", "closing"]], ["phrases", "list"],
    ["expect", "choice", ["absent", "present"]], ["match", "choice", MATCH], ["threshold", "number"]],
  regex: [["pattern", "text"], ["expect", "choice", ["absent", "present"]]],
  sensitive: [["categories", "list"], ["min_severity", "number"]],
  script: [["steps", "steps"], ["match", "choice", ["fuzzy", "exact"]], ["threshold", "number"]],
  silence: [["max_gap_ms", "number"], ["max_non_talk_pct", "number"]],
  talk_over: [["min_overlap_ms", "number"], ["max_count", "number"]],
  speaking_rate: [["min_wpm", "number"], ["max_wpm", "number"], ["min_turn_ms", "number"]],
  asr_confidence: [["min_confidence", "number"], ["max_low_pct", "number"]],
  disposition: [["field", "choice", ["disposition", "flow_status", "hangup_side", "hangup_cause"]], ["in", "list"], ["not_in", "list"]],
  flow_path: [["reached", "text"], ["requires", "list"], ["forbid", "list"]],
  latency: [["budget_ms", "number"], ["max_count", "number"]],
};
const SPEAKERS = ["any", "caller", "engine"];

export async function render(root, params) {
  ensureStyles();
  if (params[0]) return editor(root, params[0], params[1]);
  return list(root);
}

function staffTenant() { return session.user.role === "client" ? undefined : "*"; }

/** "flows: sales, service · campaigns: promo", or the tenant's default. */
export function scopeText(scope) {
  const parts = [];
  for (const key of ["flows", "campaigns"]) {
    if (scope && scope[key] && scope[key].length) parts.push(t("inspection.rules.scope_part", { what: t(`inspection.rules.scope_${key}`), ids: scope[key].join(", ") }));
  }
  return parts.length ? parts.join(" · ") : t("inspection.rules.scope_default");
}

async function list(root) {
  root.append(h("h1", { i18n: "inspection.rules.title" }));
  const box = h("div", { id: "scorecard-list" });
  root.append(h("p", { class: "muted", i18n: "inspection.rules.explain" }));
  if (can("inspection.rules")) {
    root.append(h("p", {}, h("a", { href: "#/scorecards/new", class: "button-link", id: "scorecard-new", i18n: "inspection.rules.new" })));
  }
  root.append(box);
  try {
    const res = await api("GET", "/api/scorecards", { query: { tenant: staffTenant() } });
    box.append(table([
      { label: "inspection.col.tenant", key: "tenant" },
      { label: "inspection.rules.id", key: "id" },
      { label: "inspection.rules.name", render: (r) => r.document.name || "" },
      { label: "inspection.rules.scope", render: (r) => scopeText(r.document.scope) },
      { label: "inspection.rules.state", render: (r) => h("span", { class: `badge ${r.active ? "pass" : "na"}`, i18n: r.active ? "inspection.rules.active" : "inspection.rules.retired" }) },
      { label: "inspection.rules.version", key: "version" },
      { label: "inspection.rules.items", render: (r) => String((r.document.sections || []).reduce((n, s) => n + (s.items || []).length, 0)) },
      { label: "inspection.rules.updated", render: (r) => `${fmtDate(r.updated_at)} · ${r.updated_by}` },
    ], res.items, { onRow: (r) => { location.hash = `#/scorecards/${enc(r.id)}/${enc(r.tenant)}`; } }));
  } catch (err) { box.append(h("p", { class: "form-error", role: "alert", text: errorText(err) })); }
}

const BLANK = () => ({ id: "", name: "", pass_score: 80, sample_pct: 0, sections: [
  { name: "", weight: 1, items: [{ id: "", name: "", points: 1, rule: { type: "phrase", speaker: "engine", phrases: [] } }] }] });

/** A value at ``path`` ("sections[0].items[1].rule.window.to_ms") in ``doc``. */
function getAt(doc, path) {
  return path.split(/\.|\[|\]\.?/).filter(Boolean).reduce((o, k) => (o == null ? undefined : o[k]), doc);
}
function setAt(doc, path, value) {
  const keys = path.split(/\.|\[|\]\.?/).filter(Boolean);
  let o = doc;
  keys.slice(0, -1).forEach((k, i) => {
    if (o[k] == null) o[k] = /^\d+$/.test(keys[i + 1]) ? [] : {};
    o = o[k];
  });
  const last = keys[keys.length - 1];
  if (value === undefined) delete o[last]; else o[last] = value;
}

let seq = 0;
/** One labelled input bound to ``path`` in the document; its error line sits right below it. */
function bound(doc, path, labelKey, kind, choices, labelText) {
  const id = `sc-${(seq += 1)}`;
  const value = getAt(doc, path);
  let input;
  if (kind === "choice") {
    input = h("select", { id }, h("option", { value: "", i18n: "inspection.choice.default" }),
      choices.map((c) => h("option", { value: c, text: t(`inspection.choice.${c}`) })));
    input.value = value ?? "";
  } else if (kind === "bool") {
    input = h("input", { id, type: "checkbox" });
    input.checked = Boolean(value);
  } else if (kind === "list" || kind === "steps") {
    input = h("textarea", { id, rows: kind === "steps" ? 3 : 2 });
    input.value = kind === "steps" ? (value || []).map((s) => `${s.name || ""}: ${(s.phrases || []).join(" | ")}`).join("\n")
      : (Array.isArray(value) ? value : value ? [value] : []).join("\n");
  } else {
    input = h("input", { id, type: "text", inputmode: kind === "number" ? "decimal" : undefined, class: kind === "number" ? "narrow" : undefined });
    input.value = value ?? "";
  }
  input.dataset.path = path;
  const read = () => {
    if (kind === "bool") return input.checked;
    if (kind === "list") { const lines = input.value.split("\n").map((x) => x.trim()).filter(Boolean); return lines.length ? lines : undefined; }
    if (kind === "steps") {
      return input.value.split("\n").map((x) => x.trim()).filter(Boolean).map((line) => {
        const i = line.indexOf(":");
        const name = i >= 0 ? line.slice(0, i).trim() : line;
        return { name, phrases: (i >= 0 ? line.slice(i + 1) : "").split("|").map((p) => p.trim()).filter(Boolean) };
      });
    }
    const raw = input.value.trim();
    if (raw === "") return undefined;
    if (kind === "number") { const n = Number(raw); return Number.isFinite(n) ? n : raw; }  // the server names a bad one
    return raw;
  };
  input.addEventListener(kind === "bool" || kind === "choice" ? "change" : "input", () => { setAt(doc, path, read()); markClean(input); });
  const error = h("div", { class: "inline-error field-error", id: `${id}-error`, role: "alert" });
  input.setAttribute("aria-describedby", error.id);
  const hint = kind === "steps" ? h("div", { class: "hint", i18n: "inspection.rules.steps_hint" }) : kind === "list" ? h("div", { class: "hint", i18n: "inspection.rules.list_hint" }) : null;
  if (kind === "bool") {
    return h("div", { class: "field check", dataset: { field: path } }, h("label", { for: id }, input, " ", h("span", labelText ? { text: labelText } : { i18n: labelKey })), error);
  }
  return h("div", { class: "field", dataset: { field: path } }, h("label", { for: id }, ...(labelText ? [labelText] : [h("span", { i18n: labelKey })])), input, hint, error);
}

function markClean(input) {
  input.removeAttribute("aria-invalid");
  const box = input.closest(".field");
  const err = box && box.querySelector(".field-error");
  if (err) err.textContent = "";
}

function ruleForm(doc, base) {
  const rule = getAt(doc, base) || {};
  const typeSel = h("select", { id: `sc-${(seq += 1)}`, dataset: { path: `${base}.type` } },
    Object.keys(RULE_FIELDS).map((k) => h("option", { value: k, text: t(`inspection.ruletype.${k}`) })));
  typeSel.value = rule.type in RULE_FIELDS ? rule.type : "phrase";
  const fieldsBox = h("div", { class: "rule-fields" });
  const fill = () => {
    clear(fieldsBox);
    const r = getAt(doc, base);
    fieldsBox.append(bound(doc, `${base}.speaker`, "inspection.rules.speaker", "choice", SPEAKERS));
    for (const [name, kind, choices] of RULE_FIELDS[r.type] || []) {
      fieldsBox.append(bound(doc, `${base}.${name}`, `inspection.field.${name}`, kind, choices));
    }
    fieldsBox.append(h("fieldset", { class: "window" }, h("legend", { i18n: "inspection.rules.window" }),
      bound(doc, `${base}.window.from_ms`, "inspection.field.from_ms", "number"),
      bound(doc, `${base}.window.to_ms`, "inspection.field.to_ms", "number"),
      bound(doc, `${base}.window.last_ms`, "inspection.field.last_ms", "number")));
  };
  typeSel.addEventListener("change", () => {
    const old = getAt(doc, base) || {};
    setAt(doc, base, { type: typeSel.value, ...(old.speaker ? { speaker: old.speaker } : {}), ...(old.window ? { window: old.window } : {}) });
    fill();
  });
  const typeError = h("div", { class: "inline-error field-error", role: "alert" });
  fill();
  return h("fieldset", { class: "rule", dataset: { field: base } }, h("legend", { i18n: "inspection.rules.rule" }),
    h("div", { class: "field", dataset: { field: `${base}.type` } }, h("label", { for: typeSel.id, i18n: "inspection.rules.type" }), typeSel, typeError),
    fieldsBox);
}

function documentForm(doc, rerender) {
  const form = h("div", { class: "scorecard-form" });
  form.append(h("div", { class: "inline-form" },
    bound(doc, "id", "inspection.rules.id", "text"), bound(doc, "name", "inspection.rules.name", "text"),
    bound(doc, "pass_score", "inspection.rules.pass_score", "number"), bound(doc, "sample_pct", "inspection.rules.sample_pct", "number")));
  (doc.sections || []).forEach((section, si) => {
    const sp = `sections[${si}]`;
    const removeSection = h("button", { type: "button", class: "link danger", i18n: "inspection.rules.remove_section",
      onclick: () => { doc.sections.splice(si, 1); rerender(); } });
    const addItem = h("button", { type: "button", class: "small", i18n: "inspection.rules.add_item",
      onclick: () => { section.items = section.items || []; section.items.push({ id: "", points: 1, rule: { type: "phrase", phrases: [] } }); rerender(); } });
    const items = (section.items || []).map((item, ii) => {
      const ip = `${sp}.items[${ii}]`;
      return h("div", { class: "item card", dataset: { field: ip } },
        h("div", { class: "inline-form" },
          bound(doc, `${ip}.id`, "inspection.rules.item_id", "text"), bound(doc, `${ip}.name`, "inspection.rules.name", "text"),
          bound(doc, `${ip}.points`, "inspection.rules.points", "number"),
          bound(doc, `${ip}.auto_fail`, "inspection.rules.auto_fail", "bool"), bound(doc, `${ip}.review`, "inspection.rules.review", "bool"),
          h("button", { type: "button", class: "link danger", i18n: "inspection.rules.remove_item", onclick: () => { section.items.splice(ii, 1); rerender(); } })),
        ruleForm(doc, `${ip}.rule`));
    });
    form.append(h("fieldset", { class: "section", dataset: { field: sp } },
      h("legend", { text: t("inspection.rules.section_n", { n: si + 1 }) }),
      h("div", { class: "inline-form" }, bound(doc, `${sp}.name`, "inspection.rules.section_name", "text"),
        bound(doc, `${sp}.weight`, "inspection.rules.weight", "number"), removeSection),
      h("div", { class: "field", dataset: { field: `${sp}.items` } }, h("div", { class: "inline-error field-error", role: "alert" })),
      items, addItem));
  });
  form.append(h("div", { class: "field", dataset: { field: "sections" } }, h("div", { class: "inline-error field-error", role: "alert" })),
    h("button", { type: "button", id: "scorecard-add-section", i18n: "inspection.rules.add_section",
      onclick: () => { doc.sections = doc.sections || []; doc.sections.push({ name: "", weight: 1, items: [{ id: "", points: 1, rule: { type: "phrase", phrases: [] } }] }); rerender(); } }));
  return form;
}

/** The tenant's published flows and its campaigns, to scope a card to (ids only). */
async function scopeChoices(tenant) {
  const query = { tenant: session.user.role === "client" ? undefined : tenant };
  const [flows, campaigns] = await Promise.all([
    api("GET", "/api/flows", { query }).then((r) => r.items.filter((f) => f.latest_version).map((f) => [f.flow_id, f.name])).catch(() => []),
    can("campaigns.read") ? api("GET", "/api/campaigns", { query }).then((r) => r.items.map((c) => [c.id, c.name])).catch(() => []) : [],
  ]);
  return { flows, campaigns };
}

/** Ticks for the scope: the card scores calls of the ticked flows and/or campaigns, or every
 * call of the tenant when nothing is ticked. Ids already in the document stay listed. */
function scopeForm(doc, choices) {
  const box = h("fieldset", { class: "scope", id: "scorecard-scope", dataset: { field: "scope" } },
    h("legend", { i18n: "inspection.rules.scope" }), h("p", { class: "hint", i18n: "inspection.rules.scope_hint" }));
  for (const key of ["flows", "campaigns"]) {
    const chosen = new Set((doc.scope && doc.scope[key]) || []);
    const known = new Map(choices[key]);
    for (const id of chosen) if (!known.has(id)) known.set(id, id);
    const ticks = [...known].map(([id, name]) => {
      const tick = h("input", { type: "checkbox", id: `scope-${key}-${id}`, value: id, dataset: { path: `scope.${key}` } });
      tick.checked = chosen.has(id);
      tick.addEventListener("change", () => {
        const picked = [...ticksBox.querySelectorAll("input:checked")].map((x) => x.value);
        const scope = { ...(doc.scope || {}) };
        if (picked.length) scope[key] = picked; else delete scope[key];
        if (Object.keys(scope).length) doc.scope = scope; else delete doc.scope;
        markClean(tick);
      });
      return h("label", { for: tick.id, class: "tick" }, tick, " ", h("span", { text: name && name !== id ? `${id} (${name})` : id }));
    });
    const ticksBox = h("div", { class: "ticks" }, ticks.length ? ticks : h("span", { class: "muted", i18n: `inspection.rules.scope_no_${key}` }));
    box.append(h("fieldset", { class: "field", dataset: { field: `scope.${key}` } },
      h("legend", { i18n: `inspection.rules.scope_${key}` }), ticksBox,
      h("div", { class: "inline-error field-error", role: "alert", id: `scope-${key}-error` })));
  }
  box.append(h("div", { class: "inline-error field-error", role: "alert", id: "scope-error" }));
  box.classList.add("field");
  return box;
}

/** Shows a server error next to the field it names, or the nearest enclosing one. */
function showFieldError(form, fieldPath, message) {
  let path = fieldPath;
  while (path) {
    const box = form.querySelector(`[data-field="${CSS.escape(path)}"]`);
    const err = box && (box.matches(".field") ? box.querySelector(":scope > .field-error") : null);
    if (err) {
      err.textContent = message;
      const input = box.querySelector("[data-path]");
      if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
      return true;
    }
    const shorter = path.replace(/(\.[^.[\]]+|\[\d+\])$/, "");
    if (shorter === path) break;
    path = shorter;
  }
  return false;
}

async function editor(root, id, tenant) {
  const isNew = id === "new";
  let doc = BLANK();
  let cardTenant = tenant || session.user.tenant;
  let activeNow = true;
  if (!isNew) {
    const res = await api("GET", "/api/scorecards", { query: { tenant: tenant || staffTenant() } });
    const row = res.items.find((r) => r.id === id && (!tenant || r.tenant === tenant));
    if (!row) throw Object.assign(new Error(id), { code: "not_found" });
    doc = JSON.parse(JSON.stringify(row.document));
    cardTenant = row.tenant;
    activeNow = row.active;
  }
  const writable = can("inspection.rules");
  root.append(h("p", {}, h("a", { href: "#/scorecards", i18n: "inspection.rules.back" })),
    h("h1", { text: isNew ? t("inspection.rules.new") : t("inspection.rules.edit", { id }) }));
  const tenantInput = h("input", { id: "scorecard-tenant", value: cardTenant, class: "narrow", disabled: session.user.role === "client" || !isNew });
  const status = h("div", { class: "form-error", role: "alert", id: "scorecard-error" });
  const formBox = h("div", { id: "scorecard-form" });
  const json = h("textarea", { id: "scorecard-json", rows: 16, spellcheck: "false" });
  const jsonError = h("div", { class: "inline-error", role: "alert", id: "scorecard-json-error" });
  const scopeBox = h("div", { id: "scope-box" });
  let choices = await scopeChoices(cardTenant);
  const rerender = () => { clear(scopeBox).append(scopeForm(doc, choices)); clear(formBox).append(documentForm(doc, rerender)); };
  tenantInput.addEventListener("change", async () => { choices = await scopeChoices(tenantInput.value); rerender(); });
  const applyJson = h("button", { type: "button", id: "scorecard-json-apply", i18n: "inspection.rules.apply_json" });
  applyJson.addEventListener("click", () => {
    try { doc = JSON.parse(json.value); jsonError.textContent = ""; rerender(); } catch (err) { jsonError.textContent = `${t("inspection.rules.bad_json")}: ${err.message}`; }
  });
  const details = h("details", { class: "json-editor" }, h("summary", { i18n: "inspection.rules.json" }),
    h("label", { for: "scorecard-json", class: "sr-only", i18n: "inspection.rules.json" }), json, jsonError, applyJson);
  details.addEventListener("toggle", () => { if (details.open) json.value = JSON.stringify(doc, null, 2); });
  const save = h("button", { type: "submit", class: "primary", id: "scorecard-save", disabled: !writable, i18n: "inspection.rules.save" });
  // retire the card (its calls go to the next fitting one) or bring it back
  let active = isNew ? null : activeNow;
  const activeButton = isNew || !writable ? null : h("button", { type: "button", id: "scorecard-active" });
  const showActive = () => { if (activeButton) activeButton.textContent = t(active ? "inspection.rules.retire" : "inspection.rules.reactivate"); };
  showActive();
  if (activeButton) {
    activeButton.addEventListener("click", async () => {
      status.textContent = "";
      form.querySelectorAll(".field-error").forEach((x) => { x.textContent = ""; });
      try {
        const row = await api("PATCH", `/api/scorecards/${enc(id)}`, { body: { active: !active }, query: { tenant: cardTenant } });
        active = row.active;
        showActive();
        toast(t(active ? "inspection.rules.reactivated" : "inspection.rules.retired_now", { id }), "ok");
      } catch (err) {
        const path = (err.field || "").replace(/^body\./, "");
        if (!(path && showFieldError(form, path, errorText(err)))) status.textContent = errorText(err);
      }
    });
  }
  const form = h("form", { class: "card", id: "scorecard-editor", novalidate: true },
    h("div", { class: "field", dataset: { field: "tenant" } }, h("label", { for: "scorecard-tenant", i18n: "inspection.col.tenant" }), tenantInput,
      h("div", { class: "inline-error field-error", role: "alert" })),
    scopeBox, formBox, details, status, h("div", { class: "row" }, save, activeButton));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    status.textContent = "";
    form.querySelectorAll(".field-error").forEach((x) => { x.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach((x) => x.removeAttribute("aria-invalid"));
    if (details.open) {
      try { doc = JSON.parse(json.value); } catch (err) { jsonError.textContent = `${t("inspection.rules.bad_json")}: ${err.message}`; return; }
      rerender();
    }
    try {
      const saved = await api("POST", "/api/scorecards", { body: { document: doc }, query: { tenant: tenantInput.value || undefined } });
      toast(t("inspection.rules.saved", { id: saved.id, version: saved.version }), "ok");
      status.append(h("span", { class: "ok", id: "scorecard-saved", text: t("inspection.rules.saved", { id: saved.id, version: saved.version }) }));
      if (isNew) location.hash = `#/scorecards/${enc(saved.id)}/${enc(saved.tenant)}`;
    } catch (err) {
      const path = (err.field || "").replace(/^body\.(document\.)?/, "");
      const text = errorText(err);
      if (!(path && showFieldError(form, path, text))) status.textContent = text;
      if (details.open) jsonError.textContent = text;
    }
  });
  rerender();
  root.append(form);
}
