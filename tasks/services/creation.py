"""Creating, editing and deleting tasks, and changing their datasets."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import QuerySet
from django.utils import timezone

from blueprints import engine
from blueprints.models import Blueprint
from blueprints.selectors import active_blueprint
from blueprints.spec import BlueprintSpec, ConsensusStage
from core.access import Action, require
from core.exceptions import ApplicationError, Conflict
from projects.models import Dataset, ImportStatus, Membership, Project, Role

from ..models import Priority, StageRun, Task, TaskEvent, TaskStatus
from .assignment import push_assign, push_projects
from .base import STATUS_FIELDS, lock_task, spec_for, task_transition
from .bulk import copy_available, copy_rows, reserve_ids, text_set
from .sync import task_facts

logger = logging.getLogger(__name__)
User = get_user_model()


PRIORITIES = frozenset(Priority.values)


def _members(project: Project, usernames: Iterable[str], role: str, field: str) -> list:
    usernames = [u for u in dict.fromkeys(usernames or []) if u]
    if not usernames:
        return []
    if not all(isinstance(u, str) for u in usernames):
        raise ApplicationError("Give usernames.", field=field)
    found = {
        m.user.username: m.user
        for m in Membership.objects.filter(
            project=project, role__in=[role, Role.MANAGER], user__username__in=usernames
        ).select_related("user")
    }
    missing = [u for u in usernames if u not in found]
    if missing:
        raise ApplicationError(
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not a {role} of this "
            "project.",
            field=field,
        )
    return [found[u] for u in usernames]


def _datasets(project: Project, ids: Iterable) -> list[Dataset]:
    ids = list(dict.fromkeys(ids or []))
    if not ids:
        return []
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise ApplicationError("datasets are dataset ids.", field="datasets")
    found = {
        d.pk: d
        for d in Dataset.objects.filter(project=project, pk__in=ids, status=ImportStatus.FINISHED)
    }
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise ApplicationError(
            f"No finished dataset {', '.join(missing)} in this project.", field="datasets"
        )
    return [found[i] for i in ids]


def _blueprint(project: Project, name: str | None) -> Blueprint:
    if name:
        blueprint = (
            Blueprint.objects.filter(project=project, name=name).order_by("-version").first()
        )
        if blueprint is None:
            raise ApplicationError(
                f"No blueprint named “{name}” in this project.", field="blueprint"
            )
        return blueprint
    blueprint = active_blueprint(project=project)
    if blueprint is None:
        raise ApplicationError("The project has no active blueprint.", field="blueprint")
    return blueprint


def _check_fields(name: str, priority: str, callback_url: str, checked: set | None = None) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ApplicationError("A task needs a name.", field="name")
    if priority not in PRIORITIES:
        raise ApplicationError(
            f"priority must be one of {', '.join(Priority.values)}.", field="priority"
        )
    if callback_url and (checked is None or callback_url not in checked):
        from ..webhooks import check_callback_url

        check_callback_url(callback_url)
        if checked is not None:
            checked.add(callback_url)


@transaction.atomic
def task_create(
    *,
    actor,
    project: Project,
    name: str,
    blueprint: str | None = None,
    description: str = "",
    priority: str = Priority.NORMAL,
    datasets: Iterable[int] = (),
    annotators: Iterable[str] = (),
    reviewers: Iterable[str] = (),
    due_at=None,
    batch: str = "",
    metadata: dict | None = None,
    callback_url: str = "",
    unique_id: str = "",
) -> Task:
    """Create a task from a blueprint (the active one unless named) and start its engine."""
    return task_create_many(
        actor=actor,
        project=project,
        items=[
            dict(
                name=name,
                blueprint=blueprint,
                description=description,
                priority=priority,
                datasets=datasets,
                annotators=annotators,
                reviewers=reviewers,
                due_at=due_at,
                batch=batch,
                metadata=metadata,
                callback_url=callback_url,
                unique_id=unique_id,
            )
        ],
    )[0]


@transaction.atomic
def task_create_many(*, actor, project: Project, items: list[dict]) -> list[Task]:
    """Create many tasks with bulk inserts: queries do not grow with the number of tasks
    (beyond one per distinct blueprint, dataset list and user list)."""
    rows, prepared = _create(actor, project, items)
    tasks = []
    links = ("project_id", "blueprint_id", "created_by_id")  # given as the objects
    for row, (_, blueprint, *_rest) in zip(rows, prepared, strict=True):
        fields = {k: v for k, v in row.items() if k not in links}
        task = Task(project=project, blueprint=blueprint, created_by=actor, **fields)
        task._state.adding = False
        tasks.append(task)
    return tasks


@transaction.atomic
def task_create_ids(*, actor, project: Project, items: list[dict]) -> list[int]:
    """``task_create_many`` without a model instance per task: the new tasks' ids, in the
    items' order (the bulk API's path)."""
    return [row["id"] for row in _create(actor, project, items)[0]]


def tasks_with_unique_ids(project: Project, unique_ids: list[str]) -> QuerySet[Task]:
    """The project's live tasks holding any of ``unique_ids`` (non-empty strings), read from
    the partial unique index: the ids as one array, and the index's own condition
    (``unique_id <> ''``) spelled out — PostgreSQL does not prove it from an IN list of more
    than 100 values, and then scanned the whole table on every bulk request."""
    return (
        Task.objects.filter(project=project, unique_id__in=text_set(unique_ids))
        .exclude(unique_id="")
        .order_by()
    )


def _create(actor, project: Project, items: list[dict]) -> tuple[list[dict], list[tuple]]:
    """Check the items, write the tasks, link them and start their engines; answers the
    tasks' rows (column attname → value, ``id`` included) and the items as prepared."""
    require(actor, project, Action.CHANGE, "You may not create tasks in this project.")
    unique_ids: list[str] = [i["unique_id"] for i in items if i.get("unique_id")]
    if len(unique_ids) != len(set(unique_ids)):
        raise ApplicationError("unique_id repeats within the request.", field="unique_id")
    # A unique_id already taken is found by the unique index when the tasks are written (a
    # 409 below), not by reading the index for every id first: that read cost as much as
    # writing a task's stage runs, and a retry that finds its tasks is the rare case.
    blueprints: dict = {}
    checked_urls: set = set()
    users: dict = {}
    dataset_cache: dict = {}
    prepared = []
    for index, item in enumerate(items):
        try:
            _check_fields(
                item.get("name", ""),
                item.get("priority") or Priority.NORMAL,
                item.get("callback_url") or "",
                checked_urls,
            )
            due = _due(item.get("due_at"))
            if due is not item.get("due_at"):  # a string or naive time: the item, parsed
                item = {**item, "due_at": due}
            key = item.get("blueprint") or ""
            if key not in blueprints:
                blueprints[key] = _blueprint(project, key or None)
            annotator_key = ("annotator", tuple(item.get("annotators") or ()))
            if annotator_key not in users:
                users[annotator_key] = _members(
                    project, annotator_key[1], Role.ANNOTATOR, "annotators"
                )
            reviewer_key = ("reviewer", tuple(item.get("reviewers") or ()))
            if reviewer_key not in users:
                users[reviewer_key] = _members(project, reviewer_key[1], Role.REVIEWER, "reviewers")
            dataset_key = tuple(item.get("datasets") or ())
            if dataset_key not in dataset_cache:
                dataset_cache[dataset_key] = _datasets(project, dataset_key)
        except ApplicationError as exc:
            if len(items) > 1:
                exc.field = f"[{index}].{exc.field}" if exc.field else f"[{index}]"
            raise
        prepared.append(
            (
                item,
                blueprints[key],
                users[annotator_key],
                users[reviewer_key],
                dataset_cache[dataset_key],
            )
        )

    try:
        with transaction.atomic():  # a savepoint: a unique_id already taken is a 409
            rows = _insert_tasks(project, prepared, actor)
    except IntegrityError:
        taken = tasks_with_unique_ids(project, unique_ids).first() if unique_ids else None
        if taken is None:
            raise
        raise Conflict(
            f"A task with unique_id “{taken.unique_id}” already exists (task {taken.pk}).",
            field="unique_id",
            extra={"task": taken.pk},
        ) from None
    _link_and_start(rows, prepared, actor)
    logger.info("%s created %d task(s) in %s", actor, len(rows), project.slug)
    return rows, prepared


