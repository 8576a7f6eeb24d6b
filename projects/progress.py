"""Progress of projects: completion, throughput, ETA, the stage funnel, per-annotator work
(API.md ``GET /projects/{id}/progress/``, the project's Overview, the dashboard's cards).

Every figure is aggregate SQL over ``Task`` and ``StageRun``; nothing loops over rows. The
queries read a project's rows through the columns the task services keep for them
(``StageRun.project``, ``Task.finished_at``) and indexes that hold what they read (index-only
scans on PostgreSQL: 100,000 tasks cost tens of milliseconds, not hundreds).

Definitions (one place; the pages, the API and the dashboard read them from here):

- **Done tasks** are ``review_passed`` and ``data_submitted`` (every stage run completed or
  skipped; an export sending the data on does not make a task less done).
  ``percent_complete`` = done ÷ total × 100, one decimal.
- **A task's completion time** is ``Task.finished_at``: set by the status machine when the
  task becomes done (its last stage run completing), cleared when it is reopened (a reject
  or a standard audit), kept when its data is submitted. Only tasks done *now* have one, so
  a task reopened after it passed counts again on the day it finishes again; the
  append-only ``TaskEvent`` history would count both passes. Runs completed per day are
  the completed runs of work stages (annotate, consensus, review: logic stages complete by
  themselves) by ``completed_at``.
  Days are dates in the current time zone.
- **ETA**: remaining tasks (total − done) ÷ the recent rate of tasks completed per day. The
  rate is an exponentially weighted moving average of the daily counts over the last
  ``ETA_WINDOW_DAYS`` (14) complete days (today is partial and left out), with a half-life
  of ``ETA_HALF_LIFE_DAYS`` (3.5): yesterday weighs 1, a week ago 1/4, two weeks ago 1/16.
  Days before the project's first task are not part of the window (no zero days for a
  project that did not exist). The range divides the remaining work by the rate ± its
  standard error (weighted standard deviation of the daily counts ÷ √ effective number of
  days, (Σw)² ÷ Σw²); its slow end is None when the rate minus its error is not above
  zero. With fewer than ``ETA_MIN_ACTIVE_DAYS`` (3) days with completions in the window
  there is no ETA ("not enough history"). Unit: tasks, both for the remaining work and the
  rate; the stage funnel shows the finer-grained runs.
- **Stage funnel** per stage key (the active blueprint's order, then keys of older
  versions): ``ready`` (waiting for someone), ``in_progress``, ``in_review`` (submitted
  runs waiting for their consensus partners, and completed runs of stages whose reviewing
  stage is ready or in progress on the same task), ``done`` (completed or skipped, less
  those in review), ``blocked`` (waiting for upstream stages).
- **Stage alerts**: *stalled* — a stage has ready runs, no run of it was started in the
  last ``STALLED_HOURS`` (24), and its oldest ready run's task is older than that; *idle* —
  a stage has open runs (ready or in progress) and none of its runs completed in the last
  ``IDLE_DAYS`` (3) days (its oldest open run's task being older than that too).
- **Per annotator**: runs of annotate and consensus stages by ``assignee``: in progress
  now, completed in the last 7 days, and the median ``active_seconds`` of the runs they
  completed in the last ``MEDIAN_WINDOW_DAYS`` (28) days (recent speed, and a bounded
  amount of rows to sort); first-pass rate and accuracy from ``audits.selectors``.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    BigIntegerField,
    Count,
    DateTimeField,
    Exists,
    F,
    FloatField,
    Max,
    Min,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.functions import Cast, TruncDate, TruncWeek
from django.utils import timezone

from audits.rollups import period_bounds
from tasks.models import StageRun, Task, TaskStatus

from . import counts as kept_counts
from .models import Membership, Project, Role

DONE_STATUSES: tuple[str, ...] = (TaskStatus.REVIEW_PASSED, TaskStatus.DATA_SUBMITTED)
WORK_KINDS: tuple[str, ...] = ("annotate", "consensus", "review")
ANNOTATE_KINDS: tuple[str, ...] = ("annotate", "consensus")

ETA_WINDOW_DAYS = 14
ETA_HALF_LIFE_DAYS = 3.5
ETA_MIN_ACTIVE_DAYS = 3
ETA_HORIZON_DAYS = 3650  # an estimate further out is no estimate
CHART_DAYS = 28
TREND_WEEKS = 8
DONE_RECENTLY_DAYS = 7
MEDIAN_WINDOW_DAYS = 28
DUE_SOON_HOURS = 48
STALLED_HOURS = 24
IDLE_DAYS = 3


# --- completions per day (reports reuse this) ---------------------------------------------


@dataclass(frozen=True)
class DayCompletions:
    day: dt.date
    tasks: int = 0  # tasks whose last stage run completed that day (and that are done now)
    runs: int = 0  # completed runs of work stages (annotate, consensus, review)


def _completion_rows(project_ids: list[int], start: dt.date, end: dt.date) -> Iterable[Any]:
    """(project, day, tasks, runs) rows: tasks by ``finished_at`` (index ``task_finished_idx``)
    and completed work runs by ``completed_at`` (``stagerun_project_done_idx``), both read
    from the index alone, in one query (UNION ALL)."""
    since, until = period_bounds(start, end)
    tasks = (
        Task.objects.filter(
            project_id__in=project_ids, finished_at__gte=since, finished_at__lt=until
        )
        .annotate(day=TruncDate("finished_at"))
        .order_by()
        .values("project_id", "day")
        .annotate(finished=Count("*"), completed=Value(0))
    )
    runs = (
        StageRun.objects.filter(
            project_id__in=project_ids,
            completed_at__gte=since,
            completed_at__lt=until,
            kind__in=WORK_KINDS,
            status=StageRun.Status.COMPLETED,
        )
        .annotate(day=TruncDate("completed_at"))
        .order_by()
        .values("project_id", "day")
        .annotate(finished=Value(0), completed=Count("*"))
    )
    return tasks.union(runs, all=True).order_by()


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def completions_by_project(
    *, project_ids: Iterable[int], start: dt.date, end: dt.date
) -> dict[int, list[DayCompletions]]:
    """Per project of ``project_ids``: tasks and stage runs completed on each day from
    ``start`` to ``end`` (dates in the current time zone, inclusive), every day present
    (zeros included), oldest first. One query (index-only on PostgreSQL). See the module
    docstring for what counts."""
    ids = list(project_ids)
    found: dict[int, dict[dt.date, DayCompletions]] = defaultdict(dict)
    for row in _completion_rows(ids, start, end):
        day = row["day"]
        if isinstance(day, dt.datetime):  # pragma: no cover - backends differ
            day = day.date()
        elif isinstance(day, str):  # pragma: no cover - SQLite's UNION loses the type
            day = dt.date.fromisoformat(day)
        was = found[row["project_id"]].get(day, DayCompletions(day))
        found[row["project_id"]][day] = DayCompletions(
            day, was.tasks + row["finished"], was.runs + row["completed"]
        )
    days = _days(start, end)
    return {pk: [found[pk].get(day, DayCompletions(day)) for day in days] for pk in ids}


def completions_per_day(
    *, project_ids: Iterable[int], start: dt.date, end: dt.date
) -> list[DayCompletions]:
    """Tasks and stage runs completed per day over all ``project_ids`` together, from
    ``start`` to ``end`` (dates in the current time zone, inclusive), every day present
    (zeros included), oldest first. One query.

    A task counts on the day its last stage run completed, if it is done now
    (``review_passed`` or ``data_submitted``); runs count when they completed, work stages
    only (annotate, consensus, review). Callers check that the user may see the projects."""
    per_project = completions_by_project(project_ids=project_ids, start=start, end=end)
    totals = {day: [0, 0] for day in _days(start, end)}
    for rows in per_project.values():
        for row in rows:
            totals[row.day][0] += row.tasks
            totals[row.day][1] += row.runs
    return [DayCompletions(day, tasks, runs) for day, (tasks, runs) in totals.items()]


# --- ETA -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Eta:
    """A finishing estimate: ``seconds`` from now, its range and the dates they imply.
    ``seconds`` is None when there is not enough history (``reason`` says why)."""

    rate: float | None = None  # tasks per day (EWMA)
    rate_error: float | None = None  # its standard error
    active_days: int = 0  # days with completions in the window
    seconds: float | None = None
    low_seconds: float | None = None
    high_seconds: float | None = None  # None: no slow end (rate − error ≤ 0)
    date: dt.datetime | None = None
    low_date: dt.datetime | None = None
    high_date: dt.datetime | None = None
    reason: str = ""

    @property
    def range(self) -> list[float | None] | None:
        if self.seconds is None:
            return None
        return [self.low_seconds, self.high_seconds]


def ewma_rate(daily: Sequence[int], half_life: float = ETA_HALF_LIFE_DAYS) -> tuple[float, float]:
    """(rate, standard error) of daily counts, oldest first (the last is yesterday, weight
    1; a day ``a`` days older weighs 0.5 ** (a / half_life))."""
    n = len(daily)
    if not n:
        return 0.0, 0.0
    weights = [0.5 ** ((n - 1 - i) / half_life) for i in range(n)]
    total = sum(weights)
    rate = sum(w * c for w, c in zip(weights, daily, strict=True)) / total
    variance = sum(w * (c - rate) ** 2 for w, c in zip(weights, daily, strict=True)) / total
    effective = total**2 / sum(w * w for w in weights)
    return rate, math.sqrt(variance / effective)


def eta_estimate(*, daily: Sequence[int], remaining: int, now: dt.datetime | None = None) -> Eta:
    """The ETA of ``remaining`` tasks from the daily counts of the window (oldest first,
    ending yesterday). See the module docstring."""
    now = now or timezone.now()
    active = sum(1 for c in daily if c > 0)
    if active < ETA_MIN_ACTIVE_DAYS:
        return Eta(
            active_days=active,
            reason=f"Fewer than {ETA_MIN_ACTIVE_DAYS} days with finished tasks in the last "
            f"{ETA_WINDOW_DAYS} days.",
        )
    rate, error = ewma_rate(daily)
    if remaining <= 0:
        return Eta(rate, error, active, 0.0, 0.0, 0.0, now, now, now)
    day = 86400.0
    horizon = ETA_HORIZON_DAYS * day  # beyond it a date means nothing (and overflows)
    seconds = remaining / rate * day
    if seconds > horizon:
        return Eta(
            rate=rate,
            rate_error=error,
            active_days=active,
            reason=f"At the recent pace, more than {ETA_HORIZON_DAYS // 365} years.",
        )
    low = remaining / (rate + error) * day
    high = remaining / (rate - error) * day if rate - error > 1e-9 else None
    if high is not None and high > horizon:
        high = None  # no slow end worth a date
    return Eta(
        rate=rate,
        rate_error=error,
        active_days=active,
        seconds=seconds,
        low_seconds=low,
        high_seconds=high,
        date=now + dt.timedelta(seconds=seconds),
        low_date=now + dt.timedelta(seconds=low),
        high_date=now + dt.timedelta(seconds=high) if high is not None else None,
    )


def eta_window(*, first_task: dt.datetime | None, today: dt.date) -> tuple[dt.date, dt.date]:
    """The ETA's window: the ``ETA_WINDOW_DAYS`` days before ``today``, from the day of the
    project's first task at the earliest (start > end: no days)."""
    start = today - dt.timedelta(days=ETA_WINDOW_DAYS)
    if first_task is not None:
        start = max(start, timezone.localtime(first_task).date())
    return start, today - dt.timedelta(days=1)


