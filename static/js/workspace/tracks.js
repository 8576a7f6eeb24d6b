// Tracks: one object across frames. Its keyframes are saved annotations sharing a track id;
// the frames between are interpolated here exactly as tasks/tracks.py does for the exports
// (same arithmetic, same doubles). Hide and lock are this page's view of a track: a locked
// track's keyframes are not moved, reshaped or deleted here (api.js refuses the write).
import { updateAnnotation } from "./api.js";
import { $, W, alarm, button, onSample, sample, say, state } from "./core.js";
import { create } from "./annotations.js";
import { showFrame } from "./canvas.js";

const KINDS = ["box", "keypoint", "polygon"];
state.hiddenTracks = new Set();
state.lockedTracks = new Set();

const lerp = (a, b, t) => a + (b - a) * t;
export function interpolate(kind, before, after, frame) {
  const t = (frame - before.frame) / (after.frame - before.frame), d = { frame };
  if ("camera" in before) d.camera = before.camera;
  if (kind !== "polygon") for (const k of kind === "box" ? ["x", "y", "w", "h"] : ["x", "y"]) d[k] = lerp(before[k], after[k], t);
  else if (before.points.length !== after.points.length) d.points = before.points.map((p) => [...p]);
  else d.points = before.points.map((p, i) => [lerp(p[0], after.points[i][0], t), lerp(p[1], after.points[i][1], t)]);
  return d;
}

// The tracks of this sample: track id → its valid keyframes in frame order.
function tracks() {
  const out = new Map();
  for (const a of state.annotations) {
    if (!a.track || !KINDS.includes(a.kind) || a.invalid || !onSample(a) || a.sample === null) continue;
    const key = `${a.stage}/${a.replica}/${a.track}`;
    if (!out.has(key)) out.set(key, []);
    out.get(key).push(a);
  }
  for (const keys of out.values()) keys.sort((x, y) => x.data.frame - y.data.frame);
  return out;
}

// The track's shape on ``frame``: its keyframe, or interpolated between two (null outside).
function at(keys, frame) {
  const i = keys.findIndex((a) => a.data.frame >= frame);
  if (i < 0) return null;
  if (keys[i].data.frame === frame) return keys[i].data;
  return i ? interpolate(keys[0].kind, keys[i - 1].data, keys[i].data, frame) : null;
}

// What the canvas draws besides the saved shapes: each visible track between its keyframes.
export function between() {
  const out = [];
  for (const keys of tracks().values()) {
    if (state.hiddenTracks.has(keys[0].track) || keys.some((a) => a.data.frame === state.frame)) continue;
    const data = at(keys, state.frame);
    if (data) out.push({ ...keys[0], id: `~${keys[0].track}`, data, interpolated: true });  // never selected
  }
  return out;
}
export const hiddenTrack = (a) => state.hiddenTracks.has(a.track);

// A new keyframe of ``a``'s track on ``frame``, shaped as the track is on ``from`` (past its
// ends: as its nearest keyframe). An annotation without a track starts one (its id).
async function keyframe(a, keys, frame, from = frame) {
  if (frame >= sample().frames) return alarm("There is no next frame.");
  if (keys.some((k) => k.data.frame === frame)) return go(frame);
  let track = a.track;
  if (!track && !(await updateAnnotation(a, { track: (track = String(a.id)) }))) return;
  const near = from < keys[0].data.frame ? keys[0] : keys.at(-1);
  const data = { ...(at(keys, from) || near.data), frame };
  const made = await create(data, { body: { stage: a.stage, label: a.label, sample: a.sample, data, attributes: a.attributes, track } });
  if (made) { state.selected = made.id; go(frame); }
}
const go = (frame) => { state.frame = frame; showFrame(); };

function toggle(set, track, on, off) {
  set.has(track) ? set.delete(track) : set.add(track);
  say(set.has(track) ? on : off);
  render();
  showFrame();
}

// The Tracks list under the annotations, and each track's lane under the segments timeline.
function render() {
  const list = $("[data-annotations]"), timeline = $("[data-timeline]");
  if (!list || !timeline || !Object.values(W.classes).some((c) => KINDS.includes(c.kind))) return;
  if (!$("[data-tracks]")) {
    list.insertAdjacentHTML("afterend", '<h3>Tracks</h3><ul class="plain annotation-list" data-tracks aria-label="Tracks of this sample"></ul>');
    timeline.insertAdjacentHTML("afterend", '<svg class="timeline" data-track-lanes preserveAspectRatio="none" role="img" aria-label="Tracks timeline"></svg>');
    $("[data-track-lanes]").addEventListener("click", (e) => e.target.dataset.frame && go(Number(e.target.dataset.frame)));
  }
  const box = $("[data-tracks]"), lanes = $("[data-track-lanes]"), all = [...tracks().values()];
  const x = (f) => (f / Math.max(1, sample().frames - 1)) * 600, mine = (a) => W.editable && a.stage === W.stage;
  box.innerHTML = "";
  const row = (keys, name, track) => {
    const a = keys.at(-1), item = document.createElement("li"), hidden = state.hiddenTracks.has(track), locked = state.lockedTracks.has(track);
    item.append(`${name}: ${track ? `keyframes ${keys.map((k) => k.data.frame).join(", ")}` : "no track yet"} `);
    if (mine(a) && !locked) {
      item.append(button("Keyframe here", () => keyframe(a, keys, state.frame), { label: `Keyframe of ${name} here` }), " ",
        button("Copy to next frame", () => keyframe(a, keys, state.frame + 1, state.frame), { label: `Copy ${name} to the next frame` }), " ");
    }
    if (track) {
      item.append(button(hidden ? "Show" : "Hide", () => toggle(state.hiddenTracks, track, `Hid ${name}.`, `Showing ${name}.`), { label: `${hidden ? "Show" : "Hide"} ${name}` }), " ",
        button(locked ? "Unlock" : "Lock", () => toggle(state.lockedTracks, track, `Locked ${name}.`, `Unlocked ${name}.`), { label: `${locked ? "Unlock" : "Lock"} ${name}` }));
    }
    box.append(item);
    return hidden ? "#9fb3c8" : locked ? "#52606d" : "#e4572e";
  };
  // A lane per track: a line from its first keyframe to its last, a mark (click: go) on each.
  lanes.innerHTML = all.map((keys, i) => {
    const f = keys.map((k) => k.data.frame), colour = row(keys, `${keys[0].label} track ${keys[0].track}`, keys[0].track);
    return `<path d="M${x(f[0])} ${i * 10 + 5}H${x(f.at(-1))}" stroke="${colour}" vector-effect="non-scaling-stroke"/>`
      + f.map((v) => `<rect x="${x(v) - 2}" y="${i * 10 + 1}" width="4" height="8" fill="${colour}" data-frame="${v}"/>`).join("");
  }).join("");
  lanes.setAttribute("viewBox", `0 0 600 ${10 * all.length}`);
  lanes.style.cssText = all.length ? `height: ${10 * all.length}px` : "display: none";
  // The selected shape with no track yet: its keyframe here (or on the next frame) starts one.
  const a = state.annotations.find((x) => x.id === state.selected && KINDS.includes(x.kind) && !x.track && onSample(x));
  if (a && a.sample !== null) row([a], `${a.label} #${a.id}`, "");
}
document.addEventListener("workspace:render", render);
