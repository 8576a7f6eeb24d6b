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

The sums are read from per-day rollups (``QualityDay``, ``audits.rollups``): the services
that write measurements mark the days they change, and a read first rebuilds those days
(one grouped pass over each measurement table, restricted to them). With nothing to rebuild
a read is three queries, with or without ``by_period``: whether anything is dirty, one
grouped pass over the rollups by (stage, person[, period]), merged in Python into the
total, ``by_stage``, ``by_annotator`` and ``by_period`` (sums and counts add up; an
annotation has one stage, one author and one current audit, so distinct annotations add up
too), and one of usernames.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Literal

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce, TruncWeek
from django.utils import timezone

from projects.models import Project

from .models import Audit, AuditedWork, AuditFinding, QualityDay, QualityDirty
from .rollups import CATEGORIES, in_period, period_bounds, quality_refresh

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
# The counts a (stage, person, day) row of QualityDay adds as they are; the sums read.
_MEASURED_COUNTS = (
    "reviewed",
    "first_pass",
    "audited_annotations",
    "errors",
    "missing",
    "samples_total",
    "samples_complete",
    "qc_flags",
)
_SUMMED = {
    *_MEASURED_COUNTS,
    "units",
    "audits",
    "pairs",
    "score_sum",
    "partner_pairs",
    "partner_score_sum",
    "self_pairs",
    "self_score_sum",
    *(f"category_{category}" for category in CATEGORIES),
}


def _fraction(numerator: float, denominator: float) -> float | None:
    if not denominator:
        return None
    return round(numerator / denominator, 4)


def first_pass_and_accuracy(counts: dict[str, int]) -> tuple[float | None, float | None]:
    """The two ratios from their counts (also for counts added over several projects):
    first_pass ÷ reviewed; audited annotations less errors (not below 0) ÷ audited
    annotations plus missing ones. None where nothing measures them."""
    audited = counts["audited_annotations"]
    return (
        _fraction(counts["first_pass"], counts["reviewed"]),
        _fraction(max(audited - counts["errors"], 0), audited + counts["missing"]),
    )