# --- task counts ---------------------------------------------------------------------------


@dataclass
class TaskCounts:
    total: int = 0
    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TaskStatus.values, 0))
    overdue: int = 0  # due before the current minute (``due_cut``), not done
    due_soon: int = 0  # due from then to DUE_SOON_HOURS on, not done
    first_task: dt.datetime | None = None  # when the first task was created
    # Tasks per blueprint version: each has the runs its version makes (the stage funnel).
    by_blueprint: dict[int, int] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return sum(self.by_status[s] for s in DONE_STATUSES)

    @property
    def remaining(self) -> int:
        return self.total - self.done

    @property
    def percent_complete(self) -> float:
        return round(self.done / self.total * 100, 1) if self.total else 0.0


def due_cut(now: dt.datetime | None = None) -> dt.datetime:
    """Where overdue ends and due soon begins: the start of the current minute (the kept
    counts hold minutes; a task due at 17:00:30 is overdue from 17:01, here and in the task
    list's overdue filter)."""
    return (now or timezone.now()).replace(second=0, microsecond=0)


def task_counts(
    *, project_ids: Iterable[int], now: dt.datetime | None = None
) -> dict[int, TaskCounts]:
    """Tasks per project of ``project_ids``: by status, overdue, due soon, the first task's
    creation time. Where the counts are kept (PostgreSQL, ``projects.counts``): the kept
    counts by hour and by minute and the first task (an index probe per project), one query
    whatever the number of tasks; elsewhere one grouped query over the tasks."""
    # Due dates are compared to the minute: overdue from the minute after the one due in.
    now = due_cut(now)
    ids = list(project_ids)
    counts = {pk: TaskCounts() for pk in ids}
    open_statuses = [s for s in TaskStatus.values if s not in DONE_STATUSES]
    soon = now + dt.timedelta(hours=DUE_SOON_HOURS)
    if kept_counts.kept():
        return _kept_task_counts(counts, open_statuses, now, soon)
    # One query, two index-only passes (UNION ALL): every task by (status, blueprint
    # version), then the open tasks due before ``soon`` (a range of the same index).
    everything = (
        Task.objects.filter(project_id__in=ids)
        .order_by()
        .values("project_id", "status", "blueprint_id")
        .annotate(n=Count("*"), overdue=Value(0), due_soon=Value(0), first=Min("created_at"))
    )
    due = (
        Task.objects.filter(project_id__in=ids, status__in=open_statuses, due_at__lt=soon)
        .order_by()
        .values("project_id", "status", "blueprint_id")
        .annotate(
            n=Value(0),
            overdue=Count("due_at", filter=Q(due_at__lt=now)),
            due_soon=Count("due_at", filter=Q(due_at__gte=now)),
            first=Value(None, output_field=DateTimeField()),
        )
    )
    rows = everything.union(due, all=True).order_by()
    for row in rows:
        c = counts[row["project_id"]]
        c.total += row["n"]
        c.by_status[row["status"]] = c.by_status.get(row["status"], 0) + row["n"]
        c.overdue += row["overdue"]
        c.due_soon += row["due_soon"]
        c.by_blueprint[row["blueprint_id"]] = c.by_blueprint.get(row["blueprint_id"], 0) + row["n"]
        if row["first"] is not None and (c.first_task is None or row["first"] < c.first_task):
            c.first_task = row["first"]
    return counts


