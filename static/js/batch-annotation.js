// The task page's Batch annotation tab: one classification, segment or set of attribute
// values applied to the selected samples through POST /api/v1/tasks/{id}/annotations/batch/
// (the workspace's batch service), previewed first (dry_run: how many samples get it, which
// are skipped and why). The tab comes and goes with htmx: everything is wired per form.
const csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"];

function field(label, input) {
  const l = document.createElement("label");
  l.htmlFor = input.id;
  l.textContent = label;
  return [l, input];
}

function make(tag, props) { return Object.assign(document.createElement(tag), props); }

function wire(form) {
  if (form.dataset.wired) return;
  form.dataset.wired = "true";
  const data = JSON.parse(document.getElementById("batch-data").textContent);
  const stageSelect = form.querySelector("#batch-stage"), classSelect = form.querySelector("#batch-class");
  const fields = form.querySelector("[data-batch-fields]"), preview = form.querySelector("[data-batch-preview]");
  const apply = form.querySelector("[data-batch-apply]"), samples = form.querySelector("#sample-select");
  const stage = () => data.stages.find((s) => s.key === stageSelect.value);
  const cls = () => stage().classes[classSelect.value];
  let timer = null, asked = 0;

  function classes() {
    classSelect.innerHTML = "";
    for (const [key, c] of Object.entries(stage().classes)) classSelect.append(new Option(`${c.name} (${c.kind})`, key));
    render();
  }

  function render() {
    fields.innerHTML = "";
    const c = cls();
    const settable = c.kind === "classification" || c.kind === "segment";
    const only = make("input", { type: "checkbox", id: "batch-only-attributes", checked: !settable, disabled: !settable });
    if (c.kind === "classification") {
      const value = make("select", { id: "batch-value", name: "value" });
      for (const choice of c.choices) value.append(new Option(choice, choice));
      fields.append(...field("Value", value));
    } else if (c.kind === "segment") {
      fields.append(...field("From frame", make("input", { type: "number", min: 0, id: "batch-start", name: "start" })),
        ...field("to frame", make("input", { type: "number", min: 0, id: "batch-end", name: "end" })));
    }
    for (const a of c.attributes) {
      let input;
      if (a.type === "choice") {
        input = make("select", { id: `batch-attr-${a.key}` });
        for (const choice of ["", ...a.choices]) input.append(new Option(choice || "—", choice));
      } else input = make("input", { type: a.type === "boolean" ? "checkbox" : a.type === "number" ? "number" : "text", id: `batch-attr-${a.key}` });
      input.dataset.attribute = a.key;
      input.dataset.type = a.type;
      fields.append(...field(`${a.name || a.key}${a.required ? " *" : ""}`, input));
    }
    if (c.attributes.length) fields.append(only, make("label", { htmlFor: only.id, textContent: "Attribute values only (on the annotations the samples have)" }));
    ask();
  }

  function body(dryRun) {
    const c = cls(), attributes = {};
    fields.querySelectorAll("[data-attribute]").forEach((input) => {
      if (input.dataset.type === "boolean") attributes[input.dataset.attribute] = input.checked;
      else if (input.value !== "") attributes[input.dataset.attribute] = input.dataset.type === "number" ? Number(input.value) : input.value;
    });
    const out = { stage: stageSelect.value, label: classSelect.value, attributes, dry_run: dryRun,
      samples: [...samples.selectedOptions].map((o) => Number(o.value)) };
    const only = fields.querySelector("#batch-only-attributes");
    if (only && only.checked) return out;
    if (c.kind === "classification") out.data = { value: fields.querySelector("#batch-value").value };
    if (c.kind === "segment") {
      const start = fields.querySelector("#batch-start").value, end = fields.querySelector("#batch-end").value;
      if (start === "" || end === "") return null;
      out.data = { start: Number(start), end: Number(end) };
    }
    return out;
  }

  function problem(answer) {
    if (!answer) return "Something went wrong.";
    return answer.detail || Object.entries(answer).map(([k, v]) => `${k}: ${[].concat(v).join(" ")}`).join("; ");
  }

  async function send(payload) {
    try {
      const response = await fetch(`/api/v1/tasks/${data.task}/annotations/batch/`, {
        method: "POST", credentials: "same-origin", body: JSON.stringify(payload),
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
      });
      return { ok: response.ok, answer: await response.json().catch(() => null) };
    } catch (error) {
      return { ok: false, answer: { detail: "The server could not be reached; nothing was saved." } };
    }
  }

  function says(r) {
    const skipped = r.skipped.length ? ` Skipped ${r.skipped.length}: ${r.skipped.map((s) => `${s.name} (${s.reason})`).join(", ")}.` : "";
    return { count: r.count, skipped };
  }

  function ask() {
    clearTimeout(timer);
    apply.disabled = true;
    timer = setTimeout(async () => {
      const payload = body(true);
      if (!payload || !payload.samples.length) {
        preview.textContent = payload ? "Select samples to see how many get it." : "Set where the segment starts and ends.";
        apply.textContent = "Apply";
        return;
      }
      const mine = ++asked;
      const { ok, answer } = await send(payload);
      if (mine !== asked) return;  // a newer question is on its way
      if (!ok) { preview.textContent = `Cannot apply: ${problem(answer)}`; apply.textContent = "Apply"; return; }
      const { count, skipped } = says(answer);
      preview.textContent = `${classSelect.value} goes to ${count} sample${count === 1 ? "" : "s"}` +
        `${answer.changed ? ` (${answer.changed} changed)` : ""}.${skipped}`;
      apply.textContent = `Apply to ${count} sample${count === 1 ? "" : "s"}`;
      apply.disabled = count === 0;
    }, 200);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const payload = body(false);
    if (!payload) return;
    apply.disabled = true;
    const { ok, answer } = await send(payload);
    if (!ok) { preview.textContent = `Not saved: ${problem(answer)}`; return; }
    const done = new Set(answer.annotations.map((a) => a.sample));
    for (const option of samples.options) if (done.has(Number(option.value))) option.textContent = option.textContent.replace(/^○/, "✓");
    const { count, skipped } = says(answer);
    preview.textContent = `Applied ${classSelect.value} to ${count} sample${count === 1 ? "" : "s"}.${skipped}`;
    apply.textContent = "Apply";
  });
  stageSelect.addEventListener("change", classes);
  classSelect.addEventListener("change", render);
  fields.addEventListener("input", ask);
  fields.addEventListener("change", ask);
  samples.addEventListener("change", ask);
  classes();
}

function wireAll() { document.querySelectorAll("[data-batch-annotate]").forEach(wire); }
document.addEventListener("htmx:afterSettle", wireAll);
wireAll();
