// The annotator workspace: frames, series, drawing and the annotation list of one stage run.
// Native ES modules over the JSON API (session auth + CSRF); every change is saved at once.
//   core.js — page data, state, messages    api.js — URLs, requests, 409 conflicts
//   canvas.js — cameras, overlay, drawing   timeline.js — segments timeline, series plot
//   panels.js — samples, list, comments, tools   annotations.js — edits, undo/redo, submit
import { call } from "./api.js";
import { $, W, alarm, describe, problem, sample, say, state } from "./core.js";
import { create, createMany, loadAnnotations, redo, removeAnnotation, review, saveEdit, submit, undo } from "./annotations.js";
import { closePolygon, drawOverlay, endDrag, nudge, play, showFrame, spaceDown, spaceUp, split, step, wireStage, zoom } from "./canvas.js";
import { keys } from "./keyboard.js";
import {
  addComment, attributes, currentClass, goTo, loadComments, markSampleInvalid, renderAnnotations,
  renderComments, renderSamples, renderTools, segmentRange, select, selectSample, syncSamples,
} from "./panels.js";
import { wireTimeline } from "./timeline.js";

document.addEventListener("click", (event) => {
  const t = event.target.closest("button") || event.target;  // a click may land on a span inside
  if (t.matches("[data-step]")) step(Number(t.dataset.step));
  else if (t.matches("[data-play]")) play();
  else if (t.matches("[data-zoom]")) zoom(t.dataset.zoom);
  else if (t.matches("[data-split]")) split();
  else if (t.matches("[data-help]")) $("#ws-help").showModal();
  else if (t.matches("[data-close-help]")) $("#ws-help").close();
  else if (t.matches("[data-submit]")) submit();
  else if (t.matches("[data-undo]")) undo();
  else if (t.matches("[data-save-edit]")) saveEdit();
  else if (t.matches("[data-redo]")) redo();
  else if (t.matches("[data-approve]")) review("approve");
  else if (t.matches("[data-invalid-sample]")) markSampleInvalid();
  else if (t.matches("[data-sync]")) syncSamples();
  else if (t.matches("[data-add-comment]")) addComment();
  else if (t.matches("[data-reject]")) review("reject");
  else if (t.matches("[data-mark]")) $(t.dataset.mark === "start" ? "[data-seg-start]" : "[data-seg-end]").value = state.frame;
  else if (t.matches("[data-add-segment]")) {
    const range = segmentRange();
    if (range) create(range);
  } else if (t.matches("[data-add-classification]")) create({ value: $("[data-choice]").value });
  else if (t.matches("[data-add-classification-task]")) {
    const data = { value: $("[data-choice]").value };
    create(data, { body: { stage: W.stage, label: currentClass(), sample: null, data, attributes: attributes() } });
  }
  else if (t.matches("[data-batch-apply='classification']")) createMany({ value: $("[data-choice]").value });
  else if (t.matches("[data-batch-apply='segment']")) {
    const range = segmentRange();
    if (range) createMany(range);
  }
});
$("[data-scrubber]").addEventListener("input", (event) => { state.frame = Number(event.target.value); showFrame(); });
const classSelect = $("[data-class]");
if (classSelect) classSelect.addEventListener("change", renderTools);
document.addEventListener("mouseup", (event) => { if (state.drag || state.edit) endDrag(event); });
wireTimeline();
wireStage();

// The side panels fold away, giving the viewer their room; the choice is kept for next time.
const folded = new Set(JSON.parse(localStorage.getItem("ws-folded") || "[]"));
document.querySelectorAll("[data-fold]").forEach((b) => {
  const key = b.dataset.fold, show = () => {
    b.parentElement.classList.toggle("folded", folded.has(key));
    b.setAttribute("aria-expanded", !folded.has(key));
  };
  show();
  b.addEventListener("click", () => {
    folded.has(key) ? folded.delete(key) : folded.add(key);
    localStorage.setItem("ws-folded", JSON.stringify([...folded]));
    show();
  });
});

