"""Deleting tasks: hidden at once, purged by a job.

A delete sets ``Task.deleted_at`` in one UPDATE: from that moment the default manager (every
list, count, page, export and related manager) no longer sees the task, and its unique id is
free again (the constraint is partial). In the same transaction go the child rows that no
other table refers to — stage runs, people, dataset links, notifications, quality
measurements (``core.deletion.delete_leaves``) — so the readers that reach tasks through
those rows (My work, claiming work, the dashboards' run counts, the kept counts) stop seeing
them at once too; the task's events wait for the purge (their few readers across tasks filter
the deleted tasks out). The references the purge would clear (``SET_NULL``: a post's pin)
are cleared, and the deliveries still to be sent to the task's ``callback_url`` are
cancelled (failed, a last attempt saying "task deleted"). Who deleted which tasks, and when, is one
``TaskDeletion`` row per project, which the purge leaves: a ``deleted`` event per task went
with the task's history at the purge, and its reference to the task cost a foreign-key check
(a lock on the task's row) per task at commit — 10,000 of them more than the rest of the
request. What is left (the task rows, and the annotations, comments, deliveries and audits
other rows point at) is purged by ``purge_deleted_tasks_job`` on the "default" queue after
commit (the audits and deliveries of a deleted task are read by no list meanwhile): deleting
a task row fires PostgreSQL's foreign-key check of each of the ~16 tables that refer to
tasks, seconds of database time for 10,000 tasks, which the request no longer waits for.

If the job fails or its worker dies, the tasks stay hidden: the next purge — the next delete's
job, or the daily clean-up (``queues.jobs.clean_exports_job``) — takes every deleted task.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audits.rollups import quality_touch
from core.deletion import clear_references, delete_leaves, delete_set

from ..models import Task, TaskDeletion, TaskEvent
from ..webhooks import cancel_callbacks
from .bulk import id_array, id_set

logger = logging.getLogger(__name__)

PURGE_CHUNK = 2_000  # tasks per purge transaction


@transaction.atomic
def tasks_delete(*, actor, ids: Sequence[int]) -> int:
    """Hide the tasks ``ids`` at once (the caller checked the actor may) and schedule their
    purge. Returns how many were deleted (a task deleted meanwhile counts once)."""
    if not ids:
        return 0
    rows = _hide(ids)
    if not rows:
        return 0
    hidden = sorted(row[0] for row in rows)
    keys = id_set(hidden)  # the array's text built once, carried by every statement below
    # The events stay for the purge (20,000 rows for 10,000 tasks, ≈ 10 % of the request):
    # history is read through its task (a page or API that answers 404 for a deleted task),
    # and the few reads across tasks filter task__deleted_at (tests/tasks/test_deleted_tasks).
    delete_leaves(Task, keys=keys, keep=(TaskEvent,))
    clear_references(Task, keys=keys)  # e.g. a post's pin: no link to a 404
    cancel_callbacks(keys)  # a deleted task's work is never sent
    by_project: dict[int, list[int]] = {}
    for pk, project_id in sorted(rows):
        by_project.setdefault(project_id, []).append(pk)
    TaskDeletion.objects.bulk_create(
        TaskDeletion(project_id=project_id, actor_id=getattr(actor, "pk", None), task_ids=pks)
        for project_id, pks in sorted(by_project.items())
    )
    for project_id in sorted(by_project):
        quality_touch(project_id)  # its runs, reviews and scores went with it
    purge_soon()
    logger.info("%s deleted %d task(s): %s", actor, len(hidden), hidden[:20])
    return len(hidden)


def _hide(ids: Sequence[int]) -> list[tuple[int, int]]:
    """Set ``deleted_at`` on the tasks of ``ids`` not deleted yet, in one statement; their
    ``(id, project id)`` (a task another request deleted first is not counted twice)."""
    table = connection.ops.quote_name(Task._meta.db_table)
    params: Sequence[Any]
    if connection.vendor == "postgresql":
        # By the primary key alone: matching "id IN (the live tasks among the ids)" joined the
        # table to itself through a sequential scan (225 of 500 ms for 10,000 of 100,000).
        match, params = "= ANY(%s::bigint[])", [id_array(ids)]
    else:
        sql, params = Task.all_objects.filter(pk__in=list(ids)).values("pk").query.sql_with_params()
        match = f"IN ({sql})"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET deleted_at = %s "  # noqa: S608
            f"WHERE deleted_at IS NULL AND id {match} RETURNING id, project_id",
            [timezone.now(), *params],
        )
        return cursor.fetchall()


def purge_soon() -> None:
    """Enqueue a purge after commit."""
    from core.jobs import enqueue

    from ..jobs import purge_deleted_tasks_job

    enqueue("default", purge_deleted_tasks_job)


def tasks_purge_deleted(*, chunk: int = PURGE_CHUNK, project_id: int | None = None) -> int:
    """Delete every deleted task (of ``project_id`` only, when given) with all its rows
    (``core.deletion.delete_set``), ``chunk`` tasks per transaction; a chunk another purge
    holds is skipped (that purge takes it). Safe to run any number of times, at once or
    after a failure. Returns the tasks purged."""
    deleted = Task.all_objects.filter(deleted_at__isnull=False)
    if project_id is not None:
        deleted = deleted.filter(project_id=project_id)
    waiting = list(deleted.order_by("pk").values_list("pk", flat=True))
    purged = 0
    for start in range(0, len(waiting), chunk):
        with transaction.atomic():
            rows = list(
                Task.all_objects.filter(
                    pk__in=id_set(waiting[start : start + chunk]), deleted_at__isnull=False
                )
                .select_for_update(skip_locked=True)
                .order_by()
                .values_list("pk", "project_id")
            )
            if not rows:
                continue
            ids = [pk for pk, _ in rows]
            delete_set(Task.all_objects.filter(pk__in=id_set(ids)), keys=id_set(ids))
            for touched in sorted({project for _, project in rows}):
                quality_touch(touched)  # their annotations and audits went now
        purged += len(ids)
    if purged:
        logger.info("purged %d deleted task(s)", purged)
    return purged