def _kept_task_counts(
    counts: dict[int, TaskCounts], open_statuses: list[str], now: dt.datetime, soon: dt.datetime
) -> dict[int, TaskCounts]:
    """One query, nothing counted: the kept counts (``projects.counts``) by the UTC hour the
    tasks are due in, by the minute for the two hours ``now`` and ``soon`` (whole minutes,
    ``task_counts``) cut, and per project its first task's creation (one probe of the
    (project, created) index). Overdue: the hours before ``now``'s, then its minutes before
    ``now``; due soon: the rest of ``now``'s hour, the hours between, ``soon``'s minutes
    before ``soon``."""
    ids = list(counts)
    hour = now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    next_hour = hour + dt.timedelta(hours=1)
    soon_hour = soon.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    columns = ["project_id", "status", "blueprint_id", "due_hour", "due_minute", "n", "pieces"]
    columns += ["first"]
    # Typed NULLs: a column that is NULL in the first two parts of a UNION is text otherwise.
    none_time = Cast(Value(None), DateTimeField())
    none_id = Cast(Value(None), BigIntegerField())
    hours = kept_counts.task_count_values(ids).annotate(due_minute=none_time, first=none_time)
    minutes = kept_counts.due_minute_values(ids, {hour, soon_hour}).annotate(
        blueprint_id=none_id, due_hour=none_time, first=none_time
    )
    facts = (
        Project.objects.filter(pk__in=ids)
        .order_by()
        .annotate(
            project_id=F("pk"),
            status=Value(""),
            blueprint_id=none_id,
            due_hour=none_time,
            due_minute=none_time,
            n=Value(0, output_field=BigIntegerField()),
            pieces=Value(0),
            first=Subquery(
                Task.objects.filter(project_id=OuterRef("pk"))
                .order_by("created_at")
                .values("created_at")[:1]
            ),
        )
        .values(*columns)
    )
    rows = list(hours.values(*columns).union(minutes.values(*columns), facts, all=True))
    kept_counts.fold_crowded(rows)
    for row in rows:
        c = counts[row["project_id"]]
        n, status = row["n"], row["status"]
        if not status:
            c.first_task = row["first"]
        elif row["due_minute"] is not None:  # a minute of the hours cut
            if status in open_statuses:
                minute = row["due_minute"]
                if minute < now:
                    c.overdue += n
                elif minute < next_hour or soon_hour <= minute < soon:
                    c.due_soon += n
        else:
            c.total += n
            c.by_status[status] = c.by_status.get(status, 0) + n
            c.by_blueprint[row["blueprint_id"]] = c.by_blueprint.get(row["blueprint_id"], 0) + n
            due_hour = row["due_hour"]
            if due_hour is not None and status in open_statuses:
                if due_hour < hour:
                    c.overdue += n
                elif next_hour <= due_hour < soon_hour:
                    c.due_soon += n
    for c in counts.values():  # keys whose count went back to zero
        c.by_blueprint = {pk: n for pk, n in c.by_blueprint.items() if n}
    return counts


