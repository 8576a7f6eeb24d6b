"""Tracks: one object labelled on several frames.

The annotations of a task that share a ``track`` id are the track's keyframes; only they
are stored. Between two consecutive keyframes every frame's shape is interpolated linearly
(boxes, keypoints, and polygons whose keyframes have as many vertices; a polygon whose
vertex count changes keeps the earlier keyframe's shape until the next one). The track
starts at its first keyframe and ends at its last. ``static/js/workspace/tracks.js``
mirrors ``interpolate`` with the same arithmetic, so what the canvas draws between
keyframes is what an export writes (the browser test compares them)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Protocol

TRACKED_KINDS = frozenset({"box", "keypoint", "polygon"})


class Keyframe(Protocol):
    stage_key: str
    replica: int
    sample_id: int | None
    kind: str
    track: str
    data: Any
    invalid: bool


def _lerp(a: float, b: float, t: float) -> float:
    # The same expression, in the same order, as tracks.js: identical doubles both sides.
    return a + (b - a) * t


def interpolate(kind: str, before: dict, after: dict, frame: int) -> dict:
    """The shape of a ``kind`` track at ``frame``, strictly between the keyframes
    ``before`` and ``after`` (their ``data``): each coordinate moves linearly from one to
    the other; the camera is the earlier keyframe's."""
    start, end = before["frame"], after["frame"]
    t = (frame - start) / (end - start)
    shape: dict[str, Any] = {"frame": frame}
    if "camera" in before:
        shape["camera"] = before["camera"]
    if kind == "box":
        for key in ("x", "y", "w", "h"):
            shape[key] = _lerp(before[key], after[key], t)
    elif kind == "keypoint":
        for key in ("x", "y"):
            shape[key] = _lerp(before[key], after[key], t)
    elif kind == "polygon":
        if len(before["points"]) == len(after["points"]):
            shape["points"] = [
                [_lerp(p[0], q[0], t), _lerp(p[1], q[1], t)]
                for p, q in zip(before["points"], after["points"], strict=True)
            ]
        else:
            shape["points"] = [list(p) for p in before["points"]]
    else:
        raise ValueError(f"a {kind} is not tracked")
    return shape


def _is_keyframe(a: Keyframe) -> bool:
    frame = a.data.get("frame") if isinstance(a.data, dict) else None
    return (
        bool(a.track)
        and a.kind in TRACKED_KINDS
        and not a.invalid
        and isinstance(frame, int)
        and not isinstance(frame, bool)
    )


def _between[Row: Keyframe](keyframe: Row, data: dict) -> Row:
    # A copy of the earlier keyframe (class, attributes, version) with no id: it is not
    # stored. Works for Annotation instances and the exporters' AnnotationRow alike.
    row = copy.copy(keyframe)
    row.pk = None  # type: ignore[attr-defined]
    row.data = data
    return row


def expand_tracks[Row: Keyframe](annotations: Sequence[Row]) -> list[Row]:
    """``annotations`` with every track's in-between frames added: after each valid
    keyframe that has a later one, one row per frame up to (not including) the next
    keyframe, a copy of the earlier keyframe with the interpolated data and no id
    (``pk`` None: computed, not stored). Everything else
    (untracked, invalid, other kinds) passes through in its place. A track is keyed by
    its stage, replica, sample and id; two keyframes on one frame: the first one wins."""
    tracks: dict[tuple, list[Row]] = {}
    for a in annotations:
        if _is_keyframe(a):
            tracks.setdefault((a.stage_key, a.replica, a.sample_id, a.track), []).append(a)
    following: dict[int, Row] = {}  # id() of a keyframe → the next keyframe of its track
    for rows in tracks.values():
        keyframes = sorted(rows, key=lambda k: k.data["frame"])
        for before, after in zip(keyframes, keyframes[1:], strict=False):
            if after.data["frame"] > before.data["frame"] + 1:
                following[id(before)] = after
    if not following:
        return list(annotations)
    out: list[Row] = []
    for a in annotations:
        out.append(a)
        nxt = following.get(id(a))
        if nxt is not None:
            out.extend(
                _between(a, interpolate(a.kind, a.data, nxt.data, frame))
                for frame in range(a.data["frame"] + 1, nxt.data["frame"])
            )
    return out
