"""Annotation payloads checked against the blueprint's taxonomy (API.md shapes)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError as DjangoValidationError

from blueprints.spec import LabelClass
from core.exceptions import ApplicationError

from .models import Priority

if TYPE_CHECKING:
    from projects.models import Sample

LIMIT = 1e7  # coordinates and numbers beyond this are typos, and break geometry maths


def _number(value: Any, field: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApplicationError(f"{field} must be a number.", field=f"data.{field}")
    if not (-LIMIT <= value <= LIMIT) or not math.isfinite(float(value)):
        raise ApplicationError(
            f"{field} must be a number within ±10,000,000.", field=f"data.{field}"
        )
    if positive and value <= 0:
        raise ApplicationError(f"{field} must be more than 0.", field=f"data.{field}")
    return float(value)


def _frame(data: dict, field: str = "frame") -> int:
    value = data.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ApplicationError(
            f"{field} must be a frame number (0 or more).", field=f"data.{field}"
        )
    return value


def _camera(data: dict) -> None:
    camera = data.get("camera")
    if camera is not None and (not isinstance(camera, str) or len(camera) > 100):
        raise ApplicationError("camera is a camera's name.", field="data.camera")


def clean_data(cls: LabelClass, data: Any, sample: Sample | None = None) -> dict:
    """The annotation's geometry or value for its class kind, or a clear error.

    On a sample (``None`` for task-level labels) the camera and frames must be the
    sample's own: exporters look the frame up, and a missing one breaks them."""
    cleaned = _clean_data(cls, data)
    if sample is not None:
        _within_sample(cls, cleaned, sample)
    return cleaned


def _within_sample(cls: LabelClass, data: dict, sample: Sample) -> None:
    last = sample.num_frames - 1
    for key in ("frame", "start", "end"):
        if key in data and data[key] > last:
            raise ApplicationError(
                f"{sample.name} has frames 0–{last}; {key} {data[key]} is past its end.",
                field=f"data.{key}",
            )
    if cls.kind not in {"box", "polygon", "keypoint"}:
        return
    cameras = [c["name"] for c in sample.cameras]
    if not cameras:
        raise ApplicationError(
            f"{sample.name} has no camera images, so a {cls.kind} has nothing to sit on; "
            "label it with a segment or a classification instead.",
            field="data.camera",
        )
    camera = data.get("camera")
    if camera is not None and camera not in cameras:  # no camera means the first one
        raise ApplicationError(
            f"{sample.name} has no camera “{camera}” (cameras: {', '.join(cameras)}).",
            field="data.camera",
        )


def _clean_data(cls: LabelClass, data: Any) -> dict:
    if not isinstance(data, dict):
        raise ApplicationError("data must be an object.", field="data")
    kind = cls.kind
    if kind in {"box", "polygon", "keypoint"}:
        _camera(data)
    if kind == "box":
        _frame(data)
        for key in ("x", "y"):
            _number(data.get(key), key)
        for key in ("w", "h"):
            _number(data.get(key), key, positive=True)
        return {k: data[k] for k in ("frame", "camera", "x", "y", "w", "h") if k in data}
    if kind == "polygon":
        _frame(data)
        points = data.get("points")
        if not isinstance(points, list) or len(points) < 3:
            raise ApplicationError("points needs at least three [x, y] pairs.", field="data.points")
        for point in points:
            if not isinstance(point, list | tuple) or len(point) != 2:
                raise ApplicationError("each point is [x, y].", field="data.points")
            _number(point[0], "points")
            _number(point[1], "points")
        return {k: data[k] for k in ("frame", "camera", "points") if k in data}
    if kind == "keypoint":
        _frame(data)
        _number(data.get("x"), "x")
        _number(data.get("y"), "y")
        return {k: data[k] for k in ("frame", "camera", "x", "y") if k in data}
    if kind == "segment":
        start, end = _frame(data, "start"), _frame(data, "end")
        if end < start:
            raise ApplicationError("end must not come before start.", field="data.end")
        return {"start": start, "end": end}
    if kind == "classification":
        value = data.get("value")
        if value not in (cls.choices or []):
            choices = ", ".join(cls.choices or [])
            raise ApplicationError(f"value must be one of {choices}.", field="data.value")
        return {"value": value}
    text = data.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > 20_000:
        raise ApplicationError(
            "text must be non-empty text (at most 20,000 characters).", field="data.text"
        )
    return {"text": text}


