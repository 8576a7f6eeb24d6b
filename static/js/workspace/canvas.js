// The cameras: frames (with prefetch), playback, the SVG overlay in image pixels, drawing.
import { updateAnnotation, urls } from "./api.js";
import { $, SVG, W, alarm, describe, incomplete, sample, say, state } from "./core.js";
import { create, remember } from "./annotations.js";
import { currentKind, renderAnnotations, select } from "./panels.js";
import { drawCursor } from "./timeline.js";
import { between, hiddenTrack } from "./tracks.js";

// One camera fills the stage (its aspect kept); every camera of the sample is a live
// thumbnail in the strip below, a click makes it the current one.
export function buildCameras() {
  const s = sample();
  if (!s.cameras.includes(state.camera)) state.camera = s.cameras[0];
  const stage = $("[data-stage]");
  stage.querySelectorAll(".frame-box").forEach((el) => el.remove());
  const frameBox = document.createElement("div");
  frameBox.className = "frame-box";
  const img = document.createElement("img");
  img.draggable = false;
  const svg = document.createElementNS(SVG, "svg");
  svg.classList.add("overlay");
  frameBox.append(img, svg);
  stage.prepend(frameBox);
  img.addEventListener("load", () => {
    const { naturalWidth: w, naturalHeight: h } = img;
    if (svg.viewBox.baseVal.width !== w || svg.viewBox.baseVal.height !== h) {
      svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
      frameBox.style.width = `${w}px`;
      frameBox.style.height = `${h}px`;
      fit();
    }
    drawOverlay();
  });
  svg.addEventListener("mousedown", startDrag);
  svg.addEventListener("mousemove", moveDrag);
  svg.addEventListener("click", clickShape);
  const strip = $("[data-cameras]");
  strip.innerHTML = "";
  for (const camera of s.cameras) {
    const thumb = document.createElement("button");
    thumb.type = "button";
    thumb.className = "thumb";
    thumb.dataset.camera = camera;
    thumb.setAttribute("aria-label", `Show ${camera}`);
    const small = document.createElement("img");
    small.alt = "";
    small.dataset.camera = camera;
    const name = document.createElement("span");
    name.textContent = camera;
    thumb.append(small, name);
    thumb.addEventListener("click", () => showCamera(camera));
    strip.append(thumb);
  }
  labelCamera();
  $("[data-scrubber]").max = Math.max(0, s.frames - 1);
}

function labelCamera() {
  const camera = state.camera;
  const img = $("[data-stage] .frame-box img"), svg = $("[data-stage] svg.overlay");
  img.alt = `${camera} frame`;
  img.dataset.camera = camera;
  svg.dataset.camera = camera;
  svg.setAttribute("aria-label", `Drawing area on ${camera}`);
  document.querySelectorAll("[data-cameras] .thumb").forEach((t) => {
    t.setAttribute("aria-pressed", t.dataset.camera === camera ? "true" : "false");
  });
}

export function showCamera(camera) {
  if (camera === state.camera) return;
  state.camera = camera;
  state.polygon = [];
  state.view.fitted = true;
  labelCamera();
  showFrame();
}

// --- the view: the frame box is the image at its own size, scaled and moved by a transform,
// so the overlay's coordinates are always image pixels whatever the zoom.
export function fit() {
  const stage = $("[data-stage]"), svg = $("[data-stage] svg.overlay");
  if (!stage || !svg || !svg.viewBox.baseVal.width) return;
  const { width: w, height: h } = svg.viewBox.baseVal;
  const scale = Math.min(stage.clientWidth / w, stage.clientHeight / h);
  state.view = { scale, x: (stage.clientWidth - w * scale) / 2, y: (stage.clientHeight - h * scale) / 2, fitted: true };
  applyView();
}

const MIN_ZOOM = 0.1, MAX_ZOOM = 64;

// Zoom by ``factor`` keeping the image point under (cx, cy) — stage pixels — where it is.
export function zoomAt(factor, cx, cy) {
  const v = state.view;
  const scale = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, v.scale * factor));
  const px = (cx - v.x) / v.scale, py = (cy - v.y) / v.scale;
  state.view = { scale, x: cx - px * scale, y: cy - py * scale, fitted: false };
  applyView();
}

// The zoom bar and its keys: fit, 100 % (an image pixel per screen pixel), in, out.
export function zoom(kind) {
  const stage = $("[data-stage]");
  const cx = stage.clientWidth / 2, cy = stage.clientHeight / 2;
  if (kind === "fit") fit();
  else if (kind === "actual") zoomAt(1 / state.view.scale, cx, cy);
  else zoomAt(kind === "in" ? 1.25 : 0.8, cx, cy);
}

