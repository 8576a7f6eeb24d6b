// The panels around the viewer: samples, the annotation list, comments, the label tools.
import { call, urls } from "./api.js";
import { $, W, alarm, button, describe, incomplete, missingRequired, onSample, problem, sample, say, state } from "./core.js";
import { markInvalid, removeAnnotation, startEdit } from "./annotations.js";
import { buildCameras, drawOverlay, showFrame, stop } from "./canvas.js";
import { drawTimeline, loadSeries } from "./timeline.js";
import { prelabelBar, prelabelItem } from "./prelabels.js";

// --- samples -------------------------------------------------------------------------------
export function renderSamples() {
  const list = $("[data-samples]");
  list.innerHTML = "";
  const done = new Set(state.annotations.filter((a) => W.stages.includes(a.stage) && a.sample && !a.invalid && a.source !== "prelabel").map((a) => a.sample));
  let progress = 0;
  W.samples.forEach((s, i) => {
    const item = document.createElement("li");
    const entry = document.createElement("button");
    entry.type = "button";
    entry.className = "link sample" + (i === state.sample ? " current" : "") + (s.in_stage ? "" : " outside");
    const invalid = W.invalid[s.id];
    if (s.in_stage && done.has(s.id)) progress += 1;
    // A sample outside the stage's `sampling` draw has nothing to do: "–".
    const mark = invalid ? "⚠" : !s.in_stage ? "–" : done.has(s.id) ? "✓" : "○";
    entry.textContent = `${mark} ${s.name}${W.changed.includes(s.id) ? " ↻" : ""}`;
    if (invalid) entry.title = `Marked invalid: ${invalid}`;
    else if (!s.in_stage) entry.title = "Not in this stage's sample: nothing to do here";
    else if (W.changed.includes(s.id)) entry.title = "Changed by a dataset re-sync";
    entry.setAttribute("aria-current", i === state.sample ? "true" : "false");
    entry.addEventListener("click", () => selectSample(i));
    if (W.editable) {
      const pick = document.createElement("input");
      pick.type = "checkbox";
      pick.dataset.batch = s.id;
      pick.checked = state.batch.has(s.id);
      pick.setAttribute("aria-label", `Include ${s.name} in batch annotation`);
      pick.addEventListener("change", () => {
        pick.checked ? state.batch.add(s.id) : state.batch.delete(s.id);
        updateBatchCount();
      });
      item.append(pick, " ");
    }
    item.append(entry);
    for (const message of state.problems[s.id] || []) {  // a failed submit's checks, here
      const note = document.createElement("p");
      note.className = "field-error sample-problem";
      note.textContent = message;
      item.append(note);
    }
    list.append(item);
  });
  $("[data-progress]").value = progress;
}

export function selectSample(i) {
  if (i < 0 || i >= W.samples.length) return;
  stop();
  state.sample = i;
  state.frame = 0;
  state.selected = null;
  if (!W.samples[i].in_stage) say(`${W.samples[i].name} is not in this stage's sample: nothing to annotate here.`);
  buildCameras();
  loadSeries();
  renderSamples();
  renderAnnotations();
  renderComments();
  showSampleState();
  showFrame();
}

export function updateBatchCount() {
  const n = state.batch.size;
  document.querySelectorAll("[data-batch-count]").forEach((el) => { el.textContent = n; });
  document.querySelectorAll("[data-batch-apply]").forEach((el) => { el.disabled = n === 0; });
}

// --- a whole sample marked invalid ----------------------------------------------------------
export function showSampleState() {
  const box = $("[data-sample-invalid]");
  const reason = W.invalid[sample().id];
  box.hidden = !reason;
  const mark = $("[data-invalid-sample]");
  if (mark) mark.hidden = Boolean(reason);
  box.textContent = "";
  if (!reason) return;
  box.append(`${sample().name} is marked invalid: ${reason} `);
  if (W.editable) box.append(button("Restore sample", restoreSample, { className: "" }));
}