def project_etas(
    *, counts: dict[int, TaskCounts], now: dt.datetime | None = None
) -> dict[int, Eta]:
    """The ETA of each project of ``counts`` (``task_counts``): one query for all."""
    now = now or timezone.now()
    today = timezone.localtime(now).date()
    if not counts:
        return {}
    start = today - dt.timedelta(days=ETA_WINDOW_DAYS)
    history = completions_by_project(
        project_ids=counts, start=start, end=today - dt.timedelta(days=1)
    )
    etas = {}
    for pk, c in counts.items():
        first, _ = eta_window(first_task=c.first_task, today=today)
        daily = [row.tasks for row in history[pk] if row.day >= first]
        etas[pk] = eta_estimate(daily=daily, remaining=c.remaining, now=now)
    return etas


# --- the stage funnel ----------------------------------------------------------------------


@dataclass
class StageRow:
    key: str
    title: str = ""
    kind: str = ""
    blocked: int = 0
    ready: int = 0
    in_progress: int = 0
    in_review: int = 0
    done: int = 0
    last_started: dt.datetime | None = None
    last_completed: dt.datetime | None = None
    # A ready run's task created before the stalled limit, an open run's before the idle
    # limit (read for the stages that may alert only; None: not read, which alerts).
    old_ready: bool | None = None
    old_open: bool | None = None
    alert: str = ""  # "stalled" or "idle" (see the module docstring)
    alert_text: str = ""

    @property
    def total(self) -> int:
        return self.blocked + self.ready + self.in_progress + self.in_review + self.done


def _active_spec(project: Project):
    from blueprints.selectors import active_blueprint
    from tasks.services import spec_for

    blueprint = active_blueprint(project=project)
    if blueprint is None:
        return None
    try:
        return spec_for(blueprint)
    except Exception:  # noqa: BLE001 — an unreadable blueprint: keys in the order found
        return None


def _older(moment: dt.datetime | None, limit: dt.datetime) -> bool:
    return moment is None or moment < limit


def _stage_rows(
    project_ids: Iterable[int],
    now: dt.datetime,
    counts: dict[int, TaskCounts] | None = None,
    specs: dict[int, Any] | None = None,
) -> dict[int, dict[str, StageRow]]:
    """Runs per (project, stage) by status, with the alerts. The unfinished runs (blocked,
    ready, in progress, submitted) are counted (one grouped query, through the status
    index); the finished ones (completed or skipped) are the rest: every task has the runs
    its blueprint version makes per stage (one per consensus replica, as task creation
    does), so they follow from the tasks per version (``counts``, from ``task_counts``):
    counting a project's 200,000 finished runs one by one would be most of the work. One
    more query reads when each stage last started and completed work (the runs completed in
    the last ``IDLE_DAYS``), for the alerts."""
    S = StageRun.Status
    ids = list(project_ids)
    found: dict[int, dict[str, StageRow]] = defaultdict(dict)

    def row_of(project_id: int, key: str, kind: str = "") -> StageRow:
        return found[project_id].setdefault(key, StageRow(key, key.replace("_", " "), kind))

    unfinished: list[str] = [S.BLOCKED, S.READY, S.IN_PROGRESS, S.SUBMITTED]
    open_runs: Iterable[Any] = (
        _kept_open_runs(ids, unfinished)
        if kept_counts.kept()
        else StageRun.objects.filter(project_id__in=ids, status__in=unfinished)
        .order_by()
        .values("project_id", "stage_key", "status")
        .annotate(
            n=Count("*"),
            kind=Max("kind"),
            last_started=Max("started_at"),
            last_completed=Max("completed_at"),
        )
    )
    for row in open_runs:
        stage_row = row_of(row["project_id"], row["stage_key"], row["kind"])
        status, n = row["status"], row["n"]
        if status == S.BLOCKED:
            stage_row.blocked += n
        elif status == S.READY:
            stage_row.ready += n
        elif status == S.IN_PROGRESS:
            stage_row.in_progress += n
        else:  # submitted: waiting for the other consensus replicas
            stage_row.in_review += n
        _later(stage_row, row["last_started"], row["last_completed"])
    # Work completed lately (done tasks' runs included): when each stage last moved.
    recent = (
        StageRun.objects.filter(
            project_id__in=ids,
            completed_at__gte=now - dt.timedelta(days=max(IDLE_DAYS, STALLED_HOURS / 24)),
        )
        .order_by()
        .values("project_id", "stage_key")
        .annotate(last_started=Max("started_at"), last_completed=Max("completed_at"))
    )
    for moved in recent:
        stage_row = row_of(moved["project_id"], moved["stage_key"])
        _later(stage_row, moved["last_started"], moved["last_completed"])
    if counts:
        _add_finished_runs(found, counts, _version_specs(counts) if specs is None else specs)
    stalled_before = now - dt.timedelta(hours=STALLED_HOURS)
    idle_before = now - dt.timedelta(days=IDLE_DAYS)
    _old_open_work(found, stalled_before, idle_before)
    for stages in found.values():
        for stage_row in stages.values():
            _alert(stage_row, stalled_before, idle_before)
    return found


