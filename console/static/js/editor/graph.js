// The flow canvas on AntV X6: one node shape with an input port and named output ports,
// connection rules (output port -> input port, one edge per output port: a new one replaces it), history, clipboard,
// minimap, and the flow document <-> graph conversion (positions saved in the JSON).
import { t, tOr } from "../i18n.js";
import { outputPorts } from "./schema.js";

const X6 = window.X6;
const NODE_W = 210;
const HEAD_H = 46;  // title and type lines
const PORT_STEP = 22;
const COLOURS = { stroke: "#8a9bb0", problem: "#c62828", visited: "#e3f0ff", current: "#1557b0",
                  port: "#2f6fde", commonPort: "#9aa7b6", edge: "#5b6b7f", edgeLit: "#1557b0" };
const PAINT = { paint: true };  // changes the history must not record

let registered = false;
function registerShape() {
  if (registered) return;
  registered = true;
  X6.Graph.registerNode("ivr-node", {
    inherit: "rect",
    width: NODE_W,
    height: HEAD_H + PORT_STEP,
    markup: [
      { tagName: "rect", selector: "body" },
      { tagName: "text", selector: "title" },
      { tagName: "text", selector: "kind" },
      { tagName: "text", selector: "badge" },
    ],
    attrs: {
      body: { rx: 6, ry: 6, fill: "#fff", stroke: COLOURS.stroke, strokeWidth: 1.5 },
      title: { refX: 12, refY: 18, textAnchor: "start", textVerticalAnchor: "middle", fontSize: 13, fontWeight: 600, fill: "#1d2733" },
      kind: { refX: 12, refY: 36, textAnchor: "start", textVerticalAnchor: "middle", fontSize: 11, fill: "#56657a" },
      badge: { refX: "100%", refX2: -10, refY: 18, textAnchor: "end", textVerticalAnchor: "middle", fontSize: 12, fontWeight: 700, fill: COLOURS.problem },
    },
    ports: {
      groups: {
        in: { position: { name: "left" }, attrs: { circle: { r: 7, magnet: "passive", stroke: COLOURS.edge, fill: "#fff", strokeWidth: 1.5 } } },
        out: {
          position: { name: "absolute" },
          label: { position: { name: "left", args: { x: -10 } } },
          attrs: { circle: { r: 6, magnet: true, stroke: COLOURS.port, fill: "#fff", strokeWidth: 1.5 },
                   text: { fontSize: 11, fill: "#263445" } },
        },
      },
    },
  }, true);
}

export const IN_PORT = "in";
export const outPortId = (name) => `out:${name}`;
export const portName = (id) => (id && id.startsWith("out:") ? id.slice(4) : id);

