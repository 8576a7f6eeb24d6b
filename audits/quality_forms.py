"""The quality page's filters: a GET form whose invalid values fall back to the defaults, each
with a sentence saying what was left out (never an error page)."""

from dataclasses import dataclass, field
from datetime import date, timedelta

from django import forms
from django.core import validators
from django.utils import timezone

PERIODS = (("week", "By week"), ("day", "By day"))
DEFAULT_WEEKS = 8
DEFAULT_DAYS = 28
MAX_DAYS = 186  # a daily chart longer than this is a blur: weeks then
MAX_SPAN = 5 * 366


@dataclass
class QualityFilters:
    period: str
    start: date
    end: date
    stage: str | None = None
    annotator: int | None = None
    problems: list[str] = field(default_factory=list)

    def selector_kwargs(self) -> dict:
        return {
            "period": self.period,
            "start": self.start,
            "end": self.end,
            "stage": self.stage,
            "annotator": self.annotator,
        }

    def query(self, **override) -> dict[str, str]:
        """The filters as GET parameters (for links that keep them), with ``override``."""
        values = {
            "period": self.period,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "stage": self.stage or "",
            "annotator": "" if self.annotator is None else str(self.annotator),
        } | {key: "" if value is None else str(value) for key, value in override.items()}
        return {key: value for key, value in values.items() if value}


def default_start(period: str, end: date) -> date:
    if period == "day":
        return end - timedelta(days=DEFAULT_DAYS - 1)
    monday = end - timedelta(days=end.weekday())
    return monday - timedelta(weeks=DEFAULT_WEEKS - 1)


NOT_A_CHOICE = {"invalid_choice": "not one of the choices"}
NOT_A_DATE = {"invalid": "not a date like 2026-11-02"}
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)
IN_RANGE = [
    validators.MinValueValidator(EARLIEST, "not a date between 2000 and 2100"),
    validators.MaxValueValidator(LATEST, "not a date between 2000 and 2100"),
]
DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class QualityFilterForm(forms.Form):
    period = forms.ChoiceField(
        choices=PERIODS, required=False, label="Period", error_messages=NOT_A_CHOICE
    )
    start = forms.DateField(
        required=False, label="From", widget=DATE, error_messages=NOT_A_DATE, validators=IN_RANGE
    )
    end = forms.DateField(
        required=False, label="To", widget=DATE, error_messages=NOT_A_DATE, validators=IN_RANGE
    )
    stage = forms.ChoiceField(required=False, label="Stage", error_messages=NOT_A_CHOICE)
    annotator = forms.TypedChoiceField(
        required=False,
        label="Annotator",
        coerce=int,
        empty_value=None,
        error_messages=NOT_A_CHOICE,
    )

    def __init__(self, data, *, stages: list[str], annotators: list[tuple[int, str]] | None):
        super().__init__(data)
        self.fields["stage"].choices = [("", "All stages"), *[(k, k) for k in stages]]
        if annotators is None:  # annotators see their own figures only
            del self.fields["annotator"]
        else:
            self.fields["annotator"].choices = [
                ("", "Everyone"),
                *[(str(pk), name) for pk, name in annotators],
            ]

    def filters(self, *, today: date | None = None) -> QualityFilters:
        """The valid filters, each invalid value replaced by its default and named in
        ``problems``."""
        self.is_valid()
        today = today or timezone.localdate()
        data = {name: self.cleaned_data.get(name) for name in self.fields}
        problems = []
        for name, errors in self.errors.items():
            raw = str(self.data.get(name, ""))
            raw = raw if len(raw) <= 40 else raw[:39] + "…"
            label = self.fields[name].label
            problems.append(f"{label} “{raw}” left out: {' '.join(errors)}.")
            data[name] = None
        period = data["period"] or "week"
        end = data["end"] or today
        start = data["start"]
        if start is not None and start > end:
            problems.append(
                f"From ({start.isoformat()}) is after To ({end.isoformat()}): "
                "showing the default span instead."
            )
            start, end = None, today
        start = start or default_start(period, end)
        if (end - start).days > MAX_SPAN:
            problems.append("At most five years at once: showing the last five years of the span.")
            start = end - timedelta(days=MAX_SPAN)
        if period == "day" and (end - start).days >= MAX_DAYS:
            problems.append(f"By day shows at most {MAX_DAYS} days: showing weeks instead.")
            period = "week"
        return QualityFilters(
            period=period,
            start=start,
            end=end,
            stage=data["stage"] or None,
            annotator=data.get("annotator"),
            problems=problems,
        )
