// Under the frames: the segments timeline (draw a segment by dragging, drag its edges) and
// the series plot with the frame cursor.
import { call, updateAnnotation, urls } from "./api.js";
import { $, SVG, W, incomplete, onSample, sample, say, state } from "./core.js";
import { create, remember } from "./annotations.js";
import { showFrame } from "./canvas.js";
import { currentKind, renderAnnotations, segmentRange } from "./panels.js";

// --- series ------------------------------------------------------------------------------
export async function loadSeries() {
  const svg = $("[data-series]");
  svg.innerHTML = "";
  state.series = null;
  if (!sample().series) return;
  const { ok, data } = await call("GET", urls.series(sample().id));
  if (!ok) return;
  state.series = data;
  const chosen = Object.values(data.series).find((s) => s.role === "state") || Object.values(data.series)[0];
  if (!chosen) return;
  const values = chosen.values;
  const flat = values.flat();
  const low = Math.min(...flat), high = Math.max(...flat), span = high - low || 1;
  const n = data.num_frames - 1 || 1;
  const colours = ["#2f6fde", "#e4572e", "#17bebb", "#ffc914", "#76b041", "#9b5de5", "#f15bb5"];
  for (let j = 0; j < values[0].length; j++) {
    const points = values.map((row, i) => `${(data.frames[i] / n) * 600},${118 - ((row[j] - low) / span) * 116}`).join(" ");
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", points);
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", colours[j % colours.length]);
    line.setAttribute("stroke-width", "1");
    line.setAttribute("vector-effect", "non-scaling-stroke");
    svg.append(line);
  }
  const cursor = document.createElementNS(SVG, "line");
  cursor.dataset.cursor = "";
  cursor.setAttribute("y1", "0");
  cursor.setAttribute("y2", "120");
  cursor.setAttribute("stroke", "#102a43");
  cursor.setAttribute("vector-effect", "non-scaling-stroke");
  svg.append(cursor);
  drawCursor();
}

export function drawCursor() {
  const cursor = document.querySelector("[data-series] [data-cursor]");
  if (!cursor) return;
  const x = (state.frame / Math.max(1, sample().frames - 1)) * 600;
  cursor.setAttribute("x1", x);
  cursor.setAttribute("x2", x);
}

// --- segments ----------------------------------------------------------------------------
// Segments on a timeline; their edges drag to new frames (saved with the version seen).
export function drawTimeline() {
  const svg = $("[data-timeline]");
  if (!svg) return;
  svg.innerHTML = "";
  const n = Math.max(1, sample().frames - 1);
  const segments = state.annotations.filter((a) => a.kind === "segment" && onSample(a));
  // Overlapping segments get lanes of their own, so each bar and its handles stay reachable.
  const lanes = [];
  const lane = new Map();
  for (const a of [...segments].sort((x, y) => x.data.start - y.data.start)) {
    let k = lanes.findIndex((end) => end < a.data.start);
    if (k < 0) { k = lanes.length; lanes.push(-1); }
    lanes[k] = a.data.end;
    lane.set(a.id, k);
  }
  const height = 24 / Math.max(1, lanes.length);
  svg.style.height = `${Math.max(24, 14 * lanes.length)}px`;
  segments.forEach((a) => {
    const x1 = (a.data.start / n) * 600, x2 = (a.data.end / n) * 600;
    const top = lane.get(a.id) * height;
    const bar = document.createElementNS(SVG, "rect");
    bar.setAttribute("x", x1); bar.setAttribute("y", top + height * 0.15); bar.setAttribute("width", Math.max(1, x2 - x1)); bar.setAttribute("height", height * 0.7);
    bar.setAttribute("class", "segment-bar" + (state.selected === a.id ? " selected" : "") + (incomplete(a) ? " incomplete" : ""));
    bar.dataset.bar = a.id;
    svg.append(bar);
    if (!W.editable) return;
    for (const edge of ["start", "end"]) {
      const handle = document.createElementNS(SVG, "rect");
      handle.setAttribute("x", (edge === "start" ? x1 : x2) - 3); handle.setAttribute("y", top + height * 0.05);
      handle.setAttribute("width", 6); handle.setAttribute("height", height * 0.9);
      handle.setAttribute("class", "segment-handle");
      handle.dataset.edge = edge;
      handle.dataset.id = a.id;
      handle.setAttribute("aria-label", `${edge} of ${a.label} ${a.data.start}–${a.data.end}`);
      handle.addEventListener("mousedown", (event) => { state.edge = { a, edge, svg }; event.preventDefault(); });
      svg.append(handle);
    }
  });
}

