// Pre-labels (imported labels, a model's predictions): dashed, with a "pre" badge, until the
// annotator accepts them (Accept, or any edit) or deletes them; Accept all / Delete all.
// Submit refuses a stage that still has some (the server says so).
import { call } from "./api.js";
import { $, W, alarm, button, describe, problem, say, state } from "./core.js";
import { renderAnnotations, renderSamples } from "./panels.js";
import { drawOverlay } from "./canvas.js";

const waiting = () => state.annotations.filter((a) => a.source === "prelabel" && a.stage === W.stage);
const plural = (n) => `${n} pre-label${n === 1 ? "" : "s"}`;

async function resolve(action, ids) {
  const url = `/api/v1/tasks/${W.task}/stages/${encodeURIComponent(W.stage)}/prelabels/`;
  const { ok, data } = await call("POST", url, ids ? { action, ids } : { action });
  const done = action === "accept" ? "Accepted" : "Deleted";
  if (!ok) return alarm(`Not ${done.toLowerCase()}: ${problem(data)}`);
  for (const fresh of data.annotations) Object.assign(state.annotations.find((a) => a.id === fresh.id) || {}, fresh);
  if (action === "delete") state.annotations = state.annotations.filter((a) => !data.ids.includes(a.id));
  say(`${done} ${plural(data.count)}.`);
  renderSamples(); renderAnnotations(); drawOverlay();
}

// The annotation list's hook, per item: the badge (where it came from on hover) and Accept.
export function prelabelItem(a, item) {
  if (a.source !== "prelabel") return;
  item.classList.add("prelabel");
  const badge = document.createElement("span");
  badge.className = "badge prelabel-badge";
  badge.textContent = "pre";
  badge.title = `Pre-label${a.source_detail ? ` from ${a.source_detail}` : ""}: accept, edit or delete it`;
  item.prepend(badge, " ");
  if (W.editable && a.stage === W.stage) {
    item.append(" ", button("Accept", () => resolve("accept", [a.id]), { label: `Accept pre-label ${a.label} ${describe(a)}` }));
  }
}

// Above the list: the stage's pre-labels still waiting (all samples), Accept all / Delete all.
export function prelabelBar(list) {
  let bar = $("[data-prelabels]");
  if (!bar) {
    bar = document.createElement("div");
    bar.dataset.prelabels = "";
    bar.className = "prelabel-bar";
    bar.setAttribute("role", "group");
    bar.setAttribute("aria-label", "Pre-labels");
    list.before(bar);
  }
  const n = waiting().length;
  bar.hidden = n === 0;
  bar.textContent = "";
  if (!n) return;
  bar.append(`${plural(n)} to check (dashed, marked “pre”). `);
  if (!W.editable) return;
  const remove = () => { if (window.confirm(`Delete all ${plural(n)} of this stage?`)) resolve("delete"); };
  bar.append(button(`Accept all pre-labels (${n})`, () => resolve("accept"), { className: "" }), " ",
    button(`Delete all pre-labels (${n})`, remove, { className: "link danger" }));
}
