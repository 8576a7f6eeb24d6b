"""Quality figures of a project (DESIGN.md §6, API.md ``GET /projects/{id}/quality/``).

Every figure is aggregate SQL over the measurement rows the services store when work is
done (``audits.models``, ``StageRun``); nothing here loops over rows. Each figure is a
fraction rounded to 4 places, or None when its denominator is 0.

- **first_pass_rate** = ReviewOutcome rows with ``first`` and ``accepted`` ÷ rows with
  ``first`` (the first decision on a run's first attempt). Period by ``created_at``.
- **accuracy** = (N − E) / (N + M), never below 0, where N = Σ ``AuditedWork.annotations``
  of current audits (the unit's latest completed audit); E = counted error findings
  (``type="error"``, ``counts`` — accepted, or settled and upheld — and ``current``) other
  than ``missing``, as distinct annotations plus the findings that name no annotation; M =
  counted ``missing`` findings (work that should exist, so the denominator grows). Period
  by ``AuditedWork.completed_at`` and the finding's ``audit.completed_at``. Known answer: 40
  audited annotations with 6 accepted errors → 34/40 = 0.85; one missing more → 34/41.
  ``errors_by_category`` counts the counted current error findings per category.
- **consistency** = mean ``AgreementScore.score`` (box IoU, temporal IoU, Krippendorff's
  alpha): an annotator's figure averages the pairs they are either side of. Alpha is below
  0 when annotators disagree more than chance would, so this mean can be too.
- **completeness** = Σ ``samples_complete`` ÷ Σ ``samples_total`` over the stage runs of the
  project's tasks that had samples to annotate (``samples_total > 0``); period by
  ``submitted_at``, annotator by ``assignee``. ``qc_flags`` counts the runs whose warn
  checks failed on submit.

Stage filters and groups by ``stage_key`` and annotator by the denormalised ``annotator``
(on ReviewOutcome, AuditedWork and AuditFinding). Periods are whole days in the current
time zone, ``start`` and ``end`` inclusive; ``by_period`` keys are the first day of the day
or ISO week (Monday).

``counts.audits`` of the project and of each period is the number of distinct current
audits; in ``by_stage`` and ``by_annotator`` an audit that looked at two stages or two
people's work counts for each of them, so there it counts audited units of work (one
audit × stage × annotator, the AuditedWork rows).

Queries stay few and constant (eight, with or without ``by_period``): one pass over each
table grouped by (stage, person[, period]), merged in Python into the total, ``by_stage``,
``by_annotator`` and ``by_period`` (sums and counts add up; an annotation has one stage,
one author and one current audit, so distinct annotations add up too), a second pass over
agreement scores for their other person, one count of audits and one of usernames.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Literal

from django.contrib.auth import get_user_model
from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce, TruncDay, TruncWeek
from django.utils import timezone

from projects.models import Project
from tasks.models import StageRun

from .models import AgreementScore, Audit, AuditedWork, AuditFinding, ReviewOutcome

Period = Literal["day", "week"]
PERIODS: tuple[str, ...] = ("day", "week")
FIGURES = ("first_pass_rate", "accuracy", "consistency", "completeness")
COUNT_KEYS = (
    "reviewed",
    "first_pass",
    "audits",
    "audited_annotations",
    "errors",
    "missing",
    "agreement_pairs",
    "samples_total",
    "samples_complete",
    "qc_flags",
)
CATEGORIES: tuple[str, ...] = tuple(AuditFinding.Category.values)
MISSING = AuditFinding.Category.MISSING


def _fraction(numerator: float, denominator: float) -> float | None:
    if not denominator:
        return None
    return round(numerator / denominator, 4)


class _Tally:
    """Sums behind the figures of one group (the project, a stage, an annotator, a period)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(COUNT_KEYS, 0)
        self.score_sum = 0.0

    def add(self, row: dict[str, Any], keys: Iterable[str]) -> None:
        """Add the row's ``n_<key>`` sums to the counts."""
        for key in keys:
            self.counts[key] += row[f"n_{key}"] or 0

    def figures(self) -> dict[str, Any]:
        c = self.counts
        audited = c["audited_annotations"]
        accuracy = _fraction(max(audited - c["errors"], 0), audited + c["missing"])
        return {
            "first_pass_rate": _fraction(c["first_pass"], c["reviewed"]),
            "accuracy": accuracy,
            "consistency": _fraction(self.score_sum, c["agreement_pairs"]),
            "completeness": _fraction(c["samples_complete"], c["samples_total"]),
            "counts": dict(c),
        }


