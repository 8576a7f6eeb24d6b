"""Per-day rollups of the quality figures' sums (``QualityDay``), rebuilt only for the days
whose measurements changed (``QualityDirty``).

The services that write measurement rows call :func:`quality_touch` with the days their
change lands on (a row's day is its date in the current time zone: ``created_at`` of review
outcomes and agreement scores, ``completed_at`` of audits, their work and findings,
``submitted_at`` of stage runs); whatever changes rows in bulk touches the whole project.
:func:`quality_refresh`, called by ``audits.selectors.project_quality`` before it reads,
takes the project's markers and recomputes those days with one grouped pass over each
measurement table (the queries the selector used to run on every read, grouped by day).

A touch writes its marker in the writer's transaction and once more after it commits: a
refresh that took the marker while the writer was still running then cannot have read the
change and dropped its marker (the second insert brings the marker back).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, F, Min, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from projects.models import Project
from tasks.models import StageRun, Task

from .models import (
    AgreementScore,
    Audit,
    AuditedWork,
    AuditFinding,
    QualityDay,
    QualityDirty,
    ReviewOutcome,
)

CATEGORIES: tuple[str, ...] = tuple(AuditFinding.Category.values)
MISSING = AuditFinding.Category.MISSING

# A filter on the field that dates a table's rows (``created_at``, ``completed_at``, …).
When = Callable[[str], Q]


def period_bounds(
    start: dt.date | None, end: dt.date | None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Aware [from, until) times of the inclusive dates, in the current time zone."""
    tz = timezone.get_current_timezone()
    since = dt.datetime.combine(start, dt.time.min, tzinfo=tz) if start else None
    until = None
    if end is not None and end < dt.date.max:
        until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return since, until


def in_period(field: str, since: dt.datetime | None, until: dt.datetime | None) -> Q:
    q = Q()
    if since is not None:
        q &= Q(**{f"{field}__gte": since})
    if until is not None:
        q &= Q(**{f"{field}__lt": until})
    return q


def _on_days(days: Iterable[dt.date]) -> When:
    """Rows dated on any of ``days``: one range per run of consecutive days."""
    runs: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if runs and runs[-1][1] + dt.timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))

    def when(field: str) -> Q:
        q = Q(pk__in=[])  # no days, no rows
        for start, end in runs:
            q |= in_period(field, *period_bounds(start, end))
        return q

    return when


class _Sources:
    """The measurement rows of a project that count, narrowed by ``when`` their date."""

    def __init__(self, *, project: Project | int, when: When) -> None:
        self.reviews = ReviewOutcome.objects.filter(when("created_at"), project=project, first=True)
        self.work = AuditedWork.objects.filter(when("completed_at"), project=project, current=True)
        self.findings = AuditFinding.objects.filter(
            when("audit__completed_at"),
            # Said of the audit too (true of every current finding) so that the audits' index
            # (project, status, completed_at) finds a day's audits.
            audit__project=project,
            audit__status=Audit.Status.COMPLETED,
            project=project,
            current=True,
            counts=True,
            type=AuditFinding.Type.ERROR,
            audit__task__deleted_at__isnull=True,  # a deleted task counts no more
        )
        self.agreements = AgreementScore.objects.filter(when("created_at"), project=project)
        # Runs with something measured: samples to annotate, or QC flags.
        self.runs = StageRun.objects.filter(
            when("submitted_at"),
            Q(samples_total__gt=0) | ~Q(qc_flags=[]),
            project=project,
            # A run reopened for rework keeps its last measurement but has no submission
            # time (no period) until it is submitted again and measured anew.
            submitted_at__isnull=False,
        )
        self.audits = Audit.objects.filter(
            when("completed_at"),
            project=project,
            status=Audit.Status.COMPLETED,
            current=True,
            task__deleted_at__isnull=True,
        )


# The aggregates of each table, by the QualityDay columns they fill.
def _review_sums() -> dict[str, Any]:
    return {"reviewed": Count("pk"), "first_pass": Count("pk", filter=Q(accepted=True))}


def _work_sums() -> dict[str, Any]:
    return {"units": Count("pk"), "audited_annotations": Sum("annotations")}


def _finding_sums(findings: QuerySet) -> dict[str, Any]:
    """E counts each annotation once: of the findings naming it, only the first (a hashed
    ``IN`` over MIN(id) per annotation, cheaper than COUNT(DISTINCT), which sorts). An
    annotation has one stage, one author and one current audit (one day), so these counts
    add up over days, stages and people."""
    not_missing = ~Q(category=MISSING)
    first_per_annotation = (
        findings.filter(not_missing, annotation__isnull=False)
        .order_by()
        .values("annotation")
        .annotate(first=Min("pk"))
        .values("first")
    )
    sums: dict[str, Any] = {
        "errors": Count(
            "pk",
            filter=not_missing
            & (Q(annotation__isnull=True) | Q(pk__in=Subquery(first_per_annotation))),
        ),
        "missing": Count("pk", filter=Q(category=MISSING)),
    }
    for category in CATEGORIES:
        sums[f"category_{category}"] = Count("pk", filter=Q(category=category))
    return sums


def _agreement_sums(prefix: str = "") -> dict[str, Any]:
    return {f"{prefix}pairs": Count("pk"), f"{prefix}score_sum": Sum("score")}


def _run_sums() -> dict[str, Any]:
    sampled = Q(samples_total__gt=0)
    return {
        "samples_total": Sum("samples_total", filter=sampled),
        "samples_complete": Sum("samples_complete", filter=sampled),
        "qc_flags": Count("pk", filter=~Q(qc_flags=[])),
    }