class _Tally:
    """Sums behind the figures of one group (the project, a stage, an annotator, a period)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(COUNT_KEYS, 0)
        self.score_sum = 0.0

    def add(self, row: dict[str, Any], keys: Iterable[str]) -> None:
        """Add the row's sums of ``keys`` to the counts."""
        for key in keys:
            self.counts[key] += row[key] or 0

    def figures(self) -> dict[str, Any]:
        c = self.counts
        first_pass_rate, accuracy = first_pass_and_accuracy(c)
        return {
            "first_pass_rate": first_pass_rate,
            "accuracy": accuracy,
            "consistency": _fraction(self.score_sum, c["agreement_pairs"]),
            "completeness": _fraction(c["samples_complete"], c["samples_total"]),
            "counts": dict(c),
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
    quality_refresh(project)  # the days whose measurements changed since the last read
    total = _Tally()
    stages: dict[str, _Tally] = defaultdict(_Tally)
    people: dict[int | None, _Tally] = defaultdict(_Tally)
    buckets: dict[str, _Tally] = defaultdict(_Tally)
    by_category = dict.fromkeys(CATEGORIES, 0)  # for the project only

    # Distinct audits of the project: per day, per (day, stage) or per (day, person) when
    # narrowed to one of them; narrowed to both, a stage and person's audited units are
    # distinct audits (one AuditedWork row per audit × stage × person).
    audit_scope = {
        (False, False): QualityDay.AUDITS,
        (True, False): QualityDay.STAGE_AUDITS,
        (False, True): QualityDay.PERSON_AUDITS,
    }.get((stage is not None, annotator is not None))
    days = QualityDay.objects.filter(
        Q(day__gte=start) if start is not None else Q(),
        Q(day__lte=end) if end is not None else Q(),
        Q(stage_key=stage) if stage is not None else Q(),
        Q(person_id=annotator) if annotator is not None else Q(),
        project=project,
        scope__in=[QualityDay.MEASURED] + ([audit_scope] if audit_scope is not None else []),
    )
    fields = ["scope", "stage_key", "person_id"]
    if period is not None:
        days = days.annotate(bucket=TruncWeek("day") if period == "week" else F("day"))
        fields.append("bucket")
    sums = [f.name for f in QualityDay._meta.concrete_fields if f.name in _SUMMED]
    keys: dict[Any, str] = {}  # bucket value → its day, converted once per call
    for row in days.order_by().values(*fields).annotate(**{k: Sum(k) for k in sums}):
        bucket = None
        if period is not None:
            if row["bucket"] not in keys:
                keys[row["bucket"]] = _period_key(row["bucket"])
            bucket = buckets[keys[row["bucket"]]]
        if row["scope"] != QualityDay.MEASURED:
            for tally in (total, bucket) if bucket is not None else (total,):
                tally.counts["audits"] += row["audits"]
            continue
        tallies = [total] + ([bucket] if bucket is not None else [])
        pairs, score_sum = row["pairs"], row["score_sum"]
        if annotator is not None:
            # Narrowed to a person: the pairs they are either side of (once each).
            pairs += row["partner_pairs"] - row["self_pairs"]
            score_sum += row["partner_score_sum"] - row["self_score_sum"]
        for tally in tallies:
            tally.add(row, _MEASURED_COUNTS)
            tally.counts["agreement_pairs"] += pairs
            tally.score_sum += score_sum
            if audit_scope is None:  # narrowed to a stage and a person: units are audits
                tally.counts["audits"] += row["units"]
        # A stage's and a person's ``audits`` count audited units of work.
        of_stage = stages[row["stage_key"]]
        of_stage.add(row, _MEASURED_COUNTS)
        of_stage.counts["audits"] += row["units"]
        of_stage.counts["agreement_pairs"] += pairs
        of_stage.score_sum += score_sum
        # Each pair counts for both people in it.
        person = people[row["person_id"]]
        person.add(row, _MEASURED_COUNTS)
        person.counts["audits"] += row["units"]
        person.counts["agreement_pairs"] += row["pairs"] + row["partner_pairs"]
        person.score_sum += row["score_sum"] + row["partner_score_sum"]
        for category in CATEGORIES:
            by_category[category] += row[f"category_{category}"]

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
    since, until = period_bounds(start, end)
    audits = Audit.objects.filter(
        in_period("completed_at", since, until),
        project=project,
        current=True,
        status=Audit.Status.COMPLETED,
        task__deleted_at__isnull=True,  # a deleted task's audits wait for its purge unseen
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


def quality_summaries(*, projects: Iterable[Project]) -> dict[int, dict[str, Any]]:
    """The project-level figures of several projects at once (the dashboard's cards): per
    project id, what ``project_quality`` gives at its top level (the four figures and their
    ``counts``), without groups. Reads the rollups like it: one query finds the projects
    with dirty days (each of those is refreshed first), one grouped query sums the rest."""
    chosen = list(projects)
    dirty = set(
        QualityDirty.objects.filter(project__in=chosen)
        .values_list("project_id", flat=True)
        .distinct()
    )
    for project in chosen:
        if project.pk in dirty:
            quality_refresh(project)
    tallies = {project.pk: _Tally() for project in chosen}
    sums = [f.name for f in QualityDay._meta.concrete_fields if f.name in _SUMMED]
    rows: Any = (
        QualityDay.objects.filter(
            project__in=chosen, scope__in=[QualityDay.MEASURED, QualityDay.AUDITS]
        )
        .order_by()
        .values("project_id", "scope")
        .annotate(**{k: Sum(k) for k in sums})
    )
    for row in rows:
        tally = tallies[row["project_id"]]
        if row["scope"] == QualityDay.AUDITS:
            tally.counts["audits"] += row["audits"]
            continue
        tally.add(row, _MEASURED_COUNTS)
        tally.counts["agreement_pairs"] += row["pairs"]
        tally.score_sum += row["score_sum"]
    return {pk: tally.figures() for pk, tally in tallies.items()}
