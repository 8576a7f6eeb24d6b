// Annotation edits and their history: create (one or a batch), change, delete, undo/redo,
// review and submit. Every write goes through the API client (api.js), version-checked.
import { call, createAnnotation, deleteAnnotation, loadAnnotationList, updateAnnotation, urls } from "./api.js";
import { $, W, alarm, incomplete, missingRequired, problem, sample, say, state } from "./core.js";
import { drawOverlay } from "./canvas.js";
import { attributes, commentPin, currentClass, goTo, renderAnnotations, renderSamples, renderTools } from "./panels.js";

export async function loadAnnotations() {
  await loadAnnotationList();
  renderSamples();
  renderAnnotations();
  drawOverlay();
}

function redraw() {
  renderSamples();
  renderAnnotations();
  drawOverlay();
}

// Draw first, describe after: a shape drawn before its required attributes are chosen is
// saved as it is, marked incomplete, selected, and its attributes open to be set; submit
// refuses the stage until they are (and goes to it).
export async function create(data, options = {}) {
  const body = options.body || { stage: W.stage, label: currentClass(), sample: sample().id, data, attributes: attributes() };
  const answer = await createAnnotation(body);
  if (!answer) return null;
  labelled(answer.sample);
  if (!options.replaying) remember({ type: "create", annotation: answer });
  const missing = options.replaying ? [] : missingRequired(answer.label, answer.attributes || {});
  if (missing.length) {
    state.selected = answer.id;
    startEdit(answer);
    say(`Saved ${answer.label}, incomplete: set ${missing.join(", ")} (required), then Save.`);
  } else {
    say(`Saved ${answer.label}.`);
  }
  redraw();
  return answer;
}

export async function createMany(data) {
  // Batch annotation: the same label on every selected sample (repeats of one demonstration).
  const ids = [...state.batch];
  const missing = missingRequired(currentClass(), attributes());
  if (missing.length) return alarm(`Fill in ${missing.join(", ")} first (required).`);
  if (data.end !== undefined) {
    const short = W.samples.filter((s) => state.batch.has(s.id) && data.end > s.frames - 1);
    if (short.length) return alarm(`${short.map((s) => `${s.name} ends at frame ${s.frames - 1}`).join("; ")}: shorten the segment or leave those samples out.`);
  }
  if (!W.audit) return applyMany(ids, data);  // an audit's fixes go one by one (each recorded)
  let saved = 0, failure = "";
  const made = [];
  for (const id of ids) {
    const body = { stage: W.stage, label: currentClass(), sample: id, data, attributes: attributes() };
    const { ok, data: answer } = await call("POST", urls.annotations, body);
    if (!ok) { failure = `Not saved for sample ${id}: ${problem(answer)}`; break; }
    state.annotations.push(answer);
    made.push(answer);
    labelled(id);
    saved += 1;
  }
  if (made.length) remember({ type: "batch", label: currentClass(), annotations: made });
  say(`Saved ${currentClass()} on ${saved} sample${saved === 1 ? "" : "s"}.`);
  if (failure) alarm(`${failure} (saved on ${saved} of ${state.batch.size}; Undo takes those back)`);
  renderSamples();
  renderAnnotations();
}

// The batch service (POST annotations/batch/, as the task page's Batch annotation tab): one
// transaction; a classification a sample already has is changed, skipped samples are named.
async function applyMany(samples, data) {
  const label = currentClass();
  const { ok, data: answer } = await call("POST", `${urls.annotations}batch/`, { stage: W.stage, label, samples, data, attributes: attributes() });
  if (!ok) return alarm(`Not saved: ${problem(answer)}`);
  const made = [];
  for (const a of answer.annotations) {
    const known = state.annotations.find((x) => x.id === a.id);
    if (known) Object.assign(known, a);
    else { state.annotations.push(a); made.push(a); }
    labelled(a.sample);
  }
  if (made.length) remember({ type: "batch", label, annotations: made });
  const skipped = answer.skipped.map((x) => `${x.name} (${x.reason})`).join(", ");
  say(`Saved ${label} on ${answer.count} sample${answer.count === 1 ? "" : "s"}.${skipped ? ` Skipped ${skipped}.` : ""}`);
  renderSamples();
  renderAnnotations();
}

function labelled(sampleId) {  // a sample that got a label no longer lacks one
  if (sampleId === null || !state.problems[sampleId]) return;
  state.problems[sampleId] = state.problems[sampleId].filter((m) => m !== "No annotation yet.");
}

export async function removeAnnotation(a, options = {}) {
  if (!(await deleteAnnotation(a))) { redraw(); return false; }
  if (state.selected === a.id) state.selected = null;
  if (!options.replaying) remember({ type: "delete", annotation: a });
  say(`Deleted ${a.label}.`);
  redraw();
  return true;
}

const again = (a) => ({ stage: a.stage, label: a.label, sample: a.sample, data: a.data, attributes: a.attributes, track: a.track || "" });

