// Flows: the list, a new flow, and the editor (palette, canvas, side panels).
import { api } from "../api.js";
import { clear, errorText, field, h, table, toast } from "../dom.js";
import { fmtDate, problemText, t, tOr, translateDom } from "../i18n.js";
import { can } from "../session.js";
import { FlowGraph } from "../editor/graph.js";
import { nodeForm } from "../editor/forms.js";
import { loadSchema, newSpec, nodeTypes } from "../editor/schema.js";
import { closeLive, simulatorPanel, testsPanel, testCallPanel, versionsPanel } from "../editor/panels.js";

export async function render(root, params) {
  if (params[0]) return editor(root, params[0]);
  return list(root);
}

async function list(root) {
  const data = await api("GET", "/api/flows");
  const id = h("input", { name: "flow_id", pattern: "[A-Za-z_][A-Za-z0-9_\\-]{0,63}", required: true });
  const name = h("input", { name: "flow_name", required: true });
  const status = h("div", { class: "form-error", role: "alert" });
  const form = h("form", { class: "inline-form card", id: "new-flow" },
    h("h2", { i18n: "flows.new" }), field("flows.id", id), field("flows.name", name), status,
    h("button", { type: "submit", class: "primary", i18n: "flows.create" }));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("POST", "/api/flows", { body: { document: { id: id.value, name: name.value, nodes: [], edges: [] } } });
      location.hash = `#/flows/${encodeURIComponent(id.value)}`;
    } catch (err) { status.textContent = errorText(err); }
  });
  root.append(h("h1", { i18n: "flows.title" }),
    table([
      { label: "flows.id", key: "flow_id" },
      { label: "flows.name", key: "name" },
      { label: "flows.latest", render: (r) => (r.latest_version ? `v${r.latest_version}` : t("flows.unpublished")) },
      { label: "flows.draft_updated", render: (r) => fmtDate(r.draft_updated_at) },
      { label: "flows.routes", render: (r) => r.routes.join(", ") },
    ], data.items, { onRow: (r) => { location.hash = `#/flows/${encodeURIComponent(r.flow_id)}`; } }));
  if (can("flows.write")) root.append(form);
}