def _kept_open_runs(ids: list[int], unfinished: list[str]) -> list[dict[str, Any]]:
    """The unfinished runs per (project, stage, status) from the kept counts, with when
    each group's latest run started (``projects.counts.run_rows``: a backward probe of the
    funnel index per group, in the same query). ``last_completed`` is left out: the alerts
    compare it with the idle limit only, and the runs completed within it are read anyway
    (``_stage_rows``' recent work)."""
    return [
        {
            "project_id": project_id,
            "stage_key": key,
            "kind": kind,
            "status": status,
            "n": n,
            "last_started": started,
            "last_completed": None,
        }
        for project_id, key, kind, status, n, started in kept_counts.run_rows(
            ids, started_of=unfinished
        )
        if status in unfinished
    ]


def _old_open_work(
    found: dict[int, dict[str, StageRow]], stalled_before: dt.datetime, idle_before: dt.datetime
) -> None:
    """For the stages whose alert depends on it only (no work started or finished lately):
    whether a ready run's task was created before ``stalled_before`` and an open (ready or
    in progress) run's task before ``idle_before``. One query of EXISTS probes when there
    are such stages, none otherwise (a busy project). Each probe stops at its first row
    (the runs of one project, stage and status through the funnel index, their tasks by
    key), so it costs the same for 1,000 tasks as for 1,000,000: the oldest open task
    (MIN over every open run joined to its task) read 200,000 runs at 100,000 tasks, and
    the alerts only compare it with the limit."""
    S = StageRun.Status
    probes: dict[str, Exists] = {}
    asked: list[tuple[str, StageRow, str]] = []
    for project_id, stages in found.items():
        for key, stage_row in stages.items():
            if stage_row.kind == "logic":
                continue
            wanted = []
            if stage_row.ready and _older(stage_row.last_started, stalled_before):
                wanted.append(("old_ready", [S.READY], stalled_before))
            if (stage_row.ready + stage_row.in_progress) and _older(
                stage_row.last_completed, idle_before
            ):
                wanted.append(("old_open", [S.READY, S.IN_PROGRESS], idle_before))
            for attr, statuses, before in wanted:
                name = f"p{len(asked)}"
                probes[name] = Exists(
                    StageRun.objects.filter(
                        project_id=project_id,
                        status__in=statuses,
                        stage_key=key,
                        task__created_at__lt=before,
                    )
                )
                asked.append((name, stage_row, attr))
    if not asked:
        return
    row: Any = Project.objects.filter(pk__in=list(found)).order_by().values(**probes)[:1]
    answers = next(iter(row), None)
    for name, stage_row, attr in asked:
        # No answer (the projects went away meanwhile): unknown, which alerts like before.
        setattr(stage_row, attr, None if answers is None else bool(answers[name]))


def _later(stage_row: StageRow, started: dt.datetime | None, completed: dt.datetime | None):
    if started is not None and _older(stage_row.last_started, started):
        stage_row.last_started = started
    if completed is not None and _older(stage_row.last_completed, completed):
        stage_row.last_completed = completed


def _version_specs(counts: dict[int, TaskCounts]) -> dict[int, Any]:
    """The specs of the blueprint versions the projects' tasks have (one query); an
    unreadable version is left out."""
    from blueprints.models import Blueprint
    from tasks.services import spec_for

    versions = {pk for c in counts.values() for pk in c.by_blueprint}
    specs = {}
    for blueprint in Blueprint.objects.filter(pk__in=versions):
        try:
            specs[blueprint.pk] = spec_for(blueprint)
        except Exception:  # noqa: BLE001, S112 — an unreadable version: its runs go uncounted
            continue
    return specs


def _add_finished_runs(
    found: dict[int, dict[str, StageRow]], counts: dict[int, TaskCounts], specs: dict[int, Any]
):
    """``done`` of each stage: the runs the tasks' blueprint versions make for it less the
    unfinished ones counted."""
    for project_id, c in counts.items():
        made: dict[str, int] = defaultdict(int)
        for blueprint_id, n in c.by_blueprint.items():
            spec = specs.get(blueprint_id)
            for stage in spec.stages if spec is not None else []:
                replicas = getattr(stage, "annotators", 1) if stage.kind == "consensus" else 1
                made[stage.key] += n * replicas
                found[project_id].setdefault(
                    stage.key, StageRow(stage.key, stage.title, stage.kind)
                )
        for key, stage_row in found[project_id].items():
            unfinished = (
                stage_row.blocked + stage_row.ready + stage_row.in_progress + stage_row.in_review
            )
            stage_row.done = max(made.get(key, 0) - unfinished, 0)


def _alert(stage_row: StageRow, stalled_before: dt.datetime, idle_before: dt.datetime) -> None:
    if stage_row.kind == "logic":
        return
    if (
        stage_row.ready
        and _older(stage_row.last_started, stalled_before)
        and stage_row.old_ready is not False
    ):
        stage_row.alert = "stalled"
        stage_row.alert_text = (
            f"{stage_row.ready} ready, none started in the last {STALLED_HOURS} hours"
        )
    elif (
        stage_row.ready + stage_row.in_progress
        and _older(stage_row.last_completed, idle_before)
        and stage_row.old_open is not False
    ):
        stage_row.alert = "idle"
        stage_row.alert_text = (
            f"{stage_row.ready + stage_row.in_progress} open, none finished in the last "
            f"{IDLE_DAYS} days"
        )


def stage_alerts(
    *, project_ids: Iterable[int], now: dt.datetime | None = None
) -> dict[int, list[StageRow]]:
    """The stalled and idle stages of each project (module docstring), one query for all."""
    ids = list(project_ids)
    found = _stage_rows(ids, now or timezone.now())
    return {pk: [s for s in found.get(pk, {}).values() if s.alert] for pk in ids}


