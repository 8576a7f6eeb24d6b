// Drawing and editing by keyboard. In the focused drawing area (Tab to it) the arrow keys
// move a cross-hair (an image pixel; Shift: ten) and Enter places: a box's two corners, a
// keypoint, a polygon's corners (Enter again on the last one closes it); Esc drops a shape
// half drawn. A selected polygon's corners: [ and ] choose one (the arrows then move it),
// Delete deletes it, Insert adds one after it.
import { $, W, alarm, say, state } from "./core.js";
import { create } from "./annotations.js";
import { addCorner, closePolygon, corner, deleteCorner, drawOverlay, insertCorner, pointIn } from "./canvas.js";
import { currentKind } from "./panels.js";

const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

export function keys(event) {
  const a = state.annotations.find((x) => x.id === state.selected);
  if (a && a.kind === "polygon" && W.editable) {
    const n = a.data.points.length, i = corner(a);
    if (event.key === "[" || event.key === "]") {
      state.vertex = { id: a.id, i: ((i ?? (event.key === "]" ? -1 : 0)) + (event.key === "]" ? 1 : n - 1)) % n };
      say(`Corner ${state.vertex.i + 1} of ${n}: the arrows move it, Delete deletes it, Insert adds one after it.`);
      drawOverlay();
      return true;
    }
    if (i !== null && (event.key === "Delete" || event.key === "Backspace")) return deleteCorner(a), true;
    if (i !== null && event.key === "Insert") return insertCorner(a), true;
    if (i !== null && event.key === "Escape") { state.vertex = null; drawOverlay(); return true; }
  }
  const svg = event.target.closest && event.target.closest("svg.overlay");
  const kind = currentKind();
  if (!svg || !W.editable || !["box", "polygon", "keypoint"].includes(kind)) return false;
  const camera = svg.dataset.camera, view = svg.viewBox.baseVal;
  let c = state.cursor;
  if (ARROWS[event.key] && !state.selected) {
    if (c && c.camera === camera) {
      const [dx, dy] = ARROWS[event.key].map((v) => v * (event.shiftKey ? 10 : 1));
      c.x = Math.min(Math.max(c.x + dx, 0), view.width);
      c.y = Math.min(Math.max(c.y + dy, 0), view.height);
    } else {  // the first press shows the cross-hair in the middle of what is on screen
      const b = svg.getBoundingClientRect(), s = $("[data-stage]").getBoundingClientRect();
      const p = pointIn(svg, { clientX: (Math.max(b.left, s.left) + Math.min(b.right, s.right)) / 2, clientY: (Math.max(b.top, s.top) + Math.min(b.bottom, s.bottom)) / 2 });
      c = state.cursor = { camera, x: Math.round(p.x), y: Math.round(p.y) };
      state.corner = null;
    }
    svg.setAttribute("aria-description", `Cross-hair at ${c.x},${c.y}`);
    drawOverlay();
    return true;
  }
  if (event.key === "Escape" && (state.corner || state.polygon.length)) {
    state.corner = null;
    state.polygon = [];
    say("Dropped the shape being drawn.");
    drawOverlay();
    return true;
  }
  if (event.key !== "Enter" || !c || c.camera !== camera) return false;
  const { x, y } = c;
  if (kind === "keypoint") create({ frame: state.frame, camera, x, y });
  else if (kind === "polygon") {
    const last = state.polygon.at(-1);
    if (last && last[0] === x && last[1] === y && state.polygonCamera === camera) closePolygon();
    else addCorner(camera, x, y);
  } else if (!state.corner) {
    state.corner = { x, y };
    say(`Box corner at ${x},${y}: move to the opposite corner and press Enter.`);
    drawOverlay();
  } else {
    const k = state.corner;
    state.corner = null;
    if (x === k.x || y === k.y) alarm("A box needs a width and a height: move the cross-hair away from its first corner.");
    else create({ frame: state.frame, camera, x: Math.min(x, k.x), y: Math.min(y, k.y), w: Math.abs(x - k.x), h: Math.abs(y - k.y) });
  }
  return true;
}