export class FlowGraph {
  constructor({ container, minimap, types, onChange, onSelect, readonly = false }) {
    registerShape();
    this.types = types;
    this.onChange = onChange;
    this.onSelect = onSelect;
    this.meta = {};
    this.graph = new X6.Graph({
      container,
      autoResize: true,
      grid: { visible: true, size: 10 },
      panning: { enabled: true, eventTypes: ["rightMouseDown"] },
      mousewheel: { enabled: true, modifiers: ["ctrl", "meta"], minScale: 0.2, maxScale: 2 },
      background: { color: "#f7f9fc" },
      ...(readonly ? { interacting: false } : {}),
      connecting: {
        snap: { radius: 24 },
        allowBlank: false, allowLoop: true, allowNode: false, allowEdge: false, allowMulti: "withPort",
        highlight: true,
        connector: { name: "smooth" },
        createEdge: () => new X6.Shape.Edge({
          attrs: { line: { stroke: COLOURS.edge, strokeWidth: 1.5, targetMarker: { name: "block", width: 8, height: 6 } } },
          zIndex: 0,
        }),
        // any output port starts an edge; dropping it replaces the port's old edge (re-wiring
        // by dragging, one edge per port), so a used port never turns the drag into a node move
        validateMagnet: ({ magnet }) => magnet.getAttribute("port-group") === "out",
        validateConnection: ({ sourceMagnet, targetMagnet }) => Boolean(sourceMagnet && targetMagnet)
          && sourceMagnet.getAttribute("port-group") === "out"
          && targetMagnet.getAttribute("port-group") === "in",
      },
      highlighting: {
        magnetAvailable: { name: "stroke", args: { padding: 3, attrs: { stroke: "#2e7d32", "stroke-width": 3 } } },
        magnetAdsorbed: { name: "stroke", args: { padding: 3, attrs: { stroke: "#1557b0", "stroke-width": 4 } } },
      },
    });
    const g = this.graph;
    if (readonly) { g.on("render:done", () => this.paintPorts()); return; }
    g.use(new window.X6PluginHistory.History({
      enabled: true,
      beforeAddCommand: (_event, args) => !(args && args.options && args.options.paint),
    }));
    g.use(new window.X6PluginSelection.Selection({ enabled: true, multiple: true, rubberband: true,
                                                  modifiers: ["shift"], showNodeSelectionBox: true,
                                                  pointerEvents: "none" }));
    g.use(new window.X6PluginClipboard.Clipboard({ enabled: true }));
    g.use(new window.X6PluginKeyboard.Keyboard({ enabled: true, global: false }));
    if (minimap) g.use(new window.X6PluginMinimap.MiniMap({ container: minimap, width: 180, height: 120, padding: 8 }));
    this.bindKeys();
    const changed = () => { if (!this.loading && this.onChange) this.onChange(); };
    g.on("cell:added", changed);
    g.on("cell:removed", changed);
    g.on("node:moved", changed);
    g.on("edge:connected", ({ edge }) => { this.oneEdgePerPort(edge); changed(); });
    g.on("cell:change:data", changed);
    g.on("history:undo", () => this.afterHistory());
    g.on("history:redo", () => this.afterHistory());
    g.on("node:click", ({ node }) => this.onSelect && this.onSelect(node));
    g.on("blank:click", () => this.onSelect && this.onSelect(null));
    g.on("node:added", ({ node }) => this.ensureUniqueId(node));
    g.on("render:done", () => this.paintPorts());
    g.on("node:change:ports", () => this.repaintSoon());
    g.on("edge:removed", () => this.repaintSoon());
    g.on("edge:connected", () => this.repaintSoon());
  }

  bindKeys() {
    const g = this.graph;
    g.bindKey(["meta+z", "ctrl+z"], () => { g.undo(); return false; });
    g.bindKey(["meta+shift+z", "ctrl+shift+z", "ctrl+y"], () => { g.redo(); return false; });
    g.bindKey(["meta+c", "ctrl+c"], () => { const c = g.getSelectedCells(); if (c.length) g.copy(c); return false; });
    g.bindKey(["meta+v", "ctrl+v"], () => {
      if (!g.isClipboardEmpty()) { const cells = g.paste({ offset: 40 }); g.cleanSelection(); g.select(cells); }
      return false;
    });
    g.bindKey(["delete", "backspace"], () => { const c = g.getSelectedCells(); if (c.length) g.removeCells(c); return false; });
  }

  afterHistory() { this.graph.getNodes().forEach((n) => this.render(n)); if (this.onChange) this.onChange(); }

  oneEdgePerPort(edge) {
    const source = edge.getSourceCell();
    if (!source) return;
    const port = edge.getSourcePortId();
    for (const other of this.graph.getConnectedEdges(source, { outgoing: true })) {
      if (other !== edge && other.getSourcePortId() === port) this.graph.removeCell(other);
    }
  }

  edgeFrom(cell, portId) {
    return this.graph.getConnectedEdges(cell, { outgoing: true }).find((e) => e.getSourcePortId() === portId);
  }

  specOf(node) { return node.getData().spec; }
  nodeById(id) { return this.graph.getNodes().find((n) => this.specOf(n).id === id) || null; }

  freshId(type) {
    const taken = new Set(this.graph.getNodes().map((n) => this.specOf(n).id));
    let i = 1;
    while (taken.has(`${type}_${i}`)) i += 1;
    return `${type}_${i}`;
  }

  ensureUniqueId(node) {
    const spec = this.specOf(node);
    const clash = this.graph.getNodes().some((n) => n !== node && this.specOf(n).id === spec.id);
    if (clash) node.setData({ spec: { ...spec, id: this.freshId(spec.type) } }, { overwrite: true });
    this.render(node);
  }

