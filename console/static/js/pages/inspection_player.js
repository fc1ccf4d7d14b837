// The call review's player: the stereo recording fetched once and parsed in JS (RIFF/WAVE PCM;
// anything else through Web Audio's decodeAudioData), both channels drawn on one canvas as
// min/max per pixel column (caller = left channel on top, IVR = right channel below), rule hits
// marked on their lane, and a playhead that follows the <audio> element, which plays the same
// bytes from a blob: URL (the console's CSP allows media-src blob:), so the recording crosses
// the network once. Clicking the canvas, or calling seek(ms), moves the player there and plays.
import { h } from "../dom.js";
import { t } from "../i18n.js";

const LANE_COLOURS = { caller: "#1f6fb2", engine: "#2e7d32" };
const HIT_COLOUR = "rgba(230, 81, 0, 0.28)";
const PLAYHEAD_COLOUR = "#c62828";
const LANE_GAP_PX = 6;

/** Loads the page's own stylesheet once (kept out of the shared console.css). */
export function ensureStyles() {
  if (document.getElementById("inspection-css")) return;
  document.head.append(h("link", { id: "inspection-css", rel: "stylesheet", href: "/static/css/inspection.css" }));
}

/** "1:05.3": a position in the call, minutes and seconds to a tenth. */
export function fmtOffset(ms) {
  const total = Math.max(0, ms || 0) / 1000;
  const m = Math.floor(total / 60);
  const s = total - m * 60;
  return `${m}:${s.toFixed(1).padStart(4, "0")}`;
}

/** Parses a RIFF/WAVE file of 8/16-bit PCM into one Float32Array per channel, or null when it
 * is another encoding (the caller then asks Web Audio). */
export function parseWav(buffer) {
  const v = new DataView(buffer);
  const tag = (at) => String.fromCharCode(v.getUint8(at), v.getUint8(at + 1), v.getUint8(at + 2), v.getUint8(at + 3));
  if (buffer.byteLength < 12 || tag(0) !== "RIFF" || tag(8) !== "WAVE") return null;
  let fmt = null;
  let at = 12;
  while (at + 8 <= buffer.byteLength) {
    const id = tag(at), size = v.getUint32(at + 4, true), body = at + 8;
    if (id === "fmt ") {
      fmt = { format: v.getUint16(body, true), channels: v.getUint16(body + 2, true),
              rate: v.getUint32(body + 4, true), bits: v.getUint16(body + 14, true) };
    } else if (id === "data" && fmt) {
      if (fmt.format !== 1 || (fmt.bits !== 16 && fmt.bits !== 8)) return null;
      const bytes = fmt.bits / 8;
      const frames = Math.floor(Math.min(size, buffer.byteLength - body) / (bytes * fmt.channels));
      const channels = Array.from({ length: fmt.channels }, () => new Float32Array(frames));
      for (let i = 0, p = body; i < frames; i += 1) {
        for (let c = 0; c < fmt.channels; c += 1, p += bytes) {
          channels[c][i] = bytes === 2 ? v.getInt16(p, true) / 32768 : (v.getUint8(p) - 128) / 128;
        }
      }
      return { rate: fmt.rate, channels };
    }
    at = body + size + (size % 2);
  }
  return null;
}

async function decode(buffer) {
  const parsed = parseWav(buffer);
  if (parsed) return parsed;
  const ctx = new OfflineAudioContext(2, 8000, 8000);
  const audio = await ctx.decodeAudioData(buffer.slice(0));
  return { rate: audio.sampleRate, channels: Array.from({ length: audio.numberOfChannels }, (_, c) => audio.getChannelData(c)) };
}

/** min/max of each of ``columns`` equal slices of ``samples``. */
export function peaks(samples, columns) {
  const out = new Float32Array(columns * 2);
  const per = samples.length / columns;
  for (let x = 0; x < columns; x += 1) {
    const a = Math.floor(x * per), b = Math.max(a + 1, Math.floor((x + 1) * per));
    let lo = 0, hi = 0;
    for (let i = a; i < b && i < samples.length; i += 1) {
      const s = samples[i];
      if (s < lo) lo = s;
      if (s > hi) hi = s;
    }
    out[2 * x] = lo;
    out[2 * x + 1] = hi;
  }
  return out;
}

