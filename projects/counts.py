"""Kept counts for the dashboards (issue 15): the tasks per (project, status, blueprint
version, hour they are due in), the tasks per (project, status, minute they are due in) and
the stage runs per (project, stage, kind, status, assignee), read without counting the
project's tasks or runs.

PostgreSQL triggers on ``tasks_task`` and ``tasks_stagerun`` (migrations ``projects``
0006-8, 0010) append a change row — ``+n`` / ``-n`` for a key — to ``projects_taskcount``
and ``projects_taskduecount`` / ``projects_runcount`` in the transaction of every statement
that creates, changes, deletes or soft-deletes tasks or runs, whoever wrote it (the
services, bulk ``UPDATE``s, ``COPY``). A key's count is the sum of its rows. Rows are only
ever appended by writers, so concurrent transactions never wait for each other on a counter
row; ``compact`` folds a project's rows into one per key (a read does it when a project has
more than ``COMPACT_ABOVE`` rows), and ``reconcile`` recomputes a project's counts from its
tasks and runs (``manage.py reconcile_counts``). A task counts while ``deleted_at`` is null;
a run until it is deleted (deleting tasks deletes their runs in the same transaction).

SQLite has no triggers here: ``kept()`` is False and the dashboards count the tasks and runs
as before (small data).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import BigIntegerField, Count, Q, QuerySet, Sum
from django.db.models.functions import Cast

COMPACT_ABOVE = 1000  # change rows of one project a read folds (at most a few ms to sum)
LOCK_SPACE = 715_031  # pg_advisory_xact_lock(LOCK_SPACE, project id): compaction, reconcile

TASK_KEY = ("project_id", "status", "blueprint_id", "due_hour")
# The UTC hour a task is due in, whatever the session's time zone (as the triggers write it).
DUE_HOUR = "date_trunc('hour', due_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
# The tasks due in each UTC minute (``TaskDueCount``): the hours the due figures cut.
DUE_KEY = ("project_id", "status", "due_minute")
DUE_MINUTE = "date_trunc('minute', due_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
RUN_KEY = ("project_id", "stage_key", "kind", "status", "assignee_id")
FUNNEL_KEY = ("project_id", "stage_key", "kind", "status")  # run_rows: summed over people
TABLES = {
    "tasks": ("projects_taskcount", TASK_KEY),
    "due": ("projects_taskduecount", DUE_KEY),
    "runs": ("projects_runcount", RUN_KEY),
}
# The rows compaction and reconcile keep (SQL on the table's columns; all when absent): reads
# take minutes of the hour now is in and of the hour 48 h on, never of an hour gone by, so
# minutes more than a day past are dropped (a task due then and changed later appends a row
# for its minute again, which the next compaction drops).
DUE_KEPT_FROM = "date_trunc('minute', now() - interval '1 day')"
KEPT = {"due": f"due_minute >= {DUE_KEPT_FROM}"}

# What the counts are, from the tasks and runs themselves (reconcile).
TRUE_COUNTS = {
    "tasks": (
        f"SELECT project_id, status, blueprint_id, {DUE_HOUR} AS due_hour, count(*) "  # noqa: S608
        "FROM tasks_task WHERE project_id = %s AND deleted_at IS NULL "
        "GROUP BY project_id, status, blueprint_id, due_hour"
    ),
    "due": (
        f"SELECT project_id, status, {DUE_MINUTE} AS due_minute, count(*) "  # noqa: S608
        "FROM tasks_task WHERE project_id = %s AND deleted_at IS NULL "
        f"AND due_at >= {DUE_KEPT_FROM} GROUP BY project_id, status, due_minute"
    ),
    "runs": (
        "SELECT project_id, stage_key, kind, status, assignee_id, count(*) FROM tasks_stagerun "
        "WHERE project_id = %s GROUP BY project_id, stage_key, kind, status, assignee_id"
    ),
}


def kept() -> bool:
    """Whether this database keeps the counts (PostgreSQL: the triggers)."""
    return connection.vendor == "postgresql"


def task_count_values(project_ids: Iterable[int], among: QuerySet | None = None) -> QuerySet:
    """The kept task counts of ``project_ids`` as ``values()`` rows: ``project_id``,
    ``status``, ``blueprint_id``, ``due_hour``, ``n`` (the count) and ``pieces`` (its change
    rows: pass the rows to ``fold_crowded`` after reading). Zero counts may be among them.
    ``among``: the rows of every project instead."""
    from .models import TaskCount

    rows = TaskCount.objects.filter(project_id__in=list(project_ids)) if among is None else among
    return (
        rows.order_by()
        .values("project_id", "status", "blueprint_id", "due_hour")
        .annotate(n=Cast(Sum("n"), BigIntegerField()), pieces=Count("*"))
    )


def due_minute_values(project_ids: Iterable[int], hours: Iterable[Any]) -> QuerySet:
    """The kept counts of the tasks of ``project_ids`` due in each minute of ``hours`` (UTC
    hour starts; a range of the (project, minute) index each) as ``values()`` rows:
    ``project_id``, ``status``, ``due_minute``, ``n``, ``pieces``. Zero counts may be among
    them."""
    from .models import TaskDueCount

    within = Q()
    for hour in hours:
        within |= Q(due_minute__gte=hour, due_minute__lt=hour + timedelta(hours=1))
    return (
        TaskDueCount.objects.filter(within, project_id__in=list(project_ids))
        .order_by()
        .values("project_id", "status", "due_minute")
        .annotate(n=Cast(Sum("n"), BigIntegerField()), pieces=Count("*"))
    )


def status_totals(project_ids: Iterable[int] | None) -> dict[str, int]:
    """Tasks per status over ``project_ids`` (every project when None), exact, one query
    (the task list's tabs)."""
    from .models import TaskCount

    every = TaskCount.objects.all() if project_ids is None else None
    rows = list(task_count_values(project_ids or [], among=every))
    fold_crowded(rows)
    totals: dict[str, int] = {}
    for row in rows:
        if row["n"]:
            totals[row["status"]] = totals.get(row["status"], 0) + row["n"]
    return totals


def run_rows(
    project_ids: Iterable[int], *, started_of: Iterable[str] = ()
) -> list[tuple[int, str, str, str, int, Any]]:
    """``(project id, stage key, kind, status, runs, last started)`` of ``project_ids``,
    non-zero counts only; ``last started`` is when the latest run of a group whose status is
    in ``started_of`` started (one backward probe of the funnel index per group; None for
    the others). One query; folds crowded projects after reading."""
    columns = ", ".join(FUNNEL_KEY)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns}, n, pieces, CASE WHEN status = ANY(%s) THEN ("  # noqa: S608
            "SELECT r.started_at FROM tasks_stagerun AS r WHERE r.project_id = g.project_id "
            "AND r.status = g.status AND r.stage_key = g.stage_key AND r.kind = g.kind "
            "AND r.started_at IS NOT NULL ORDER BY r.started_at DESC LIMIT 1) END "
            f"FROM (SELECT {columns}, sum(n)::bigint AS n, count(*) AS pieces "
            "FROM projects_runcount WHERE project_id = ANY(%s::bigint[]) "
            f"GROUP BY {columns}) AS g WHERE n <> 0",
            [list(started_of), list(project_ids)],
        )
        rows = cursor.fetchall()
    fold_crowded([{"project_id": row[0], "pieces": row[5]} for row in rows])
    return [row[:5] + row[6:] for row in rows]