def stage_funnel(
    *, project: Project, now: dt.datetime | None = None, counts: dict[int, TaskCounts] | None = None
) -> list[StageRow]:
    """The stage funnel with its alerts (module docstring), in the active blueprint's
    order. A few queries: the active blueprint, the open tasks' runs per (stage, status),
    the stages' latest work, the blueprint versions of done tasks, the completed runs whose
    review is open (``counts``, from ``task_counts``, is read when not given)."""
    now = now or timezone.now()
    spec = _active_spec(project)
    S = StageRun.Status
    if counts is None:
        counts = task_counts(project_ids=[project.pk], now=now)
    specs = _version_specs(counts)
    counted = _stage_rows([project.pk], now, counts, specs).get(project.pk, {})
    stages: dict[str, StageRow] = {}
    if spec is not None:
        for stage in spec.stages:
            stages[stage.key] = StageRow(stage.key, stage.title, stage.kind)
            if stage.key in counted:
                found = counted.pop(stage.key)
                found.title, found.kind = stage.title, stage.kind
                stages[stage.key] = found
    stages.update(sorted(counted.items()))  # keys of older blueprint versions
    # Completed work whose reviewing stage is open on the same task: in review, not done.
    reviewed_by: dict[str, list[str]] = defaultdict(list)
    if spec is not None:
        for stage in spec.stages:
            for reviewed in getattr(stage, "reviews", None) or []:
                reviewed_by[reviewed].append(stage.key)
    versions = [specs.get(pk) for pk in counts[project.pk].by_blueprint]
    if kept_counts.kept() and reviewed_by and None not in versions:
        # The open reviewing runs are counted already (kept): where every version's
        # pipeline makes each of them wait on the completed runs of what it reviews, those
        # are the runs waiting (``_waiting_per_review``); the others are joined below.
        for key, replicas in _waiting_per_review(versions, reviewed_by).items():
            review_row = stages.get(reviewed_by.pop(key)[0])
            if review_row is not None and key in stages:
                waiting_runs = (review_row.ready + review_row.in_progress) * replicas
                moved = min(waiting_runs, stages[key].done)
                stages[key].in_review += moved
                stages[key].done -= moved
    if reviewed_by:
        # From the open reviewing runs (few) to the completed run they review on the same
        # task (the (task, stage, replica) key): never the project's finished runs.
        # One query: a UNION ALL of the parts (a union nested in a union, as adding the
        # parts one by one to ``none()`` builds it, failed on its ordering for 2+ stages).
        parts: list[Any] = []
        for key, reviews in reviewed_by.items():
            reviewing = StageRun.objects.filter(
                project_id=project.pk,
                status__in=[S.READY, S.IN_PROGRESS],
                stage_key__in=reviews,
            ).values("task_id")
            parts.append(
                StageRun.objects.filter(
                    project_id=project.pk,
                    stage_key=key,
                    status=S.COMPLETED,
                    task_id__in=reviewing,
                )
                .order_by()
                .values("stage_key")
                .annotate(n=Count("*"))
            )
        waiting = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
        for found_row in waiting.order_by():
            stage_row = stages[found_row["stage_key"]]
            moved = min(found_row["n"], stage_row.done)
            stage_row.in_review += moved
            stage_row.done -= moved
    return list(stages.values())


def _never_skipped(spec, key: str) -> bool:
    """Whether the engine can never skip ``key``'s runs: no condition, not a logic stage,
    and the same of everything it depends on (a skip comes from a condition, a logic
    stage's routing, or every dependency skipped)."""
    stage = spec.by_key[key]
    if stage.kind == "logic" or stage.when is not None:
        return False
    return all(_never_skipped(spec, dep) for dep in stage.depends_on)


def _waiting_per_review(versions: list[Any], reviewed_by: dict[str, list[str]]) -> dict[str, int]:
    """The reviewed stages whose completed runs waiting for their review are the review's
    open runs times the stage's replicas, on every one of ``versions`` (the specs of the
    project's tasks): ``{reviewed key: replicas}``. That holds when one review stage
    reviews the stage and an open review run means the reviewed stage completed on its
    task: a run opens once its dependencies are finished (the reviewed stage is upstream),
    and the reviewed stage is either never skipped or the review's only dependency (all of
    them skipped skips the review; a disagreement or a rework opens it on completed work
    only); a consensus stage completes when every replica has, and a reject sends the
    review back to blocked with the rework. Any other pipeline is joined (``stage_funnel``)."""
    found: dict[str, int] = {}
    for key, reviews in reviewed_by.items():
        if len(reviews) != 1:
            continue
        replicas: set[int] = set()
        for spec in versions:
            stage = spec.by_key.get(key)
            review = spec.by_key.get(reviews[0])
            reviewers = [s.key for s in spec.stages if key in (getattr(s, "reviews", None) or [])]
            if stage is None or review is None or reviewers != reviews:
                break
            if not (review.depends_on == [key] or _never_skipped(spec, key)):
                break
            replicas.add(getattr(stage, "annotators", 1) if stage.kind == "consensus" else 1)
        else:
            if len(replicas) == 1:
                found[key] = replicas.pop()
    return found


# --- per annotator -------------------------------------------------------------------------