_DUE = models.DateTimeField()


def _due(value):
    """A due date as the ORM would store it: a datetime, date or ISO string (COPY's binary
    format takes datetimes only), a naive time in the default time zone; None for none."""
    if value in (None, ""):
        return None
    try:
        due = _DUE.to_python(value)
    except ValidationError:
        raise ApplicationError("due_at is not a date and time.", field="due_at") from None
    if due is not None and timezone.is_naive(due):
        due = timezone.make_aware(due)
    return due


def _insert_tasks(project, prepared, actor) -> list[dict]:
    """The tasks' rows, written: no model instance per task (building one costs as much as
    checking the item)."""
    now = timezone.now()
    actor_id = actor.pk if actor is not None else None
    rows = [
        {
            "project_id": project.pk,
            "blueprint_id": blueprint.pk,
            "name": item["name"].strip()[:300],
            "description": item.get("description") or "",
            "priority": item.get("priority") or Priority.NORMAL,
            "due_at": item.get("due_at"),
            "batch": item.get("batch") or "",
            "metadata": item.get("metadata") or {},
            "callback_url": item.get("callback_url") or "",
            "unique_id": item.get("unique_id") or "",
            "created_by_id": actor_id,
            "created_at": now,
            "updated_at": now,
            "samples_synced_at": now,
        }
        for item, blueprint, *_ in prepared
    ]
    if not copy_available():
        created = Task.objects.bulk_create([Task(**row) for row in rows], batch_size=1000)
        for row, task in zip(rows, created, strict=True):
            row["id"] = task.pk
        return rows
    # PostgreSQL: ids drawn from the sequence in one query, the rows written with COPY.
    for row, pk in zip(rows, reserve_ids(Task, len(rows)), strict=True):
        row["id"] = pk
    copy_rows(Task, rows, now=now)
    return rows