function applyView() {
  const box = $("[data-stage] .frame-box");
  if (!box) return;
  const { scale, x, y } = state.view;
  box.style.transform = `translate(${x}px, ${y}px) scale(${scale})`;
  $("[data-stage]").style.setProperty("--zoom", scale);
  const label = $("[data-zoom-level]");
  if (label) label.textContent = `${Math.round(scale * 100)} %`;
  if (state.selected) drawOverlay();  // the handles keep their size on screen
}

export function showFrame() {
  const s = sample();
  document.querySelectorAll("[data-stage] .frame-box img, [data-cameras] img").forEach((img) => {
    img.src = urls.frame(s.id, img.dataset.camera, state.frame);
  });
  for (let k = 1; k <= PREFETCH; k++) {  // the next frames, fetched and decoded ahead
    const f = state.frame + k;
    if (f < s.frames) s.cameras.forEach((c) => prefetch(urls.frame(s.id, c, f)));
  }
  $("[data-scrubber]").value = state.frame;
  $("[data-counter]").textContent = `${state.frame} / ${s.frames - 1}`;
  drawCursor();
  drawOverlay();
}

// Prefetched images are kept (a bounded, oldest-out map) so the browser neither cancels
// nor forgets them before the viewer asks for the frame.
const PREFETCH = 8;
const fetched = new Map();
function prefetch(url) {
  if (fetched.has(url)) return;
  const img = new Image();
  img.decoding = "async";
  img.src = url;
  fetched.set(url, img);
  if (fetched.size > 256) fetched.delete(fetched.keys().next().value);
}

export function step(delta) {
  state.frame = Math.min(Math.max(0, state.frame + delta), sample().frames - 1);
  showFrame();
}

export function play() {
  if (state.timer) return stop();
  $("[data-play]").textContent = "❚❚ Pause";
  state.timer = setInterval(() => {
    if (state.frame >= sample().frames - 1) return stop();
    step(1);
  }, 1000 / Math.min(sample().fps, 25));
}

export function stop() {
  clearInterval(state.timer);
  state.timer = null;
  $("[data-play]").textContent = "▶ Play";
}

// --- the overlay: shapes in image pixels (the SVG's viewBox is the image's size) ----------
export function drawOverlay() {
  [...document.querySelectorAll("[data-stage] svg.overlay")].forEach((svg) => {
    svg.querySelectorAll("rect.saved, rect.handle").forEach((r) => r.remove());
    const camera = svg.dataset.camera;
    for (const a of [...state.annotations.filter((x) => !hiddenTrack(x)), ...between()]) {  // tracks.js
      if (a.kind !== "box" || !W.stages.includes(a.stage) || a.sample !== sample().id || a.data.frame !== state.frame) continue;
      if ((a.data.camera || sample().cameras[0]) !== camera) continue;  // no camera: the first
      const d = state.edit && state.edit.a === a ? state.edit.data : a.data;
      const r = rect(d.x, d.y, d.w, d.h, "saved" + (a.invalid ? " invalid" : "") + (a.source === "prelabel" ? " prelabel" : "") + (incomplete(a) ? " incomplete" : "") + (a.interpolated ? " interpolated" : ""));
      r.dataset.id = a.id;
      if (state.selected === a.id) r.classList.add("selected");
      svg.append(r);
      if (state.selected === a.id && editable(a)) {
        const size = 9 / state.view.scale;  // handles keep their size on screen
        for (const [name, hx, hy] of HANDLES) {
          const h = rect(d.x + hx * d.w - size / 2, d.y + hy * d.h - size / 2, size, size, "handle");
          h.dataset.handle = name;
          h.dataset.id = a.id;
          svg.append(h);
        }
      }
    }
  });
}

const HANDLES = [["nw", 0, 0], ["n", 0.5, 0], ["ne", 1, 0], ["e", 1, 0.5], ["se", 1, 1], ["s", 0.5, 1], ["sw", 0, 1], ["w", 0, 0.5]];
const editable = (a) => W.editable && a.stage === W.stage && !a.invalid && !state.lockedTracks.has(a.track);

function rect(x, y, w, h, kind) {
  const r = document.createElementNS(SVG, "rect");
  r.setAttribute("x", x); r.setAttribute("y", y); r.setAttribute("width", w); r.setAttribute("height", h);
  r.setAttribute("class", kind);
  return r;
}