export class CallPlayer {
  /** ``url``: the recording; ``hits``: [{speaker, start_ms, end_ms}] to mark on the lanes. */
  constructor({ url, hits = [] }) {
    this.url = url;
    this.hits = hits;
    this.canvas = h("canvas", { id: "waveform", class: "waveform", height: "180", role: "img", "aria-label": t("inspection.review.waveform") });
    this.audio = h("audio", { id: "review-audio", controls: true, preload: "auto" });
    this.status = h("div", { class: "muted", id: "waveform-status" });
    this.legend = h("div", { class: "lane-legend" },
      h("span", { class: "lane caller", i18n: "inspection.speaker.caller_left" }),
      h("span", { class: "lane engine", i18n: "inspection.speaker.engine_right" }));
    this.element = h("div", { class: "player card" }, this.legend, this.canvas, this.audio, this.status);
    this.durationMs = 0;
    this.data = null;
    this.frame = null;
    this.blobUrl = null;
    this.canvas.addEventListener("click", (e) => {
      if (!this.durationMs) return;
      const r = this.canvas.getBoundingClientRect();
      this.seek(((e.clientX - r.left) / r.width) * this.durationMs);
    });
    const follow = () => { this.draw(); if (!this.audio.paused) this.frame = requestAnimationFrame(follow); };
    this.audio.addEventListener("play", () => { this.frame = requestAnimationFrame(follow); });
    this.audio.addEventListener("seeked", () => this.draw());
    this.audio.addEventListener("pause", () => this.draw());
  }

  async load() {
    this.status.textContent = t("inspection.review.loading_audio");
    const resp = await fetch(this.url, { credentials: "same-origin" });
    if (!resp.ok) throw new Error(`${resp.status}`);
    const buffer = await resp.arrayBuffer();
    // the player gets the bytes already here (a Blob copies them before decoding may detach
    // the buffer); the waveform is drawn from the same bytes
    const type = resp.headers.get("Content-Type") || "audio/wav";
    this.blobUrl = URL.createObjectURL(new Blob([buffer], { type }));
    this.audio.src = this.blobUrl;
    this.data = await decode(buffer);
    const frames = this.data.channels[0] ? this.data.channels[0].length : 0;
    this.durationMs = (frames / this.data.rate) * 1000;
    this.status.textContent = "";
    this.resize();
  }

  resize() {
    const width = Math.max(200, Math.floor(this.canvas.clientWidth || this.canvas.parentElement.clientWidth || 800));
    this.canvas.width = width;
    const [left, right] = this.data.channels;
    this.lanes = [["caller", peaks(left, width)], ["engine", peaks(right || left, width)]];
    this.draw();
  }

  /** Seek to ``ms`` into the call and play from there. */
  seek(ms) {
    const s = Math.max(0, ms) / 1000;
    this.audio.currentTime = s;
    this.draw(s);
    this.audio.play().catch(() => null);  // a browser may refuse autoplay; the position stands
  }

  draw(atS) {
    if (!this.lanes) return;
    const ctx = this.canvas.getContext("2d");
    const W = this.canvas.width, H = this.canvas.height;
    const laneH = (H - LANE_GAP_PX) / 2;
    ctx.clearRect(0, 0, W, H);
    const x = (ms) => (ms / this.durationMs) * W;
    this.lanes.forEach(([speaker, pk], lane) => {
      const top = lane * (laneH + LANE_GAP_PX), mid = top + laneH / 2;
      ctx.fillStyle = "#f4f7fb";
      ctx.fillRect(0, top, W, laneH);
      for (const hit of this.hits) {
        if (hit.speaker !== speaker && hit.speaker !== "any") continue;
        ctx.fillStyle = HIT_COLOUR;
        ctx.fillRect(x(hit.start_ms), top, Math.max(2, x(hit.end_ms) - x(hit.start_ms)), laneH);
      }
      ctx.fillStyle = LANE_COLOURS[speaker];
      for (let c = 0; c < W; c += 1) {
        const lo = pk[2 * c], hi = pk[2 * c + 1];
        const y0 = mid - hi * (laneH / 2), y1 = mid - lo * (laneH / 2);
        ctx.fillRect(c, y0, 1, Math.max(1, y1 - y0));
      }
    });
    const now = atS ?? this.audio.currentTime;
    ctx.fillStyle = PLAYHEAD_COLOUR;
    ctx.fillRect(Math.min(W - 2, x(now * 1000)), 0, 2, H);
  }

  dispose() {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.audio.pause();
    if (this.blobUrl) {
      this.audio.removeAttribute("src");
      URL.revokeObjectURL(this.blobUrl);
      this.blobUrl = null;
    }
  }
}
