// The panels beside the canvas: the simulator, the flow's test cases, a real test call lit up
// live from the event stream, and versions (diff painted on the canvas, rollback).
import { api } from "../api.js";
import { clear, errorText, field, h, toast } from "../dom.js";
import { fmtDate, fmtNumber, t, tOr } from "../i18n.js";

const enc = encodeURIComponent;
let live = null;  // the test call's event stream, closed when the editor goes

export function closeLive() { if (live) { live.close(); live = null; } }

function pathOf(outputs, into) {
  for (const o of outputs) {
    if (o.kind === "flow.enter" && o.node_id && into[into.length - 1] !== o.node_id) into.push(o.node_id);
  }
  return into;
}

export function simulatorPanel(flowId, fg) {
  const log = h("ol", { class: "sim-log", id: "sim-log" });
  const status = h("div", { class: "status", id: "sim-status", role: "status" });
  const text = h("input", { id: "sim-text", "aria-label": t("sim.say") });
  const sim = { id: null, path: [], taken: [] };
  const audio = h("audio", { id: "sim-audio", preload: "auto" });
  const show = (res) => {
    for (const o of res.outputs) {
      if (["say", "play", "transfer", "hangup", "record"].includes(o.kind)) {
        const item = h("li", { class: `out ${o.kind}`, text: `${t(`sim.kind.${o.kind}`)}: ${o.text || ""}` });
        if (o.kind === "say" && o.text) {  // hear it in the engine's own voice
          const play = h("button", { type: "button", class: "link play-prompt", title: t("sim.play"),
                                     "aria-label": t("sim.play"), dataset: { seq: String(o.seq) }, text: "▶" });
          play.addEventListener("click", () => {
            audio.src = `/api/simulations/${enc(sim.id)}/prompts/${o.seq}`;
            audio.play().catch(() => null);  // a refused prompt shows as the audio's error
          });
          item.prepend(play, " ");
        }
        log.append(item);
      } else if (o.kind === "flow.node") {
        log.append(h("li", { class: "trace", text: `${o.node_id} → ${o.outcome}` }));
      } else if (o.kind === "flow.end") {
        log.append(h("li", { class: "trace end", text: `${t("sim.ended")}: ${o.status || ""} ${o.reason || ""}` }));
      }
    }
    log.scrollTop = log.scrollHeight;
    pathOf(res.outputs, sim.path);
    for (const o of res.outputs) if (o.kind === "flow.node" && o.outcome) sim.taken.push(`${o.node_id}:${o.outcome}`);
    fg.highlightPath(sim.path, res.current_node, sim.taken);
    status.textContent = res.status === "ended" ? t("sim.ended")
      : t("sim.waiting", { what: res.waiting_for ? t(`sim.wait.${res.waiting_for}`) : "…", node: res.current_node || "" });
    status.dataset.state = res.status;
  };
  const send = async (kind, value = "") => {
    if (!sim.id) return;
    try { show(await api("POST", `/api/simulations/${enc(sim.id)}/input`, { body: { kind, value } })); }
    catch (err) { status.textContent = errorText(err); }
  };
  const start = h("button", { type: "button", class: "primary", id: "sim-start", i18n: "sim.start" });
  start.addEventListener("click", async () => {
    clear(log);
    sim.path = [];
    sim.taken = [];
    try {
      const res = await api("POST", "/api/simulations", { body: { flow_id: flowId, target: "draft" } });
      sim.id = res.id;
      show(res);
    } catch (err) { status.textContent = errorText(err); }
  });
  const keypad = h("div", { class: "keypad", role: "group", "aria-label": t("sim.keypad") },
    ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"].map((d) => {
      const b = h("button", { type: "button", dataset: { digit: d }, text: d });
      b.addEventListener("click", () => send("digits", d));
      return b;
    }));
  const sayForm = h("form", { class: "row" }, text, h("button", { type: "submit", i18n: "sim.send" }));
  sayForm.addEventListener("submit", (e) => { e.preventDefault(); send("text", text.value); text.value = ""; });
  const silence = h("button", { type: "button", i18n: "sim.silence" });
  silence.addEventListener("click", () => send("silence"));
  const hang = h("button", { type: "button", class: "danger", i18n: "sim.hangup" });
  hang.addEventListener("click", () => send("hangup"));
  return h("div", { class: "panel", id: "simulator" }, h("p", { class: "muted", i18n: "sim.help" }), start, status, keypad,
           sayForm, h("div", { class: "row" }, silence, hang), log, audio);
}

