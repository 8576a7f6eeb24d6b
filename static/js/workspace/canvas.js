// The cameras: frames (with prefetch), playback, the SVG overlay in image pixels, drawing.
import { urls } from "./api.js";
import { $, SVG, W, sample, say, alarm, state } from "./core.js";
import { create } from "./annotations.js";
import { currentKind } from "./panels.js";
import { drawCursor } from "./timeline.js";

export function buildCameras() {
  const box = $("[data-cameras]");
  box.innerHTML = "";
  sample().cameras.forEach((camera, i) => {
    const figure = document.createElement("figure");
    figure.className = "camera";
    const frameBox = document.createElement("div");
    frameBox.className = "frame-box" + (i === 0 ? " main" : "");
    const img = document.createElement("img");
    img.alt = `${camera} frame`;
    img.dataset.camera = camera;
    const svg = document.createElementNS(SVG, "svg");
    svg.classList.add("overlay");
    svg.setAttribute("aria-label", `Drawing area on ${camera}`);
    svg.dataset.camera = camera;
    frameBox.append(img, svg);
    figure.append(frameBox);
    img.addEventListener("load", () => {
      svg.setAttribute("viewBox", `0 0 ${img.naturalWidth} ${img.naturalHeight}`);
      drawOverlay();
    });
    svg.addEventListener("mousedown", startDrag);
    svg.addEventListener("mousemove", moveDrag);
    svg.addEventListener("click", clickShape);
    const caption = document.createElement("figcaption");
    caption.textContent = camera;
    figure.append(caption);
    box.append(figure);
  });
  $("[data-scrubber]").max = Math.max(0, sample().frames - 1);
}

export function showFrame() {
  const s = sample();
  document.querySelectorAll("[data-cameras] img").forEach((img) => {
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
  const overlays = [...document.querySelectorAll("[data-cameras] svg.overlay")];
  overlays.forEach((svg, i) => {
    svg.querySelectorAll("rect.saved").forEach((r) => r.remove());
    const camera = svg.dataset.camera;
    for (const a of state.annotations) {
      if (a.kind !== "box" || !W.stages.includes(a.stage) || a.sample !== sample().id || a.data.frame !== state.frame) continue;
      if (a.data.camera ? a.data.camera !== camera : i !== 0) continue;  // no camera: the first
      const r = rect(a.data.x, a.data.y, a.data.w, a.data.h, "saved" + (a.invalid ? " invalid" : ""));
      if (state.selected === a.id) r.classList.add("selected");
      svg.append(r);
    }
  });
}

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
  if (!W.editable) return;
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
  if (!W.editable || currentKind() !== "box") return;
  state.drag = { start: pointIn(event.currentTarget, event), shape: rect(0, 0, 0, 0, "drawing"), svg: event.currentTarget };
  event.currentTarget.append(state.drag.shape);
}

function moveDrag(event) {
  if (!state.drag) return;
  const p = pointIn(state.drag.svg, event), s = state.drag.start;
  const r = state.drag.shape;
  r.setAttribute("x", Math.min(s.x, p.x)); r.setAttribute("y", Math.min(s.y, p.y));
  r.setAttribute("width", Math.abs(p.x - s.x)); r.setAttribute("height", Math.abs(p.y - s.y));
}

export async function endDrag(event) {
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