async function editor(root, flowId) {
  const schema = await loadSchema();
  const types = nodeTypes(schema);
  const flow = await api("GET", `/api/flows/${encodeURIComponent(flowId)}`);
  const state = { revision: flow.draft ? flow.draft.revision : null, dirty: false, problems: [], selected: null, validateSeq: 0 };
  const canvas = h("div", { class: "canvas", id: "canvas" });
  const minimap = h("div", { class: "minimap" });
  const side = h("aside", { class: "side" });
  const statusLine = h("span", { class: "status", id: "editor-status", role: "status" });
  const refusal = h("div", { class: "refusal", id: "publish-refusal", role: "alert" });

  const palette = h("div", { class: "palette", id: "palette", "aria-label": t("editor.palette") },
    h("h3", { i18n: "editor.palette" }),
    Object.keys(types).sort((a, b) => tOr(`node.${a}`, a).localeCompare(tOr(`node.${b}`, b))).map((type) => h("div", {
      class: "palette-item", dataset: { type }, tabindex: "0", role: "button",
      title: tOr(`nodehint.${type}`, types[type].def.description || type),
    }, tOr(`node.${type}`, type))));

  const btn = (key, fn, extra = {}) => { const b = h("button", { type: "button", ...extra, i18n: key }); b.addEventListener("click", fn); return b; };
  const toolbar = h("div", { class: "toolbar" },
    h("strong", { class: "flow-name", text: `${flow.summary.name} (${flowId})` }),
    btn("editor.save", () => save(), { id: "save-draft", class: "primary" }),
    can("flows.publish") ? btn("editor.publish", () => publish(), { id: "publish" }) : null,
    btn("editor.undo", () => fg.graph.undo(), { id: "undo" }),
    btn("editor.redo", () => fg.graph.redo(), { id: "redo" }),
    btn("editor.fit", () => fg.zoomToFit(), { id: "zoom-fit" }),
    btn("editor.layout", () => fg.autoLayout(), { id: "auto-layout" }),
    statusLine);

  const tabs = ["props", "problems", "simulator", "tests", "testcall", "versions"];
  const tabBar = h("div", { class: "tabs", role: "tablist" });
  const tabBody = h("div", { class: "tab-body" });
  let activeTab = "props";
  for (const tab of tabs) {
    const b = h("button", { type: "button", role: "tab", dataset: { tab }, id: `tab-${tab}`, i18n: `editor.tab.${tab}` });
    b.addEventListener("click", () => showTab(tab));
    tabBar.append(b);
  }
  side.append(tabBar, tabBody);

  root.classList.add("editor-page");
  root.append(h("div", { class: "editor" }, toolbar, refusal,
    h("div", { class: "editor-main" }, palette, h("div", { class: "canvas-wrap" }, canvas, minimap), side)));

  let timer = null;
  const fg = new FlowGraph({
    container: canvas, minimap, types,
    onChange: () => { state.dirty = true; setStatus(); scheduleValidate(); if (activeTab === "props") showTab("props"); },
    onSelect: (node) => { state.selected = node; showTab("props"); },
  });
  fg.load(flow.draft ? flow.draft.document : { id: flowId, name: flow.summary.name, nodes: [], edges: [] });
  state.problems = flow.draft ? flow.draft.problems : [];
  fg.paintProblems(state.problems);
  state.dirty = false;
  setStatus();
  fg.zoomToFit();

  function setStatus(extra) {
    const parts = [state.revision ? t("editor.revision", { n: state.revision }) : t("editor.unsaved")];
    if (state.dirty) parts.push(t("editor.dirty"));
    parts.push(state.problems.length ? t("editor.problems_n", { n: state.problems.length }) : t("editor.valid"));
    if (extra) parts.push(extra);
    statusLine.textContent = parts.join(" · ");
    statusLine.dataset.problems = String(state.problems.length);
  }

  function scheduleValidate() {
    clearTimeout(timer);
    timer = setTimeout(validate, 300);
  }
  async function validate() {
    const seq = ++state.validateSeq;
    try {
      const res = await api("POST", `/api/flows/${encodeURIComponent(flowId)}/validate`, { body: { document: fg.document() } });
      if (seq !== state.validateSeq) return;
      state.problems = res.problems;
      fg.paintProblems(state.problems);
      setStatus();
      if (activeTab === "problems") showTab("problems");
    } catch (err) { setStatus(errorText(err)); }
  }

  // One save at a time: a click on Publish while a save is on its way waits for it (and its
  // new revision) instead of saving again with the old one and meeting a 409.
  let saving = null;
  function save() {
    if (!saving) saving = doSave().finally(() => { saving = null; });
    return saving;
  }

  async function doSave() {
    try {
      const draft = await api("PUT", `/api/flows/${encodeURIComponent(flowId)}/draft`, { body: { document: fg.document(), revision: state.revision } });
      state.revision = draft.revision;
      state.problems = draft.problems;
      state.dirty = false;
      fg.paintProblems(state.problems);
      setStatus(t("editor.saved"));
      return true;
    } catch (err) { setStatus(errorText(err)); toast(errorText(err), "error"); return false; }
  }

  async function publish() {
    clear(refusal);
    if (saving) await saving;
    if (state.dirty && !(await save())) return;
    try {
      const v = await api("POST", `/api/flows/${encodeURIComponent(flowId)}/publish`, { body: { revision: state.revision } });
      setStatus(t(v.created ? "editor.published" : "editor.already_published", { n: v.version }));
      toast(t(v.created ? "editor.published" : "editor.already_published", { n: v.version }), "ok");
      if (activeTab === "versions") showTab("versions");
    } catch (err) {
      const details = err.details || [];
      refusal.append(h("strong", { text: details.length ? t(`error.${err.code}`) : errorText(err) }),
        h("ul", {}, details.map((d) => {
          const li = h("li", { class: "clickable", text: `${d.node_id || t("editor.flow_level")}${d.port ? ` · ${d.port}` : ""}: ${problemText(d)}` });
          li.addEventListener("click", () => selectNode(d.node_id));
          return li;
        })));
      if (err.details && err.details.length) fg.paintProblems(err.details.filter((d) => d.node_id));
    }
  }

  function selectNode(id) {
    const node = id && fg.nodeById(id);
    if (!node) return;
    fg.graph.cleanSelection();
    fg.graph.select(node);
    fg.graph.centerCell(node);
    state.selected = node;
    showTab("props");
  }

  function showTab(tab) {
    activeTab = tab;
    tabBar.querySelectorAll("button").forEach((b) => b.setAttribute("aria-selected", String(b.dataset.tab === tab)));
    clear(tabBody);
    if (tab === "props") tabBody.append(propsPanel());
    else if (tab === "problems") tabBody.append(problemsPanel());
    else if (tab === "simulator") tabBody.append(simulatorPanel(flowId, fg));
    else if (tab === "tests") tabBody.append(testsPanel(flowId, fg));
    else if (tab === "testcall") tabBody.append(testCallPanel(flowId, fg));
    else if (tab === "versions") tabBody.append(versionsPanel(flowId, fg, () => state));
    translateDom(tabBody);
  }

  function propsPanel() {
    const node = state.selected;
    if (!node || !fg.graph.hasCell(node)) return h("p", { class: "muted", i18n: "editor.select_node" });
    const spec = fg.specOf(node);
    const info = types[spec.type];
    const box = h("div", { id: "node-form" }, h("h3", { text: `${tOr(`node.${spec.type}`, spec.type)} · ${spec.id}` }));
    const mine = state.problems.filter((p) => p.node_id === spec.id);
    if (mine.length) box.append(h("ul", { class: "node-problems" }, mine.map((p) => h("li", { text: `${p.port ? p.port + ": " : ""}${problemText(p)}` }))));
    box.append(nodeForm(schema, info, spec, (next) => fg.updateSpec(node, next)));
    box.addEventListener("rerender", () => showTab("props"));
    return box;
  }

  function problemsPanel() {
    if (!state.problems.length) return h("p", { class: "ok", i18n: "editor.no_problems" });
    return h("ul", { class: "problems", id: "problems" }, state.problems.map((p) => {
      const li = h("li", { class: "clickable", tabindex: "0", text: `${p.node_id || t("editor.flow_level")}${p.port ? ` · ${p.port}` : ""} — ${problemText(p)}` });
      li.addEventListener("click", () => selectNode(p.node_id));
      return li;
    }));
  }

  // palette: press on an item, drag it over the canvas, release to drop (plain pointer events)
  palette.addEventListener("mousedown", (e) => {
    const item = e.target.closest(".palette-item");
    if (!item || e.button !== 0) return;
    e.preventDefault();
    const ghost = h("div", { class: "drag-ghost", text: item.textContent });
    document.body.append(ghost);
    const move = (ev) => { ghost.style.left = `${ev.clientX + 6}px`; ghost.style.top = `${ev.clientY + 6}px`; };
    move(e);
    const up = (ev) => {
      document.removeEventListener("mousemove", move);
      document.removeEventListener("mouseup", up);
      ghost.remove();
      const r = canvas.getBoundingClientRect();
      if (ev.clientX < r.left || ev.clientX > r.right || ev.clientY < r.top || ev.clientY > r.bottom) return;
      dropNode(item.dataset.type, fg.graph.clientToLocal(ev.clientX, ev.clientY));
    };
    document.addEventListener("mousemove", move);
    document.addEventListener("mouseup", up);
  });
  palette.addEventListener("keydown", (e) => {  // keyboard: Enter adds the node at the centre
    const item = e.target.closest(".palette-item");
    if (!item || e.key !== "Enter") return;
    const r = canvas.getBoundingClientRect();
    dropNode(item.dataset.type, fg.graph.clientToLocal(r.left + r.width / 2, r.top + r.height / 2));
  });
  function dropNode(type, at) {
    const spec = newSpec(schema, types[type], fg.freshId(type));
    const node = fg.addNode(spec, Math.round(at.x - 100), Math.round(at.y - 20));
    state.selected = node;
    fg.graph.cleanSelection();
    fg.graph.select(node);
    showTab("props");
  }

  const beforeUnload = (e) => { if (state.dirty) { e.preventDefault(); e.returnValue = ""; } };
  window.addEventListener("beforeunload", beforeUnload);
  showTab("props");
  return () => { closeLive(); clearTimeout(timer); window.removeEventListener("beforeunload", beforeUnload); fg.dispose(); };
}
