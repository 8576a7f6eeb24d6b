"""The quality page of a project (DESIGN.md §6): the four figures, their trend, tables per stage
and annotator, findings by category, the audited tasks behind them and a CSV of it all.

Managers and reviewers see everyone's figures; annotators see their own only (the annotator
filter is forced to them); outsiders get 404 from the project lookup.
"""

import csv
import io
from datetime import date, timedelta
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from core.access import Action, project_allows
from core.spreadsheet import csv_cell
from projects.selectors import project_get_for_user

from . import charts, quality_selectors, selectors
from .models import AuditFinding
from .quality_forms import QualityFilterForm, QualityFilters

INDICATORS = (
    ("first_pass_rate", "First-pass rate", "Reviews approved on the work's first attempt."),
    ("accuracy", "Accuracy", "Audited annotations found correct (missing ones count as wrong)."),
    ("consistency", "Consistency", "Agreement between annotators on the same samples."),
    ("completeness", "Completeness", "Samples carrying every required annotation."),
)
COUNT_KEYS = selectors.COUNT_KEYS
AUDITED_PER_PAGE = 50


def _filters(request, project) -> tuple[QualityFilterForm, QualityFilters, bool]:
    """The page's filters from the query string; ``sees_all`` is False for annotators, whose
    figures are always their own."""
    sees_all = project_allows(request.user, project, Action.REVIEW)
    choices = {
        "stages": quality_selectors.quality_stage_keys(project=project),
        "annotators": (quality_selectors.quality_annotators(project=project) if sees_all else None),
    }
    filters = QualityFilterForm(request.GET, **choices).filters()
    if not sees_all:
        filters.annotator = request.user.pk
    # The form shows what the figures are for: the defaults in place of what was left out.
    shown = QualityFilterForm(filters.query(), **choices)
    shown.is_valid()
    return shown, filters, sees_all


@require_GET
@login_required
def quality_page(request, slug):
    project = project_get_for_user(user=request.user, slug=slug, action=Action.VIEW)
    form, filters, sees_all = _filters(request, project)
    quality = selectors.project_quality(project=project, **filters.selector_kwargs())
    context = {
        "project": project,
        "form": form,
        "filters": filters,
        "sees_all": sees_all,
        "annotator_name": _annotator_name(form, filters, request.user, sees_all),
        "query": urlencode(filters.query()),
    }
    context |= _figures(project, filters, quality)
    return render(request, "audits/quality.html", context)


@require_GET
@login_required
def quality_audited(request, slug):
    """The audited tasks behind the figures (drill-down from the stage and annotator rows)."""
    project = project_get_for_user(user=request.user, slug=slug, action=Action.VIEW)
    form, filters, sees_all = _filters(request, project)
    audits = selectors.audited_tasks(
        project=project,
        stage=filters.stage,
        annotator=filters.annotator,
        start=filters.start,
        end=filters.end,
    )
    page = Paginator(audits, AUDITED_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "project": project,
        "form": form,
        "filters": filters,
        "sees_all": sees_all,
        "page": page,
        "annotator_name": _annotator_name(form, filters, request.user, sees_all),
        "query": urlencode(filters.query()),
    }
    return render(request, "audits/quality_audited.html", context)


@require_GET
@login_required
def quality_csv(request, slug):
    project = project_get_for_user(user=request.user, slug=slug, action=Action.VIEW)
    _, filters, _ = _filters(request, project)
    quality = selectors.project_quality(project=project, **filters.selector_kwargs())
    body = _csv(quality, filters)
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    name = f"quality-{project.slug}-{filters.start.isoformat()}-{filters.end.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _figures(project, filters: QualityFilters, quality: dict) -> dict:
    """The figures as the page shows them: cards, charts, and tables whose rows link to the
    audited tasks behind them."""
    periods = _periods(filters, quality["by_period"])
    findings = _findings(quality["errors_by_category"])
    for row in [*quality["by_stage"], *quality["by_annotator"]]:
        row["audited_url"] = _audited_url(project, filters, row, "user_id" in row)
    return {
        "quality": quality,
        "indicators": [
            {"key": key, "name": name, "help": help, "value": quality[key]}
            for key, name, help in INDICATORS
        ],
        "periods": periods,
        "trend_chart": _trend_chart(filters, periods),
        "findings": findings,
        "findings_chart": charts.bar_chart(
            label="Errors found by auditors, by category",
            width=320,
            bars=[(row["label"], row["count"]) for row in findings],
        ),
    }