export function testsPanel(flowId, fg) {
  const area = h("textarea", { id: "tests-json", rows: 10, spellcheck: "false" });
  const out = h("div", { id: "tests-result" });
  const status = h("div", { class: "status", role: "status" });
  let revision = null;
  area.disabled = true;  // until the stored cases are in (none stored yet: 404, start empty)
  api("GET", `/api/flows/${enc(flowId)}/tests`).then((res) => {
    revision = res.revision;
    area.value = JSON.stringify(res.document, null, 2);
  }).catch(() => { area.value = JSON.stringify({ cases: [] }, null, 2); })
    .finally(() => { area.disabled = false; });
  const parse = () => { try { return JSON.parse(area.value); } catch { status.textContent = t("form.json"); return null; } };
  const saveBtn = h("button", { type: "button", id: "tests-save", i18n: "tests.save" });
  saveBtn.addEventListener("click", async () => {
    const doc = parse(); if (!doc) return;
    try {
      const res = await api("PUT", `/api/flows/${enc(flowId)}/tests`, { body: { document: doc, revision } });
      revision = res.revision;
      status.textContent = t("tests.saved");
    } catch (err) { status.textContent = errorText(err); }
  });
  const runBtn = h("button", { type: "button", class: "primary", id: "tests-run", i18n: "tests.run" });
  runBtn.addEventListener("click", async () => {
    const doc = parse(); if (!doc) return;
    clear(out);
    try {
      const res = await api("POST", `/api/flows/${enc(flowId)}/tests/run`, { body: { target: "draft", document: doc } });
      out.append(h("p", { class: res.failed ? "bad" : "ok", id: "tests-summary", text: t("tests.summary", { passed: res.passed, failed: res.failed }) }));
      for (const c of res.results) {
        out.append(h("details", { class: c.passed ? "case pass" : "case fail", open: !c.passed },
          h("summary", { text: `${c.passed ? "✓" : "✗"} ${c.name}` }),
          h("ol", {}, c.steps.map((s) => h("li", { class: s.ok ? "ok" : "bad", text: `${s.ok ? "✓" : "✗"} ${s.action}${s.message ? " — " + s.message : ""}` })))));
      }
    } catch (err) { status.textContent = errorText(err); }
  });
  return h("div", { class: "panel", id: "tests" }, h("p", { class: "muted", i18n: "tests.help" }), area,
           h("div", { class: "row" }, saveBtn, runBtn), status, out);
}

