"""Batch operations on many tasks: one service call each, with a query count that does not
grow with the number of tasks, and a TaskEvent per task changed."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from core.access import is_admin
from core.exceptions import ApplicationError
from projects.models import Membership, Role

from .filters import task_filter
from .models import Priority, Task, TaskEvent
from .selectors import task_list_for_user
from .services.base import save_events
from .services.bulk import copy_available, copy_rows, id_set, task_events

logger = logging.getLogger(__name__)
UNSET: Any = object()
MAX_BATCH = 100_000
DB = "default"


def managed_tasks(*, user) -> QuerySet[Task]:
    """Tasks the user may change: administrators all, managers their projects'."""
    if is_admin(user):
        return Task.objects.all()
    projects = Membership.objects.filter(user=user, role=Role.MANAGER).values("project")
    return Task.objects.filter(project__in=projects)


def managed_projects(*, user) -> list:
    """The projects the user manages (administrators: all), in one query."""
    from projects.models import Project

    if is_admin(user):
        return list(Project.objects.order_by("name"))
    return list(
        Project.objects.filter(memberships__user=user, memberships__role=Role.MANAGER)
        .distinct()
        .order_by("name")
    )


def batch_people(*, projects: list, project_id: int | None = None) -> dict:
    """The batch bar's member pickers: the annotators and the reviewers of the projects the
    manager manages, grouped by project (only the filtered project when the list is
    filtered to one of them), in one query. ``several`` says whether to label the groups.
    Each person is ``{"username", "name"}`` (``name``: ``User.get_full_name()``), plain
    values: no model instances for a bar drawn on every list page."""
    chosen = [p for p in projects if p.pk == project_id] or projects
    rows = (
        Membership.objects.filter(
            project__in=[p.pk for p in chosen],
            role__in=[Role.ANNOTATOR, Role.REVIEWER],
            user__is_active=True,
        )
        .order_by("user__username")
        .values_list("project_id", "role", "user__username", "user__first_name", "user__last_name")
    )
    people: dict[str, dict[int, list]] = {"annotators": {}, "reviewers": {}}
    for project, role, username, first, last in rows:
        field = "annotators" if role == Role.ANNOTATOR else "reviewers"
        name = f"{first} {last}".strip()  # what get_full_name() says
        people[field].setdefault(project, []).append({"username": username, "name": name})
    return {
        field: [{"project": p, "users": by_project[p.pk]} for p in chosen if p.pk in by_project]
        for field, by_project in people.items()
    } | {"several": len(chosen) > 1}


def batch_selection(*, user, ids: list[int] | None = None, filters: dict | None = None) -> QuerySet:
    """The tasks a batch action touches: the given ids, or every task matching the filters —
    always limited to tasks the user manages. Returns a plain queryset of ids."""
    if ids is None and filters is None:
        raise ApplicationError("Choose tasks (ids) or a filter.", field="ids")
    if ids is not None:
        if not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in ids
        ):
            raise ApplicationError("ids is a list of task ids.", field="ids")
        return managed_tasks(user=user).filter(pk__in=id_set(ids))
    chosen = task_list_for_user(user=user, filters=filters).order_by()
    return managed_tasks(user=user).filter(pk__in=chosen.values("pk"))


def _ids(selection: QuerySet) -> list[int]:
    ids = list(selection.values_list("pk", flat=True)[: MAX_BATCH + 1])
    if len(ids) > MAX_BATCH:
        raise ApplicationError(f"At most {MAX_BATCH:,} tasks per batch action.", field="ids")
    return ids


def task_batch_delete(*, actor, selection: QuerySet) -> int:
    """Delete the tasks: hidden at once, purged with their runs, annotations, events,
    deliveries and dataset links by a job (tasks.services.deletion). Datasets and samples are
    never deleted."""
    from .services.deletion import tasks_delete

    return tasks_delete(actor=actor, ids=_ids(selection))