// A pointer position in the image's pixels, whatever size the image is drawn at.
export function pointIn(svg, event) {
  const box = svg.getBoundingClientRect();
  const view = svg.viewBox.baseVal;
  return { x: ((event.clientX - box.left) / box.width) * view.width, y: ((event.clientY - box.top) / box.height) * view.height };
}

const tenth = (v) => Math.round(v * 10) / 10;

async function clickShape(event) {
  if (!W.editable || state.suppressClick) return;
  const p = pointIn(event.currentTarget, event);
  const camera = event.currentTarget.dataset.camera;
  if (currentKind() === "keypoint") {
    await create({ frame: state.frame, camera, x: tenth(p.x), y: tenth(p.y) });
  } else if (currentKind() === "polygon") {
    if (state.polygonCamera && state.polygonCamera !== camera) state.polygon = [];
    state.polygonCamera = camera;
    state.polygon.push([tenth(p.x), tenth(p.y)]);
    say(`Polygon: ${state.polygon.length} point(s); press Enter to close it.`);
  }
}

export async function closePolygon() {
  if (state.polygon.length < 3) return alarm("A polygon needs at least three points.");
  const points = state.polygon;
  state.polygon = [];
  await create({ frame: state.frame, camera: state.polygonCamera, points });
}

function startDrag(event) {
  if (event.button !== 0) return;
  const target = event.target.closest("rect.saved, rect.handle");
  const a = target && state.annotations.find((x) => x.id === Number(target.dataset.id));
  if (a) {  // a saved box: select it; drag it (or one of its handles) to move or resize
    state.suppressClick = true;
    setTimeout(() => { state.suppressClick = false; }, 0);
    if (state.selected !== a.id) select(a.id);
    if (!editable(a)) return;
    event.preventDefault();
    const mode = target.dataset.handle || "move";
    state.edit = { a, mode, svg: event.currentTarget, start: pointIn(event.currentTarget, event), data: { ...a.data } };
    return;
  }
  if (state.selected) select(null);  // a press on the image itself lets go of the selection
  if (!W.editable || currentKind() !== "box") return;
  state.drag = { start: pointIn(event.currentTarget, event), shape: rect(0, 0, 0, 0, "drawing"), svg: event.currentTarget };
  event.currentTarget.append(state.drag.shape);
}

// --- editing a box: move it, resize it by a handle, nudge it with the arrow keys ------------
const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);

function editTo(event) {
  const { a, mode, svg, start } = state.edit;
  const view = svg.viewBox.baseVal;
  const p = pointIn(svg, event);
  const dx = p.x - start.x, dy = p.y - start.y;
  const o = a.data;
  let x1 = o.x, y1 = o.y, x2 = o.x + o.w, y2 = o.y + o.h;
  if (mode === "move") {
    const mx = clamp(dx, -o.x, view.width - x2), my = clamp(dy, -o.y, view.height - y2);
    x1 += mx; x2 += mx; y1 += my; y2 += my;
  } else {
    if (mode.includes("w")) x1 = clamp(o.x + dx, 0, view.width);
    if (mode.includes("e")) x2 = clamp(x2 + dx, 0, view.width);
    if (mode.includes("n")) y1 = clamp(o.y + dy, 0, view.height);
    if (mode.includes("s")) y2 = clamp(y2 + dy, 0, view.height);
  }
  state.edit.data = { ...o, x: tenth(Math.min(x1, x2)), y: tenth(Math.min(y1, y2)), w: tenth(Math.abs(x2 - x1)), h: tenth(Math.abs(y2 - y1)) };
  drawOverlay();
}

async function endEdit() {
  const { a, data, mode } = state.edit;
  state.edit = null;
  const same = ["x", "y", "w", "h"].every((k) => data[k] === a.data[k]);
  if (same || data.w < 1 || data.h < 1) return drawOverlay();
  await saveShape(a, data, mode === "move" ? "Moved" : "Resized");
}

// Saved with the version it was loaded at; undo puts the old geometry back the same way.
async function saveShape(a, data, verb) {
  const before = { data: { ...a.data } };
  const saved = await updateAnnotation(a, { data });
  if (saved) {
    remember({ type: "update", id: a.id, label: a.label, before, after: { data: { ...a.data } } });
    say(`${verb} ${a.label}: ${describe(a)}.`);
  }
  renderAnnotations();
  drawOverlay();
}