def _day_rows(project: Project, when: When) -> list[QualityDay]:
    """The QualityDay rows of the days ``when`` selects: each table grouped by
    (stage, person, day), one query each."""
    src = _Sources(project=project, when=when)
    tz = timezone.get_current_timezone()
    rows: dict[tuple[int, str, int | None, dt.date], dict[str, Any]] = defaultdict(dict)

    def grouped(
        queryset: QuerySet,
        dated: str,
        sums: dict[str, Any],
        *,
        person: str | None = "annotator_id",
        stage: str | None = "stage_key",
        scope: int = QualityDay.MEASURED,
    ) -> None:
        fields = [f for f in (stage, person) if f is not None]
        queryset = queryset.order_by().annotate(qday=TruncDate(dated, tzinfo=tz))
        # Aggregates are named ``n_<column>``: a field's own name would make a filter on the
        # field read the aggregate.
        named = {f"n_{name}": aggregate for name, aggregate in sums.items()}
        for row in queryset.values(*fields, "qday").annotate(**named):
            key = (scope, row[stage] if stage else "", row[person] if person else None)
            values = rows[(*key, row["qday"])]
            for name in sums:
                values[name] = values.get(name, 0) + (row[f"n_{name}"] or 0)

    grouped(src.reviews, "created_at", _review_sums())
    grouped(src.work, "completed_at", _work_sums())
    grouped(src.findings, "audit__completed_at", _finding_sums(src.findings))
    grouped(src.runs, "submitted_at", _run_sums(), person="assignee_id")
    same = Q(annotator_a=F("annotator_b"))  # a pair of one person (counted once for them)
    # A pair's score counts once for the project, its stage and day (credited to its first
    # person) and for each of the two people in it.
    grouped(src.agreements, "created_at", _agreement_sums(), person="annotator_a_id")
    grouped(
        src.agreements,
        "created_at",
        _agreement_sums("partner_")
        | {"self_pairs": Count("pk", filter=same), "self_score_sum": Sum("score", filter=same)},
        person="annotator_b_id",
    )
    # An audit covers several stages and people: distinct audits per day, per stage and
    # per person, for the totals of a project narrowed to a stage or to a person.
    distinct = {"audits": Count("audit", distinct=True)}
    grouped(src.audits, "completed_at", {"audits": Count("pk")}, person=None, stage=None,
            scope=QualityDay.AUDITS)  # fmt: skip
    grouped(src.work, "completed_at", distinct, person=None, scope=QualityDay.STAGE_AUDITS)
    grouped(src.work, "completed_at", distinct, stage=None, scope=QualityDay.PERSON_AUDITS)
    return [
        QualityDay(
            project=project, scope=scope, stage_key=stage, person_id=person, day=day, **values
        )
        for (scope, stage, person, day), values in rows.items()
    ]


def quality_touch(
    project_id: int, days: Iterable[dt.date | dt.datetime | None] | None = None
) -> None:
    """Mark ``days`` of the project (dates, or aware times: their date in the current time
    zone; None entries are skipped) to be rebuilt before the next read; ``days=None`` marks
    the whole project."""
    marked: list[dt.date | None] = [None]
    if days is not None:
        dates = {timezone.localdate(d) if isinstance(d, dt.datetime) else d for d in days if d}
        if not dates:
            return
        marked = [*sorted(dates)]

    def insert() -> None:
        QualityDirty.objects.bulk_create(
            [QualityDirty(project_id=project_id, day=day) for day in marked],
            ignore_conflicts=True,
        )

    insert()
    if connection.in_atomic_block:
        transaction.on_commit(insert)


def quality_touch_tasks(task_ids: Iterable[int]) -> None:
    """Mark the whole of each project these tasks belong to (rows moved in bulk)."""
    projects = Task.objects.filter(pk__in=list(task_ids)).values_list("project_id", flat=True)
    for project_id in sorted(set(projects)):
        quality_touch(project_id)


def quality_today(project_id: int) -> None:
    """Mark today (the current time zone) of the project."""
    quality_touch(project_id, [timezone.localdate()])


def quality_refresh(project: Project) -> None:
    """Rebuild the project's QualityDay rows of the days marked dirty (all of them when the
    whole project is), and take the marks. One query when nothing is dirty."""
    markers = QualityDirty.objects.filter(project=project)
    if markers.exists():
        with transaction.atomic():
            _refresh(project, markers)


def _refresh(project: Project, markers: QuerySet[QualityDirty]) -> None:
    # The marks are locked: a second refresh of the project waits, then finds them gone.
    # Only the marks read are taken (one added meanwhile stays for the next refresh).
    taken = list(markers.select_for_update().values_list("pk", "day"))
    if not taken:  # another refresh took them
        return
    QualityDirty.objects.filter(pk__in=[pk for pk, _ in taken]).delete()
    days = [day for _, day in taken]
    rollups = QualityDay.objects.filter(project=project)
    if None in days:
        when: When = lambda field: Q()  # noqa: E731
    else:
        ours = [d for d in days if d is not None]
        when = _on_days(ours)
        rollups = rollups.filter(day__in=ours)
    new = _day_rows(project, when)
    rollups.delete()
    QualityDay.objects.bulk_create(new, batch_size=2000)


def quality_rebuild(project: Project) -> None:
    """Rebuild all the project's rollups now."""
    quality_touch(project.pk)
    quality_refresh(project)
