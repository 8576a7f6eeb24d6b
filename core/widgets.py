"""Form widgets written without the template engine, for forms drawn on busy pages.

Django draws every widget through its template engine: a ``<select>`` is one template, an
include per option and another per option's attributes. The task list's filter form (ten
widgets, one a select of every project) spent about a millisecond a page there.
``PlainWidgetRenderer`` writes the markup of Django's own ``input.html`` (and the templates
that only include it), ``select.html`` and ``select_option.html`` with string formatting —
the same characters, escaped as the templates escape them — and hands any other template
(a form's layout, radio lists, a template a project overrides) to Django's renderer.
``tests/core/test_widgets.py`` compares both renderers on every widget it writes.
"""

from django.forms.renderers import DjangoTemplates
from django.utils.formats import localize
from django.utils.html import conditional_escape
from django.utils.timezone import template_localtime

WIDGETS = "django/forms/widgets/"
# Django's widget templates that are nothing but ``{% include "…/input.html" %}``.
INPUTS = frozenset(
    f"{WIDGETS}{name}.html"
    for name in ("input", "checkbox", "color", "date", "datetime", "email", "file", "hidden",
                 "number", "password", "search", "tel", "text", "time", "url")
)  # fmt: skip
SELECT, OPTION = f"{WIDGETS}select.html", f"{WIDGETS}select_option.html"


def _string(value) -> str:
    """``{{ value|stringformat:'s' }}``: ``%s`` of the value, escaped (the filter's result is
    never safe)."""
    return conditional_escape(str(value))


def _value(value) -> str:
    """``{{ value }}``: localized, then escaped unless it is safe already."""
    return conditional_escape(localize(template_localtime(value)))


def _attrs(attrs: dict) -> str:
    """``attrs.html``: `` name="value"`` each, a bare name for True, nothing for False."""
    return "".join(
        f" {_value(name)}" if value is True else f' {_value(name)}="{_string(value)}"'
        for name, value in attrs.items()
        if value is not False
    )


def _input(widget: dict) -> str:
    value = widget["value"]
    shown = "" if value is None else f' value="{_string(value)}"'
    return (
        f'<input type="{_value(widget["type"])}" '
        f'name="{_value(widget["name"])}"{shown}{_attrs(widget["attrs"])}>'
    )


def _option(option: dict) -> str:
    return (
        f'<option value="{_string(option["value"])}"{_attrs(option["attrs"])}>'
        f"{_value(option['label'])}</option>\n"  # the template file's last line break
    )


def _select(widget: dict) -> str | None:
    parts = [f'<select name="{_value(widget["name"])}"{_attrs(widget["attrs"])}>']
    for group_name, options, _index in widget["optgroups"]:
        if group_name:
            parts.append(f'\n  <optgroup label="{_value(group_name)}">')
        for option in options:
            if option["template_name"] != OPTION:
                return None  # a custom option template: Django draws the whole select
            parts.append(f"\n  {_option(option)}")
        if group_name:
            parts.append("\n  </optgroup>")
    parts.append("\n</select>")
    return "".join(parts)


class PlainWidgetRenderer(DjangoTemplates):
    """Django's renderer, but inputs and selects are written by string formatting (what
    the templates would write; the renderer strips it the same way). Share one instance
    (``Form.default_renderer = PLAIN_WIDGETS``): a class there is instantiated per form,
    and each instance builds its own template engine for the templates it hands on."""

    def render(self, template_name, context, request=None):
        widget = context.get("widget") if isinstance(context, dict) else None
        if widget is not None:
            if template_name in INPUTS:
                return _input(widget)
            if template_name == SELECT and (written := _select(widget)) is not None:
                return written
        return super().render(template_name, context, request=request)


PLAIN_WIDGETS = PlainWidgetRenderer()