// Arrow keys move the selected box by an image pixel (ten with Shift); a run of presses is
// one save and one undo step.
let nudging = null;
export function nudge(dx, dy) {
  const a = state.annotations.find((x) => x.id === state.selected);
  const svg = $("[data-stage] svg.overlay");
  if (!a || a.kind !== "box" || !editable(a) || a.data.frame !== state.frame || !svg) return false;
  if ((a.data.camera || sample().cameras[0]) !== state.camera) return false;
  const view = svg.viewBox.baseVal;
  if (!nudging) nudging = { a, data: { ...a.data } };
  const d = nudging.data;
  d.x = tenth(clamp(d.x + dx, 0, view.width - d.w));
  d.y = tenth(clamp(d.y + dy, 0, view.height - d.h));
  state.edit = { a, data: d };
  drawOverlay();
  clearTimeout(nudging.timer);
  nudging.timer = setTimeout(async () => {
    const { data } = nudging;
    nudging = null;
    state.edit = null;
    await saveShape(a, data, "Moved");
  }, 400);
  return true;
}

function moveDrag(event) {
  if (state.edit && state.edit.svg) return editTo(event);
  if (!state.drag) return;
  const p = pointIn(state.drag.svg, event), s = state.drag.start;
  const r = state.drag.shape;
  r.setAttribute("x", Math.min(s.x, p.x)); r.setAttribute("y", Math.min(s.y, p.y));
  r.setAttribute("width", Math.abs(p.x - s.x)); r.setAttribute("height", Math.abs(p.y - s.y));
}

export async function endDrag(event) {
  if (state.edit) return state.edit.svg ? endEdit() : undefined;
  if (!state.drag) return;
  const { svg, start: s, shape } = state.drag;
  shape.remove();
  state.drag = null;
  const view = svg.viewBox.baseVal;
  const raw = pointIn(svg, event);  // a drag may end outside the image: clamp to it
  const p = { x: Math.min(Math.max(raw.x, 0), view.width), y: Math.min(Math.max(raw.y, 0), view.height) };
  const w = Math.abs(p.x - s.x), h = Math.abs(p.y - s.y);
  if (w < 2 || h < 2) return;
  await create({ frame: state.frame, camera: svg.dataset.camera,
                 x: tenth(Math.min(s.x, p.x)), y: tenth(Math.min(s.y, p.y)), w: tenth(w), h: tenth(h) });
}

// The workspace takes the window's height below where it starts; the frame refits while
// the view is "fitted" (a zoomed view keeps its zoom when the window changes).
export function wireStage() {
  const ws = $(".workspace");
  const measure = () => {
    const top = ws.getBoundingClientRect().top + window.scrollY;
    document.documentElement.style.setProperty("--ws-top", `${Math.ceil(top + 8)}px`);
  };
  measure();
  window.addEventListener("resize", measure);
  const stage = $("[data-stage]");
  new ResizeObserver(() => { if (state.view.fitted) fit(); else applyView(); }).observe(stage);
  // The wheel (and a touchpad's pinch, which comes as a wheel with Ctrl) zooms at the cursor.
  stage.addEventListener("wheel", (event) => {
    event.preventDefault();
    const box = stage.getBoundingClientRect();
    const step = event.deltaMode === 1 ? event.deltaY * 16 : event.deltaY;
    zoomAt(Math.exp(-step * (event.ctrlKey ? 0.01 : 0.002)), event.clientX - box.left, event.clientY - box.top);
  }, { passive: false });
  // The middle button, or the left one while Space is held, pans (before any drawing sees it).
  stage.addEventListener("mousedown", (event) => {
    if (event.button !== 1 && !(event.button === 0 && state.space)) return;
    event.preventDefault();
    event.stopPropagation();
    state.pan = { x: event.clientX, y: event.clientY, vx: state.view.x, vy: state.view.y };
    state.space && (state.spacePanned = true);
    stage.classList.add("panning");
  }, true);
  document.addEventListener("mousemove", (event) => {
    if (!state.pan) return;
    state.view = { ...state.view, x: state.pan.vx + event.clientX - state.pan.x, y: state.pan.vy + event.clientY - state.pan.y, fitted: false };
    applyView();
  });
  document.addEventListener("mouseup", () => {
    if (!state.pan) return;
    state.pan = null;
    state.suppressClick = true;  // the click that ends a pan places nothing
    setTimeout(() => { state.suppressClick = false; });
    stage.classList.remove("panning");
  });
}

// Space: held, the left button pans; tapped alone, it plays or pauses.
export function spaceDown() { state.space = true; state.spacePanned = false; $("[data-stage]").classList.add("grab"); }
export function spaceUp() {
  state.space = false;
  $("[data-stage]").classList.remove("grab");
  const panned = state.spacePanned;
  state.spacePanned = false;
  return !panned;
}