def _audited_url(project, filters: QualityFilters, row: dict, per_annotator: bool) -> str:
    if per_annotator and row["user_id"] is None:
        return ""  # a removed user: nothing to narrow to
    narrow = {"annotator": row["user_id"]} if per_annotator else {"stage": row["key"]}
    query = filters.query(period=None, **narrow)
    return reverse("quality:audited", args=[project.slug]) + "?" + urlencode(query)


def _annotator_name(form, filters, user, sees_all) -> str:
    if filters.annotator is None:
        return ""
    if not sees_all:
        return user.get_username()
    return dict(form.fields["annotator"].choices).get(str(filters.annotator), "")


def _period_starts(filters: QualityFilters) -> list[date]:
    """Every period of the span, measured or not (a gap in the chart, not a missing tick)."""
    if filters.period == "day":
        first, step = filters.start, timedelta(days=1)
    else:
        first, step = filters.start - timedelta(days=filters.start.weekday()), timedelta(weeks=1)
    starts, day = [], first
    while day <= filters.end:
        starts.append(day)
        day += step
    return starts


def _periods(filters: QualityFilters, rows: list[dict]) -> list[dict]:
    measured = {row["key"]: row for row in rows}
    keys = sorted({d.isoformat() for d in _period_starts(filters)} | set(measured))
    empty = {key: None for key, _, _ in INDICATORS} | {"counts": dict.fromkeys(COUNT_KEYS, 0)}
    periods = []
    for key in keys:
        day = date.fromisoformat(key)
        periods.append(
            {
                "key": key,
                "date": day,
                "short": f"{day.day} {day:%b}",
                "title": (
                    f"{day.day} {day:%b %Y}"
                    if filters.period == "day"
                    else f"week of {day.day} {day:%b %Y}"
                ),
            }
            | empty
            | measured.get(key, {})
        )
    return periods


def _trend_chart(filters: QualityFilters, periods: list[dict]):
    span = f"{filters.start.day} {filters.start:%b %Y} – {filters.end.day} {filters.end:%b %Y}"
    return charts.line_chart(
        label=f"Quality {'per day' if filters.period == 'day' else 'per week'}, {span}",
        x_labels=[p["short"] for p in periods],
        x_titles=[p["title"] for p in periods],
        series=[charts.Series(name, [p[key] for p in periods]) for key, name, _ in INDICATORS],
    )


def _findings(errors_by_category: dict[str, int]) -> list[dict]:
    labels = dict(AuditFinding.Category.choices)
    return [
        {"category": key, "label": labels.get(key, key), "count": errors_by_category.get(key, 0)}
        for key in labels
    ]


def _csv(quality: dict, filters: QualityFilters) -> str:
    figures = [key for key, _, _ in INDICATORS]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["section", "key", "user_id", *figures, *COUNT_KEYS, "count"])

    def row(section: str, entry: dict, key, user_id=None) -> None:
        counts = entry["counts"]
        writer.writerow(
            [
                section,
                csv_cell(key),
                "" if user_id is None else user_id,
                *["" if entry[f] is None else entry[f] for f in figures],
                *[counts.get(c, 0) for c in COUNT_KEYS],
                "",
            ]
        )

    row("project", quality, f"{filters.start.isoformat()}..{filters.end.isoformat()}")
    for entry in quality["by_stage"]:
        row("stage", entry, entry["key"])
    for entry in quality["by_annotator"]:
        row("annotator", entry, entry["key"] or "(removed user)", entry["user_id"])
    for entry in quality["by_period"]:
        row(filters.period, entry, entry["key"])
    blank = [""] * (len(figures) + len(COUNT_KEYS))
    for category, n in quality["errors_by_category"].items():
        writer.writerow(["category", category, "", *blank, n])
    return buffer.getvalue()