// Undo/redo steps: create, delete, update (data or attributes, before/after) and batch
// (several created at once). Each replays through the same API, version-checked.
// An annotation re-created by undo/redo gets a new id; older steps follow it through here.
const alias = new Map();
export const current = (id) => { while (alias.has(id)) id = alias.get(id); return state.annotations.find((x) => x.id === id); };
async function recreate(a) {
  const made = await create(null, { body: again(a), replaying: true });
  if (made) alias.set(a.id, made.id);
  return made;
}

async function patchTo(id, fields) {
  const a = current(id);
  if (!a) { alarm("That annotation is gone; there is nothing to change back."); return false; }
  const ok = await updateAnnotation(a, fields);
  redraw();
  return ok;
}

async function replay(step, backwards) {
  if (step.type === "update") return patchTo(step.id, backwards ? step.before : step.after);
  if (step.type === "batch") {
    if (backwards) {
      for (const a of step.annotations) {
        const found = current(a.id);
        if (found && !(await removeAnnotation(found, { replaying: true }))) return false;
      }
    } else {
      for (const a of step.annotations) if (!(await recreate(a))) return false;
    }
    return true;
  }
  if ((step.type === "create") !== backwards) return Boolean(await recreate(step.annotation));
  const found = current(step.annotation.id);
  if (!found) return true;  // already gone
  return removeAnnotation(found, { replaying: true });
}

const stepWords = { create: "added", delete: "deleted", update: "changed", batch: "applied to several samples" };

// One undo/redo at a time: a quick Ctrl+Z Ctrl+Z waits for the first to finish.
let replaying = Promise.resolve();
export function undo() { replaying = replaying.then(() => travel(state.undo, state.redo, true)); }
export function redo() { replaying = replaying.then(() => travel(state.redo, state.undo, false)); }

async function travel(from, to, backwards) {
  const step = from.pop();
  if (!step) return say(backwards ? "Nothing to undo." : "Nothing to redo.");
  if (!(await replay(step, backwards))) return;  // the reason is on screen; the step is dropped
  to.push(step);
  say(`${backwards ? "Undone" : "Redone"}: ${stepWords[step.type]} ${step.label || step.annotation.label}.`);
}

export function remember(step) { state.undo.push(step); state.redo = []; }

// --- attributes of a saved annotation --------------------------------------------------------
export function startEdit(a) {
  const select = $("[data-class]");
  select.value = a.label;
  renderTools();
  document.querySelectorAll("[data-attributes] [data-attribute]").forEach((input) => {
    const value = (a.attributes || {})[input.dataset.attribute];
    if (input.dataset.type === "boolean") input.checked = Boolean(value);
    else input.value = value ?? "";
  });
  state.editing = a;
  const save = $("[data-save-edit]");
  save.hidden = false;
  save.textContent = `Save ${a.label} #${a.id}`;
}

export async function saveEdit() {
  const a = state.editing;
  if (!a) return;
  const before = { attributes: { ...(a.attributes || {}) } };
  if (!(await updateAnnotation(a, { attributes: attributes() }))) return redraw();
  remember({ type: "update", id: a.id, label: a.label, before, after: { attributes: { ...a.attributes } } });
  state.editing = null;
  $("[data-save-edit]").hidden = true;
  alarm("");
  say(`Saved changes to ${a.label}.`);
  redraw();
}

export async function markInvalid(a) {
  const reason = ($("[data-reason]") || {}).value || "";
  if (!reason.trim()) return alarm("Give a reason when marking an annotation invalid.");
  if (!(await updateAnnotation(a, { invalid: true, invalid_reason: reason }))) return redraw();
  alarm("");
  say(`Marked ${a.label} invalid.`);
  redraw();
}

// --- the stage: review and submit --------------------------------------------------------------
export async function review(decision) {
  const comment = $("[data-comment]").value.trim();
  if (decision === "reject" && !comment && !state.flagged) return alarm("Say what to fix when rejecting (or reject annotations).");
  const pin = comment ? commentPin($("[data-pin]").checked) : {};
  const { ok, data } = await call("POST", urls.review, { decision, comment, ...pin });
  if (!ok) return alarm(`Not saved: ${problem(data)}`);
  window.location.href = `${W.mine}?done=${decision === "approve" ? "approved" : "rejected"}`;
}

export async function submit() {
  const { ok, data } = await call("POST", urls.submit);
  state.problems = (data && data.by_sample) || {};
  renderSamples();
  if (!ok) {
    const checks = data && data.checks;
    alarm(checks ? `The stage's checks failed: ${[].concat(checks).join(" ")}` : `Not submitted: ${problem(data)}`);
    const first = state.annotations.find((a) => a.stage === W.stage && incomplete(a));
    if (first) {  // go to the first incomplete annotation, its attributes open
      goTo({ sample: first.sample, frame: first.data.frame ?? first.data.start ?? null, annotation: first.id });
      startEdit(first);
    }
    return;
  }
  window.location.href = `${W.mine}?done=submitted`;
}
