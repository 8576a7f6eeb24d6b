"""Presentation of audit-trail values: readable words instead of Python reprs."""

from typing import Any

from django import template

from activity.models import verb_label as _verb_label

register = template.Library()

EMPTY = "—"


@register.filter
def readable(value: Any) -> str:
    """A stored value as a person reads it: lists joined with commas, booleans as yes/no,
    nothing as a dash."""
    if value is None or value == "" or value == [] or value == {}:
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(readable(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key}: {readable(item)}" for key, item in value.items())
    return str(value)


@register.filter
def verb_label(verb: str) -> str:
    """``dataset.import_started`` → ``dataset import started``."""
    return _verb_label(str(verb))