export async function markSampleInvalid() {
  const reason = ($("[data-reason]") || {}).value || "";
  if (!reason.trim()) return alarm("Give a reason when marking a sample invalid.");
  const { ok, data } = await call("POST", urls.invalidSample(sample().id), { stage: W.stage, reason });
  if (!ok) return alarm(`Not saved: ${problem(data)}`);
  W.invalid[sample().id] = data.reason;
  alarm("");
  say(`Marked ${sample().name} invalid.`);
  renderSamples();
  showSampleState();
}

async function restoreSample() {
  const { ok, data } = await call("DELETE", urls.invalidSample(sample().id));
  if (!ok) return alarm(`Not restored: ${problem(data)}`);
  delete W.invalid[sample().id];
  say(`Restored ${sample().name}.`);
  renderSamples();
  showSampleState();
}

export async function syncSamples() {
  const { ok, data } = await call("POST", urls.sync);
  if (!ok) return alarm(`Not synced: ${problem(data)}`);
  window.location.reload();
}

// --- comments, pinned to samples, frames and annotations ------------------------------------
export async function loadComments() {
  const { ok, data } = await call("GET", W.stage ? `${urls.comments}?stage=${W.stage}` : urls.comments);  // those about this stage
  if (ok) state.comments = data;
  renderComments();
  if (state.comments.some((c) => c.annotation)) renderAnnotations();
  document.body.dataset.workspaceReady = "true";
}

function pinText(c) {
  const parts = [];
  const s = W.samples.find((x) => x.id === c.sample);
  if (s) parts.push(s.name);
  if (c.frame !== null) parts.push(`frame ${c.frame}`);
  const a = state.annotations.find((x) => x.id === c.annotation);
  if (a) parts.push(`${a.label} #${a.id}`);
  return parts.join(", ");
}

function commentItem(c) {
  const item = document.createElement("li");
  item.className = `comment ${c.kind}` + (c.resolved ? " resolved" : "");
  const head = document.createElement("strong");
  head.textContent = `${c.kind === "problem" ? (c.resolved ? "Resolved problem" : "Problem") : c.kind === "solution" ? "Solution" : "Comment"} · ${c.author || "—"}`;
  const body = document.createElement("p");
  body.textContent = c.body;
  item.append(head, body);
  const pin = pinText(c);
  if (pin) item.append(button(`Go to ${pin}`, () => goTo(c)));
  if (c.kind === "problem" && !c.resolved && $("[data-new-comment]")) {
    const reply = () => { state.replyTo = c; renderComments(); $("[data-new-comment]").focus(); };
    item.append(" ", button("Reply", reply, { label: `Reply to the problem “${c.body.slice(0, 40)}”` }));
  }
  if (c.kind === "problem" && !c.resolved && (W.canResolve || c.author === W.user)) {
    item.append(" ", button("Resolve", () => resolveComment(c)));
  }
  return item;
}

export function renderComments() {
  const list = $("[data-comments]");
  if (!list) return;
  list.innerHTML = "";
  if (!state.comments.length) {
    const empty = document.createElement("li");
    empty.className = "muted";
    empty.textContent = "No comments yet.";
    list.append(empty);
  }
  for (const c of state.comments) list.append(commentItem(c));
  const pinned = $("[data-pinned]");
  pinned.hidden = !state.pinAnnotation && !state.replyTo;
  pinned.textContent = state.replyTo ? `Replying to ${state.replyTo.author || "—"}'s problem: your reply is its solution. `
    : state.pinAnnotation ? `Your ${W.audit ? "finding" : "comment"} will be pinned to ${state.pinAnnotation.label} #${state.pinAnnotation.id}. ` : "";
  if (state.replyTo) {
    pinned.append(button("Cancel reply", () => { state.replyTo = null; renderComments(); }));
  } else if (state.pinAnnotation) {
    pinned.append(button("Unpin", () => { state.pinAnnotation = null; renderComments(); }));
  }
}