def _users(ids: list[int], usernames, role: str, field: str) -> list:
    from django.contrib.auth import get_user_model

    usernames = list(dict.fromkeys(usernames))
    users = {u.username: u for u in get_user_model().objects.filter(username__in=usernames)}
    missing = [u for u in usernames if u not in users]
    if missing:
        raise ApplicationError(f"No user named {', '.join(missing)}.", field=field)
    # Everyone named must hold the role in every project of the selection.
    projects = set(
        Task.objects.filter(pk__in=id_set(ids))
        .order_by()
        .values_list("project", flat=True)
        .distinct()
    )
    held = set(
        Membership.objects.filter(
            user__in=users.values(), project__in=projects, role__in=[role, Role.MANAGER]
        ).values_list("user__username", "project")
    )
    for name in usernames:
        lacking = [p for p in projects if (name, p) not in held]
        if lacking:
            raise ApplicationError(
                f"{name} is not a {role} of every project in the selection.", field=field
            )
    return [users[u] for u in usernames]


@transaction.atomic
def task_batch_assign(
    *,
    actor,
    selection: QuerySet,
    annotators: list[str] | None = None,
    reviewers: list[str] | None = None,
    moves: dict[str, str | None] | None = None,
) -> int:
    """Replace the annotators and/or reviewers of the selected tasks. The open (ready and
    in-progress) runs of the people no longer named move to the people added, or back to
    the pool when nobody is added; when that is ambiguous the call is refused on ``moves``
    and ``moves={"old": "new"}`` says who takes whose work (tasks.services.transfer)."""
    from notifications.services import notify_for_events

    from .services.transfer import reassign_runs

    if annotators is None and reviewers is None:
        raise ApplicationError("Give annotators or reviewers.", field="annotators")
    if moves is not None and not (
        isinstance(moves, dict)
        and all(isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in moves.items())
    ):
        raise ApplicationError("moves maps a username to a username (or null).", field="moves")
    ids = _ids(selection)
    if not ids:
        return 0
    chosen = Task.objects.filter(pk__in=id_set(ids))
    # The tasks are locked (in id order) while their people and runs change.
    list(chosen.select_for_update().order_by("pk").values_list("pk"))
    moved: list[TaskEvent] = []
    for field, names, role in (
        ("annotators", annotators, Role.ANNOTATOR),
        ("reviewers", reviewers, Role.REVIEWER),
    ):
        if names is None:
            continue
        users = _users(ids, names, role, field)
        through = getattr(Task, field).through
        before: dict[int, set[int]] = {}
        for task_id, user_id in through.objects.filter(task_id__in=id_set(ids)).values_list(
            "task_id", "user_id"
        ):
            before.setdefault(task_id, set()).add(user_id)
        through.objects.filter(task_id__in=id_set(ids)).delete()
        _name_people(through, ids, [u.pk for u in users])
        moved += reassign_runs(
            actor=actor, task_ids=ids, field=field, before=before, after=users, moves=moves
        )
    chosen.update(updated_at=timezone.now())
    task_events(ids, "assigned", actor, annotators=annotators, reviewers=reviewers)
    if moved:  # the people given work hear of it (notifications)
        if copy_available():
            copy_rows(TaskEvent, [_row(e) for e in moved])
            notify_for_events(moved)
        else:
            save_events(moved)
    return len(ids)


def _row(event: TaskEvent) -> dict[str, Any]:
    return {
        "task_id": event.task_id,
        "kind": event.kind,
        "stage_key": event.stage_key,
        "actor_id": event.actor_id,
        "data": event.data,
    }


def _name_people(through, ids: list[int], user_ids: list[int]) -> None:
    """Name ``user_ids`` on every task of ``ids`` (rows of the many-to-many table)."""
    if not user_ids:
        return
    if not copy_available():
        through.objects.bulk_create(
            [through(task_id=t, user_id=u) for t in ids for u in user_ids], batch_size=5000
        )
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {through._meta.db_table} (task_id, user_id) "  # noqa: S608
            "SELECT t, u FROM unnest(%s::bigint[]) t CROSS JOIN unnest(%s::bigint[]) u",
            [list(ids), user_ids],
        )