def _intake(spec: BlueprintSpec) -> dict[str, engine.Run] | None:
    """The engine's answer at creation when it is the same for every task of the blueprint
    version: the task's facts (seed, batch, datasets) only matter to a logic stage that
    routes at intake; without one, one run of the engine serves the whole batch. None when
    such a logic stage exists (then the engine runs per task)."""
    states = engine.advance(spec, {}, [], engine.TaskFacts(seed=""))
    routed = any(
        stage.kind == "logic" and states[stage.key].status != engine.BLOCKED
        for stage in spec.stages
    )
    return None if routed else states


def _link_and_start(rows, prepared, actor) -> None:
    links = {
        "datasets": (Task.datasets.through, "dataset_id"),
        "annotators": (Task.annotators.through, "user_id"),
        "reviewers": (Task.reviewers.through, "user_id"),
    }
    fast = copy_available()
    for position, (through, column) in (
        (4, links["datasets"]),
        (2, links["annotators"]),
        (3, links["reviewers"]),
    ):
        pairs = [
            (row["id"], obj.pk)
            for row, item in zip(rows, prepared, strict=True)
            for obj in item[position]
        ]
        if not pairs:
            continue
        if fast:
            copy_rows(through, [{"task_id": t, column: o} for t, o in pairs])
        else:
            through._default_manager.bulk_create(
                [through(task_id=t, **{column: o}) for t, o in pairs], batch_size=5000
            )
    # The engine once per blueprint version (per task only when a logic stage routes at
    # intake); runs and events as rows.
    now = timezone.now()
    actor_id = actor.pk if actor is not None and actor.pk else None
    # Per blueprint version: the spec, and the runs and event of a task as templates (None
    # when the engine runs per task). A task's rows are the templates with its ids; their
    # ``data`` objects are shared, so COPY writes each one's JSON once.
    plans: dict[int, tuple] = {}
    runs: list[tuple] = []
    events: list[tuple] = []
    for row, (_, blueprint, *_rest) in zip(rows, prepared, strict=True):
        plan = plans.get(blueprint.pk)
        if plan is None:
            spec = spec_for(blueprint)
            label = f"{blueprint.name} v{blueprint.version}"
            states = _intake(spec)
            templates = None if states is None else _start_rows(spec, states, label, actor_id)
            plan = plans[blueprint.pk] = (spec, label, templates)
        spec, label, templates = plan
        if templates is None:  # a logic stage routes at intake: the task's own facts
            states = engine.advance(spec, {}, [], task_facts(Task(**row), {}, 0.0))
            templates = _start_rows(spec, states, label, actor_id)
        task_id, project_id = row["id"], row["project_id"]
        runs.extend((*run, task_id, project_id) for run in templates[0])
        events.extend((*event, task_id) for event in templates[1])
    if fast:
        copy_rows(StageRun, runs, fields=RUN_FIELDS)
        copy_rows(TaskEvent, events, now=now, fields=EVENT_FIELDS)
    else:
        StageRun.objects.bulk_create(
            [StageRun(**dict(zip(RUN_FIELDS, r, strict=True))) for r in runs], batch_size=5000
        )
        TaskEvent.objects.bulk_create(
            [TaskEvent(**dict(zip(EVENT_FIELDS, e, strict=True))) for e in events],
            batch_size=5000,
        )
    # No notification: creation's event (created) concerns nobody
    # (notifications.services.EVENT_KINDS); push-mode assignments below notify.
    if rows and push_projects([rows[0]["project_id"]]):
        # A push project: the new tasks' ready runs are reserved for people at once.
        push_assign(actor=actor, task_ids=[row["id"] for row in rows])


# The columns of a new task's run and event rows (the task's ids last).
RUN_FIELDS = (
    "stage_key",
    "kind",
    "replica",
    "status",
    "routed_to",
    "reason",
    "task_id",
    "project_id",
)
EVENT_FIELDS = ("kind", "stage_key", "actor_id", "data", "task_id")


