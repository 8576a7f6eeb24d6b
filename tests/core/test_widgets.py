"""core.widgets.PlainWidgetRenderer writes what Django's own widget templates write."""

import datetime

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates

from core.widgets import PLAIN_WIDGETS

NASTY = '<b>"Tom\'s" & co</b>'


class Everything(forms.Form):
    text = forms.CharField(required=False, max_length=20)
    number = forms.IntegerField(required=False, min_value=0)
    day = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    when = forms.DateTimeField(required=False)
    hidden = forms.CharField(required=False, widget=forms.HiddenInput)
    secret = forms.CharField(required=False, widget=forms.PasswordInput(render_value=True))
    email = forms.EmailField(required=False)
    flag = forms.BooleanField(required=False)
    choice = forms.ChoiceField(
        required=False, choices=[("", "Any"), ("a", NASTY), (3, "three"), ("d", "dee")]
    )
    grouped = forms.ChoiceField(
        required=False,
        choices=[("", "none"), (NASTY, [("x", "ex"), ("y", NASTY)]), ("Plain", [("z", "zed")])],
    )
    many = forms.MultipleChoiceField(required=False, choices=[("a", "A"), ("b", NASTY)])
    typed = forms.TypedChoiceField(coerce=int, required=False, choices=[("", "All"), (1, "one")])
    # Not written by core.widgets: handed to Django's templates.
    radio = forms.ChoiceField(required=False, choices=[("r", NASTY)], widget=forms.RadioSelect)
    area = forms.CharField(required=False, widget=forms.Textarea)


def drawn(data, renderer) -> list[str]:
    form = Everything(data, renderer=renderer)
    form.is_valid()
    return [str(form[name]) for name in form.fields]


@pytest.mark.parametrize(
    "data",
    [
        None,
        {},
        {"text": NASTY, "number": "12", "day": "2026-02-03", "when": "2026-02-03 04:05",
         "hidden": NASTY, "secret": NASTY, "email": "a@b.c", "flag": "on", "choice": "a",
         "grouped": "y", "many": ["a", "b"], "typed": "1", "radio": "r", "area": NASTY},
        {"text": "x" * 30, "number": "-1", "day": "not a day", "choice": "3", "grouped": NASTY,
         "typed": "nope", "flag": ""},
    ],
)  # fmt: skip
def test_it_writes_what_djangos_templates_write(data):
    assert drawn(data, PLAIN_WIDGETS) == drawn(data, DjangoTemplates())


def test_it_writes_initial_values_and_dates_as_django_does():
    class Initial(forms.Form):
        day = forms.DateField(initial=datetime.date(2026, 1, 2))
        at = forms.DateTimeField(initial=datetime.datetime(2026, 1, 2, 3, 4, tzinfo=datetime.UTC))
        pick = forms.ChoiceField(choices=[(1, 1), (2, 2.5)], initial=2)

    plain, django = Initial(renderer=PLAIN_WIDGETS), Initial(renderer=DjangoTemplates())
    assert [str(f) for f in plain] == [str(f) for f in django]


def test_the_task_filter_form_draws_its_widgets_without_the_template_engine():
    from tasks.forms import TaskFilterForm

    form = TaskFilterForm({"q": NASTY}, projects=[])
    assert form.renderer is PLAIN_WIDGETS
    assert str(form["q"]) == (
        '<input type="text" name="q" value="&lt;b&gt;&quot;Tom&#x27;s&quot; &amp; co&lt;/b&gt;"'
        ' maxlength="200" id="id_q">'
    )
