// The annotator workspace: frames, series, drawing and the annotation list of one stage run.
// Plain JavaScript over the JSON API (session auth + CSRF); every change is saved at once.
(() => {
  const W = JSON.parse(document.getElementById("workspace-data").textContent);
  const $ = (selector) => document.querySelector(selector);
  const api = `/api/v1/tasks/${W.task}`;
  const state = { sample: 0, frame: 0, timer: null, annotations: [], comments: [], series: null, drag: null, batch: new Set(), polygon: [], undo: [], redo: [], selected: null, pinAnnotation: null, problems: {} };
  const csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"];

  async function call(method, url, body) {
    // On the audit page, Fix annotations: every annotation write names the audit (a fix).
    if (W.audit && W.audit.fixing && method !== "GET" && url.startsWith(`${api}/annotations/`)) {
      if (method === "DELETE") url += `${url.includes("?") ? "&" : "?"}audit=${W.audit.id}`;
      else body = { ...(body || {}), audit: W.audit.id };
    }
    let response;
    try {
      response = await fetch(url, {
      method,
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      });
    } catch (error) {  // offline, server restarting: say so, keep what was typed
      return { ok: false, status: 0, data: { detail: "The server could not be reached; nothing was saved. Check the connection and try again." } };
    }
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    return { ok: response.ok, status: response.status, data };
  }

  function say(text) { $("#ws-messages").textContent = text; $("#ws-alert").textContent = ""; }
  function alarm(text) { $("#ws-alert").textContent = text; if (text) $("#ws-messages").textContent = ""; }
  function problem(data) {
    if (!data) return "Something went wrong.";
    if (data.detail) return data.detail;
    return Object.entries(data).map(([k, v]) => `${k}: ${[].concat(v).map((x) => typeof x === "object" ? JSON.stringify(x) : x).join(" ")}`).join("; ");
  }

  const sample = () => W.samples[state.sample];

  // A button that does one thing; ``label`` names it for screen readers when the text is
  // ambiguous ("Delete" next to every annotation).
  function button(text, onClick, { label = "", className = "link" } = {}) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = className;
    b.textContent = text;
    if (label) b.setAttribute("aria-label", label);
    b.addEventListener("click", onClick);
    return b;
  }

  // --- samples ---------------------------------------------------------------------------
  function renderSamples() {
    const list = $("[data-samples]");
    list.innerHTML = "";
    const done = new Set(state.annotations.filter((a) => W.stages.includes(a.stage) && a.sample && !a.invalid).map((a) => a.sample));
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

  function selectSample(i) {
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

  // --- a whole sample marked invalid ------------------------------------------------------
  function showSampleState() {
    const box = $("[data-sample-invalid]");
    const reason = W.invalid[sample().id];
    box.hidden = !reason;
    const mark = $("[data-invalid-sample]");
    if (mark) mark.hidden = Boolean(reason);
    box.textContent = "";
    if (!reason) return;
    box.append(`${sample().name} is marked invalid: ${reason} `);
    if (W.editable) {
      box.append(button("Restore sample", restoreSample, { className: "" }));
    }
  }

  async function markSampleInvalid() {
    const reason = ($("[data-reason]") || {}).value || "";
    if (!reason.trim()) return alarm("Give a reason when marking a sample invalid.");
    const { ok, data } = await call("POST", `${api}/samples/${sample().id}/invalid/`, { stage: W.stage, reason });
    if (!ok) return alarm(`Not saved: ${problem(data)}`);
    W.invalid[sample().id] = data.reason;
    alarm("");
    say(`Marked ${sample().name} invalid.`);
    renderSamples();
    showSampleState();
  }

  async function restoreSample() {
    const { ok, data } = await call("DELETE", `${api}/samples/${sample().id}/invalid/`);
    if (!ok) return alarm(`Not restored: ${problem(data)}`);
    delete W.invalid[sample().id];
    say(`Restored ${sample().name}.`);
    renderSamples();
    showSampleState();
  }

  async function syncSamples() {
    const { ok, data } = await call("POST", `${api}/samples/sync/`);
    if (!ok) return alarm(`Not synced: ${problem(data)}`);
    window.location.reload();
  }

  // --- comments, pinned to samples, frames and annotations ------------------------------
  async function loadComments() {
    const { ok, data } = await call("GET", `${api}/comments/`);
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
    if (pin) {
      item.append(button(`Go to ${pin}`, () => goTo(c)));
    }
    if (c.kind === "problem" && !c.resolved && $("[data-new-comment]")) {
      const reply = () => { state.replyTo = c; renderComments(); $("[data-new-comment]").focus(); };
      item.append(" ", button("Reply", reply, { label: `Reply to the problem “${c.body.slice(0, 40)}”` }));
    }
    if (c.kind === "problem" && !c.resolved && (W.canResolve || c.author === W.user)) {
      item.append(" ", button("Resolve", () => resolveComment(c)));
    }
    return item;
  }

  function renderComments() {
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

  function goTo(c) {
    const index = W.samples.findIndex((x) => x.id === c.sample);
    if (index >= 0 && index !== state.sample) selectSample(index);
    if (c.frame !== null) { state.frame = c.frame; showFrame(); }
    if (c.annotation) { state.selected = c.annotation; renderAnnotations(); }
  }

  function commentPin(pinFrame) {
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

  async function addComment() {
    const body = $("[data-new-comment]").value.trim();
    if (!body) return alarm("Write the comment first.");
    const reply = state.replyTo;
    const pin = reply ? { sample: reply.sample, frame: reply.frame, annotation: reply.annotation } : commentPin($("[data-comment-pin]").checked);
    if (pin.annotation && !state.annotations.some((a) => a.id === pin.annotation)) pin.annotation = null;  // deleted since
    const kind = reply ? "solution" : $("[data-comment-kind]").value;
    const { ok, data } = await call("POST", `${api}/comments/`, { body, kind, parent: reply ? reply.id : null, stage: W.stage, ...pin });
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
    const { ok, data } = await call("POST", `${api}/comments/${c.id}/resolve/`, { resolved: true });
    if (!ok) return alarm(`Not resolved: ${problem(data)}`);
    Object.assign(c, data);
    say("Problem resolved.");
    renderComments();
    renderAnnotations();
  }

  // --- frames ----------------------------------------------------------------------------
  const frameUrl = (s, camera, f) => `/api/v1/samples/${s.id}/frames/${encodeURIComponent(camera)}/${f}/`;

  function buildCameras() {
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
      const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
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
    const scrubber = $("[data-scrubber]");
    scrubber.max = Math.max(0, sample().frames - 1);
  }

  function showFrame() {
    const s = sample();
    document.querySelectorAll("[data-cameras] img").forEach((img) => {
      img.src = frameUrl(s, img.dataset.camera, state.frame);
    });
    for (let k = 1; k <= PREFETCH; k++) {  // the next frames, fetched and decoded ahead
      const f = state.frame + k;
      if (f < s.frames) s.cameras.forEach((c) => prefetch(frameUrl(s, c, f)));
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

  function step(delta) {
    state.frame = Math.min(Math.max(0, state.frame + delta), sample().frames - 1);
    showFrame();
  }

  function play() {
    if (state.timer) return stop();
    $("[data-play]").textContent = "❚❚ Pause";
    state.timer = setInterval(() => {
      if (state.frame >= sample().frames - 1) return stop();
      step(1);
    }, 1000 / Math.min(sample().fps, 25));
  }

  function stop() {
    clearInterval(state.timer);
    state.timer = null;
    $("[data-play]").textContent = "▶ Play";
  }

  // --- series ----------------------------------------------------------------------------
  async function loadSeries() {
    const svg = $("[data-series]");
    svg.innerHTML = "";
    state.series = null;
    if (!sample().series) return;
    const { ok, data } = await call("GET", `/api/v1/samples/${sample().id}/series/?max_points=600`);
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
      const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
      line.setAttribute("points", points);
      line.setAttribute("fill", "none");
      line.setAttribute("stroke", colours[j % colours.length]);
      line.setAttribute("stroke-width", "1");
      line.setAttribute("vector-effect", "non-scaling-stroke");
      svg.append(line);
    }
    const cursor = document.createElementNS("http://www.w3.org/2000/svg", "line");
    cursor.dataset.cursor = "";
    cursor.setAttribute("y1", "0");
    cursor.setAttribute("y2", "120");
    cursor.setAttribute("stroke", "#102a43");
    cursor.setAttribute("vector-effect", "non-scaling-stroke");
    svg.append(cursor);
    drawCursor();
  }

  function drawCursor() {
    const cursor = document.querySelector("[data-series] [data-cursor]");
    if (!cursor) return;
    const x = (state.frame / Math.max(1, sample().frames - 1)) * 600;
    cursor.setAttribute("x1", x);
    cursor.setAttribute("x2", x);
  }

  // --- annotations -----------------------------------------------------------------------
  async function loadAnnotations() {
    const { ok, data } = await call("GET", `${api}/annotations/`);
    if (ok) state.annotations = data;
    else alarm(`The annotations could not be loaded: ${problem(data)} Reload the page.`);
    renderSamples();
    renderAnnotations();
    drawOverlay();
  }

  function describe(a) {
    const d = a.data;
    if (a.kind === "segment") return `frames ${d.start}–${d.end}`;
    if (a.kind === "box") return `frame ${d.frame}, ${Math.round(d.x)},${Math.round(d.y)} ${Math.round(d.w)}×${Math.round(d.h)}`;
    if (a.kind === "classification") return d.value;
    if (a.kind === "keypoint") return `frame ${d.frame}, point ${Math.round(d.x)},${Math.round(d.y)}`;
    if (a.kind === "polygon") return `frame ${d.frame}, ${d.points.length} points`;
    return JSON.stringify(d);
  }

  function renderAnnotations() {
    drawTimeline();
    const list = $("[data-annotations]");
    list.innerHTML = "";
    const mine = state.annotations.filter((a) => W.stages.includes(a.stage) && (a.sample === sample().id || a.sample === null));
    if (!mine.length) {
      const empty = document.createElement("li");
      empty.className = "muted";
      empty.textContent = "No annotations on this sample yet.";
      list.append(empty);
    }
    for (const a of mine) {
      const item = document.createElement("li");
      item.className = "annotation" + (a.invalid ? " invalid" : "") + (state.selected === a.id ? " selected" : "");
      item.setAttribute("aria-current", state.selected === a.id ? "true" : "false");
      const text = Object.values(a.attributes || {}).filter((v) => typeof v === "string" && v).join(", ");
      item.innerHTML = `<button type="button" class="link label"></button> <span class="muted"></span> <em></em>`;
      const label = item.querySelector("button.label");
      label.textContent = a.label;
      label.setAttribute("aria-pressed", state.selected === a.id ? "true" : "false");
      label.setAttribute("aria-label", `Select ${a.label} ${describe(a)}`);
      label.addEventListener("click", () => { state.selected = a.id; renderAnnotations(); drawOverlay(); });
      item.querySelector(".muted").textContent = describe(a);
      item.querySelector("em").textContent = text;
      const frame = a.data.frame ?? a.data.start;
      if (frame !== undefined) {
        item.append(" ", button("Go to frame", () => { state.frame = frame; showFrame(); }));
      }
      if ((W.editable || W.review) && !W.audit && !a.invalid) {
        item.append(" ", button("Mark invalid", () => markInvalid(a), { label: `Mark ${a.label} ${describe(a)} invalid` }));
      }
      if (a.invalid) item.append(` (invalid: ${a.invalid_reason})`);
      if (W.editable && W.classes[a.label] && W.classes[a.label].attributes.length) {
        item.append(" ", button("Edit", () => startEdit(a), { label: `Edit attributes of ${a.label} ${describe(a)}` }));
      }
      if (W.editable) {
        item.append(" ", button("Delete", () => removeAnnotation(a), { label: `Delete ${a.label} ${describe(a)}`, className: "link danger" }));
      }
      const pin = () => {
        state.pinAnnotation = a;
        if (W.audit) { state.selected = a.id; renderAnnotations(); drawOverlay(); }
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

  // Segments on a timeline; their edges drag to new frames (saved with the version seen).
  function drawTimeline() {
    const svg = $("[data-timeline]");
    if (!svg) return;
    svg.innerHTML = "";
    const n = Math.max(1, sample().frames - 1);
    const ns = "http://www.w3.org/2000/svg";
    const segments = state.annotations.filter((a) => a.kind === "segment" && W.stages.includes(a.stage) && (a.sample === sample().id || a.sample === null));
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
      const bar = document.createElementNS(ns, "rect");
      bar.setAttribute("x", x1); bar.setAttribute("y", top + height * 0.15); bar.setAttribute("width", Math.max(1, x2 - x1)); bar.setAttribute("height", height * 0.7);
      bar.setAttribute("class", "segment-bar" + (state.selected === a.id ? " selected" : ""));
      bar.dataset.bar = a.id;
      svg.append(bar);
      if (!W.editable) return;
      for (const edge of ["start", "end"]) {
        const handle = document.createElementNS(ns, "rect");
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
  const timelineSvg = $("[data-timeline]");
  if (timelineSvg) {
    timelineSvg.addEventListener("mousedown", (event) => {
      if (!W.editable || event.target.dataset.edge || currentKind() !== "segment") return;
      const from = timelineFrame(event, timelineSvg);
      const preview = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      preview.setAttribute("class", "segment-bar drawing");
      preview.setAttribute("y", 2); preview.setAttribute("height", 20);
      timelineSvg.append(preview);
      state.span = { from, to: from, preview };
      event.preventDefault();
    });
  }

  function drawSpan(event) {
    const n = Math.max(1, sample().frames - 1);
    state.span.to = timelineFrame(event, timelineSvg);
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

  document.addEventListener("mousemove", (event) => {
    if (state.span) return drawSpan(event);
    if (!state.edge) return;
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
  });

  document.addEventListener("mouseup", async () => {
    if (state.span) return endSpan();
    if (!state.edge) return;
    const { a, data } = state.edge;
    state.edge = null;
    if (!data || (data.start === a.data.start && data.end === a.data.end)) return;
    const { ok, status, data: answer } = await call("PATCH", `${api}/annotations/${a.id}/`, { version: a.version, data });
    if (!ok) {
      drawTimeline();  // the bar goes back to where it is saved
      if (status === 409) return alarm(`Conflict: someone changed this segment meanwhile (now version ${answer.version}); nothing was overwritten. Reload to see it.`);
      return alarm(`Not saved: ${problem(answer)}`);
    }
    const before = { data: { ...a.data } };
    Object.assign(a, answer);
    remember({ type: "update", id: a.id, label: a.label, before, after: { data: { ...a.data } } });
    say(`Moved ${a.label} to frames ${a.data.start}–${a.data.end}.`);
    renderAnnotations();
    drawTimeline();
  });

  function drawOverlay() {
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
    const r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    r.setAttribute("x", x); r.setAttribute("y", y); r.setAttribute("width", w); r.setAttribute("height", h);
    r.setAttribute("class", kind);
    return r;
  }

  function point(event) { return pointIn(event.currentTarget, event); }

  function pointIn(svg, event) {
    const box = svg.getBoundingClientRect();
    const view = svg.viewBox.baseVal;
    return { x: ((event.clientX - box.left) / box.width) * view.width, y: ((event.clientY - box.top) / box.height) * view.height };
  }

  async function clickShape(event) {
    if (!W.editable) return;
    const p = point(event);
    const camera = event.currentTarget.dataset.camera;
    if (currentKind() === "keypoint") {
      await create({ frame: state.frame, camera, x: Math.round(p.x * 10) / 10, y: Math.round(p.y * 10) / 10 });
    } else if (currentKind() === "polygon") {
      if (state.polygonCamera && state.polygonCamera !== camera) state.polygon = [];
      state.polygonCamera = camera;
      state.polygon.push([Math.round(p.x * 10) / 10, Math.round(p.y * 10) / 10]);
      say(`Polygon: ${state.polygon.length} point(s); press Enter to close it.`);
    }
  }

  async function closePolygon() {
    if (state.polygon.length < 3) return alarm("A polygon needs at least three points.");
    const points = state.polygon;
    state.polygon = [];
    await create({ frame: state.frame, camera: state.polygonCamera, points });
  }

  function startDrag(event) {
    if (!W.editable || currentKind() !== "box") return;
    state.drag = { start: point(event), shape: rect(0, 0, 0, 0, "drawing"), svg: event.currentTarget };
    event.currentTarget.append(state.drag.shape);
  }

  function moveDrag(event) {
    if (!state.drag) return;
    const p = pointIn(state.drag.svg, event), s = state.drag.start;
    const r = state.drag.shape;
    r.setAttribute("x", Math.min(s.x, p.x)); r.setAttribute("y", Math.min(s.y, p.y));
    r.setAttribute("width", Math.abs(p.x - s.x)); r.setAttribute("height", Math.abs(p.y - s.y));
  }

  async function endDrag(event) {
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
                   x: Math.round(Math.min(s.x, p.x) * 10) / 10, y: Math.round(Math.min(s.y, p.y) * 10) / 10,
                   w: Math.round(w * 10) / 10, h: Math.round(h * 10) / 10 });
  }

  function currentClass() { const select = $("[data-class]"); return select ? select.value : null; }
  function currentKind() { const key = currentClass(); return key ? W.classes[key].kind : null; }

  function renderTools() {
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

  function attributes() {
    const out = {};
    document.querySelectorAll("[data-attributes] [data-attribute]").forEach((input) => {
      const type = input.dataset.type;
      if (type === "boolean") out[input.dataset.attribute] = input.checked;
      else if (input.value !== "") out[input.dataset.attribute] = type === "number" ? Number(input.value) : input.value;
    });
    return out;
  }

  function segmentRange() {
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

  function updateBatchCount() {
    const n = state.batch.size;
    document.querySelectorAll("[data-batch-count]").forEach((el) => { el.textContent = n; });
    document.querySelectorAll("[data-batch-apply]").forEach((el) => { el.disabled = n === 0; });
  }

  async function createMany(data) {
    // Batch annotation: the same label on every selected sample (repeats of one demonstration).
    const ids = [...state.batch];
    const missing = missingRequired(currentClass(), attributes());
    if (missing.length) return alarm(`Fill in ${missing.join(", ")} first (required).`);
    if (data.end !== undefined) {
      const short = W.samples.filter((s) => state.batch.has(s.id) && data.end > s.frames - 1);
      if (short.length) return alarm(`${short.map((s) => `${s.name} ends at frame ${s.frames - 1}`).join("; ")}: shorten the segment or leave those samples out.`);
    }
    let saved = 0, failure = "";
    const made = [];
    for (const id of ids) {
      const body = { stage: W.stage, label: currentClass(), sample: id, data, attributes: attributes() };
      const { ok, data: answer } = await call("POST", `${api}/annotations/`, body);
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

  function missingRequired(label, values) {
    const cls = W.classes[label];
    const missing = (cls ? cls.attributes : []).filter((a) => a.required && (values[a.key] === undefined || values[a.key] === ""));
    return missing.map((a) => a.name || a.key);
  }

  async function create(data, options = {}) {
    const body = options.body || { stage: W.stage, label: currentClass(), sample: sample().id, data, attributes: attributes() };
    const missing = options.replaying ? [] : missingRequired(body.label, body.attributes || {});
    if (missing.length) { alarm(`Fill in ${missing.join(", ")} first (required).`); return null; }
    const { ok, data: answer } = await call("POST", `${api}/annotations/`, body);
    if (!ok) { alarm(`Not saved: ${problem(answer)}`); return null; }
    state.annotations.push(answer);
    labelled(answer.sample);
    if (!options.replaying) remember({ type: "create", annotation: answer });
    say(`Saved ${answer.label}.`);
    renderSamples();
    renderAnnotations();
    drawOverlay();
    return answer;
  }

  function labelled(sampleId) {  // a sample that got a label no longer lacks one
    if (sampleId === null || !state.problems[sampleId]) return;
    state.problems[sampleId] = state.problems[sampleId].filter((m) => m !== "No annotation yet.");
  }

  async function removeAnnotation(a, options = {}) {
    const { ok, status, data } = await call("DELETE", `${api}/annotations/${a.id}/?version=${a.version}`);
    if (status === 409) { alarm(`Someone changed this annotation meanwhile (now version ${data.version}); nothing was deleted. Reload to see it.`); return false; }
    if (!ok) { alarm(`Not deleted: ${problem(data)}`); return false; }
    state.annotations = state.annotations.filter((x) => x.id !== a.id);
    if (!options.replaying) remember({ type: "delete", annotation: a });
    say(`Deleted ${a.label}.`);
    renderSamples();
    renderAnnotations();
    drawOverlay();
    return true;
  }

  const again = (a) => ({ stage: a.stage, label: a.label, sample: a.sample, data: a.data, attributes: a.attributes });

  // Undo/redo steps: create, delete, update (data or attributes, before/after) and batch
  // (several created at once). Each replays through the same API, version-checked.
  // An annotation re-created by undo/redo gets a new id; older steps follow it through here.
  const alias = new Map();
  const current = (id) => { while (alias.has(id)) id = alias.get(id); return state.annotations.find((x) => x.id === id); };
  async function recreate(a) {
    const made = await create(null, { body: again(a), replaying: true });
    if (made) alias.set(a.id, made.id);
    return made;
  }

  async function patchTo(id, fields) {
    const a = current(id);
    if (!a) { alarm("That annotation is gone; there is nothing to change back."); return false; }
    const { ok, status, data } = await call("PATCH", `${api}/annotations/${a.id}/`, { version: a.version, ...fields });
    if (status === 409) {
      await loadAnnotations();  // show their version
      alarm(`Conflict: someone changed ${a.label} meanwhile (now version ${data.version}); nothing was overwritten.`);
      return false;
    }
    if (!ok) { alarm(`Not saved: ${problem(data)}`); return false; }
    Object.assign(a, data);
    renderAnnotations();
    drawOverlay();
    return true;
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
  function undo() { replaying = replaying.then(() => travel(state.undo, state.redo, true)); }
  function redo() { replaying = replaying.then(() => travel(state.redo, state.undo, false)); }

  async function travel(from, to, backwards) {
    const step = from.pop();
    if (!step) return say(backwards ? "Nothing to undo." : "Nothing to redo.");
    if (!(await replay(step, backwards))) return;  // the reason is on screen; the step is dropped
    to.push(step);
    say(`${backwards ? "Undone" : "Redone"}: ${stepWords[step.type]} ${step.label || step.annotation.label}.`);
  }

  function remember(step) { state.undo.push(step); state.redo = []; }

  function startEdit(a) {
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

  async function saveEdit() {
    const a = state.editing;
    if (!a) return;
    const { ok, status, data } = await call("PATCH", `${api}/annotations/${a.id}/`, { version: a.version, attributes: attributes() });
    if (status === 409) return alarm(`Conflict: someone changed this annotation meanwhile (now version ${data.version}); nothing was overwritten. Reload to see their version.`);
    if (!ok) return alarm(`Not saved: ${problem(data)}`);
    const before = { attributes: { ...(a.attributes || {}) } };
    Object.assign(a, data);
    remember({ type: "update", id: a.id, label: a.label, before, after: { attributes: { ...a.attributes } } });
    state.editing = null;
    $("[data-save-edit]").hidden = true;
    alarm("");
    say(`Saved changes to ${a.label}.`);
    renderAnnotations();
  }

  async function markInvalid(a) {
    const reason = ($("[data-reason]") || {}).value || "";
    if (!reason.trim()) return alarm("Give a reason when marking an annotation invalid.");
    const { ok, status, data } = await call("PATCH", `${api}/annotations/${a.id}/`, { version: a.version, invalid: true, invalid_reason: reason });
    if (status === 409) {
      return alarm(`Conflict: someone changed this annotation meanwhile (now version ${data.version}); nothing was overwritten. Reload to see their version.`);
    }
    if (!ok) return alarm(`Not saved: ${problem(data)}`);
    Object.assign(a, data);
    alarm("");
    say(`Marked ${a.label} invalid.`);
    renderAnnotations();
  }

  async function review(decision) {
    const comment = $("[data-comment]").value.trim();
    if (decision === "reject" && !comment) return alarm("Say what to fix when rejecting.");
    const pin = comment ? commentPin($("[data-pin]").checked) : {};
    const { ok, data } = await call("POST", `${api}/stages/${W.stage}/review/`, { decision, comment, ...pin });
    if (!ok) return alarm(`Not saved: ${problem(data)}`);
    window.location.href = `${W.mine}?done=${decision === "approve" ? "approved" : "rejected"}`;
  }

  async function submit() {
    const { ok, data } = await call("POST", `${api}/stages/${W.stage}/submit/`);
    state.problems = (data && data.by_sample) || {};
    renderSamples();
    if (!ok) {
      const checks = data && data.checks;
      return alarm(checks ? `The stage's checks failed: ${[].concat(checks).join(" ")}` : `Not submitted: ${problem(data)}`);
    }
    window.location.href = `${W.mine}?done=submitted`;
  }

  // --- wiring ----------------------------------------------------------------------------
  document.addEventListener("click", (event) => {
    const t = event.target.closest("button") || event.target;  // a click may land on a span inside
    if (t.matches("[data-step]")) step(Number(t.dataset.step));
    else if (t.matches("[data-play]")) play();
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
  document.addEventListener("mouseup", (event) => { if (state.drag) endDrag(event); });
  document.addEventListener("keydown", (event) => {
    if (event.target.matches("input, select, textarea")) return;
    if (document.querySelector("dialog[open]")) return;  // the help dialog has the keys
    if ((event.key === " " || event.key === "Enter") && event.target.closest("button, a, summary")) return;
    const mod = event.ctrlKey || event.metaKey;
    if (mod && event.key.toLowerCase() === "z" && W.editable) { (event.shiftKey ? redo : undo)(); event.preventDefault(); return; }
    if (mod && event.key.toLowerCase() === "y" && W.editable) { redo(); event.preventDefault(); return; }
    if (mod && event.key === "Enter" && W.editable && !W.audit) { submit(); event.preventDefault(); return; }
    if (mod || event.altKey) return;
    const select = $("[data-class]");
    if (select && /^[1-9]$/.test(event.key) && Number(event.key) <= select.options.length) {
      select.selectedIndex = Number(event.key) - 1;
      renderTools();
      say(`Class: ${select.value}.`);
      return;
    }
    if ((event.key === "Delete" || event.key === "Backspace") && W.editable && state.selected) {
      const chosen = state.annotations.find((a) => a.id === state.selected && W.stages.includes(a.stage) && (a.sample === sample().id || a.sample === null));
      if (chosen) { state.selected = null; removeAnnotation(chosen); }
      event.preventDefault();
      return;
    }
    if (event.key === "ArrowRight") { step(1); event.preventDefault(); }
    else if (event.key === "ArrowLeft") { step(-1); event.preventDefault(); }
    else if (event.key === " ") { play(); event.preventDefault(); }
    else if (event.key === "PageDown") selectSample(state.sample + 1);
    else if (event.key === "PageUp") selectSample(state.sample - 1);
    else if (event.key === "?") $("#ws-help").showModal();
    else if (event.key === "Enter" && state.polygon.length) closePolygon();
  });

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
    return;
  }
  renderTools();
  // Open on the first sample the stage annotates (a `sampling` stage skips the others).
  selectSample(Math.max(0, W.samples.findIndex((s) => s.in_stage)));
  loadAnnotations().then(loadComments);
})();
