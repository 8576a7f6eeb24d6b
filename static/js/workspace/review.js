// Review per annotation: the reviewer accepts or rejects each annotation (the Comment field
// says why) or marks one missing here; everyone sees the verdicts on the annotations of the
// stage they concern, and the missing marks listed. Loaded by the page only where needed.
import { call } from "./api.js";
import { drawOverlay } from "./canvas.js";
import { $, W, alarm, button, problem, sample, say, state } from "./core.js";
import { goTo, loadComments } from "./panels.js";

const base = `/api/v1/tasks/${W.task}`;
let verdicts = [];

async function load() {
  const { ok, data } = await call("GET", `${base}/annotation-reviews/?stage=${W.stage}`);
  if (ok) verdicts = data;
  // The canvas draws a rejected annotation distinctly (a red dashed outline).
  state.rejected = new Set(verdicts.filter((v) => v.annotation && v.verdict === "rejected").map((v) => v.annotation));
  show();
  drawOverlay();
}

async function judge(body) {
  const field = $("[data-comment]");
  const comment = field.value.trim();
  if (body.verdict !== "accept" && !comment) return alarm("Write in Comment what is wrong or missing first.");
  const { ok, data } = await call("POST", `${base}/stages/${W.stage}/verdicts/`, { comment, ...body });
  if (!ok) return alarm(`Not saved: ${problem(data)}`);
  field.value = "";
  say(`${data.label}: ${data.verdict}.`);
  await load();
  await loadComments();
}

function show() {
  const open = verdicts.filter((v) => v.verdict !== "accepted");
  state.flagged = open.length;
  const byId = new Map(verdicts.filter((v) => v.annotation).map((v) => [v.annotation, v]));
  document.querySelectorAll("[data-annotations] li[data-annotation]").forEach((item) => {
    item.querySelector(".verdict")?.remove();
    const id = Number(item.dataset.annotation), v = byId.get(id);
    const box = document.createElement("span");
    box.className = "verdict";
    if (v) {
      const tag = document.createElement("strong");
      tag.className = v.verdict === "rejected" ? "field-error verdict-rejected" : "muted";
      tag.textContent = ` ${v.verdict === "rejected" ? "Rejected" : "Accepted"} by ${v.reviewer || "—"}`;
      box.append(tag);
    }
    item.classList.toggle("rejected", v?.verdict === "rejected");
    if (W.review) {
      const what = item.querySelector("button.label")?.textContent || "annotation";
      // "Needs fix" (a reject): the stage's own Reject button keeps its unique name.
      box.append(" ", button("Accept", () => judge({ verdict: "accept", annotation: id }), { label: `Accept ${what} #${id}` }),
        " ", button("Needs fix", () => judge({ verdict: "reject", annotation: id }), { label: `Needs fix: ${what} #${id}`, className: "link danger" }));
    }
    if (box.childNodes.length) item.append(box);
  });
  const list = $("[data-missing]");
  if (!list) return;
  list.innerHTML = "";
  const marks = open.filter((v) => !v.annotation);
  list.hidden = !marks.length;
  for (const m of marks) {
    const item = document.createElement("li");
    const name = (W.samples.find((s) => s.id === m.sample) || {}).name || "";
    item.textContent = `Missing ${m.label} (${m.stage}) on ${name}${m.frame !== null ? `, frame ${m.frame}` : ""}: ${m.comment ? m.comment.body : ""} `;
    item.append(button("Go to", () => goTo({ sample: m.sample, frame: m.frame })));
    if (W.review) item.append(" ", button("Withdraw", () => judge({ verdict: "accept", mark: m.id })));
    list.append(item);
  }
}

document.addEventListener("workspace:render", show);
$("[data-mark-missing]")?.addEventListener("click", () =>
  judge({ verdict: "missing", label: $("[data-missing-label]").value, sample: sample().id, frame: state.frame }));
load();
