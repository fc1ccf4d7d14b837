// Dashboard (数据看板): calls per hour/day, answer and completion rates, dispositions, top flow
// exits, turn latency p50/p95 with over-budget turns, the no-match rate and live calls, drawn
// with Chart.js (vendored UMD build: window.Chart). Filters: tenant (staff), flow, time range,
// bucket. Each chart exports its data as CSV from the server (the same figures, unformatted).
import { api } from "../api.js";
import { clear, errorText, field, h } from "../dom.js";
import { currentLocale, fmtDate, fmtNumber, t, tOr } from "../i18n.js";
import { can, session } from "../session.js";

const RANGES = { "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400 };
const LIVE_POLL_MS = 5000;
const LIVE_POINTS = 60;  // five minutes of samples on the live chart
const COLORS = ["#1557b0", "#e8710a", "#1e8e3e", "#d93025", "#9334e6", "#12b5cb", "#f9ab00", "#5f6368", "#b31412", "#188038"];
const CHARTS = ["calls", "rates", "dispositions", "exits", "latency", "nomatch", "live"];

const timeZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
const pct = (v) => (v == null ? "–" : fmtNumber(v, { style: "percent", maximumFractionDigits: 1 }));
const ms = (v) => (v == null ? "–" : `${fmtNumber(v, { maximumFractionDigits: 0 })} ${t("dashboard.axis.ms")}`);

export async function render(root) {
  const staff = can("tenants.read");
  const tenant = h("select", { id: "dash-tenant" },
    h("option", { value: "", text: session.user.tenant }), h("option", { value: "*", text: t("dashboard.tenant_all") }));
  const flow = h("select", { id: "dash-flow" }, h("option", { value: "", text: t("dashboard.flow_all") }));
  const range = h("select", { id: "dash-range" },
    ["24h", "7d", "30d", "custom"].map((r) => h("option", { value: r, text: t(`dashboard.range.${r}`) })));
  const bucket = h("select", { id: "dash-bucket" },
    ["hour", "day"].map((b) => h("option", { value: b, text: t(`dashboard.bucket.${b}`) })));
  const since = h("input", { id: "dash-since", type: "datetime-local" });
  const until = h("input", { id: "dash-until", type: "datetime-local" });
  const custom = h("div", { class: "row", hidden: true }, field("dashboard.since", since), field("dashboard.until", until));
  const status = h("div", { class: "form-error", role: "alert", id: "dash-error" });
  const form = h("form", { class: "inline-form card dash-filters", id: "dash-filters" },
    staff ? field("dashboard.tenant", tenant) : null, field("dashboard.flow", flow),
    field("dashboard.range", range), field("dashboard.bucket", bucket), custom,
    h("button", { type: "submit", class: "primary", id: "dash-apply", i18n: "dashboard.apply" }));
  const tiles = h("div", { class: "dash-tiles", id: "dash-tiles" });
  const notes = h("div", { class: "muted", id: "dash-notes" });
  const grid = h("div", { class: "dash-grid" });
  const charts = {};
  const cards = {};
  for (const name of CHARTS) {
    const canvas = h("canvas", { id: `chart-${name}`, role: "img", "aria-label": t(`dashboard.chart.${name}`) });
    const exportBtn = h("button", { type: "button", class: "small", id: `export-${name}`, i18n: "dashboard.export" });
    exportBtn.addEventListener("click", () => exportCsv(name));
    cards[name] = h("section", { class: "card dash-card", id: `card-${name}` },
      h("div", { class: "dash-card-head" }, h("h2", { i18n: `dashboard.chart.${name}` }), exportBtn),
      h("div", { class: "dash-chart" }, canvas), h("p", { class: "muted dash-card-note" }));
    grid.append(cards[name]);
  }
  root.append(h("h1", { i18n: "dashboard.title" }), form, status, tiles, notes, grid,
    h("p", { class: "muted", i18n: "dashboard.definitions" }));

  let last = null;
  const filters = () => {
    const q = { tenant: tenant.value || undefined, flow_id: flow.value || undefined, bucket: bucket.value, tz: timeZone() };
    if (range.value === "custom") {
      if (since.value) q.since = new Date(since.value).getTime() / 1000;
      if (until.value) q.until = new Date(until.value).getTime() / 1000;
    } else {
      q.until = Math.floor(Date.now() / 1000);
      q.since = q.until - RANGES[range.value];
    }
    return q;
  };

  async function loadFlows() {
    const keep = flow.value;
    clear(flow).append(h("option", { value: "", text: t("dashboard.flow_all") }));
    if (tenant.value === "*") return;
    try {
      const res = await api("GET", "/api/flows", { query: { tenant: tenant.value || undefined } });
      for (const f of res.items) flow.append(h("option", { value: f.flow_id, text: f.name ? `${f.name} (${f.flow_id})` : f.flow_id }));
      if ([...flow.options].some((o) => o.value === keep)) flow.value = keep;
    } catch (err) { status.textContent = errorText(err); }
  }

  let loads = 0;
  async function load() {
    const mine = ++loads;  // an older answer arriving late never replaces a newer one
    status.textContent = "";
    let got;
    try {
      got = await api("GET", "/api/stats/calls", { query: filters() });
    } catch (err) { if (mine === loads) status.textContent = errorText(err); return; }
    if (mine !== loads) return;
    last = got;
    draw(last);
  }

  function bucketLabel(start) {
    const opts = last.bucket === "day" ? { month: "short", day: "numeric", timeZone: last.tz }
      : { month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit", timeZone: last.tz };
    return new Intl.DateTimeFormat(currentLocale(), opts).format(new Date(start * 1000));
  }

  function chart(name, config) {
    const canvas = document.getElementById(`chart-${name}`);
    const base = { responsive: true, maintainAspectRatio: false, locale: currentLocale(), animation: false,
      plugins: { legend: { position: "bottom" } } };
    if (charts[name]) charts[name].destroy();
    charts[name] = new window.Chart(canvas, { ...config, options: { ...base, ...config.options,
      plugins: { ...base.plugins, ...(config.options && config.options.plugins) } } });
  }

  const rateAxis = { min: 0, max: 1, ticks: { callback: (v) => pct(v) } };
  const countAxis = { beginAtZero: true, ticks: { precision: 0, callback: (v) => fmtNumber(v) } };

  function draw(d) {
    const labels = d.buckets.map((b) => bucketLabel(b.start));
    const tot = d.totals;
    clear(tiles).append(...[
      ["calls", fmtNumber(tot.calls)], ["answer_rate", pct(tot.answer_rate)],
      ["completion_rate", pct(tot.completion_rate)], ["p95", ms(d.latency.p95_ms)],
      ["over_budget", fmtNumber(d.latency.over_budget)], ["nomatch_rate", pct(d.recognition.nomatch_rate)],
      ["live", d.live.available ? fmtNumber(d.live.calls) : "–"],
    ].map(([k, v]) => h("div", { class: "tile", id: `tile-${k}` }, h("div", { class: "tile-value", text: v }),
      h("div", { class: "tile-label", i18n: `dashboard.tile.${k}` }))));
    clear(notes).append(h("span", { text: t("dashboard.updated", { time: fmtDate(d.until) }) }));
    if (!tot.calls) notes.append(" · ", h("span", { id: "dash-empty", i18n: "dashboard.no_calls" }));
    if (!d.latency.complete) notes.append(" · ", h("span", { text: t("dashboard.partial", { scanned: fmtNumber(d.latency.calls_scanned), answered: fmtNumber(d.latency.calls_answered) }) }));

    chart("calls", { type: "bar", data: { labels, datasets: [
      { label: t("dashboard.series.inbound"), data: d.buckets.map((b) => b.inbound), backgroundColor: COLORS[0], stack: "c" },
      { label: t("dashboard.series.outbound"), data: d.buckets.map((b) => b.outbound), backgroundColor: COLORS[1], stack: "c" }] },
      options: { scales: { x: { stacked: true }, y: { ...countAxis, stacked: true } } } });
    chart("rates", { type: "line", data: { labels, datasets: [
      { label: t("dashboard.series.answer_rate"), data: d.buckets.map((b) => b.answer_rate), borderColor: COLORS[0], backgroundColor: COLORS[0], spanGaps: true },
      { label: t("dashboard.series.completion_rate"), data: d.buckets.map((b) => b.completion_rate), borderColor: COLORS[2], backgroundColor: COLORS[2], spanGaps: true }] },
      options: { scales: { y: rateAxis }, plugins: { tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${pct(c.parsed.y)}` } } } } });
    chart("dispositions", { type: "doughnut", data: {
      labels: d.dispositions.map((x) => tOr(`disposition.${x.disposition}`, x.disposition)),
      datasets: [{ data: d.dispositions.map((x) => x.calls), backgroundColor: d.dispositions.map((_, i) => COLORS[i % COLORS.length]) }] } });
    chart("exits", { type: "bar", data: {
      labels: d.exits.map((e) => `${e.flow_id} · ${e.node} · ${tOr(`dashboard.status.${e.status}`, e.status)}`),
      datasets: [{ label: t("dashboard.series.calls"), data: d.exits.map((e) => e.calls), backgroundColor: d.exits.map((e) => (["hangup", "transferred", "returned"].includes(e.status) ? COLORS[2] : COLORS[3])) }] },
      options: { indexAxis: "y", scales: { x: countAxis }, plugins: { legend: { display: false } } } });
    chart("latency", { type: "bar", data: { labels, datasets: [
      { type: "line", label: t("dashboard.series.p50"), data: d.buckets.map((b) => b.p50_ms), borderColor: COLORS[0], backgroundColor: COLORS[0], yAxisID: "y", spanGaps: true },
      { type: "line", label: t("dashboard.series.p95"), data: d.buckets.map((b) => b.p95_ms), borderColor: COLORS[4], backgroundColor: COLORS[4], yAxisID: "y", spanGaps: true },
      { type: "bar", label: t("dashboard.series.over_budget"), data: d.buckets.map((b) => b.over_budget), backgroundColor: COLORS[3], yAxisID: "y1" }] },
      options: { scales: { y: { beginAtZero: true, position: "left", title: { display: true, text: t("dashboard.axis.ms") }, ticks: { callback: (v) => fmtNumber(v) } },
        y1: { ...countAxis, position: "right", grid: { drawOnChartArea: false } } } } });
    const noInput = d.buckets.map((b) => (b.listens ? b.no_input / b.listens : null));
    chart("nomatch", { type: "line", data: { labels, datasets: [
      { label: t("dashboard.series.nomatch_rate"), data: d.buckets.map((b) => b.nomatch_rate), borderColor: COLORS[3], backgroundColor: COLORS[3], spanGaps: true },
      { label: t("dashboard.series.no_input_rate"), data: noInput, borderColor: COLORS[7], backgroundColor: COLORS[7], spanGaps: true }] },
      options: { scales: { y: rateAxis }, plugins: { tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${pct(c.parsed.y)}` } } } } });
    liveSamples.length = 0;
    addLive(d.live);
  }

  // live calls: the current figure from every refresh, then a sample every few seconds
  const liveSamples = [];
  function addLive(live) {
    const note = cards.live.querySelector(".dash-card-note");
    note.textContent = live.available ? "" : t("dashboard.live_unavailable");
    if (!live.available) { chart("live", { type: "line", data: { labels: [], datasets: [] } }); return; }
    liveSamples.push({ at: live.at, calls: live.calls });
    while (liveSamples.length > LIVE_POINTS) liveSamples.shift();
    const timeFmt = new Intl.DateTimeFormat(currentLocale(), { timeStyle: "medium" });
    const labels = liveSamples.map((s) => timeFmt.format(new Date(s.at * 1000)));
    const data = liveSamples.map((s) => s.calls);
    if (charts.live && charts.live.config.type === "line" && charts.live.data.datasets.length) {
      charts.live.data.labels = labels;
      charts.live.data.datasets[0].data = data;
      charts.live.update("none");
      return;
    }
    chart("live", { type: "line", data: { labels, datasets: [
      { label: t("dashboard.series.live"), data, borderColor: COLORS[5], backgroundColor: COLORS[5], stepped: true }] },
      options: { scales: { y: countAxis } } });
  }
  const poll = setInterval(async () => {
    if (!last || !last.live.available || document.hidden) return;
    try {
      const live = await api("GET", "/api/stats/live", { query: { tenant: tenant.value || undefined, flow_id: flow.value || undefined } });
      addLive(live);
      const tile = document.querySelector("#tile-live .tile-value");
      if (tile) tile.textContent = fmtNumber(live.calls);
    } catch { /* the next refresh says what went wrong */ }
  }, LIVE_POLL_MS);

  async function exportCsv(name) {
    status.textContent = "";
    const q = new URLSearchParams({ chart: name, lang: currentLocale() });
    for (const [k, v] of Object.entries(filters())) if (v !== undefined && v !== "") q.append(k, v);
    const resp = await fetch(`/api/stats/calls.csv?${q}`, { credentials: "same-origin" });
    if (!resp.ok) {
      const body = await resp.json().catch(() => ({}));
      status.textContent = errorText({ code: body.error && body.error.code, message: body.error && body.error.message });
      return;
    }
    const blob = await resp.blob();
    const url = URL.createObjectURL(blob);
    const match = /filename="([^"]+)"/.exec(resp.headers.get("Content-Disposition") || "");
    const a = h("a", { href: url, download: match ? match[1] : `calls-${name}.csv`, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  range.addEventListener("change", () => {
    custom.hidden = range.value !== "custom";
    if (range.value === "30d") bucket.value = "day";
    if (range.value === "24h") bucket.value = "hour";
  });
  tenant.addEventListener("change", async () => { await loadFlows(); await load(); });
  flow.addEventListener("change", load);
  form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
  await loadFlows();
  await load();
  return () => {
    clearInterval(poll);
    for (const c of Object.values(charts)) c.destroy();
  };
}
