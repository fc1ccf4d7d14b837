// Calls: the searchable call records and one call's detail (its path on the flow's graph, the
// trace, each turn's latency against its budget, the recording).
import { api } from "../api.js";
import { clear, errorText, field, h, table } from "../dom.js";
import { fmtDate, fmtDuration, fmtNumber, t, tOr } from "../i18n.js";
import { FlowGraph } from "../editor/graph.js";
import { loadSchema, nodeTypes } from "../editor/schema.js";
import { session } from "../session.js";

const enc = encodeURIComponent;

export async function render(root, params) {
  if (params[0]) return detail(root, params[0], params[1]);
  return list(root);
}

async function list(root) {
  const number = h("input", { id: "call-number", type: "search", placeholder: "+86138*" });
  const flow = h("input", { id: "call-flow" });
  const disposition = h("input", { id: "call-disposition" });
  const campaign = h("input", { id: "call-campaign" });
  const since = h("input", { id: "call-since", type: "datetime-local" });
  const until = h("input", { id: "call-until", type: "datetime-local" });
  const box = h("div", { id: "call-list" });
  let cursor = null;
  const more = h("button", { type: "button", id: "call-more", i18n: "common.more" });
  const epoch = (el) => (el.value ? new Date(el.value).getTime() / 1000 : undefined);
  const load = async (append) => {
    if (!append) { clear(box); cursor = null; }
    try {
      const res = await api("GET", "/api/calls", { query: { number: number.value, flow_id: flow.value, disposition: disposition.value,
        campaign_id: campaign.value,
        since: epoch(since), until: epoch(until), cursor: append ? cursor : undefined, limit: 50 } });
      cursor = res.next_cursor;
      box.append(table([
        { label: "calls.time", render: (r) => fmtDate(r.invite_at) },
        { label: "calls.direction", render: (r) => t(`calls.dir.${r.direction}`) },
        { label: "calls.from", key: "from_number" },
        { label: "calls.to", key: "to_number" },
        { label: "calls.duration", render: (r) => fmtDuration(r.duration_s) },
        { label: "calls.disposition", render: (r) => tOr(`disposition.${r.disposition}`, r.disposition || "") },
        { label: "calls.flow", render: (r) => (r.flow_id ? `${r.flow_id}${r.flow_version ? " v" + r.flow_version : ""}` : "") },
        { label: "calls.tenant", key: "tenant" },
      ], res.items, { onRow: (r) => { location.hash = `#/calls/${enc(r.id)}`; } }));
      more.hidden = !cursor;
    } catch (err) { box.textContent = errorText(err); }
  };
  const form = h("form", { class: "inline-form card", id: "call-search" },
    field("calls.number", number), field("calls.flow", flow), field("calls.disposition", disposition),
    field("calls.campaign", campaign), field("calls.since", since), field("calls.until", until), h("button", { type: "submit", class: "primary", i18n: "common.search" }));
  form.addEventListener("submit", (e) => { e.preventDefault(); load(false); });
  more.addEventListener("click", () => load(true));
  root.append(h("h1", { i18n: "calls.title" }), form, box, more);
  await load(false);
}

async function detail(root, callId, focusNode) {
  // staff may open any tenant's call (an inspection links here); clients only their own
  const call = await api("GET", `/api/calls/${enc(callId)}`, { query: { tenant: session.user.role === "client" ? undefined : "*" } });
  root.append(h("p", {}, h("a", { href: "#/calls", i18n: "calls.back" })),
    h("h1", { text: t("calls.detail", { from: call.from_number, to: call.to_number }) }),
    h("dl", { class: "facts" },
      ...[["calls.time", fmtDate(call.invite_at)], ["calls.duration", fmtDuration(call.duration_s)],
          ["calls.disposition", tOr(`disposition.${call.disposition}`, call.disposition || "")],
          ["calls.hangup", `${call.hangup_cause || ""} ${call.hangup_side ? "(" + call.hangup_side + ")" : ""}`],
          ["calls.flow", call.flow_id ? `${call.flow_id} v${call.flow_version || "?"} → ${(call.flow_result && call.flow_result.status) || ""}` : ""],
          ["calls.campaign", call.campaign_id || ""],
          ["calls.codec", call.codec || ""], ["calls.digits", call.digits || ""], ["calls.id", call.sip_call_id || call.id]]
        .flatMap(([k, v]) => [h("dt", { i18n: k }), h("dd", { text: v })])));
  if (call.recording_url) {
    root.append(h("h2", { i18n: "calls.recording" }),
      h("audio", { controls: true, preload: "metadata", id: "recording", src: call.recording_url }),
      h("p", { class: "muted", i18n: "calls.stereo" }));
  }
  const path = call.trace.filter((e) => e.kind === "node.enter" && e.node_id).map((e) => e.node_id);
  if (call.flow_id && call.flow_version) {
    const canvas = h("div", { class: "canvas", id: "call-canvas" });
    root.append(h("h2", { i18n: "calls.path" }), h("div", { class: "call-graph" }, canvas));
    try {
      const [schema, version] = await Promise.all([loadSchema(),
        api("GET", `/api/flows/${enc(call.flow_id)}/versions/${call.flow_version}`, { query: { tenant: call.tenant } })]);
      const fg = new FlowGraph({ container: canvas, types: nodeTypes(schema), readonly: true });
      fg.load(version.document);
      const taken = call.trace.filter((e) => e.kind === "node.leave" && e.outcome).map((e) => `${e.node_id}:${e.outcome}`);
      fg.highlightPath(path, undefined, taken);
      fg.zoomToFit();
      const focus = focusNode && fg.nodeById(focusNode);
      if (focus) {  // a node named in the address (an inspection's evidence): ringed, centred
        focus.attr({ body: { stroke: "#e65100", strokeWidth: 4 } });
        canvas.dataset.focus = focusNode;
        fg.graph.centerCell(focus);
      }
    } catch (err) { canvas.textContent = errorText(err); }
  }
  if (call.latency.length) {
    root.append(h("h2", { i18n: "calls.latency" }), table([
      { label: "ledger.node", key: "node_id" },
      { label: "ledger.latency", render: (r) => (r.turn_latency_ms ?? r.total_ms) == null ? "" : `${fmtNumber(r.turn_latency_ms ?? r.total_ms, { maximumFractionDigits: 0 })} ms` },
      { label: "ledger.budget", render: (r) => (r.budget_ms ? `${fmtNumber(r.budget_ms)} ms` : "") },
    ], call.latency));
  }
  root.append(h("h2", { i18n: "calls.trace" }), table([
    { label: "calls.at", render: (r) => (typeof r.t === "number" ? `${fmtNumber(r.t, { maximumFractionDigits: 3 })} s` : (r.at ? fmtDate(r.at) : "")) },
    { label: "calls.event", key: "kind" },
    { label: "calls.details", render: (r) => Object.entries(r).filter(([k]) => !["kind", "t", "at"].includes(k)).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ") },
  ], call.trace));
}