export function goTo(c) {
  const index = W.samples.findIndex((x) => x.id === c.sample);
  if (index >= 0 && index !== state.sample) selectSample(index);
  if (c.frame !== null && c.frame !== undefined) { state.frame = c.frame; showFrame(); }
  if (c.annotation) { state.selected = c.annotation; renderAnnotations(); drawOverlay(); }
}

export function commentPin(pinFrame) {
  const a = state.pinAnnotation && state.annotations.find((x) => x.id === state.pinAnnotation.id);
  if (a && a.sample !== null) {  // the annotation's own sample (and its frame, when it has one)
    const frame = a.data.frame ?? (pinFrame && a.sample === sample().id ? state.frame : null);
    return { sample: a.sample, frame, annotation: a.id };
  }
  if (a) {  // a task-level annotation: pinned where the viewer stands, if asked
    return { sample: pinFrame ? sample().id : null, frame: pinFrame ? state.frame : null, annotation: a.id };
  }
  return { sample: pinFrame ? sample().id : null, frame: pinFrame ? state.frame : null, annotation: null };
}

export async function addComment() {
  const body = $("[data-new-comment]").value.trim();
  if (!body) return alarm("Write the comment first.");
  const reply = state.replyTo;
  const pin = reply ? { sample: reply.sample, frame: reply.frame, annotation: reply.annotation } : commentPin($("[data-comment-pin]").checked);
  if (pin.annotation && !state.annotations.some((a) => a.id === pin.annotation)) pin.annotation = null;  // deleted since
  const kind = reply ? "solution" : $("[data-comment-kind]").value;
  const { ok, data } = await call("POST", urls.comments, { body, kind, parent: reply ? reply.id : null, stage: W.stage, ...pin });
  if (!ok) return alarm(`Not saved: ${problem(data)}`);
  state.comments.push(data);
  state.pinAnnotation = null;
  state.replyTo = null;
  $("[data-new-comment]").value = "";
  alarm("");
  say("Comment added.");
  renderComments();
  renderAnnotations();
}

async function resolveComment(c) {
  const { ok, data } = await call("POST", urls.resolve(c.id), { resolved: true });
  if (!ok) return alarm(`Not resolved: ${problem(data)}`);
  Object.assign(c, data);
  say("Problem resolved.");
  renderComments();
  renderAnnotations();
}

// --- the annotation list ---------------------------------------------------------------------
export function select(id) {
  state.selected = id;
  renderAnnotations();
  drawOverlay();
}

