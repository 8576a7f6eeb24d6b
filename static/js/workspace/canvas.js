// The cameras: frames (with prefetch), playback, the SVG overlay in image pixels, drawing.
import { updateAnnotation, urls } from "./api.js";
import { $, SVG, W, alarm, describe, incomplete, sample, say, state } from "./core.js";
import { create, remember } from "./annotations.js";
import { currentKind, renderAnnotations, select } from "./panels.js";
import { drawCursor } from "./timeline.js";
import { between, hiddenTrack } from "./tracks.js";

// One camera fills the stage (its aspect kept), or two side by side; every camera of the
// sample is a live thumbnail in the strip below, a click makes it the current one.
state.split = localStorage.getItem("ws-split") === "1";
// The camera and the zoom chosen last in this task's stage, taken back when it is opened again.
const KEPT = `ws-view-${W.task}-${W.stage}`;
let kept = JSON.parse(localStorage.getItem(KEPT) || "null");
if (kept) state.camera = kept.camera;
const keep = () => localStorage.setItem(KEPT, JSON.stringify({ camera: state.camera, view: state.view }));
export function buildCameras() {
  const s = sample();
  if (!s.cameras.includes(state.camera)) state.camera = s.cameras[0];
  const stage = $("[data-stage]");
  stage.querySelectorAll(".frame-box").forEach((el) => el.remove());
  for (let i = state.split && s.cameras.length > 1 ? 2 : 1; i--;) stage.prepend(frameBox());
  const toggle = $("[data-split]");
  toggle.disabled = s.cameras.length < 2;
  toggle.setAttribute("aria-pressed", state.split);
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

function frameBox() {
  const box = document.createElement("div");
  box.className = "frame-box";
  const img = document.createElement("img");
  img.draggable = false;
  const svg = document.createElementNS(SVG, "svg");
  svg.classList.add("overlay");
  svg.setAttribute("tabindex", "0");  // focused, the keys draw (keyboard.js)
  box.append(img, svg);
  img.addEventListener("load", () => {
    const { naturalWidth: w, naturalHeight: h } = img;
    if (svg.viewBox.baseVal.width !== w || svg.viewBox.baseVal.height !== h) {
      svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
      box.style.width = `${w}px`;
      box.style.height = `${h}px`;
      fit();
      if (kept && !kept.view.fitted && !state.split && box === $("[data-stage] .frame-box")) { state.view = kept.view; applyView(); }
      kept = null;
    }
    drawOverlay();
  });
  svg.addEventListener("mousedown", startDrag);
  svg.addEventListener("mousemove", moveDrag);
  svg.addEventListener("click", clickShape);
  return box;
}

// The current camera in the first frame box, the next one (side by side) in the second.
function labelCamera() {
  const cameras = sample().cameras, first = cameras.indexOf(state.camera);
  const shown = [];
  document.querySelectorAll("[data-stage] .frame-box").forEach((box, i) => {
    const camera = cameras[(first + i) % cameras.length];
    shown.push(camera);
    box.firstChild.alt = `${camera} frame`;
    box.firstChild.dataset.camera = box.lastChild.dataset.camera = camera;
    box.lastChild.setAttribute("aria-label", `Drawing area on ${camera}`);
  });
  document.querySelectorAll("[data-cameras] .thumb").forEach((t) => {
    t.setAttribute("aria-pressed", shown.includes(t.dataset.camera));
  });
}

export function showCamera(camera) {
  if (camera === state.camera) return;
  state.camera = camera;
  state.polygon = [];
  state.view.fitted = true;
  labelCamera();
  showFrame();
  keep();
}

export function split() {
  state.split = !state.split;
  localStorage.setItem("ws-split", state.split ? "1" : "");
  buildCameras();
  showFrame();
}

// --- the view: the frame box is the image at its own size, scaled and moved by a transform,
// so the overlay's coordinates are always image pixels whatever the zoom.
export function fit() {
  const stage = $("[data-stage]"), boxes = document.querySelectorAll("[data-stage] .frame-box");
  const cell = stage.clientWidth / boxes.length, gap = boxes.length > 1 ? 8 : 0;
  boxes.forEach((box, i) => {
    const { width: w, height: h } = box.lastChild.viewBox.baseVal;
    if (!w) return;
    const scale = Math.min((cell - gap) / w, stage.clientHeight / h);
    const view = { scale, x: i * cell + (cell - w * scale) / 2, y: (stage.clientHeight - h * scale) / 2, fitted: true };
    if (i) place(box, view);
    else { state.view = view; applyView(); }
  });
}

const MIN_ZOOM = 0.1, MAX_ZOOM = 64;

// Zoom by ``factor`` keeping the image point under (cx, cy) — stage pixels — where it is.
export function zoomAt(factor, cx, cy) {
  if (state.split) return say("Side by side, both cameras stay fitted: turn it off to zoom.");
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

function place(box, { scale, x, y }) {
  box.style.transform = `translate(${x}px, ${y}px) scale(${scale})`;
  box.style.setProperty("--zoom", scale);  // strokes stay thin on screen (the CSS)
  box.lastChild.scale = scale;
}

function applyView() {
  const box = $("[data-stage] .frame-box");
  if (!box) return;
  place(box, state.view);
  keep();
  const label = $("[data-zoom-level]");
  if (label) label.textContent = `${Math.round(state.view.scale * 100)} %`;
  drawOverlay();  // handles, points and the cross-hair keep their size on screen
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
// nor forgets them before the viewer asks for the frame, and a frame seen before is in the
// memory cache, drawn in the next animation frame (from the disk cache it came a frame or
// more late for one switch in three): 4,096 images, two cameras × 2,000 frames, ≈ 40 MB of
// JPEG at 480×480.
const PREFETCH = 8;
const fetched = new Map();
function prefetch(url) {
  if (fetched.has(url)) return;
  const img = new Image();
  img.decoding = "async";
  img.src = url;
  fetched.set(url, img);
  if (fetched.size > 4096) fetched.delete(fetched.keys().next().value);
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
const onCamera = (a, camera) => (a.data.camera || sample().cameras[0]) === camera;  // no camera: the first
const shown = (a, camera) => ["box", "polygon", "keypoint"].includes(a.kind) && W.stages.includes(a.stage)
  && a.sample === sample().id && a.data.frame === state.frame && onCamera(a, camera);

export function drawOverlay() {
  document.querySelectorAll("[data-stage] svg.overlay").forEach((svg) => {
    svg.querySelectorAll(".saved, .handle, .pending").forEach((r) => r.remove());
    const camera = svg.dataset.camera, px = 1 / (svg.scale || state.view.scale);  // a screen pixel
    for (const a of [...state.annotations.filter((x) => !hiddenTrack(x)), ...between()]) {  // tracks.js
      if (!shown(a, camera)) continue;
      const d = state.edit && state.edit.a === a ? state.edit.data : a.data;
      const el = shape(a.kind, d, px, "saved" + (a.invalid ? " invalid" : "") + (a.source === "prelabel" ? " prelabel" : "") + (incomplete(a) ? " incomplete" : "") + (a.interpolated ? " interpolated" : "") + (state.rejected?.has(a.id) ? " rejected" : "") + (state.selected === a.id ? " selected" : ""));
      el.dataset.id = a.id;
      svg.append(el);
      if (state.selected !== a.id || !editable(a)) continue;
      for (const [name, x, y] of handles(a.kind, d)) {  // handles keep their size on screen
        const h = rect(x - 4.5 * px, y - 4.5 * px, 9 * px, 9 * px, `handle${name[0] === "+" ? " mid" : ""}${name === `v${corner(a)}` ? " active" : ""}`);
        h.dataset.handle = name;
        h.dataset.id = a.id;
        svg.append(h);
      }
    }
    // What is being drawn: a polygon's corners, the keyboard's cross-hair and box corner.
    const c = state.cursor && state.cursor.camera === camera ? state.cursor : null;
    if (state.polygon.length && state.polygonCamera === camera) svg.append(shape("line", { points: c ? [...state.polygon, [c.x, c.y]] : state.polygon }, px, "pending"));
    if (c && state.corner) svg.append(rect(Math.min(c.x, state.corner.x), Math.min(c.y, state.corner.y), Math.abs(c.x - state.corner.x), Math.abs(c.y - state.corner.y), "pending"));
    if (c) svg.append(shape("cursor", c, px, "pending cursor"));
  });
}

function shape(kind, d, px, className) {
  if (kind === "box") return rect(d.x, d.y, d.w, d.h, className);
  const el = document.createElementNS(SVG, { polygon: "polygon", line: "polyline", keypoint: "circle" }[kind] || "path");
  if (d.points) el.setAttribute("points", d.points.join(" "));
  else if (kind === "keypoint") { el.setAttribute("cx", d.x); el.setAttribute("cy", d.y); el.setAttribute("r", 5 * px); }
  else el.setAttribute("d", `M${d.x - 9 * px} ${d.y}h${18 * px}M${d.x} ${d.y - 9 * px}v${18 * px}`);
  el.setAttribute("class", className);
  return el;
}

// A box's eight handles; a polygon's corners ("v<i>") and the middles of its edges ("+<i>":
// dragged, a new corner); a keypoint is dragged by itself.
const HANDLES = [["nw", 0, 0], ["n", 0.5, 0], ["ne", 1, 0], ["e", 1, 0.5], ["se", 1, 1], ["s", 0.5, 1], ["sw", 0, 1], ["w", 0, 0.5]];
function handles(kind, d) {
  if (kind === "box") return HANDLES.map(([name, hx, hy]) => [name, d.x + hx * d.w, d.y + hy * d.h]);
  const p = d.points || [];
  return [...p.map(([x, y], i) => [`+${i}`, ...middle(p, i)]), ...p.map(([x, y], i) => [`v${i}`, x, y])];
}
const middle = (p, i) => { const [a, b] = [p[i], p[(i + 1) % p.length]]; return [tenth((a[0] + b[0]) / 2), tenth((a[1] + b[1]) / 2)]; };
// A reviewer whose review allows fixes edits the reviewed stages' shapes (W.fixes, api.js).
const editable = (a) => ((W.editable && a.stage === W.stage) || (W.fixes || []).includes(a.stage)) && !a.invalid && !state.lockedTracks.has(a.track);
// The polygon corner the keys work on ([ ] choose it), if ``a`` is its polygon.
export const corner = (a) => (state.vertex && state.vertex.id === a.id ? state.vertex.i : null);

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

export const tenth = (v) => Math.round(v * 10) / 10;

async function clickShape(event) {
  if (!W.editable || state.suppressClick) return;
  const p = pointIn(event.currentTarget, event);
  const camera = event.currentTarget.dataset.camera;
  if (currentKind() === "keypoint") await create({ frame: state.frame, camera, x: tenth(p.x), y: tenth(p.y) });
  else if (currentKind() === "polygon") addCorner(camera, tenth(p.x), tenth(p.y));
}

export function addCorner(camera, x, y) {
  if (state.polygonCamera !== camera) state.polygon = [];
  state.polygonCamera = camera;
  state.polygon.push([x, y]);
  say(`Polygon: ${state.polygon.length} point(s); press Enter to close it.`);
  drawOverlay();
}

export async function closePolygon() {
  if (state.polygon.length < 3) return alarm("A polygon needs at least three points.");
  const points = state.polygon;
  state.polygon = [];
  await create({ frame: state.frame, camera: state.polygonCamera, points });
}

function startDrag(event) {
  event.preventDefault();  // focused for the keys, but never scrolled into view (the view moves it)
  event.currentTarget.focus({ preventScroll: true });
  if (event.button !== 0) return;
  state.cursor = null;  // the mouse takes over from the keyboard's cross-hair
  const target = event.target.closest(".saved, .handle");
  const a = target && state.annotations.find((x) => x.id === Number(target.dataset.id));
  if (a) {  // a saved shape: select it; drag it (or one of its handles) to move or reshape it
    state.suppressClick = true;
    setTimeout(() => { state.suppressClick = false; }, 0);
    if (state.selected !== a.id) { state.vertex = null; select(a.id); }
    if (!editable(a)) return;
    event.preventDefault();
    let mode = target.dataset.handle || "move", data = a.data;
    if (mode[0] === "+") {  // the middle of an edge: a new corner there, dragged from now on
      const i = Number(mode.slice(1)) + 1;
      data = { ...data, points: data.points.toSpliced(i, 0, middle(data.points, i - 1)) };
      mode = `v${i}`;
    }
    if (mode[0] === "v") {
      state.vertex = { id: a.id, i: Number(mode.slice(1)) };
      if (event.altKey) return deleteCorner(a);  // Alt+click deletes a corner
    }
    state.edit = { a, mode, svg: event.currentTarget, start: pointIn(event.currentTarget, event), base: data, data };
    return;
  }
  if (state.selected) select(null);  // a press on the image itself lets go of the selection
  if (!W.editable || currentKind() !== "box") return;
  state.drag = { start: pointIn(event.currentTarget, event), shape: rect(0, 0, 0, 0, "drawing"), svg: event.currentTarget };
  event.currentTarget.append(state.drag.shape);
}

// --- editing a shape: move it, reshape it by a handle or corner, nudge it with the keys ------
const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);

// The geometry ``o`` becomes when ``mode`` ("move", a box handle "nw"…, a polygon corner
// "v<i>") goes dx, dy image pixels, inside the image (``view``).
function edited(kind, o, mode, dx, dy, view) {
  const at = (x, y) => [tenth(clamp(x + dx, 0, view.width)), tenth(clamp(y + dy, 0, view.height))];
  if (kind === "keypoint") { const [x, y] = at(o.x, o.y); return { ...o, x, y }; }
  if (kind === "polygon") {
    if (mode[0] === "v") return { ...o, points: o.points.map((p, i) => (`v${i}` === mode ? at(...p) : p)) };
    const xs = o.points.map((p) => p[0]), ys = o.points.map((p) => p[1]);
    const mx = clamp(dx, -Math.min(...xs), view.width - Math.max(...xs)), my = clamp(dy, -Math.min(...ys), view.height - Math.max(...ys));
    return { ...o, points: o.points.map(([x, y]) => [tenth(x + mx), tenth(y + my)]) };
  }
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
  return { ...o, x: tenth(Math.min(x1, x2)), y: tenth(Math.min(y1, y2)), w: tenth(Math.abs(x2 - x1)), h: tenth(Math.abs(y2 - y1)) };
}

function editTo(event) {
  const { a, mode, svg, start, base } = state.edit;
  const p = pointIn(svg, event);
  state.edit.data = edited(a.kind, base, mode, p.x - start.x, p.y - start.y, svg.viewBox.baseVal);
  drawOverlay();
}

const verb = (a, mode, added) => (added ? "Added a corner to" : mode[0] === "v" ? "Moved a corner of" : mode === "move" ? "Moved" : "Resized");

async function endEdit() {
  const { a, data, mode, base } = state.edit;
  state.edit = null;
  if (JSON.stringify(data) === JSON.stringify(a.data) || data.w < 1 || data.h < 1) return drawOverlay();
  await saveShape(a, data, verb(a, mode, base !== a.data));
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

// The selected polygon's chosen corner: deleted (Alt+click, Delete), or a new one after it,
// in the middle of the next edge (Insert). A polygon keeps three corners at least.
export async function deleteCorner(a) {
  const i = corner(a);
  const points = a.data.points;
  if (points.length < 4) return alarm("A polygon keeps at least three corners.");
  state.vertex = { id: a.id, i: i % (points.length - 1) };  // Delete again: the next one
  await saveShape(a, { ...a.data, points: points.toSpliced(i, 1) }, "Deleted a corner of");
}
export async function insertCorner(a) {
  const i = corner(a) + 1, points = a.data.points;
  state.vertex = { id: a.id, i };
  await saveShape(a, { ...a.data, points: points.toSpliced(i, 0, middle(points, i - 1)) }, "Added a corner to");
}

// Arrow keys move the selected shape (or its chosen corner) by an image pixel (ten with
// Shift); a run of presses is one save and one undo step.
let nudging = null;
export function nudge(dx, dy) {
  const a = state.annotations.find((x) => x.id === state.selected);
  const svg = a && [...document.querySelectorAll("[data-stage] svg.overlay")].find((s) => shown(a, s.dataset.camera));
  if (!svg || !editable(a)) return false;
  const mode = corner(a) === null ? "move" : `v${corner(a)}`;
  if (!nudging) nudging = { a, data: a.data };
  nudging.data = edited(a.kind, nudging.data, mode, dx, dy, svg.viewBox.baseVal);
  state.edit = { a, data: nudging.data };
  drawOverlay();
  clearTimeout(nudging.timer);
  nudging.timer = setTimeout(async () => {
    const { data } = nudging;
    nudging = null;
    state.edit = null;
    await saveShape(a, data, verb(a, mode));
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
  const p = { x: clamp(raw.x, 0, view.width), y: clamp(raw.y, 0, view.height) };
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
  stage.addEventListener("scroll", () => { stage.scrollTop = stage.scrollLeft = 0; });  // Tab to a zoomed image
  // The wheel (and a touchpad's pinch, which comes as a wheel with Ctrl) zooms at the cursor.
  stage.addEventListener("wheel", (event) => {
    event.preventDefault();
    const box = stage.getBoundingClientRect();
    const step = event.deltaMode === 1 ? event.deltaY * 16 : event.deltaY;
    zoomAt(Math.exp(-step * (event.ctrlKey ? 0.01 : 0.002)), event.clientX - box.left, event.clientY - box.top);
  }, { passive: false });
  // The middle button, or the left one while Space is held, pans (before any drawing sees it).
  stage.addEventListener("mousedown", (event) => {
    if (state.split || (event.button !== 1 && !(event.button === 0 && state.space))) return;
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