def _bounds(
    start: dt.date | None, end: dt.date | None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Aware [from, until) times of the inclusive dates, in the current time zone."""
    tz = timezone.get_current_timezone()
    since = dt.datetime.combine(start, dt.time.min, tzinfo=tz) if start else None
    until = None
    if end is not None and end < dt.date.max:
        until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return since, until


def _in_period(field: str, since: dt.datetime | None, until: dt.datetime | None) -> Q:
    q = Q()
    if since is not None:
        q &= Q(**{f"{field}__gte": since})
    if until is not None:
        q &= Q(**{f"{field}__lt": until})
    return q


class _Sources:
    """The filtered querysets of one call, each with the field that dates its rows."""

    def __init__(
        self,
        *,
        project: Project,
        start: dt.date | None,
        end: dt.date | None,
        stage: str | None,
        annotator: int | None,
    ) -> None:
        since, until = _bounds(start, end)
        on_stage = Q(stage_key=stage) if stage is not None else Q()
        by = Q(annotator_id=annotator) if annotator is not None else Q()

        self.reviews = ReviewOutcome.objects.filter(
            on_stage, by, _in_period("created_at", since, until), project=project, first=True
        )
        self.work = AuditedWork.objects.filter(
            on_stage, by, _in_period("completed_at", since, until), project=project, current=True
        )
        self.findings = AuditFinding.objects.filter(
            on_stage,
            by,
            _in_period("audit__completed_at", since, until),
            project=project,
            current=True,
            counts=True,
            type=AuditFinding.Type.ERROR,
        )
        either = Q()
        if annotator is not None:
            either = Q(annotator_a_id=annotator) | Q(annotator_b_id=annotator)
        self.agreements = AgreementScore.objects.filter(
            on_stage, either, _in_period("created_at", since, until), project=project
        )
        # Runs with something measured: samples to annotate, or QC flags.
        self.runs = StageRun.objects.filter(
            on_stage,
            Q(assignee_id=annotator) if annotator is not None else Q(),
            _in_period("submitted_at", since, until),
            Q(samples_total__gt=0) | ~Q(qc_flags=[]),
            task__project=project,
            # A run reopened for rework keeps its last measurement but has no submission
            # time (no period) until it is submitted again and measured anew.
            submitted_at__isnull=False,
        )
        self.audits = Audit.objects.filter(
            _in_period("completed_at", since, until),
            project=project,
            status=Audit.Status.COMPLETED,
            current=True,
        )
        if stage is not None or annotator is not None:
            self.audits = self.audits.filter(Exists(self.work.filter(audit=OuterRef("pk"))))


# The aggregates of each table, named ``n_<count>`` after the counts they fill (not the
# field's own name: a filter on the field would then read the aggregate).
def _review_sums() -> dict[str, Any]:
    return {"n_reviewed": Count("pk"), "n_first_pass": Count("pk", filter=Q(accepted=True))}


def _work_sums() -> dict[str, Any]:
    return {"n_units": Count("pk"), "n_audited_annotations": Sum("annotations")}


def _finding_sums(findings: QuerySet) -> dict[str, Any]:
    """E counts each annotation once: of the findings naming it, only the first (a hashed
    ``IN`` over MIN(id) per annotation, cheaper than COUNT(DISTINCT), which sorts)."""
    not_missing = ~Q(category=MISSING)
    first_per_annotation = (
        findings.filter(not_missing, annotation__isnull=False)
        .order_by()
        .values("annotation")
        .annotate(first=Min("pk"))
        .values("first")
    )
    sums: dict[str, Any] = {
        "n_errors": Count(
            "pk",
            filter=not_missing
            & (Q(annotation__isnull=True) | Q(pk__in=Subquery(first_per_annotation))),
        ),
        "n_missing": Count("pk", filter=Q(category=MISSING)),
    }
    for category in CATEGORIES:
        sums[f"category_{category}"] = Count("pk", filter=Q(category=category))
    return sums


def _agreement_sums() -> dict[str, Any]:
    return {"n_agreement_pairs": Count("pk"), "score_sum": Sum("score")}


def _run_sums() -> dict[str, Any]:
    sampled = Q(samples_total__gt=0)
    return {
        "n_samples_total": Sum("samples_total", filter=sampled),
        "n_samples_complete": Sum("samples_complete", filter=sampled),
        "n_qc_flags": Count("pk", filter=~Q(qc_flags=[])),
    }


def _period_key(value: dt.datetime | dt.date) -> str:
    if isinstance(value, dt.datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
        value = value.date()
    return value.isoformat()


def project_quality(
    *,
    project: Project,
    period: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    stage: str | None = None,
    annotator: int | None = None,
) -> dict[str, Any]:
    """The quality figures of ``project`` (see the module docstring), narrowed to the dates
    ``start``–``end`` (inclusive), a stage key and an annotator's user id; ``period``
    (``"day"`` or ``"week"``) adds ``by_period``."""
    if period is not None and period not in PERIODS:
        raise ValueError(f"period must be one of {PERIODS}, not {period!r}")
    src = _Sources(project=project, start=start, end=end, stage=stage, annotator=annotator)
    trunc = {"day": TruncDay, "week": TruncWeek}.get(period or "")
    total = _Tally()
    stages: dict[str, _Tally] = defaultdict(_Tally)
    people: dict[int | None, _Tally] = defaultdict(_Tally)
    buckets: dict[str, _Tally] = defaultdict(_Tally)
    keys: dict[Any, str] = {}  # bucket value → its day, converted once per call

    def period_of(value: dt.datetime | dt.date) -> _Tally:
        if value not in keys:
            keys[value] = _period_key(value)
        return buckets[keys[value]]

    def grouped(queryset: QuerySet, person: str, dated: str, sums: dict[str, Any]):
        """One pass over a table, grouped by (stage, person[, period]); yields each row
        with the tallies it adds to."""
        fields = ["stage_key", person]
        if trunc is not None:
            queryset = queryset.annotate(bucket=trunc(dated))
            fields.append("bucket")
        for row in queryset.order_by().values(*fields).annotate(**sums):
            tallies = [total, stages[row["stage_key"]], people[row[person]]]
            if trunc is not None:
                tallies.append(period_of(row["bucket"]))
            yield row, tallies

    for row, tallies in grouped(src.reviews, "annotator_id", "created_at", _review_sums()):
        for tally in tallies:
            tally.add(row, ("reviewed", "first_pass"))
    for row, tallies in grouped(src.work, "annotator_id", "completed_at", _work_sums()):
        for tally in tallies:
            tally.add(row, ("audited_annotations",))
            tally.counts["audits"] += row["n_units"]
    findings = grouped(
        src.findings, "annotator_id", "audit__completed_at", _finding_sums(src.findings)
    )
    by_category = dict.fromkeys(CATEGORIES, 0)  # for the project only
    for row, tallies in findings:
        for tally in tallies:
            tally.add(row, ("errors", "missing"))
        for category in CATEGORIES:
            by_category[category] += row[f"category_{category}"]
    run_keys = ("samples_total", "samples_complete", "qc_flags")
    for row, tallies in grouped(src.runs, "assignee_id", "submitted_at", _run_sums()):
        for tally in tallies:
            tally.add(row, run_keys)
    # A pair's score counts once for the project, its stage and period, and for each of
    # the two people in it.
    for side in ("annotator_a_id", "annotator_b_id"):
        for row, tallies in grouped(src.agreements, side, "created_at", _agreement_sums()):
            for tally in tallies if side == "annotator_a_id" else [people[row[side]]]:
                tally.add(row, ("agreement_pairs",))
                tally.score_sum += row["score_sum"] or 0.0
    # An audit covers several stages and people: the project's (and each period's) count
    # is of distinct audits, read from the audits themselves.
    total.counts["audits"] = 0
    audits = src.audits.order_by()
    if trunc is None:
        total.counts["audits"] = audits.count()
    else:
        for tally in buckets.values():
            tally.counts["audits"] = 0
        for row in audits.values(bucket=trunc("completed_at")).annotate(n=Count("pk")):
            period_of(row["bucket"]).counts["audits"] = row["n"]
            total.counts["audits"] += row["n"]

    if annotator is not None:  # agreement partners are not the annotator asked about
        people = defaultdict(_Tally, {annotator: people[annotator]})
    names = dict(
        get_user_model()
        .objects.filter(pk__in=[pk for pk in people if pk is not None])
        .values_list("pk", "username")
    )
    by_annotator = [
        {"key": names.get(pk) if pk is not None else None, "user_id": pk} | tally.figures()
        for pk, tally in people.items()
    ]
    by_annotator.sort(key=lambda e: (e["key"] is None, e["key"] or "", e["user_id"] or 0))
    return total.figures() | {
        "errors_by_category": by_category,
        "by_stage": [{"key": key} | stages[key].figures() for key in sorted(stages)],
        "by_annotator": by_annotator,
        "by_period": [{"key": key} | buckets[key].figures() for key in sorted(buckets)],
    }


def audited_tasks(
    *,
    project: Project,
    stage: str | None = None,
    annotator: int | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> QuerySet[Audit]:
    """The current completed audits behind the accuracy figure, newest first, for drilling
    down: each with its task (``task_id``, ``task.name``), ``stage_key``, ``auditor``,
    ``completed_at`` and ``errors`` (its counted error findings). Narrowed like the
    figures: a stage or annotator keeps the audits that looked at their work. Slice or
    paginate it; the error count is a correlated subquery, so a page costs one query."""
    since, until = _bounds(start, end)
    audits = Audit.objects.filter(
        _in_period("completed_at", since, until),
        project=project,
        current=True,
        status=Audit.Status.COMPLETED,
    )
    if stage is not None or annotator is not None:
        work = AuditedWork.objects.filter(audit=OuterRef("pk"))
        if stage is not None:
            work = work.filter(stage_key=stage)
        if annotator is not None:
            work = work.filter(annotator_id=annotator)
        audits = audits.filter(Exists(work))
    errors = AuditFinding.objects.filter(
        audit=OuterRef("pk"), type=AuditFinding.Type.ERROR, counts=True
    )
    return (
        audits.annotate(
            errors=_count_subquery(errors),
            task_name=F("task__name"),
        )
        .select_related("auditor")
        .order_by("-completed_at", "-id")
    )


def _count_subquery(queryset: QuerySet) -> Coalesce:
    counted = queryset.order_by().values("audit").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)
