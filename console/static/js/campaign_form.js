// The campaign form: a spec (docs/campaigns.md) from fields, or as JSON for what the form does
// not cover. Every input carries the spec path it fills (data-spec), so the server's 422
// details ("spec.pacing.calls_per_s: ...") land next to the input they name.
import { api } from "./api.js";
import { clear, errorText, field, h } from "./dom.js";
import { t, tOr } from "./i18n.js";

const RETRY_ON = ["busy", "no_answer", "failed", "machine", "network_error"];
const AMD_HANGUP = ["machine", "fax", "silence"];
const WEEKDAYS = [0, 1, 2, 3, 4, 5, 6];

function input(spec, attrs = {}) { return h("input", { dataset: { spec }, ...attrs }); }
function checkbox(spec, checked) { return h("input", { type: "checkbox", dataset: { spec }, checked }); }
function num(el) { return el.value === "" ? undefined : Number(el.value); }
function lines(text) { return text.split(/[\n,，]/).map((s) => s.trim()).filter(Boolean); }
function check(labelKey, box) { return h("label", { class: "check" }, box, " ", t(labelKey)); }

/** An aware ISO time from a datetime-local input (the browser's zone), or undefined. */
function isoLocal(el) {
  if (!el.value) return undefined;
  const d = new Date(el.value);
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? "+" : "-";
  const pad = (n) => String(Math.floor(Math.abs(n))).padStart(2, "0");
  return `${el.value.length === 16 ? el.value + ":00" : el.value}${sign}${pad(off / 60)}:${pad(off % 60)}`;
}

