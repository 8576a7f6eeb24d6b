// The API client: every URL the workspace calls, and the one place that answers a stale
// edit (409): the screen then shows both versions, yours and the saved one.
import { W, alarm, describe, problem, state } from "./core.js";

const csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"];
const task = `/api/v1/tasks/${W.task}`;

export const urls = {
  annotations: `${task}/annotations/`,
  annotation: (id) => `${task}/annotations/${id}/`,
  comments: `${task}/comments/`,
  resolve: (id) => `${task}/comments/${id}/resolve/`,
  invalidSample: (sampleId) => `${task}/samples/${sampleId}/invalid/`,
  sync: `${task}/samples/sync/`,
  review: `${task}/stages/${W.stage}/review/`,
  submit: `${task}/stages/${W.stage}/submit/`,
  series: (sampleId) => `/api/v1/samples/${sampleId}/series/?max_points=600`,
  frame: (sampleId, camera, f) => `/api/v1/samples/${sampleId}/frames/${encodeURIComponent(camera)}/${f}/`,
};

export async function call(method, url, body) {
  // On the audit page, Fix annotations: every annotation write names the audit (a fix).
  if (W.audit && W.audit.fixing && method !== "GET" && url.startsWith(urls.annotations)) {
    if (method === "DELETE") url += `${url.includes("?") ? "&" : "?"}audit=${W.audit.id}`;
    else body = { ...(body || {}), audit: W.audit.id };
  }
  // A reviewer's fix in place (a review with allow_fixes): edits and deletes name the review.
  if ((W.fixes || []).length && (method === "DELETE" || (method === "PATCH" && !("invalid" in body))) && url.startsWith(urls.annotations)) {
    if (method === "DELETE") url += `${url.includes("?") ? "&" : "?"}review=${W.stage}`;
    else body = { ...(body || {}), review: W.stage };
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

// Someone else saved this annotation since it was loaded: nothing was written. Say so with
// both versions, and take theirs into the state (the next edit starts from it).
function conflict(a, data, verb, mine) {
  const theirs = data && data.current;
  const yours = mine ? ` Yours: ${describe({ ...a, ...mine })}${mine.attributes ? ` ${JSON.stringify(mine.attributes)}` : ""}.` : "";
  let saved = "";
  if (theirs) {
    saved = ` Saved (version ${theirs.version}): ${describe(theirs)} ${JSON.stringify(theirs.attributes)}.`;
    Object.assign(a, theirs);
  } else if (data && data.version) {
    saved = ` The saved one is version ${data.version}; reload to see it.`;
  }
  alarm(`Conflict: someone changed this annotation (${a.label} #${a.id}) meanwhile; nothing was ${verb}.${yours}${saved}`);
}

// A keyframe of a track locked in the Tracks list is not changed from this page (tracks.js).
function locked(a) {
  if (!state.lockedTracks || !state.lockedTracks.has(a.track)) return false;
  alarm(`${a.label} track ${a.track} is locked: unlock it in Tracks to change it.`);
  return true;
}

// PATCH an annotation with the version it was loaded at. ``a`` takes the answer (or, on a
// conflict, the saved version). Returns whether it was saved; the reason is on screen.
export async function updateAnnotation(a, fields, { quiet = false } = {}) {
  if (locked(a)) return false;
  const { ok, status, data } = await call("PATCH", urls.annotation(a.id), { version: a.version, ...fields });
  if (status === 409) { conflict(a, data, "overwritten", fields); return false; }
  if (!ok) { if (!quiet) alarm(`Not saved: ${problem(data)}`); return false; }
  Object.assign(a, data);
  return true;
}

export async function deleteAnnotation(a) {
  if (locked(a)) return false;
  const { ok, status, data } = await call("DELETE", `${urls.annotation(a.id)}?version=${a.version}`);
  if (status === 409) { conflict(a, data, "deleted"); return false; }
  if (!ok) { alarm(`Not deleted: ${problem(data)}`); return false; }
  state.annotations = state.annotations.filter((x) => x.id !== a.id);
  return true;
}

export async function createAnnotation(body) {
  const { ok, data } = await call("POST", urls.annotations, body);
  if (!ok) { alarm(`Not saved: ${problem(data)}`); return null; }
  state.annotations.push(data);
  return data;
}

export async function loadAnnotationList() {
  const { ok, data } = await call("GET", urls.annotations);
  if (ok) state.annotations = data;
  else alarm(`The annotations could not be loaded: ${problem(data)} Reload the page.`);
  return ok;
}