@transaction.atomic
def task_batch_update(
    *, actor, selection: QuerySet, priority: Any = UNSET, due_at: Any = UNSET, batch: Any = UNSET
) -> int:
    """Change priority, due date and/or batch name of the selected tasks."""
    changes: dict[str, Any] = {}
    if priority is not UNSET:
        if priority not in Priority.values:
            raise ApplicationError(
                f"priority must be one of {', '.join(Priority.values)}.", field="priority"
            )
        changes["priority"] = priority
    if due_at is not UNSET:
        if due_at is not None and not isinstance(due_at, datetime):
            raise ApplicationError("due_at must be a date and time.", field="due_at")
        changes["due_at"] = due_at
    if batch is not UNSET:
        if not isinstance(batch, str) or len(batch) > 200:
            raise ApplicationError("batch must be text of at most 200 characters.", field="batch")
        changes["batch"] = batch.strip()
    if not changes:
        raise ApplicationError("Nothing to change: give priority, due_at or batch.", field="action")
    ids = _ids(selection)
    if not ids:
        return 0
    Task.objects.filter(pk__in=id_set(ids)).update(**changes, updated_at=timezone.now())
    shown = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in changes.items()}
    task_events(ids, "updated", actor, **shown)
    return len(ids)


def task_batch_apply(
    *,
    actor,
    action: str,
    ids: list[int] | None = None,
    filters: dict | None = None,
    annotators: list[str] | None = None,
    reviewers: list[str] | None = None,
    changes: dict[str, Any] | None = None,
    moves: dict[str, str | None] | None = None,
    stage: str = "",
    comment: str = "",
) -> int:
    """The one entry for batch actions, from the page and the API: choose the tasks (ids, or
    every task matching a filter read by tasks.filters), then delete, reassign or update
    them, or act on one of their stages — ``start`` it (for the manager), ``approve`` or
    ``reject`` its review (``comment``: the feedback), all or nothing
    (tasks.services.batch_stages). Returns how many tasks were affected."""
    ensure_manager(actor)
    if action not in {"delete", "assign", "update", *STAGE_ACTIONS}:
        raise ApplicationError(
            "action is delete, assign, update, start, approve or reject.", field="action"
        )
    chosen = task_filter(filters) if filters is not None else None
    selection = batch_selection(user=actor, ids=ids, filters=chosen)
    if action in STAGE_ACTIONS:
        return _stage_action(actor, action, selection, stage, comment)
    if action == "delete":
        return task_batch_delete(actor=actor, selection=selection)
    if action == "assign":
        return task_batch_assign(
            actor=actor,
            selection=selection,
            annotators=annotators,
            reviewers=reviewers,
            moves=moves,
        )
    return task_batch_update(actor=actor, selection=selection, **(changes or {}))


STAGE_ACTIONS = ("start", "approve", "reject")


def _stage_action(actor, action: str, selection: QuerySet, stage: str, comment: str) -> int:
    from .services.batch_stages import MAX_TASKS, stage_review_many, stage_start_many

    ids = list(selection.values_list("pk", flat=True)[: MAX_TASKS + 1])
    if len(ids) > MAX_TASKS:
        raise ApplicationError(f"At most {MAX_TASKS:,} tasks per stage action.", field="ids")
    if not ids:
        return 0
    if action == "start":
        return stage_start_many(actor=actor, task_ids=ids, stage_key=stage)
    return stage_review_many(
        actor=actor, task_ids=ids, stage_key=stage, decision=action, comment=comment
    )


def can_batch(user) -> bool:
    return is_admin(user) or Membership.objects.filter(user=user, role=Role.MANAGER).exists()


def ensure_manager(user) -> None:
    if not can_batch(user):
        raise PermissionDenied("Only managers and administrators change tasks in batches.")