def _start_rows(
    spec: BlueprintSpec, states: dict[str, engine.Run], label: str, actor_id: int | None
) -> tuple[list[tuple], list[tuple]]:
    """A new task's stage runs and its one event (without its ids) from the engine's answer.

    Creation is one change, so one ``created`` event records it: the blueprint version and,
    in ``data["stages"]``, each stage it opened — what a ``stage_ready``, ``stage_skipped``
    or ``stage_routed`` event of its own said (``kind``, ``stage``, ``reason``, a route's
    ``to``). Later transitions still write one event each (tasks.services.sync)."""
    runs: list[tuple] = []
    opened: list[dict] = []
    for stage in spec.stages:
        state = states[stage.key]
        replicas = stage.annotators if isinstance(stage, ConsensusStage) else 1
        runs.extend(  # RUN_FIELDS without the task's ids
            (stage.key, stage.kind, replica, state.status, state.routed_to or "", state.reason)
            for replica in range(replicas)
        )
        if state.status == StageRun.Status.BLOCKED:
            continue
        if state.routed_to:  # a logic stage at the root routes at intake
            opened.append(
                {
                    "kind": "stage_routed",
                    "stage": stage.key,
                    "to": state.routed_to,
                    "reason": state.reason,
                }
            )
        else:
            opened.append(
                {"kind": f"stage_{state.status}", "stage": stage.key, "reason": state.reason}
            )
    created = ("created", "", actor_id, {"blueprint": label, "stages": opened})  # EVENT_FIELDS
    return runs, [created]


EDITABLE = {"name", "description", "priority", "due_at", "batch", "metadata"}


@transaction.atomic
def task_update(
    *,
    actor,
    task: Task,
    annotators: list[str] | None = None,
    reviewers: list[str] | None = None,
    moves: dict[str, str | None] | None = None,
    **fields,
) -> Task:
    """Change a task's descriptive fields (not its blueprint or status); one event. Given
    ``annotators`` and/or ``reviewers``, replace the task's people: the open runs of the
    people removed move to those added (``moves`` settles an ambiguous choice; see
    tasks.batch.task_batch_assign)."""
    unknown = set(fields) - EDITABLE
    if unknown:
        raise ApplicationError(
            f"{', '.join(sorted(unknown))} cannot be changed here.", field=sorted(unknown)[0]
        )
    task = lock_task(task.pk)
    require(actor, task.project, Action.CHANGE, "Only managers edit tasks.")
    _check_fields(fields.get("name", task.name), fields.get("priority", task.priority), "")
    changed = {k: v for k, v in fields.items() if getattr(task, k) != v}
    for key, value in changed.items():
        setattr(task, key, value.strip() if key == "name" else value)
    if changed:
        task.save(update_fields=[*changed, "updated_at"])
        TaskEvent.objects.create(
            task=task, kind="updated", actor=actor, data={"fields": sorted(changed)}
        )
    people = {"annotators": annotators, "reviewers": reviewers}
    current = {
        "annotators": [u.username for u in task.annotators.all()],
        "reviewers": [u.username for u in task.reviewers.all()],
    }
    people = {k: v for k, v in people.items() if v is not None and sorted(v) != sorted(current[k])}
    if people:
        from ..batch import task_batch_assign

        task_batch_assign(
            actor=actor, selection=Task.objects.filter(pk=task.pk), moves=moves, **people
        )
    return task


def task_delete(*, actor, task: Task) -> None:
    """Delete a task: hidden at once, purged with its runs, annotations, events and dataset
    links by a job (tasks.services.deletion) — never datasets."""
    from .deletion import tasks_delete

    require(actor, task.project, Action.CHANGE, "Only managers delete tasks.")
    tasks_delete(actor=actor, ids=[task.pk])


@transaction.atomic
def task_mark_submitted(*, actor, tasks: Iterable[Task], reason: str = "") -> int:
    """review_passed → data_submitted (an export that submits calls this). Returns how many."""
    moved = 0
    for task in Task.objects.select_for_update().filter(pk__in=[t.pk for t in tasks]):
        event = task_transition(task=task, to=TaskStatus.DATA_SUBMITTED, actor=actor)
        event.data["reason"] = reason
        task.save(update_fields=STATUS_FIELDS)
        event.save()
        moved += 1
    return moved


@transaction.atomic
def task_datasets_change(
    *, actor, task: Task, add: Iterable[int] = (), remove: Iterable[int] = ()
) -> Task:
    """Link or unlink datasets (never deletes a dataset); one event."""
    task = lock_task(task.pk)
    require(actor, task.project, Action.CHANGE, "Only managers change a task's datasets.")
    added = _datasets(task.project, list(add)) if add else []
    task.datasets.add(*added)
    removed = [d for d in task._dataset_list if d.pk in set(remove)]
    task.datasets.remove(*removed)
    if added or removed:
        TaskEvent.objects.create(
            task=task,
            kind="datasets_changed",
            actor=actor,
            data={"added": [d.name for d in added], "removed": [d.name for d in removed]},
        )
    return task