export function testCallPanel(flowId, fg) {
  const to = h("input", { id: "testcall-to", placeholder: "sip:test@127.0.0.1:5080" });
  const status = h("div", { class: "status", id: "testcall-status", role: "status" });
  const ledger = h("table", { class: "grid", id: "latency-ledger" },
    h("thead", {}, h("tr", {}, ["ledger.node", "ledger.outcome", "ledger.latency", "ledger.duration"].map((k) => h("th", { i18n: k })))),
    h("tbody"));
  const path = [];
  const taken = [];
  const place = h("button", { type: "button", class: "primary", id: "testcall-place", i18n: "testcall.place" });
  place.addEventListener("click", async () => {
    closeLive();
    path.length = 0;
    taken.length = 0;
    clear(ledger.tBodies[0]);
    status.dataset.state = "placing";
    // Listen before placing: the first events of the call may come before the POST answers,
    // so every flow/call event is held until the call's id is known, then filtered by it.
    const source = new EventSource("/api/events?topics=call.&topics=flow.");
    live = source;
    const held = [];
    let callId = null;
    const onEvent = (msg) => {
      const d = msg.data || {};
      if (msg.topic === "flow.enter" && d.node_id) { path.push(d.node_id); fg.highlightPath(path, d.node_id, taken); }
      if (msg.topic === "flow.node") {
        taken.push(`${d.node_id}:${d.outcome}`);
        fg.highlightPath(path, d.node_id, taken);
        const node = fg.nodeById(d.node_id);
        const budget = node ? fg.specOf(node).budget_ms : null;
        const lat = d.turn_latency_ms;
        ledger.tBodies[0].append(h("tr", { class: budget && lat > budget ? "over" : "" },
          h("td", { text: d.node_id }), h("td", { text: tOr(`port.${d.outcome}`, d.outcome) }),
          h("td", { text: lat == null ? "" : `${fmtNumber(lat, { maximumFractionDigits: 0 })} ms${budget ? ` / ${fmtNumber(budget)} ms` : ""}` }),
          h("td", { text: `${fmtNumber(d.duration_ms || 0, { maximumFractionDigits: 0 })} ms` })));
      }
      if (msg.topic === "call.answered") status.textContent = t("testcall.answered", { id: callId });
      if (msg.topic === "call.ended") {
        status.textContent = t("testcall.ended", { status: tOr(`disposition.${d.disposition}`, d.disposition || d.reason || "") });
        status.dataset.state = "ended";
        closeLive();
      }
    };
    const receive = (ev) => {
      const msg = JSON.parse(ev.data);
      if (callId === null) held.push(msg); else if (msg.call_id === callId) onEvent(msg);
    };
    for (const topic of ["flow.enter", "flow.node", "flow.end", "call.answered", "call.ended"]) source.addEventListener(topic, receive);
    source.addEventListener("stream.close", () => closeLive());
    await new Promise((resolve) => { source.addEventListener("open", resolve, { once: true }); });
    try {
      const call = await api("POST", "/api/testcalls", { body: { flow_id: flowId, to: to.value, target: "latest" } });
      callId = call.call_id;
      status.textContent = t("testcall.placed", { id: callId });
      held.filter((m) => m.call_id === callId).forEach(onEvent);
    } catch (err) { closeLive(); status.textContent = errorText(err); status.dataset.state = "failed"; }
  });
  const panel = h("div", { class: "panel", id: "testcall" }, h("p", { class: "muted", i18n: "testcall.help" }),
    field("testcall.to", to), place, status, ledger);
  return panel;
}

export function versionsPanel(flowId, fg, getState) {
  const box = h("div", { class: "panel", id: "versions" });
  const diffOut = h("div", { id: "diff" });
  api("GET", `/api/flows/${enc(flowId)}/versions`).then((res) => {
    if (!res.items.length) { box.append(h("p", { class: "muted", i18n: "versions.none" })); return; }
    box.append(h("ul", { class: "versions" }, res.items.slice().reverse().map((v) => {
      const diff = h("button", { type: "button", class: "small", i18n: "versions.diff" });
      diff.addEventListener("click", async () => {
        clear(diffOut);
        try {
          const d = await api("GET", `/api/flows/${enc(flowId)}/diff`, { query: { from: String(v.version), to: "draft" } });
          const changed = [...d.nodes_added, ...d.nodes_changed.map((c) => c.id)];
          fg.paintProblems(changed.map((id) => ({ node_id: id, message: "" })));
          diffOut.append(h("p", { text: d.empty ? t("versions.same") : t("versions.changes", {
            added: d.nodes_added.length, removed: d.nodes_removed.length, changed: d.nodes_changed.length,
            edges: d.edges_added.length + d.edges_removed.length }) }));
        } catch (err) { diffOut.textContent = errorText(err); }
      });
      const back = h("button", { type: "button", class: "small", i18n: "versions.rollback" });
      back.addEventListener("click", async () => {
        try {
          const nv = await api("POST", `/api/flows/${enc(flowId)}/rollback`, { body: { version: v.version } });
          toast(t("editor.published", { n: nv.version }), "ok");
        } catch (err) { toast(errorText(err), "error"); }
      });
      return h("li", {}, h("strong", { text: `v${v.version}` }), ` ${fmtDate(v.published_at)} · ${v.published_by} `, diff, back);
    })), diffOut);
  }).catch((err) => box.append(h("p", { text: errorText(err) })));
  return box;
}