  /** Ports, size and texts follow the spec (after an edit, an undo, a paste). */
  render(node) {
    const spec = this.specOf(node);
    const info = this.types[spec.type];
    const connected = this.graph.getConnectedEdges(node, { outgoing: true }).map((e) => portName(e.getSourcePortId()));
    let ports = info ? outputPorts(info, spec, connected) : [];
    for (const name of connected) if (!ports.some((p) => p.name === name)) ports.push({ name, common: false, unknown: true });
    const height = HEAD_H + Math.max(1, ports.length) * PORT_STEP;
    if (node.getSize().height !== height) node.resize(NODE_W, height);
    node.attr("title/text", spec.label || spec.id);
    node.attr("kind/text", spec.label ? `${tOr(`node.${spec.type}`, spec.type)} · ${spec.id}` : tOr(`node.${spec.type}`, spec.type));
    const wanted = new Set(ports.map((p) => outPortId(p.name)));
    for (const p of node.getPorts()) {
      if (p.group === "out" && !wanted.has(p.id)) {
        const edge = this.edgeFrom(node, p.id);
        if (edge) this.graph.removeCell(edge);
        node.removePort(p.id);
      }
    }
    if (!node.hasPort(IN_PORT) && spec.type !== "start") node.addPort({ id: IN_PORT, group: "in" });
    ports.forEach((p, i) => {
      const id = outPortId(p.name);
      const args = { x: NODE_W, y: HEAD_H + i * PORT_STEP + PORT_STEP / 2 };
      const label = tOr(`port.${p.name}`, p.name);
      const colour = p.common ? COLOURS.commonPort : COLOURS.port;
      if (node.hasPort(id)) {
        node.setPortProp(id, "args", args);
        node.setPortProp(id, "attrs/text/text", label);
        node.setPortProp(id, "attrs/circle/stroke", colour);
      } else {
        node.addPort({ id, group: "out", args, attrs: { text: { text: label }, circle: { stroke: colour } } });
      }
    });
  }

  addNode(spec, x, y) {
    const node = this.graph.addNode({ shape: "ivr-node", x, y, data: { spec } });
    this.render(node);
    return node;
  }

  updateSpec(node, spec) {
    this.graph.startBatch("edit");
    node.setData({ spec }, { overwrite: true });
    this.render(node);
    this.graph.stopBatch("edit");
  }

  connect(fromNode, port, toNode) {
    return this.graph.addEdge({
      source: { cell: fromNode.id, port: outPortId(port) }, target: { cell: toNode.id, port: IN_PORT },
      attrs: { line: { stroke: COLOURS.edge, strokeWidth: 1.5, targetMarker: { name: "block", width: 8, height: 6 } } },
    });
  }

  load(doc) {
    const { nodes = [], edges = [], ...meta } = doc;
    this.meta = meta;
    const g = this.graph;
    this.loading = true;
    g.disableHistory();
    g.clearCells();
    const placed = nodes.every((n) => n.position);
    nodes.forEach((n, i) => this.addNode(structuredClone(n), n.position?.x ?? 40, n.position?.y ?? 40 + i * 120));
    for (const e of edges) {
      const a = this.nodeById(e.from), b = this.nodeById(e.to);
      if (!a || !b) continue;
      if (!a.hasPort(outPortId(e.port))) a.addPort({ id: outPortId(e.port), group: "out", args: { x: NODE_W, y: HEAD_H }, attrs: { text: { text: e.port } } });
      this.connect(a, e.port, b);
    }
    g.getNodes().forEach((n) => this.render(n));
    if (!placed && nodes.length) this.autoLayout();
    g.enableHistory();
    g.cleanHistory();
    this.loading = false;
  }

  document() {
    const nodes = this.graph.getNodes().map((n) => {
      const { x, y } = n.getPosition();
      return { ...this.specOf(n), position: { x: Math.round(x), y: Math.round(y) } };
    });
    const edges = this.graph.getEdges().filter((e) => e.getSourceCell() && e.getTargetCell()).map((e) => ({
      from: this.specOf(e.getSourceCell()).id, port: portName(e.getSourcePortId()), to: this.specOf(e.getTargetCell()).id,
    }));
    return { ...this.meta, nodes, edges };
  }

