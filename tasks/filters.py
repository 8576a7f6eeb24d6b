"""The one task filter: its keys, what each accepts, and how a request's words map to them.

The task list page, the API's list, batch actions and exports all read a filter through
``task_filter``; ``tasks.selectors.task_list_for_user`` applies it. A key added here is a
key everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from core.exceptions import ApplicationError

from .models import Priority, TaskStatus

ORDERINGS = ("-created_at", "created_at", "due_at", "-due_at", "-priority", "priority",
             "name", "-name")  # fmt: skip
# The page's URL uses shorter words for two keys.
ALIASES = {"q": "search", "sort": "ordering"}


def _id(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("must be an id")
    if isinstance(value, int) and 0 < value < 2**31:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and 0 < int(value) < 2**31:
        return int(value)
    raise ValueError("must be an id")


def _text(limit: int) -> Callable[[Any], str]:
    def clean(value: Any) -> str:
        if not isinstance(value, str) or len(value) > limit:
            raise ValueError(f"must be text of at most {limit} characters")
        return value.strip()

    return clean


def _choice(values) -> Callable[[Any], str]:
    def clean(value: Any) -> str:
        if value not in values:
            raise ValueError(f"must be one of {', '.join(values)}")
        return value

    return clean


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError("must be a date (YYYY-MM-DD)") from None


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("1", "true", "on", "yes"):
        return True
    if value in ("0", "false", "off", "no", ""):
        return False
    raise ValueError("must be true or false")


FILTERS: dict[str, Callable[[Any], Any]] = {
    "project": _id,
    "status": _choice(TaskStatus.values),
    "search": _text(200),
    "assignee": _text(150),
    "reviewer": _text(150),
    "priority": _choice(Priority.values),
    "batch": _text(200),
    "due_after": _date,
    "due_before": _date,
    "overdue": _flag,
    "ordering": _choice(ORDERINGS),
}


def task_filter(
    raw: Mapping[str, Any] | None, *, strict: bool = True, left_out: list[str] | None = None
) -> dict[str, Any]:
    """A filter for ``task_list_for_user`` from what a client sent.

    Strict (the API, batch actions, exports): an unknown key or a bad value is a 400 naming
    it. Lenient (the page's URL): keys it does not know and bad values are left out — each
    bad value said in ``left_out`` — so an edited address never breaks the list. Empty values
    mean "no filter".
    """
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ApplicationError("filter is an object of task filters.", field="filter")
    cleaned: dict[str, Any] = {}
    for word, value in raw.items():
        key = ALIASES.get(word, word)
        if key not in FILTERS:
            if strict:
                known = ", ".join(FILTERS)
                raise ApplicationError(f"Unknown filter “{word}” (known: {known}).", field=word)
            continue
        if value in (None, "") or (isinstance(value, list | tuple) and not value):
            continue
        try:
            cleaned[key] = FILTERS[key](value)
        except ValueError as exc:
            if strict:
                raise ApplicationError(f"{word} {exc}.", field=word) from None
            if left_out is not None:
                left_out.append(f"{word} “{value}” {exc}")
    if cleaned.get("overdue") is False:
        del cleaned["overdue"]
    return cleaned


def filter_as_json(filters: Mapping[str, Any]) -> dict[str, Any]:
    """A cleaned filter in a form that can be stored (dates as ISO text)."""
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in filters.items()}