/** A datetime-local value (the browser's zone) for an ISO time, or "". */
function localValue(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** The saved spec with what the form shows laid over it: one level deep, so what the form
 * does not show (branding, SMS, privacy, ...) is kept, and what it shows is what it says. */
function merged(saved, form) {
  const out = { ...saved };
  for (const [k, v] of Object.entries(form)) {
    const old = saved[k];
    out[k] = v && old && typeof v === "object" && typeof old === "object" && !Array.isArray(v) ? { ...old, ...v } : v;
  }
  return out;
}

/** "variable: header, header" lines -> {variable: [headers]} */
function mapping(text) {
  const out = {};
  for (const line of text.split("\n")) {
    const [name, rest] = line.split(/[:：]/);
    if (!name || !name.trim()) continue;
    out[name.trim()] = rest ? lines(rest) : [];
  }
  return out;
}

/** The form; with ``existing`` (a campaign from the API) it edits that draft or paused
 * campaign: its spec fills the fields and saving replaces the spec (PATCH). */
export async function campaignForm({ onCreated, existing }) {
  const flows = (await api("GET", "/api/flows")).items.filter((f) => f.latest_version);
  const el = {
    name: input("name", { id: "cf-name", required: true, maxlength: 128 }),
    id: input("id", { id: "cf-id", placeholder: t("campaigns.id_placeholder"), maxlength: 64 }),
    flow: h("select", { id: "cf-flow", dataset: { spec: "flow.id" } },
      flows.map((f) => h("option", { value: f.flow_id, text: f.name ? `${f.name} (${f.flow_id})` : f.flow_id }))),
    version: h("select", { id: "cf-version", dataset: { spec: "flow.version" } }),
    purpose: h("select", { id: "cf-purpose", dataset: { spec: "purpose" } },
      ["notification", "service", "marketing", "survey"].map((p) => h("option", { value: p, text: tOr(`campaigns.purpose.${p}`, p) }))),
    priority: input("priority", { id: "cf-priority", type: "number", min: -100, max: 100, value: 0 }),
    testMode: checkbox("test_mode", false),
    windowStart: input("schedule.window_start", { id: "cf-window-start", type: "time", value: "09:00" }),
    windowEnd: input("schedule.window_end", { id: "cf-window-end", type: "time", value: "20:00" }),
    weekdays: WEEKDAYS.map((d) => checkbox(`schedule.weekdays.${d}`, true)),
    holidays: h("textarea", { id: "cf-holidays", rows: 2, dataset: { spec: "schedule.holidays" }, placeholder: "2027-01-01" }),
    startAt: input("schedule.start_at", { id: "cf-start-at", type: "datetime-local" }),
    endAt: input("schedule.end_at", { id: "cf-end-at", type: "datetime-local" }),
    cps: input("pacing.calls_per_s", { id: "cf-cps", type: "number", min: 0.1, step: "any", value: 5 }),
    concurrent: input("pacing.max_concurrent", { id: "cf-concurrent", type: "number", min: 1, value: 30 }),
    maxAttempts: input("retry.max_attempts", { id: "cf-max-attempts", type: "number", min: 1, max: 50, value: 3 }),
    retry: Object.fromEntries(RETRY_ON.map((d) => [d, {
      on: checkbox(`retry.on.${d}`, d !== "failed"),
      delay: input(`retry.on.${d}.delay_s`, { id: `cf-retry-${d}`, type: "number", min: 0, value: { busy: 300, no_answer: 1800, failed: 600, machine: 7200, network_error: 120 }[d] }),
      backoff: input(`retry.on.${d}.backoff`, { type: "number", min: 1, max: 10, step: "any", value: d === "network_error" ? 2 : 1, "aria-label": t("campaigns.retry_backoff") }),
    }])),
    amd: checkbox("amd.enabled", false),
    beep: checkbox("amd.wait_for_beep", false),
    amdMax: input("amd.max_s", { id: "cf-amd-max", type: "number", min: 1, max: 30, step: "any", value: 5 }),
    hangupOn: AMD_HANGUP.map((c) => checkbox(`amd.hangup_on.${c}`, c === "fax")),
    numbers: h("textarea", { id: "cf-numbers", rows: 3, dataset: { spec: "caller_id.numbers" }, placeholder: "+861062345671" }),
    rotation: h("select", { id: "cf-rotation", dataset: { spec: "caller_id.rotation" } },
      ["round_robin", "random", "least_used"].map((r) => h("option", { value: r, text: t(`campaigns.rotation.${r}`) }))),
    local: checkbox("caller_id.local_presence", false),
    cap: input("caller_id.daily_cap_per_number", { id: "cf-cap", type: "number", min: 1 }),
    display: input("caller_id.display_name", { id: "cf-display", maxlength: 64 }),
    variables: h("textarea", { id: "cf-variables", rows: 3, dataset: { spec: "contacts.variables" }, placeholder: t("campaigns.variables_placeholder") }),
    required: input("contacts.required", { id: "cf-required", placeholder: t("campaigns.required_placeholder") }),
  };
  el.weekdays.forEach((b, i) => { b.id = `cf-weekday-${i}`; });
  el.hangupOn.forEach((b, i) => { b.id = `cf-hangup-${AMD_HANGUP[i]}`; });
  el.amd.id = "cf-amd";
  const fillVersions = () => {
    const f = flows.find((x) => x.flow_id === el.flow.value);
    clear(el.version);
    for (let v = f ? f.latest_version : 0; v >= 1; v -= 1) {
      el.version.append(h("option", { value: v, text: t("campaigns.version", { v }) }));
    }
  };
  el.flow.addEventListener("change", fillVersions);
  fillVersions();

  const toForm = (spec) => {
    const set = (node, v) => { node.value = v == null ? "" : String(v); };
    set(el.name, spec.name); set(el.id, existing.id); el.id.disabled = true;
    if (![...el.flow.options].some((o) => o.value === existing.flow_id)) {
      el.flow.append(h("option", { value: existing.flow_id, text: existing.flow_id }));
    }
    el.flow.value = existing.flow_id; fillVersions();
    if (![...el.version.options].some((o) => o.value === String(existing.flow_version))) {
      el.version.append(h("option", { value: existing.flow_version, text: t("campaigns.version", { v: existing.flow_version }) }));
    }
    el.version.value = String(existing.flow_version);
    el.purpose.value = spec.purpose; set(el.priority, spec.priority); el.testMode.checked = !!spec.test_mode;
    const s = spec.schedule || {};
    set(el.windowStart, s.window_start); set(el.windowEnd, s.window_end);
    WEEKDAYS.forEach((d) => { el.weekdays[d].checked = (s.weekdays || WEEKDAYS).includes(d); });
    el.holidays.value = (s.holidays || []).join("\n");
    el.startAt.value = localValue(s.start_at); el.endAt.value = localValue(s.end_at);
    set(el.cps, spec.pacing.calls_per_s); set(el.concurrent, spec.pacing.max_concurrent);
    set(el.maxAttempts, spec.retry.max_attempts);
    for (const d of RETRY_ON) {
      const rule = (spec.retry.on || {})[d];
      el.retry[d].on.checked = !!rule;
      if (rule) { set(el.retry[d].delay, rule.delay_s); set(el.retry[d].backoff, rule.backoff); }
    }
    el.amd.checked = !!spec.amd.enabled; el.beep.checked = !!spec.amd.wait_for_beep; set(el.amdMax, spec.amd.max_s);
    el.hangupOn.forEach((b, i) => { b.checked = (spec.amd.hangup_on || []).includes(AMD_HANGUP[i]); });
    const cid = spec.caller_id || {};
    el.numbers.value = (cid.numbers || []).join("\n"); el.rotation.value = cid.rotation || "round_robin";
    el.local.checked = !!cid.local_presence; set(el.cap, cid.daily_cap_per_number); set(el.display, cid.display_name);
    const vars = (spec.contacts || {}).variables || {};
    el.variables.value = Object.entries(vars).map(([k, v]) => `${k}: ${v.join(", ")}`).join("\n");
    el.required.value = ((spec.contacts || {}).required || []).join(", ");
  };
  if (existing) toForm(existing.spec);

  const fromForm = () => {
    const spec = {
      name: el.name.value.trim(), flow: { id: el.flow.value, version: num(el.version) },
      purpose: el.purpose.value, priority: num(el.priority) ?? 0, test_mode: el.testMode.checked,
      schedule: { window_start: el.windowStart.value, window_end: el.windowEnd.value,
        weekdays: WEEKDAYS.filter((d) => el.weekdays[d].checked), holidays: lines(el.holidays.value) },
      pacing: { calls_per_s: num(el.cps), max_concurrent: num(el.concurrent) },
      retry: { max_attempts: num(el.maxAttempts), on: {} },
      amd: { enabled: el.amd.checked, wait_for_beep: el.beep.checked, max_s: num(el.amdMax),
        hangup_on: AMD_HANGUP.filter((_, i) => el.hangupOn[i].checked) },
      caller_id: { numbers: lines(el.numbers.value), rotation: el.rotation.value, local_presence: el.local.checked },
      contacts: { variables: mapping(el.variables.value), required: lines(el.required.value) },
    };
    if (el.id.value.trim()) spec.id = el.id.value.trim();
    const start = isoLocal(el.startAt), end = isoLocal(el.endAt);
    if (start) spec.schedule.start_at = start;
    if (end) spec.schedule.end_at = end;
    for (const d of RETRY_ON) {
      const r = el.retry[d];
      if (r.on.checked) spec.retry.on[d] = { delay_s: num(r.delay) ?? 0, backoff: num(r.backoff) ?? 1 };
    }
    if (num(el.cap)) spec.caller_id.daily_cap_per_number = num(el.cap);
    if (el.display.value.trim()) spec.caller_id.display_name = el.display.value.trim();
    if (!existing) return spec;
    // editing: a cleared field clears the saved value instead of letting it through the merge
    spec.schedule.start_at = start || null; spec.schedule.end_at = end || null;
    spec.caller_id.daily_cap_per_number = num(el.cap) ?? null;
    spec.caller_id.display_name = el.display.value.trim() || null;
    spec.id = existing.id;
    return merged(existing.spec, spec);
  };

  const json = h("textarea", { id: "cf-json", rows: 24, dataset: { spec: "" }, spellcheck: "false", "aria-label": t("campaigns.spec_json") });
  const jsonMode = h("input", { type: "checkbox", id: "cf-json-mode" });
  const fieldsBox = h("div", { class: "campaign-fields" });
  const jsonBox = h("div", { hidden: true }, h("p", { class: "muted", i18n: "campaigns.json_help" }), json);
  jsonMode.addEventListener("change", () => {
    if (jsonMode.checked) json.value = JSON.stringify(fromForm(), null, 2);
    fieldsBox.hidden = jsonMode.checked;
    jsonBox.hidden = !jsonMode.checked;
  });

  const group = (legend, ...children) => h("fieldset", {}, h("legend", { i18n: legend }), ...children);
  fieldsBox.append(
    group("campaigns.basics", field("campaigns.name", el.name), field("campaigns.id", el.id, t("campaigns.id_hint")),
      h("div", { class: "row" }, field("campaigns.flow", el.flow), field("campaigns.flow_version", el.version)),
      h("div", { class: "row" }, field("campaigns.purpose_label", el.purpose), field("campaigns.priority", el.priority)),
      check("campaigns.test_mode", el.testMode)),
    group("campaigns.schedule",
      h("p", { class: "muted", i18n: "campaigns.window_help" }),
      h("div", { class: "row" }, field("campaigns.window_start", el.windowStart), field("campaigns.window_end", el.windowEnd)),
      h("div", { class: "row", dataset: { spec: "schedule.weekdays" } }, WEEKDAYS.map((d) => check(`campaigns.weekday.${d}`, el.weekdays[d]))),
      field("campaigns.holidays", el.holidays, t("campaigns.holidays_hint")),
      h("div", { class: "row" }, field("campaigns.start_at", el.startAt), field("campaigns.end_at", el.endAt))),
    group("campaigns.pacing",
      h("div", { class: "row" }, field("campaigns.cps", el.cps), field("campaigns.max_concurrent", el.concurrent))),
    group("campaigns.retry",
      field("campaigns.max_attempts", el.maxAttempts),
      h("table", { class: "grid compact" },
        h("thead", {}, h("tr", {}, ["campaigns.retry_on", "campaigns.retry_delay", "campaigns.retry_backoff"].map((k) => h("th", { i18n: k })))),
        h("tbody", {}, RETRY_ON.map((d) => h("tr", { dataset: { spec: `retry.on.${d}` } },
          h("td", {}, check(`campaigns.disposition.${d}`, el.retry[d].on)), h("td", {}, el.retry[d].delay), h("td", {}, el.retry[d].backoff)))))),
    group("campaigns.amd",
      check("campaigns.amd_enabled", el.amd), check("campaigns.amd_beep", el.beep),
      field("campaigns.amd_max", el.amdMax),
      h("div", { class: "row", dataset: { spec: "amd.hangup_on" } }, h("span", { class: "muted", i18n: "campaigns.amd_hangup" }),
        AMD_HANGUP.map((c, i) => check(`campaigns.amd_class.${c}`, el.hangupOn[i])))),
    group("campaigns.caller_id",
      field("campaigns.numbers", el.numbers, t("campaigns.numbers_hint")),
      h("div", { class: "row" }, field("campaigns.rotation_label", el.rotation), field("campaigns.daily_cap", el.cap), field("campaigns.display_name", el.display)),
      check("campaigns.local_presence", el.local)),
    group("campaigns.contact_columns",
      field("campaigns.variables", el.variables, t("campaigns.variables_hint")), field("campaigns.required", el.required)));

  const general = h("div", { class: "form-error", role: "alert", id: "cf-error" });
  const submit = h("button", { type: "submit", class: "primary", id: "cf-submit", i18n: existing ? "campaigns.save" : "campaigns.create" });
  const form = h("form", { class: "card campaign-form", id: "campaign-form", novalidate: true },
    h("label", { class: "check" }, jsonMode, " ", t("campaigns.json_mode")), fieldsBox, jsonBox, general, submit);

  const showErrors = (err) => {
    const details = err.details && err.details.length ? err.details : [{ field: err.field || "", message: err.message }];
    const unplaced = [];
    for (const d of details) {
      const path = (d.field || "").replace(/^(body\.)?spec\.?/, "");
      const target = jsonMode.checked ? null : placeFor(form, path);
      if (!target) { unplaced.push(`${path || t("campaigns.spec_json")}: ${d.message}`); continue; }
      target.setAttribute("aria-invalid", "true");
      const box = target.closest(".field, fieldset, tr, .row, label") || target;
      box.append(h("div", { class: "inline-error field-error", dataset: { field: path }, text: d.message }));
    }
    general.textContent = unplaced.length ? errorText(err) : t("campaigns.fix_fields");
    if (unplaced.length) general.append(h("ul", {}, unplaced.map((u) => h("li", { text: u }))));
    const first = form.querySelector("[aria-invalid=true]");  // take the reader to it
    if (first) { first.scrollIntoView({ block: "center" }); first.focus({ preventScroll: true }); }
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    form.querySelectorAll(".field-error").forEach((x) => x.remove());
    form.querySelectorAll("[aria-invalid]").forEach((x) => x.removeAttribute("aria-invalid"));
    clear(general);
    let spec;
    if (jsonMode.checked) {
      try { spec = JSON.parse(json.value); } catch (err) { general.textContent = t("campaigns.bad_json", { error: err.message }); return; }
    } else {
      spec = fromForm();
    }
    submit.disabled = true;
    try {
      const res = existing
        ? await api("PATCH", `/api/campaigns/${encodeURIComponent(existing.id)}`, { query: { tenant: existing.tenant }, body: { spec } })
        : (await api("POST", "/api/campaigns", { body: { spec } })).campaign;
      onCreated(res);
    } catch (err) { showErrors(err); } finally { submit.disabled = false; }
  });
  return form;
}

/** The input a spec path names, or the nearest one above it ("retry.on.busy.delay_s" ->
 * that input; "schedule" -> the schedule's first input). */
function placeFor(form, path) {
  if (!path) return null;
  const parts = path.split(".");
  for (let n = parts.length; n > 0; n -= 1) {
    const key = parts.slice(0, n).join(".");
    const exact = form.querySelector(`[data-spec="${CSS.escape(key)}"]`);
    if (exact) return exact;
    const under = form.querySelector(`[data-spec^="${CSS.escape(key + ".")}"]`);
    if (under) return under;
  }
  return null;
}
