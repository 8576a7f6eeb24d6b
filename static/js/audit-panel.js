// The audit page's panel: the findings of the audit, a form to add one (pinned to the
// selected annotation, a frame range of the current sample, or the whole unit), and Fix
// annotations (a standard audit: the workspace's tools turn editable, every write names
// the audit). It works on the workspace's own state (workspace.js exposes it).
const ws = window.stagecraftWorkspace;
const { W } = ws;
const A = W.audit;
const $ = (selector) => document.querySelector(selector);
const form = $("[data-finding-form]");

function selectedAnnotation() {
  const id = ws.state.pinAnnotation ? ws.state.pinAnnotation.id : ws.state.selected;
  return ws.state.annotations.find((a) => a.id === id) || null;
}

function sampleName(id) {
  const s = W.samples.find((x) => x.id === id);
  return s ? s.name : `sample ${id}`;
}

function pinnedTo(f) {
  if (f.annotation) {
    const a = ws.state.annotations.find((x) => x.id === f.annotation);
    const what = a ? `${a.label} #${a.id}` : `annotation #${f.annotation}`;
    return f.attribute ? `${what}, attribute ${f.attribute}` : what;
  }
  if (f.sample) {
    return f.frames ? `${sampleName(f.sample)}, frames ${f.frames[0]}–${f.frames[1]}` : sampleName(f.sample);
  }
  return A.stage ? `the whole stage ${A.stage}` : "the whole task";
}

const STATES = { open: "open", accepted: "accepted", disputed: "disputed", settled: "settled" };

function goToFinding(f) {
  const a = f.annotation && ws.state.annotations.find((x) => x.id === f.annotation);
  const sampleId = a ? a.sample : f.sample;
  const frame = f.frames ? f.frames[0] : a ? a.data.frame ?? a.data.start ?? null : null;
  ws.goTo({ sample: sampleId, frame, annotation: f.annotation || null });
}

function renderFindings() {
  const list = $("[data-findings]");
  list.innerHTML = "";
  if (!A.findings.length) {
    const empty = document.createElement("li");
    empty.className = "muted";
    empty.textContent = A.status === "open" ? "No findings yet." : "No findings: no errors.";
    list.append(empty);
  }
  for (const f of A.findings) {
    const item = document.createElement("li");
    item.className = `finding finding-${f.type}`;
    const head = document.createElement("strong");
    head.textContent = `${A.types[f.type] || f.type} · ${A.categories[f.category] || f.category}`;
    const state = document.createElement("span");
    state.className = `badge finding-state-${f.state}`;
    let stateText = STATES[f.state] || f.state;
    if (f.state === "settled") stateText = f.upheld ? "upheld" : "withdrawn";
    state.textContent = stateText;
    const where = document.createElement("span");
    where.className = "muted";
    where.textContent = ` on ${pinnedTo(f)}`;
    item.append(head, " ", state, where);
    if (f.note) {
      const note = document.createElement("p");
      note.textContent = f.note;
      item.append(note);
    }
    if (f.response) {
      const answer = document.createElement("p");
      answer.className = "muted";
      answer.textContent = `Disputed: ${f.response}`;
      item.append(answer);
    }
    if (f.annotation || f.sample) {
      const go = document.createElement("button");
      go.type = "button";
      go.className = "link";
      go.textContent = "Show";
      go.setAttribute("aria-label", `Show ${pinnedTo(f)}`);
      go.addEventListener("click", () => goToFinding(f));
      item.append(go);
    }
    list.append(item);
  }
}

// --- the form ------------------------------------------------------------------------------
function scope() {
  const checked = form.querySelector("[data-scope]:checked");
  return checked ? checked.value : "unit";
}