def runs_by_person(project_id: int, *, kinds: Iterable[str], status: str) -> QuerySet:
    """``values()`` rows ``assignee_id``, ``n`` (non-zero) of the project's runs of ``kinds``
    in ``status`` that someone holds, from the kept counts (one query)."""
    from .models import RunCount

    return (
        RunCount.objects.filter(
            project_id=project_id, kind__in=list(kinds), status=status, assignee_id__isnull=False
        )
        .order_by()
        .values("assignee_id")
        .annotate(n=Cast(Sum("n"), BigIntegerField()))
        .exclude(n=0)
    )


def fold_crowded(rows: Iterable[dict]) -> None:
    """Compact the projects whose ``pieces`` over ``rows`` exceed ``COMPACT_ABOVE`` (the
    rows of one read: a project's change rows since its last compaction)."""
    pieces: dict[int, int] = {}
    for row in rows:
        pieces[row["project_id"]] = pieces.get(row["project_id"], 0) + (row.get("pieces") or 0)
    crowded = [pk for pk, n in pieces.items() if n > COMPACT_ABOVE]
    if crowded:
        compact(crowded, wait=False)


def _lock(cursor, project_id: int, wait: bool) -> bool:
    if wait:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_SPACE, project_id])
        return True
    cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [LOCK_SPACE, project_id])
    return bool(cursor.fetchone()[0])