  /** Layered layout for imported flows: breadth first from the start node, one column a level. */
  autoLayout() {
    const nodes = this.graph.getNodes();
    const level = new Map();
    const start = nodes.find((n) => this.specOf(n).type === "start") || nodes[0];
    const queue = start ? [start] : [];
    if (start) level.set(start.id, 0);
    while (queue.length) {
      const n = queue.shift();
      for (const e of this.graph.getConnectedEdges(n, { outgoing: true })) {
        const m = e.getTargetCell();
        if (m && !level.has(m.id)) { level.set(m.id, level.get(n.id) + 1); queue.push(m); }
      }
    }
    let maxLevel = Math.max(0, ...level.values());
    const rows = new Map();
    for (const n of nodes) {
      if (!level.has(n.id)) level.set(n.id, ++maxLevel);
      const l = level.get(n.id);
      const y = rows.get(l) || 40;
      n.position(40 + l * (NODE_W + 90), y);
      rows.set(l, y + n.getSize().height + 40);
    }
    this.zoomToFit();
  }

  zoomToFit() { this.graph.zoomToFit({ padding: 30, maxScale: 1 }); }

  /** Paint the validator's problems: the node's outline and a count (model attrs), the bad
   * ports' circles (straight on the DOM: a port prop change makes X6 rebuild every port of the
   * node, which would pull a port out from under a user's mouse in mid-drag; so the paint is
   * reapplied whenever X6 re-renders instead). */
  paintProblems(problems) {
    const byNode = new Map();
    for (const p of problems) if (p.node_id) byNode.set(p.node_id, [...(byNode.get(p.node_id) || []), p]);
    this.badPorts = new Map();
    for (const node of this.graph.getNodes()) {
      const found = byNode.get(this.specOf(node).id) || [];
      const badge = found.length ? `⚠ ${found.length}` : "";
      if (node.attr("badge/text") !== badge) {
        node.attr("body/stroke", found.length ? COLOURS.problem : COLOURS.stroke, PAINT);
        node.attr("body/strokeWidth", found.length ? 2.5 : 1.5, PAINT);
        node.attr("badge/text", badge, PAINT);
      }
      this.badPorts.set(node.id, new Set(found.filter((p) => p.port).map((p) => outPortId(p.port))));
    }
    this.paintPorts();
  }

  repaintSoon() {  // after X6's next render of the views
    requestAnimationFrame(() => requestAnimationFrame(() => this.paintPorts()));
  }

  paintPorts() {
    if (!this.badPorts) return;
    for (const node of this.graph.getNodes()) {
      const view = this.graph.findViewByCell(node);
      if (!view) continue;
      const bad = this.badPorts.get(node.id) || new Set();
      for (const circle of view.container.querySelectorAll('circle[port-group="out"]')) {
        const isBad = bad.has(circle.getAttribute("port"));
        circle.setAttribute("fill", isBad ? "#ffcdd2" : "#fff");
        circle.classList.toggle("port-problem", isBad);
        if (isBad) circle.setAttribute("stroke", COLOURS.problem);
      }
    }
  }

  /** Light up a path (simulator, test call, a call's record): visited nodes and edges taken. */
  highlightPath(nodeIds, current, taken = []) {
    const seen = new Set(nodeIds);
    for (const node of this.graph.getNodes()) {
      const id = this.specOf(node).id;
      node.attr("body/fill", seen.has(id) ? COLOURS.visited : "#fff", PAINT);
      if (current !== undefined) node.attr("body/strokeDasharray", id === current ? "6 3" : null, PAINT);
    }
    // an edge is lit when the path went along it: by the port each node left through when the
    // trace says so ("node:port" in taken), else by consecutive nodes
    const steps = new Set();
    for (let i = 1; i < nodeIds.length; i += 1) steps.add(`${nodeIds[i - 1]}>${nodeIds[i]}`);
    const ports = new Set(taken);
    const known = new Set(taken.map((x) => x.slice(0, x.lastIndexOf(":"))));
    for (const edge of this.graph.getEdges()) {
      const a = edge.getSourceCell(), b = edge.getTargetCell();
      if (!a || !b) continue;
      const from = this.specOf(a).id;
      const lit = steps.has(`${from}>${this.specOf(b).id}`)
        && (!known.has(from) || ports.has(`${from}:${portName(edge.getSourcePortId())}`));
      edge.attr("line/stroke", lit ? COLOURS.edgeLit : COLOURS.edge, PAINT);
      edge.attr("line/strokeWidth", lit ? 3 : 1.5, PAINT);
    }
  }

  dispose() { this.graph.dispose(); }
}