document.addEventListener("keydown", (event) => {
  // Ctrl+Enter submits from anywhere, a text field included (after typing a description).
  if ((event.ctrlKey || event.metaKey) && event.key === "Enter" && W.editable && !W.audit) {
    if (document.querySelector("dialog[open]")) return;
    event.preventDefault();
    submit();
    return;
  }
  if (event.target.matches("input, select, textarea")) return;
  if (document.querySelector("dialog[open]")) return;  // the help dialog has the keys
  if ((event.key === " " || event.key === "Enter") && event.target.closest("button, a, summary")) return;
  if (keys(event)) { event.preventDefault(); return; }  // drawing and corners by keyboard
  const mod = event.ctrlKey || event.metaKey;
  if (mod && event.key.toLowerCase() === "z" && W.editable) { (event.shiftKey ? redo : undo)(); event.preventDefault(); return; }
  if (mod && event.key.toLowerCase() === "y" && W.editable) { redo(); event.preventDefault(); return; }
  if (mod || event.altKey) return;
  const select = $("[data-class]");
  if (select && /^[1-9]$/.test(event.key) && Number(event.key) <= select.options.length) {
    select.selectedIndex = Number(event.key) - 1;
    renderTools();
    say(`Class: ${select.value}.`);
    return;
  }
  if ((event.key === "Delete" || event.key === "Backspace") && (W.editable || (W.fixes || []).length) && state.selected) {
    const chosen = state.annotations.find((a) => a.id === state.selected && W.stages.includes(a.stage) && (a.sample === sample().id || a.sample === null));
    if (chosen) { state.selected = null; removeAnnotation(chosen); }
    event.preventDefault();
    return;
  }
  const arrows = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  if (arrows[event.key] && state.selected) {  // a selected box moves; otherwise ← → step frames
    const [dx, dy] = arrows[event.key].map((v) => v * (event.shiftKey ? 10 : 1));
    if (nudge(dx, dy)) { event.preventDefault(); return; }
  }
  if (event.key === "Escape" && state.selected) { select(null); return; }
  if (event.key === "ArrowRight") { step(1); event.preventDefault(); }
  else if (event.key === "ArrowLeft") { step(-1); event.preventDefault(); }
  else if (event.key === " ") { if (!event.repeat) spaceDown(); event.preventDefault(); }
  else if (event.key === "f" || event.key === "F") zoom("fit");
  else if (event.key === "0") zoom("actual");
  else if (event.key === "+" || event.key === "=") zoom("in");
  else if (event.key === "-" || event.key === "_") zoom("out");
  else if (event.key === "PageDown") selectSample(state.sample + 1);
  else if (event.key === "PageUp") selectSample(state.sample - 1);
  else if (event.key === "?") $("#ws-help").showModal();
  else if (event.key === "Enter" && state.polygon.length) closePolygon();
});

document.addEventListener("keyup", (event) => {
  if (event.key !== " " || !state.space) return;
  if (spaceUp()) play();  // Space alone plays; Space with a drag was a pan
});
window.addEventListener("blur", () => { if (state.space) spaceUp(); });  // released elsewhere

if (W.audit) {  // the audit panel (audit-panel.js) works on the same state
  window.stagecraftWorkspace = {
    W, state, call, say, alarm, problem, sample, goTo, describe,
    refresh() {
      renderTools();
      if (!W.samples.length) return;  // nothing to draw on
      renderSamples(); renderAnnotations(); renderComments(); drawOverlay();
    },
  };
}
if (!W.samples.length) {
  say("This task has no samples: add a dataset to it first.");
} else {
  renderTools();
  // Open on the first sample the stage annotates (a `sampling` stage skips the others).
  selectSample(Math.max(0, W.samples.findIndex((s) => s.in_stage)));
  loadAnnotations().then(loadComments);
}