class Median(Aggregate):
    """PostgreSQL's ``percentile_cont(0.5)``: the median, interpolated."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)%(filter)s"
    output_field = FloatField()


def _medians(runs, group: str, value: str) -> dict[Any, float | None]:
    """Median of ``value`` per ``group`` of the ``runs`` queryset: in the database on
    PostgreSQL, in Python elsewhere (SQLite has no percentile; it runs small data)."""
    if connection.vendor == "postgresql":
        rows = runs.order_by().values(group).annotate(median=Median(value))
        return {row[group]: row["median"] for row in rows}
    values: dict[Any, list[float]] = defaultdict(list)
    for key, number in runs.order_by().values_list(group, value):
        values[key].append(number)
    return {key: statistics.median(numbers) for key, numbers in values.items()}


@dataclass
class AnnotatorRow:
    user_id: int | None
    username: str
    in_progress: int = 0
    done_7d: int = 0
    median_seconds: float | None = None
    first_pass_rate: float | None = None
    accuracy: float | None = None


def annotator_table(
    *,
    project: Project,
    now: dt.datetime | None = None,
    quality: dict[str, Any] | None = None,
    only_user: int | None = None,
) -> list[AnnotatorRow]:
    """Per annotator of the project (members, and anyone with recent annotate work): runs in
    progress, done in the last 7 days, median seconds per run (last 28 days), first-pass
    rate and accuracy from ``quality`` (``audits.selectors.project_quality``). Three
    queries (a fourth names people with work who are no longer annotators of the project);
    ``only_user`` narrows to one person."""
    now = now or timezone.now()
    week_ago = now - dt.timedelta(days=DONE_RECENTLY_DAYS)
    since = now - dt.timedelta(days=MEDIAN_WINDOW_DAYS)
    S = StageRun.Status
    runs = StageRun.objects.filter(
        project_id=project.pk, kind__in=ANNOTATE_KINDS, assignee__isnull=False
    )
    members = Membership.objects.filter(project=project, role=Role.ANNOTATOR)
    if only_user is not None:
        runs = runs.filter(assignee_id=only_user)
        members = members.filter(user_id=only_user)
    people: dict[int, AnnotatorRow] = {
        m.user_id: AnnotatorRow(m.user_id, m.user.get_username())
        for m in members.select_related("user")
    }
    # One query, two index-only passes (UNION ALL): the runs in progress now (the status
    # index), the runs completed in the window (the completions index), grouped by person.
    done_runs = runs.filter(status=S.COMPLETED, completed_at__gte=since)
    no_median = Value(None, output_field=FloatField())
    busy_rows = (
        runs.filter(status=S.IN_PROGRESS)
        .order_by()
        .values("assignee_id")
        .annotate(in_progress=Count("*"), done_7d=Value(0), median=no_median)
    )
    if kept_counts.kept():  # the kept counts, not every run in progress
        busy_rows = (
            kept_counts.runs_by_person(project.pk, kinds=ANNOTATE_KINDS, status=S.IN_PROGRESS)
            .annotate(in_progress=F("n"), done_7d=Value(0), median=no_median)
            .values("assignee_id", "in_progress", "done_7d", "median")
        )
        if only_user is not None:
            busy_rows = busy_rows.filter(assignee_id=only_user)
    done_rows = (
        done_runs.order_by()
        .values("assignee_id")
        .annotate(
            in_progress=Value(0),
            done_7d=Count("completed_at", filter=Q(completed_at__gte=week_ago)),
            # PostgreSQL: the medians in the same pass; in Python elsewhere (below).
            median=Median("active_seconds") if connection.vendor == "postgresql" else no_median,
        )
    )
    busy: dict[int, int] = {}
    by_id: dict[int, Any] = {}
    for row in busy_rows.union(done_rows, all=True).order_by():
        if row["in_progress"]:
            busy[row["assignee_id"]] = row["in_progress"]
        else:
            by_id[row["assignee_id"]] = row
    strangers = (set(busy) | set(by_id)) - set(people)
    if strangers:  # recent work by people no longer annotators of the project
        names = get_user_model().objects.filter(pk__in=strangers).values_list("pk", "username")
        for pk, username in names:
            people[pk] = AnnotatorRow(pk, username)
    medians: dict[Any, float | None] = {pk: row.get("median") for pk, row in by_id.items()}
    if connection.vendor != "postgresql":
        medians = _medians(done_runs, "assignee_id", "active_seconds")
    for pk, person in people.items():
        person.in_progress = busy.get(pk, 0)
        person.done_7d = by_id[pk]["done_7d"] if pk in by_id else 0
        median = medians.get(pk)
        if median is not None:
            person.median_seconds = round(median, 1)
    by_person = {row["user_id"]: row for row in (quality or {}).get("by_annotator", [])}
    for pk, person in people.items():
        figures = by_person.get(pk)
        if figures is not None:
            person.first_pass_rate = figures["first_pass_rate"]
            person.accuracy = figures["accuracy"]
    return sorted(people.values(), key=lambda p: p.username.lower())


# --- trends --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeekEfficiency:
    week: dt.date  # Monday
    runs: int = 0
    mean_seconds: float | None = None
    median_seconds: float | None = None


def efficiency_trend(
    *, project: Project, now: dt.datetime | None = None, weeks: int = TREND_WEEKS
) -> list[WeekEfficiency]:
    """Time per annotate run by ISO week (completed runs, ``active_seconds``) over the last
    ``weeks`` weeks, this one included, oldest first, every week present. Two queries."""
    now = now or timezone.now()
    today = timezone.localtime(now).date()
    monday = today - dt.timedelta(days=today.weekday())
    first = monday - dt.timedelta(weeks=weeks - 1)
    since, _ = period_bounds(first, None)
    runs = StageRun.objects.filter(
        project_id=project.pk,
        kind__in=ANNOTATE_KINDS,
        status=StageRun.Status.COMPLETED,
        completed_at__gte=since,
    ).annotate(week=TruncWeek("completed_at"))

    def as_date(value) -> dt.date:
        return value.date() if isinstance(value, dt.datetime) else value

    aggregates: dict[str, Any] = {"n": Count("*"), "mean": Avg("active_seconds")}
    if connection.vendor == "postgresql":  # the medians in the same pass
        aggregates["median"] = Median("active_seconds")
    rows: Any = runs.order_by().values("week").annotate(**aggregates)
    stats = {as_date(row["week"]): row for row in rows}
    if connection.vendor == "postgresql":
        medians = {week: row["median"] for week, row in stats.items()}
    else:
        medians = {as_date(k): v for k, v in _medians(runs, "week", "active_seconds").items()}
    out = []
    for i in range(weeks):
        week = first + dt.timedelta(weeks=i)
        row = stats.get(week)
        if row is None:
            out.append(WeekEfficiency(week))
            continue
        median = medians.get(week)
        out.append(
            WeekEfficiency(
                week,
                row["n"],
                round(row["mean"], 1) if row["mean"] is not None else None,
                round(median, 1) if median is not None else None,
            )
        )
    return out


def overdue_tasks(*, project: Project, now: dt.datetime | None = None, limit: int = 5):
    """The most overdue open tasks, then those due soonest: (overdue, due soon) querysets
    sliced to ``limit`` (two queries when read). Cut where the figures cut (``due_cut``)."""
    now = due_cut(now)
    open_tasks = Task.objects.filter(project=project, due_at__isnull=False).exclude(
        status__in=DONE_STATUSES
    )
    overdue = open_tasks.filter(due_at__lt=now).order_by("due_at", "pk")
    soon = open_tasks.filter(
        due_at__gte=now, due_at__lt=now + dt.timedelta(hours=DUE_SOON_HOURS)
    ).order_by("due_at", "pk")
    fields = ("pk", "name", "status", "due_at", "priority")
    return list(overdue.only(*fields)[:limit]), list(soon.only(*fields)[:limit])


# --- the whole progress of one project -----------------------------------------------------


def project_progress(
    *, project: Project, now: dt.datetime | None = None, quality: dict | None = None
) -> dict[str, Any]:
    """What ``GET /api/v1/projects/{id}/progress/`` answers (API.md) plus ``done``,
    ``remaining``, ``eta_date``, ``eta_dates``, ``eta_reason``, ``overdue``, ``due_soon``,
    ``runs_per_day`` and ``throughput`` (the last ``CHART_DAYS`` days, today included).
    ``quality`` (``audits.selectors.project_quality``) is read when not given."""
    from audits.selectors import project_quality

    now = now or timezone.now()
    today = timezone.localtime(now).date()
    counts = task_counts(project_ids=[project.pk], now=now)[project.pk]
    chart_start = today - dt.timedelta(days=CHART_DAYS - 1)
    eta_start = today - dt.timedelta(days=ETA_WINDOW_DAYS)
    history = completions_by_project(
        project_ids=[project.pk], start=min(chart_start, eta_start), end=today
    )[project.pk]
    first, last = eta_window(first_task=counts.first_task, today=today)
    window = [row for row in history if first <= row.day <= last]
    eta = eta_estimate(daily=[row.tasks for row in window], remaining=counts.remaining, now=now)
    runs_rate, _ = ewma_rate([row.runs for row in window]) if window else (0.0, 0.0)
    if quality is None:
        quality = project_quality(project=project)
    stages = stage_funnel(project=project, now=now, counts={project.pk: counts})
    people = annotator_table(project=project, now=now, quality=quality)
    return {
        "total": counts.total,
        "by_status": counts.by_status,
        "done": counts.done,
        "remaining": counts.remaining,
        "percent_complete": counts.percent_complete,
        "throughput_per_day": round(eta.rate if eta.rate is not None else _plain_rate(window), 2),
        "runs_per_day": round(runs_rate, 2),
        "eta_seconds": round(eta.seconds) if eta.seconds is not None else None,
        "eta_range": [None if s is None else round(s) for s in eta.range] if eta.range else None,
        "eta_date": eta.date,
        "eta_dates": [eta.low_date, eta.high_date] if eta.seconds is not None else None,
        "eta_reason": eta.reason,
        "eta_far": eta.seconds is None and eta.rate is not None,  # work, but too slow to date
        "eta": eta,
        "overdue": counts.overdue,
        "due_soon": counts.due_soon,
        "stages": stages,
        "annotators": people,
        "quality": quality,
        "throughput": [row for row in history if row.day >= chart_start],
    }


def _plain_rate(window: list[DayCompletions]) -> float:
    """The EWMA of tasks per day when there is too little history for an ETA."""
    return ewma_rate([row.tasks for row in window])[0] if window else 0.0


def project_overview(*, project: Project, user, now: dt.datetime | None = None) -> dict[str, Any]:
    """The project's dashboard (its Overview page) for ``user``: ``project_progress`` plus
    the efficiency trend and, for those who read everyone's progress (administrators,
    managers, reviewers: ``Action.REVIEW``), the per-annotator table and the overdue and
    due-soon tasks; an annotator gets their own row only (``sees_people`` False)."""
    from core.access import Action, project_allows

    now = now or timezone.now()
    sees_people = project_allows(user, project, Action.REVIEW)
    figures = project_progress(project=project, now=now)
    if not sees_people:
        figures["annotators"] = [a for a in figures["annotators"] if a.user_id == user.pk]
    figures["sees_people"] = sees_people
    figures["trend"] = efficiency_trend(project=project, now=now)
    figures["overdue_list"], figures["due_soon_list"] = (
        overdue_tasks(project=project, now=now) if sees_people else ([], [])
    )
    figures["alerts"] = [s for s in figures["stages"] if s.alert]
    figures["status_rows"] = [
        (TaskStatus(status).label, figures["by_status"].get(status, 0))
        for status in TaskStatus.values
    ]
    return figures