export function renderAnnotations() {
  drawTimeline();
  const list = $("[data-annotations]");
  list.innerHTML = "";
  prelabelBar(list);
  const mine = state.annotations.filter(onSample);
  if (!mine.length) {
    const empty = document.createElement("li");
    empty.className = "muted";
    empty.textContent = "No annotations on this sample yet.";
    list.append(empty);
  }
  for (const a of mine) {
    const item = document.createElement("li");
    item.className = "annotation" + (a.invalid ? " invalid" : "") + (state.selected === a.id ? " selected" : "") + (incomplete(a) ? " incomplete" : "");
    item.setAttribute("aria-current", state.selected === a.id ? "true" : "false");
    item.dataset.annotation = a.id;  // review.js puts verdicts here
    const text = Object.values(a.attributes || {}).filter((v) => typeof v === "string" && v).join(", ");
    item.innerHTML = `<button type="button" class="link label"></button> <span class="muted"></span> <em></em>`;
    const label = item.querySelector("button.label");
    label.textContent = a.label;
    label.setAttribute("aria-pressed", state.selected === a.id ? "true" : "false");
    label.setAttribute("aria-label", `Select ${a.label} ${describe(a)}`);
    label.addEventListener("click", () => select(a.id));
    item.querySelector(".muted").textContent = describe(a);
    item.querySelector("em").textContent = text;
    prelabelItem(a, item);
    const frame = a.data.frame ?? a.data.start;
    if (frame !== undefined) {
      item.append(" ", button("Go to frame", () => { state.frame = frame; showFrame(); }));
    }
    if ((W.editable || W.review) && !W.audit && !a.invalid) {
      item.append(" ", button("Mark invalid", () => markInvalid(a), { label: `Mark ${a.label} ${describe(a)} invalid` }));
    }
    if (a.invalid) item.append(` (invalid: ${a.invalid_reason})`);
    if (incomplete(a)) {
      const note = document.createElement("strong");
      note.className = "incomplete-note";
      note.textContent = ` incomplete: set ${missingRequired(a.label, a.attributes || {}).join(", ")}`;
      item.append(note);
    }
    if (W.editable && W.classes[a.label] && W.classes[a.label].attributes.length) {
      item.append(" ", button("Edit", () => startEdit(a), { label: `Edit attributes of ${a.label} ${describe(a)}` }));
    }
    if (W.editable) {
      item.append(" ", button("Delete", () => removeAnnotation(a), { label: `Delete ${a.label} ${describe(a)}`, className: "link danger" }));
    }
    const pin = () => {
      state.pinAnnotation = a;
      if (W.audit) select(a.id);
      renderComments();
      const field = $("[data-finding-note]") || $("[data-comment]") || $("[data-new-comment]");
      if (field) field.focus();
    };
    if (!W.audit || W.audit.can_add) {
      const what = W.audit ? "Finding" : "Comment";
      item.append(" ", button(`${what} on this`, pin, { label: `${what} on ${a.label} ${describe(a)}` }));
    }
    const pinned = state.comments.filter((c) => c.annotation === a.id);
    if (pinned.length) {
      const notes = document.createElement("ul");
      notes.className = "plain pinned-comments";
      notes.setAttribute("aria-label", `Comments on ${a.label} #${a.id}`);
      for (const c of pinned) notes.append(commentItem(c));
      item.append(notes);
    }
    list.append(item);
  }
  document.dispatchEvent(new CustomEvent("workspace:render"));
}

// --- the label tools: class, attributes, the class kind's own controls ---------------------
export function currentClass() { const select = $("[data-class]"); return select ? select.value : null; }
export function currentKind() { const key = currentClass(); return key ? W.classes[key].kind : null; }

export function renderTools() {
  const key = currentClass();
  if (!key) return;
  const cls = W.classes[key];
  document.querySelectorAll("[data-tool]").forEach((el) => { el.hidden = el.dataset.tool !== cls.kind; });
  const box = $("[data-attributes]");
  box.innerHTML = "";
  for (const attr of cls.attributes) {
    const id = `attr-${attr.key}`;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = (attr.name || attr.key) + (attr.required ? " *" : "");
    let input;
    if (attr.type === "choice") {
      input = document.createElement("select");
      for (const c of ["", ...attr.choices]) input.append(new Option(c === "" ? "—" : c, c));
    } else if (attr.type === "boolean") {
      input = document.createElement("input");
      input.type = "checkbox";
    } else {
      input = document.createElement("input");
      input.type = attr.type === "number" ? "number" : "text";
    }
    input.id = id;
    input.dataset.attribute = attr.key;
    input.dataset.type = attr.type;
    box.append(label, input);
  }
  const choice = $("[data-choice]");
  if (choice) {
    choice.innerHTML = "";
    for (const c of cls.choices) choice.append(new Option(c, c));
  }
}

export function attributes() {
  const out = {};
  document.querySelectorAll("[data-attributes] [data-attribute]").forEach((input) => {
    const type = input.dataset.type;
    if (type === "boolean") out[input.dataset.attribute] = input.checked;
    else if (input.value !== "") out[input.dataset.attribute] = type === "number" ? Number(input.value) : input.value;
  });
  return out;
}

export function segmentRange() {
  const from = $("[data-seg-start]").value, to = $("[data-seg-end]").value;
  const last = sample().frames - 1;
  if (from === "" || to === "") { alarm("Set where the segment starts and ends (From and to)."); return null; }
  const start = Number(from), end = Number(to);
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > last) {
    alarm(`Frames of ${sample().name} run from 0 to ${last}.`);
    return null;
  }
  if (start > end) { alarm("A segment ends after it starts."); return null; }
  return { start, end };
}