def clean_attributes(cls: LabelClass, attributes: Any) -> dict:
    if attributes in (None, ""):
        attributes = {}
    if not isinstance(attributes, dict):
        raise ApplicationError("attributes must be an object.", field="attributes")
    known = {a.key: a for a in cls.attributes}
    cleaned = {}
    for key, value in attributes.items():
        attribute = known.get(key)
        if attribute is None:
            names = ", ".join(known) or "none"
            raise ApplicationError(
                f"{cls.key} has no attribute “{key}” (attributes: {names}).",
                field=f"attributes.{key}",
            )
        if value is None:
            continue
        if attribute.type == "choice" and value not in (attribute.choices or []):
            raise ApplicationError(
                f"{key} must be one of {', '.join(map(str, attribute.choices or []))}.",
                field=f"attributes.{key}",
            )
        if attribute.type == "boolean" and not isinstance(value, bool):
            raise ApplicationError(f"{key} is true or false.", field=f"attributes.{key}")
        if attribute.type == "number":
            number = _number(value, key)
            if attribute.min is not None and number < attribute.min:
                raise ApplicationError(
                    f"{key} must be at least {attribute.min:g}.", field=f"attributes.{key}"
                )
            if attribute.max is not None and number > attribute.max:
                raise ApplicationError(
                    f"{key} must be at most {attribute.max:g}.", field=f"attributes.{key}"
                )
        if attribute.type == "text" and not isinstance(value, str):
            raise ApplicationError(f"{key} is text.", field=f"attributes.{key}")
        cleaned[key] = value
    return cleaned


# ---------------------------------------------------------------- task items (bulk creation)
# The bulk API cleans up to 10,000 items a request. Running TaskInputSerializer on each costs
# about as much as writing the task (its 13 fields, their validators and error plumbing,
# per item); an ordinary item — a plain JSON object with values of the expected types — is
# cleaned here in one pass instead. Whatever this cannot vouch for (a numeric string where a
# number goes, a form's QueryDict, anything invalid) goes to the serializer's own fields, so
# the accepted payloads, the cleaned values and the error messages stay exactly DRF's.

_UNSAFE = re.compile("[\x00\ud800-\udfff]")  # DRF refuses null and surrogate characters
_SLOW = object()  # "let the serializer's field decide"


def _text(value: Any, limit: int | None = None, blank: bool = True) -> Any:
    """DRF CharField's value for a plain string (stripped), or _SLOW."""
    if type(value) is not str:
        return _SLOW
    value = value.strip()
    if (not value and not blank) or (limit is not None and len(value) > limit):
        return _SLOW
    if not value.isascii() and _UNSAFE.search(value) or "\x00" in value:
        return _SLOW
    return value


def _texts(value: Any) -> Any:
    """ListField(child=CharField()) for a list of non-blank plain strings, or _SLOW."""
    if type(value) is not list:
        return _SLOW
    out = [_text(v, blank=False) for v in value]
    return _SLOW if _SLOW in out else out


def _ints(value: Any) -> Any:
    if type(value) is not list or any(type(v) is not int for v in value):
        return _SLOW
    return list(value)


_PRIORITIES = frozenset(Priority.values)


def _priority(value: Any) -> Any:
    return value if type(value) is str and value in _PRIORITIES else _SLOW


_TASK_ITEM_FIELDS: dict[str, Callable[[Any], Any]] = {
    "project": lambda v: v if type(v) is int else _SLOW,
    "name": lambda v: _text(v, 300, blank=False),
    "blueprint": lambda v: _text(v, 200),
    "description": _text,
    "priority": _priority,
    "datasets": _ints,
    "annotators": _texts,
    "reviewers": _texts,
    "due_at": lambda v: None if v is None else _SLOW,
    "batch": lambda v: _text(v, 200),
    "metadata": lambda v: dict(v) if type(v) is dict else _SLOW,
    "callback_url": lambda v: _text(v, 1000),
    "unique_id": lambda v: _text(v, 200),
}


def task_item_clean(raw: Any, fields: Mapping[str, Any] | Sequence[tuple[str, Any]]) -> dict | None:
    """One bulk item cleaned as ``TaskInputSerializer`` (whose bound ``fields`` are given,
    or their ``list(fields.items())``, read once for many items: DRF's field mapping is slow
    to iterate) would clean it, without running the serializer; None when the item is not
    valid (or not a plain JSON object): the caller then runs the serializer for the item's
    errors."""
    from rest_framework.exceptions import ValidationError
    from rest_framework.fields import empty

    if type(raw) is not dict:
        return None
    out: dict[str, Any] = {}
    for name, field in fields.items() if isinstance(fields, Mapping) else fields:
        if name not in raw:
            if field.required:
                return None
            default = field.default  # Field.get_default(), without its per-call plumbing
            if default is not empty:
                out[name] = default() if callable(default) else default
            continue
        value = _TASK_ITEM_FIELDS[name](raw[name])
        if value is _SLOW:  # the serializer's field, alone: the same value or an error
            try:
                value = field.run_validation(raw[name])
            except (ValidationError, DjangoValidationError):
                return None
        out[name] = value
    return out