function showTarget() {
  if (!form) return;
  const a = selectedAnnotation();
  const radio = form.querySelector("[data-scope][value='annotation']");
  const label = $("[data-scope-annotation]");
  radio.disabled = !a;
  label.textContent = a ? `${a.label} #${a.id} (${ws.describe(a)})` : "the selected annotation (select one in the list)";
  if (a && ws.state.pinAnnotation && ws.state.pinAnnotation.id === a.id && !radio.checked && !form.dataset.touched) {
    radio.checked = true;
  }
  if (!a && radio.checked) form.querySelector("[data-scope][value='unit']").checked = true;
  const attributes = a && W.classes[a.label] ? W.classes[a.label].attributes : [];
  const select = $("[data-finding-attribute]");
  const keep = select.value;
  select.innerHTML = "";
  select.append(new Option("— the whole annotation", ""));
  for (const attr of attributes) select.append(new Option(attr.name || attr.key, attr.key));
  select.value = attributes.some((x) => x.key === keep) ? keep : "";
  $("[data-attribute-row]").hidden = scope() !== "annotation" || !attributes.length;
}

function frames() {
  const from = $("[data-finding-from]").value, to = $("[data-finding-to]").value;
  if (from === "" && to === "") return null;
  const start = Number(from === "" ? to : from), end = Number(to === "" ? from : to);
  return [start, end];
}

async function addFinding(event) {
  event.preventDefault();
  const body = {
    type: $("[data-finding-type]").value,
    category: $("[data-finding-category]").value,
    note: $("[data-finding-note]").value.trim(),
  };
  const where = scope();
  if (where === "annotation") {
    const a = selectedAnnotation();
    if (!a) return ws.alarm("Select the annotation the finding is about (in the Annotations list).");
    body.annotation = a.id;
    body.attribute = $("[data-finding-attribute]").value;
  } else if (where === "sample") {
    body.sample = ws.sample().id;
    body.frames = frames();
  }
  const { ok, data } = await ws.call("POST", `/api/v1/audits/${A.id}/findings/`, body);
  if (!ok) return ws.alarm(`Not saved: ${ws.problem(data)}`);
  A.findings.push(data);
  $("[data-finding-note]").value = "";
  ws.state.pinAnnotation = null;
  delete form.dataset.touched;
  ws.alarm("");
  ws.say(`Finding added: ${A.types[data.type]} on ${pinnedTo(data)}.`);
  renderFindings();
  ws.refresh();
}

if (form) {
  if (!W.samples.length) form.querySelector("[data-scope][value='sample']").disabled = true;
  form.addEventListener("submit", addFinding);
  form.addEventListener("change", (event) => {
    if (event.target.matches("[data-scope]")) {
      form.dataset.touched = "true";
      if (event.target.value === "sample" && $("[data-finding-from]").value === "") {
        $("[data-finding-from]").value = ws.state.frame;
        $("[data-finding-to]").value = ws.state.frame;
      }
    }
    showTarget();
  });
  $("[data-finding-frame]").addEventListener("click", () => {
    $("[data-finding-from]").value = ws.state.frame;
    $("[data-finding-to]").value = ws.state.frame;
    form.querySelector("[data-scope][value='sample']").checked = true;
    showTarget();
  });
  document.addEventListener("workspace:render", showTarget);
}

// --- Fix annotations (standard audits) ------------------------------------------------------
const fix = $("[data-fix]");
if (fix) {
  fix.addEventListener("click", () => {
    A.fixing = true;
    W.editable = true;
    document.querySelectorAll("[data-fix-tools], [data-fix-only]").forEach((el) => { el.hidden = false; });
    const note = document.createElement("p");
    note.className = "muted";
    note.setAttribute("role", "status");
    note.textContent = "Fixing annotations: each change is recorded in this audit (Fix, below).";
    fix.replaceWith(note);
    ws.refresh();
    ws.say("Fix annotations: draw, edit or delete; each change is recorded in this audit. Accept when done.");
  });
}

renderFindings();
document.addEventListener("workspace:render", renderFindings);  // annotation labels, once loaded
showTarget();