function timelineFrame(event, svg) {
  const box = svg.getBoundingClientRect();
  const n = Math.max(1, sample().frames - 1);
  return Math.min(n, Math.max(0, Math.round(((event.clientX - box.left) / box.width) * n)));
}

// Dragging across an empty stretch of the timeline makes a new segment of the current
// segment class there (From/to are filled in, the description comes from the form).
export function wireTimeline() {
  const timelineSvg = $("[data-timeline]");
  if (!timelineSvg) return;
  timelineSvg.addEventListener("mousedown", (event) => {
    if (!W.editable || event.target.dataset.edge || currentKind() !== "segment") return;
    const from = timelineFrame(event, timelineSvg);
    const preview = document.createElementNS(SVG, "rect");
    preview.setAttribute("class", "segment-bar drawing");
    preview.setAttribute("y", 2); preview.setAttribute("height", 20);
    timelineSvg.append(preview);
    state.span = { from, to: from, preview, svg: timelineSvg };
    event.preventDefault();
  });
  document.addEventListener("mousemove", (event) => {
    if (state.span) return drawSpan(event);
    if (state.edge) moveEdge(event);
  });
  document.addEventListener("mouseup", () => {
    if (state.span) return endSpan();
    if (state.edge) endEdge();
  });
}

function drawSpan(event) {
  const n = Math.max(1, sample().frames - 1);
  state.span.to = timelineFrame(event, state.span.svg);
  const lo = Math.min(state.span.from, state.span.to), hi = Math.max(state.span.from, state.span.to);
  state.span.preview.setAttribute("x", (lo / n) * 600);
  state.span.preview.setAttribute("width", Math.max(1, ((hi - lo) / n) * 600));
  state.frame = state.span.to;
  showFrame();
}

async function endSpan() {
  const { from, to, preview } = state.span;
  state.span = null;
  preview.remove();
  if (from === to) { state.frame = from; return showFrame(); }  // a click just seeks
  $("[data-seg-start]").value = Math.min(from, to);
  $("[data-seg-end]").value = Math.max(from, to);
  const range = segmentRange();
  if (range) await create(range);
}

function moveEdge(event) {
  const { a, edge, svg } = state.edge;
  const frame = timelineFrame(event, svg);
  state.edge.data = edge === "start"
    ? { start: Math.min(frame, a.data.end), end: a.data.end }
    : { start: a.data.start, end: Math.max(frame, a.data.start) };
  const n = Math.max(1, sample().frames - 1);  // the bar and the dragged handle follow
  const bar = svg.querySelector(`[data-bar="${a.id}"]`);
  if (bar) {
    bar.setAttribute("x", (state.edge.data.start / n) * 600);
    bar.setAttribute("width", Math.max(1, ((state.edge.data.end - state.edge.data.start) / n) * 600));
  }
  const handle = svg.querySelector(`[data-id="${a.id}"][data-edge="${edge}"]`);
  if (handle) handle.setAttribute("x", (state.edge.data[edge] / n) * 600 - 3);
  state.frame = frame;
  showFrame();
}

async function endEdge() {
  const { a, data } = state.edge;
  state.edge = null;
  if (!data || (data.start === a.data.start && data.end === a.data.end)) return;
  const before = { data: { ...a.data } };
  if (!(await updateAnnotation(a, { data }))) {
    renderAnnotations();  // the bar goes back to where it is saved
    return;
  }
  remember({ type: "update", id: a.id, label: a.label, before, after: { data: { ...a.data } } });
  say(`Moved ${a.label} to frames ${a.data.start}–${a.data.end}.`);
  renderAnnotations();
}
