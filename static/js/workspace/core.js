// What every part of the workspace shares: the page's data, the one state object, messages.
export const W = JSON.parse(document.getElementById("workspace-data").textContent);
export const $ = (selector) => document.querySelector(selector);
export const SVG = "http://www.w3.org/2000/svg";

export const state = {
  sample: 0, frame: 0, timer: null, annotations: [], comments: [], series: null, drag: null,
  batch: new Set(), polygon: [], undo: [], redo: [], selected: null, pinAnnotation: null, problems: {},
  camera: null, view: { scale: 1, x: 0, y: 0, fitted: true },
};

export const sample = () => W.samples[state.sample];

// The annotations of this stage (or of the stages a review covers) on the current sample,
// task-level ones included.
export const onSample = (a) => W.stages.includes(a.stage) && (a.sample === sample().id || a.sample === null);

export function say(text) {
  const m = $("#ws-messages");
  m.textContent = text; $("#ws-alert").textContent = "";
  m.getAnimations().forEach((a) => { a.currentTime = 0; a.play(); });  // shown again, then fades (CSS)
}
export function alarm(text) { $("#ws-alert").textContent = text; if (text) $("#ws-messages").textContent = ""; }
export function problem(data) {
  if (!data) return "Something went wrong.";
  if (data.detail) return data.detail;
  return Object.entries(data).map(([k, v]) => `${k}: ${[].concat(v).map((x) => typeof x === "object" ? JSON.stringify(x) : x).join(" ")}`).join("; ");
}

// A button that does one thing; ``label`` names it for screen readers when the text is
// ambiguous ("Delete" next to every annotation).
export function button(text, onClick, { label = "", className = "link" } = {}) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = className;
  b.textContent = text;
  if (label) b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

export function describe(a) {
  const d = a.data;
  if (a.kind === "segment") return `frames ${d.start}–${d.end}`;
  if (a.kind === "box") return `frame ${d.frame}, ${Math.round(d.x)},${Math.round(d.y)} ${Math.round(d.w)}×${Math.round(d.h)}`;
  if (a.kind === "classification") return d.value;
  if (a.kind === "keypoint") return `frame ${d.frame}, point ${Math.round(d.x)},${Math.round(d.y)}`;
  if (a.kind === "polygon") return `frame ${d.frame}, ${d.points.length} points`;
  return JSON.stringify(d);
}

// The required attributes an annotation (or a form's values) still lacks, by name. A shape
// may be drawn first and described after: until then it is saved but incomplete.
export function missingRequired(label, values) {
  const cls = W.classes[label];
  const missing = (cls ? cls.attributes : []).filter((a) => a.required && (values[a.key] === undefined || values[a.key] === null || values[a.key] === ""));
  return missing.map((a) => a.name || a.key);
}
export const incomplete = (a) => W.stages.includes(a.stage) && missingRequired(a.label, a.attributes || {}).length > 0;