def compact(project_ids: Iterable[int], *, wait: bool = True) -> None:
    """Fold each project's change rows into one row per key (zero counts dropped). One
    statement per table deletes the rows it sees of the keys that have several (or a zero,
    or that ``KEPT`` drops) and inserts their sums, so rows that concurrent transactions
    append meanwhile are kept as they are, and a key's single row is left in place (a
    project's minute counts are mostly such rows: rewriting them all took 0.35 s for 39,000
    rows, folding the crowded ones 0.07 s). ``wait=False`` skips a project another
    compaction or reconcile holds."""
    if not kept():
        return
    for project_id in sorted(set(project_ids)):
        with transaction.atomic(), connection.cursor() as cursor:
            if not _lock(cursor, project_id, wait):
                continue
            for which, (table, key) in TABLES.items():
                columns = ", ".join(key)
                keep = KEPT.get(which, "true")
                cursor.execute(
                    "WITH crowded AS (SELECT ctid AS at FROM ("  # noqa: S608
                    f"SELECT ctid, n, {keep} AS keep, count(*) OVER (PARTITION BY {columns}) "
                    f"AS rows FROM {table} WHERE project_id = %s) AS key_rows "
                    "WHERE rows > 1 OR n = 0 OR NOT keep), "
                    f"gone AS (DELETE FROM {table} WHERE project_id = %s "
                    f"AND ctid IN (SELECT at FROM crowded) RETURNING {columns}, n) "
                    f"INSERT INTO {table} ({columns}, n) SELECT {columns}, sum(n) FROM gone "
                    f"WHERE {keep} GROUP BY {columns} HAVING sum(n) <> 0",
                    [project_id, project_id],
                )


@dataclass
class Correction:
    """A key whose kept count was wrong by ``change`` (reconcile added it)."""

    table: str
    key: tuple
    change: int


def reconcile(project_ids: Iterable[int] | None = None) -> list[Correction]:
    """Recompute the kept counts of ``project_ids`` (every project, and drop the rows of
    projects that no longer exist, when None) from their tasks and runs; answers what was
    wrong. Per project and table one statement deletes the change rows and inserts the true
    counts, both on the same snapshot, under the project's lock: a concurrent writer's
    change rows that the statement does not see stay and still apply."""
    if not kept():
        return []
    from .models import Project

    if project_ids is None:
        with connection.cursor() as cursor:
            cursor.execute(
                " UNION ".join(f"SELECT project_id FROM {table}" for table, _ in TABLES.values())  # noqa: S608
            )
            counted = {row[0] for row in cursor.fetchall()}
        ids = set(Project.objects.values_list("pk", flat=True)) | counted
    else:
        ids = set(project_ids)
    found: list[Correction] = []
    for project_id in sorted(ids):
        with transaction.atomic(), connection.cursor() as cursor:
            _lock(cursor, project_id, wait=True)
            for which, (table, key) in TABLES.items():
                columns = ", ".join(key)
                keep = KEPT.get(which, "true")  # rows dropped as past are no correction
                cursor.execute(
                    f"WITH gone AS (DELETE FROM {table} WHERE project_id = %s "  # noqa: S608
                    f"RETURNING {columns}, n), "
                    f"fresh AS (INSERT INTO {table} ({columns}, n) {TRUE_COUNTS[which]} "
                    f"RETURNING {columns}, n) "
                    f"SELECT {columns}, sum(n)::bigint FROM ("
                    f"SELECT {columns}, -n AS n FROM gone WHERE {keep} "
                    f"UNION ALL SELECT {columns}, n FROM fresh"
                    f") AS change GROUP BY {columns} HAVING sum(n) <> 0 ORDER BY {columns}",
                    [project_id, project_id],
                )
                found += [Correction(table, row[:-1], row[-1]) for row in cursor.fetchall()]
    return found
