"""Task lifecycle: creation, stage actions, annotations — each a transaction that locks
the task row, calls the pure engine (blueprints.engine), stores the runs and the status,
and writes a TaskEvent for every change. Deliveries and callbacks go out after commit."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from blueprints import engine
from blueprints.models import Blueprint
from blueprints.selectors import active_blueprint
from blueprints.spec import BlueprintSpec, ConsensusStage, ReviewStage
from blueprints.validation import validate
from core.access import Action, is_admin, project_allows
from core.exceptions import ApplicationError, Conflict, InvalidTransition
from projects.models import Dataset, ImportStatus, Membership, Project, Role

from .checks import run_checks
from .models import Annotation, Delivery, Priority, StageRun, Task, TaskEvent, TaskStatus
from .validation import clean_attributes, clean_data

logger = logging.getLogger(__name__)
User = get_user_model()

# The status machine: what may follow what (data_submitted is set by an export).
TRANSITIONS = {
    TaskStatus.PENDING_START: {TaskStatus.IN_PROGRESS, TaskStatus.REVIEW_PASSED},
    TaskStatus.IN_PROGRESS: {TaskStatus.PENDING_REVIEW, TaskStatus.REVIEW_PASSED},
    TaskStatus.PENDING_REVIEW: {TaskStatus.IN_PROGRESS, TaskStatus.REVIEW_PASSED},
    TaskStatus.REVIEW_PASSED: {TaskStatus.DATA_SUBMITTED, TaskStatus.IN_PROGRESS},
    TaskStatus.DATA_SUBMITTED: set(),
}


@lru_cache(maxsize=256)
def _spec(blueprint_id: int, updated_at) -> BlueprintSpec:
    return validate(Blueprint.objects.get(pk=blueprint_id).definition)


def spec_for(blueprint: Blueprint) -> BlueprintSpec:
    return _spec(blueprint.pk, blueprint.updated_at)


def _event(task: Task, kind: str, actor=None, stage_key: str = "", **data: Any) -> TaskEvent:
    return TaskEvent(task=task, kind=kind, actor=actor, stage_key=stage_key, data=data)


def task_transition(*, task: Task, to: str, actor=None) -> TaskEvent:
    """Move the stored status; anything the status machine does not allow is refused."""
    if to not in TRANSITIONS[task.status]:
        raise InvalidTransition(
            f"A task cannot go from {task.get_status_display().lower()} to "
            f"{TaskStatus(to).label.lower()}.",
            field="status",
        )
    previous, task.status = task.status, to
    return _event(task, "status_changed", actor, previous=previous, status=to)


# --- creation ----------------------------------------------------------------------------


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


def _new_runs(task: Task, spec: BlueprintSpec) -> list[StageRun]:
    runs = []
    for stage in spec.stages:
        replicas = stage.annotators if isinstance(stage, ConsensusStage) else 1
        runs += [
            StageRun(task=task, stage_key=stage.key, kind=stage.kind, replica=r)
            for r in range(replicas)
        ]
    return runs


def _check_fields(name: str, priority: str, callback_url: str, checked: set | None = None) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ApplicationError("A task needs a name.", field="name")
    if priority not in Priority.values:
        raise ApplicationError(
            f"priority must be one of {', '.join(Priority.values)}.", field="priority"
        )
    if callback_url and (checked is None or callback_url not in checked):
        from .webhooks import check_callback_url

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
    if not project_allows(actor, project, Action.CHANGE):
        raise PermissionDenied("You may not create tasks in this project.")
    unique_ids = [i.get("unique_id") for i in items if i.get("unique_id")]
    if len(unique_ids) != len(set(unique_ids)):
        raise ApplicationError("unique_id repeats within the request.", field="unique_id")
    existing = dict(
        Task.objects.filter(project=project, unique_id__in=unique_ids).values_list(
            "unique_id", "id"
        )
    )
    if existing:
        uid, task_id = next(iter(existing.items()))
        raise Conflict(
            f"A task with unique_id “{uid}” already exists (task {task_id}).",
            field="unique_id",
            extra={"task": task_id},
        )
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
        with transaction.atomic():  # a savepoint: a unique_id taken meanwhile is a 409
            tasks = _insert_tasks(project, prepared, actor)
    except IntegrityError:
        taken = Task.objects.filter(project=project, unique_id__in=unique_ids).first()
        if taken is None:
            raise
        raise Conflict(
            f"A task with unique_id “{taken.unique_id}” already exists (task {taken.pk}).",
            field="unique_id",
            extra={"task": taken.pk},
        ) from None
    _link_and_start(tasks, prepared, actor)
    logger.info("%s created %d task(s) in %s", actor, len(tasks), project.slug)
    return tasks


def _insert_tasks(project, prepared, actor) -> list[Task]:
    return Task.objects.bulk_create(
        [
            Task(
                project=project,
                blueprint=blueprint,
                name=item["name"].strip()[:300],
                description=item.get("description") or "",
                priority=item.get("priority") or Priority.NORMAL,
                due_at=item.get("due_at"),
                batch=item.get("batch") or "",
                metadata=item.get("metadata") or {},
                callback_url=item.get("callback_url") or "",
                unique_id=item.get("unique_id") or "",
                created_by=actor,
            )
            for item, blueprint, *_ in prepared
        ],
        batch_size=1000,
    )


def _link_and_start(tasks, prepared, actor) -> None:
    links = {
        "datasets": (Task.datasets.through, "dataset_id"),
        "annotators": (Task.annotators.through, "user_id"),
        "reviewers": (Task.reviewers.through, "user_id"),
    }
    for position, (through, column) in (
        (4, links["datasets"]),
        (2, links["annotators"]),
        (3, links["reviewers"]),
    ):
        through.objects.bulk_create(
            [
                through(task_id=task.pk, **{column: obj.pk})
                for task, row in zip(tasks, prepared, strict=True)
                for obj in row[position]
            ],
            batch_size=5000,
        )
    runs, events = [], []
    for task, (_, blueprint, *_rest) in zip(tasks, prepared, strict=True):
        spec = spec_for(blueprint)
        task_runs = _new_runs(task, spec)
        states = engine.advance(spec, {}, [], _facts(task, {}, 0.0))
        for run in task_runs:
            state = states[run.stage_key]
            run.status, run.routed_to, run.reason = (
                state.status,
                state.routed_to or "",
                state.reason,
            )
        runs += task_runs
        events.append(
            _event(task, "created", actor, blueprint=f"{blueprint.name} v{blueprint.version}")
        )
        events += [
            _event(task, f"stage_{run.status}", None, run.stage_key, reason=run.reason)
            for run in task_runs
            if run.status != StageRun.Status.BLOCKED and run.replica == 0
        ]
    StageRun.objects.bulk_create(runs, batch_size=5000)
    TaskEvent.objects.bulk_create(events, batch_size=5000)


# --- the engine, applied -------------------------------------------------------------------


def _facts(task: Task, assignees: dict[str, str], active_seconds: float) -> engine.TaskFacts:
    datasets = tuple(str(v) for d in getattr(task, "_dataset_list", []) for v in (d.pk, d.name))
    return engine.TaskFacts(
        seed=f"task-{task.pk}",
        annotators=assignees,
        batch=task.batch,
        datasets=datasets,
        active_seconds=active_seconds,
    )


def _aggregate(runs: list[StageRun]) -> engine.Run:
    """One engine run per stage; a consensus stage is complete when every replica is."""
    first = runs[0]
    statuses = {r.status for r in runs}
    status = first.status
    if len(runs) > 1:
        if statuses == {StageRun.Status.COMPLETED} or statuses == {StageRun.Status.SUBMITTED}:
            status = (
                StageRun.Status.COMPLETED
                if statuses == {StageRun.Status.COMPLETED}
                else StageRun.Status.SUBMITTED
            )
        elif StageRun.Status.IN_PROGRESS in statuses or StageRun.Status.SUBMITTED in statuses:
            status = StageRun.Status.IN_PROGRESS
        elif StageRun.Status.READY in statuses:
            status = StageRun.Status.READY
    return engine.Run(
        status=status, attempt=first.attempt, routed_to=first.routed_to or None, reason=first.reason
    )


def _engine_annotations(annotations: list[Annotation]) -> list[engine.Annotation]:
    return [
        engine.Annotation(
            stage=a.stage_key,
            label=a.label,
            value=a.data.get("value"),
            attributes=a.attributes,
            invalid=a.invalid,
        )
        for a in annotations
    ]


def _lock(task_id: int) -> Task:
    task = Task.objects.select_for_update().select_related("blueprint", "project").get(pk=task_id)
    task._dataset_list = list(task.datasets.all())
    return task


def _sync(task: Task, actor, events: list[TaskEvent]) -> None:
    """Run the engine on the locked task, store what changed, derive the status."""
    spec = spec_for(task.blueprint)
    runs = list(task.runs.all())
    by_stage: dict[str, list[StageRun]] = {}
    for run in runs:
        by_stage.setdefault(run.stage_key, []).append(run)
    current = {key: _aggregate(group) for key, group in by_stage.items()}
    assignees = {
        key: group[0].assignee.username
        for key, group in by_stage.items()
        if group[0].assignee_id and group[0].assignee
    }
    active = sum(r.active_seconds for r in runs if r.kind in {"annotate", "consensus"})
    annotations = list(task.annotations.all())
    nxt = engine.advance(
        spec, current, _engine_annotations(annotations), _facts(task, assignees, active)
    )
    changed = []
    for key, state in nxt.items():
        if state == current[key]:
            continue
        for run in by_stage[key]:
            if state.status in {
                StageRun.Status.READY,
                StageRun.Status.SKIPPED,
                StageRun.Status.COMPLETED,
            } and run.status in {StageRun.Status.BLOCKED, StageRun.Status.READY}:
                run.status, run.routed_to, run.reason = (
                    state.status,
                    state.routed_to or "",
                    state.reason,
                )
                if state.status == StageRun.Status.COMPLETED:
                    run.completed_at = timezone.now()
                changed.append(run)
        kind = f"stage_{state.status}"
        data = {"reason": state.reason}
        if state.routed_to:
            kind, data = "stage_routed", {"to": state.routed_to, "reason": state.reason}
        events.append(_event(task, kind, None, key, **data))
    StageRun.objects.bulk_update(changed, ["status", "routed_to", "reason", "completed_at"])
    derived = engine.task_status(spec, nxt)
    if task.status != TaskStatus.DATA_SUBMITTED and derived != task.status:
        events.append(task_transition(task=task, to=derived, actor=actor))
        task.save(update_fields=["status", "updated_at"])
    _deliver(task, spec, nxt, events, annotations)


def _deliver(task, spec, after, events, annotations) -> None:
    from .webhooks import queue_callback

    deliveries = []
    skipped = {k for k, state in after.items() if state.status == engine.SKIPPED}
    annotations = [a for a in annotations if a.stage_key not in skipped]
    if task.project.delivery == "task":
        if (
            task.status == TaskStatus.REVIEW_PASSED
            and not task.deliveries.filter(stage_key="").exists()
        ):
            deliveries.append(Delivery(task=task, payload=delivery_payload(task, annotations)))
    else:
        # Each annotate stage once per attempt: rework after a reject is delivered again.
        done = {
            (d["stage_key"], d["payload__attempt"])
            for d in task.deliveries.exclude(stage_key="").values("stage_key", "payload__attempt")
        }
        for key, state in after.items():
            stage = spec.by_key[key]
            if stage.kind not in {"annotate", "consensus"} or state.status != engine.COMPLETED:
                continue
            if (key, state.attempt) in done:
                continue
            payload = delivery_payload(
                task, [a for a in annotations if a.stage_key == key], stage=key
            )
            payload["attempt"] = state.attempt
            deliveries.append(Delivery(task=task, stage_key=key, payload=payload))
    for delivery in deliveries:
        delivery.callback = (
            Delivery.Callback.PENDING if task.callback_url else Delivery.Callback.NONE
        )
        delivery.save()
        events.append(_event(task, "delivered", None, delivery.stage_key, delivery=delivery.pk))
        if task.callback_url:
            queue_callback(delivery)


def annotation_payload(a: Annotation) -> dict:
    return {
        "id": a.pk,
        "stage": a.stage_key,
        "label": a.label,
        "kind": a.kind,
        "sample": a.sample_id,
        "data": a.data,
        "attributes": a.attributes,
        "invalid": a.invalid,
        "invalid_reason": a.invalid_reason,
        "version": a.version,
    }


def delivery_payload(task: Task, annotations: list[Annotation], stage: str = "") -> dict:
    return {
        "task": task.pk,
        "unique_id": task.unique_id or None,
        "name": task.name,
        "project": task.project_id,
        "blueprint": {"name": task.blueprint.name, "version": task.blueprint.version},
        "stage": stage or None,
        "status": task.status,
        "metadata": task.metadata,
        "datasets": [d.pk for d in getattr(task, "_dataset_list", [])],
        "annotations": [annotation_payload(a) for a in annotations if not a.invalid],
    }


def _save_events(events: list[TaskEvent]) -> None:
    TaskEvent.objects.bulk_create(events)


# --- stage actions -----------------------------------------------------------------------


def _run_for(task: Task, stage_key: str, actor, *, starting: bool = False) -> StageRun:
    spec = spec_for(task.blueprint)
    if stage_key not in spec.by_key:
        raise ApplicationError(f"The blueprint has no stage “{stage_key}”.", field="stage")
    runs = list(task.runs.filter(stage_key=stage_key).order_by("replica"))
    own = [r for r in runs if r.assignee_id == actor.pk]
    if own:
        return own[0]
    if starting:
        free = [r for r in runs if r.assignee_id is None and r.status == StageRun.Status.READY]
        if free:
            return free[0]
        reserved = [r for r in runs if r.status == StageRun.Status.READY]
        if reserved:
            return reserved[0]
    return runs[0]


def _may_work(actor, task: Task, run: StageRun, spec: BlueprintSpec) -> None:
    manager = project_allows(actor, task.project, Action.CHANGE)
    stage = spec.by_key[run.stage_key]
    if isinstance(stage, ReviewStage):
        if not project_allows(actor, task.project, Action.REVIEW):
            raise PermissionDenied("Only reviewers review.")
        authors = set(
            task.runs.filter(stage_key__in=stage.reviews)
            .exclude(assignee=None)
            .values_list("assignee_id", flat=True)
        )
        if actor.pk in authors and not is_admin(actor):
            raise PermissionDenied("Nobody reviews their own work.")
        if (
            not manager
            and task.reviewers.exists()
            and not task.reviewers.filter(pk=actor.pk).exists()
        ):
            raise PermissionDenied("You are not a reviewer of this task.")
    else:
        if not project_allows(actor, task.project, Action.ANNOTATE):
            raise PermissionDenied("Only annotators annotate.")
        if (
            not manager
            and task.annotators.exists()
            and not task.annotators.filter(pk=actor.pk).exists()
        ):
            raise PermissionDenied("You are not an annotator of this task.")
        if isinstance(stage, ConsensusStage):
            others = task.runs.filter(stage_key=run.stage_key).exclude(pk=run.pk)
            if others.filter(assignee=actor).exists():
                raise PermissionDenied("Consensus needs different annotators for each run.")
    if run.assignee_id and run.assignee_id != actor.pk and not manager:
        raise PermissionDenied(f"This stage is {run.assignee.username}'s.")


@transaction.atomic
def stage_start(*, actor, task: Task, stage_key: str) -> StageRun:
    task = _lock(task.pk)
    spec = spec_for(task.blueprint)
    run = _run_for(task, stage_key, actor, starting=True)
    _may_work(actor, task, run, spec)
    if run.status == StageRun.Status.IN_PROGRESS and run.assignee_id == actor.pk:
        return run  # starting twice is harmless
    if run.status != StageRun.Status.READY:
        raise InvalidTransition(
            f"Stage “{stage_key}” is {run.get_status_display().lower()}, not ready.", field="stage"
        )
    run.status, run.assignee, run.started_at = StageRun.Status.IN_PROGRESS, actor, timezone.now()
    run.save(update_fields=["status", "assignee", "started_at"])
    events = [
        _event(task, "stage_started", actor, stage_key, replica=run.replica, attempt=run.attempt)
    ]
    _sync(task, actor, events)
    _save_events(events)
    return run


@transaction.atomic
def stage_submit(*, actor, task: Task, stage_key: str) -> StageRun:
    """Submit annotate work: the stage's checks run first and refuse with their messages."""
    task = _lock(task.pk)
    spec = spec_for(task.blueprint)
    run = _run_for(task, stage_key, actor)
    stage = spec.by_key[stage_key]
    if isinstance(stage, ReviewStage) or stage.kind == "logic":
        raise ApplicationError(
            f"“{stage_key}” is not annotation work: review it instead.", field="stage"
        )
    _may_work(actor, task, run, spec)
    if run.status != StageRun.Status.IN_PROGRESS:
        raise InvalidTransition(
            f"Stage “{stage_key}” is {run.get_status_display().lower()}, not in progress.",
            field="stage",
        )
    annotations = list(
        task.annotations.filter(stage_key=stage_key, replica=run.replica).select_related("sample")
    )
    samples = [s for d in task._dataset_list for s in d.samples.all()]
    failures = run_checks(spec, stage, annotations, samples)
    if failures:
        raise ApplicationError(
            "The stage's checks failed.", field="checks", extra={"checks": failures}
        )
    now = timezone.now()
    run.submitted_at = now
    run.active_seconds += (now - run.started_at).total_seconds() if run.started_at else 0
    events = [
        _event(task, "stage_submitted", actor, stage_key, replica=run.replica, attempt=run.attempt)
    ]
    if isinstance(stage, ConsensusStage):
        run.status = StageRun.Status.SUBMITTED
        run.save(update_fields=["status", "submitted_at", "active_seconds"])
        _consensus(task, stage, events)
    else:
        run.status, run.completed_at = StageRun.Status.COMPLETED, now
        run.save(update_fields=["status", "submitted_at", "completed_at", "active_seconds"])
    _sync(task, actor, events)
    _save_events(events)
    return run


def _consensus(task: Task, stage: ConsensusStage, events: list) -> None:
    from .agreement import agreement

    runs = list(task.runs.filter(stage_key=stage.key))
    if any(r.status != StageRun.Status.SUBMITTED for r in runs):
        return
    by_replica = {r.replica: [] for r in runs}
    for a in task.annotations.filter(stage_key=stage.key, invalid=False):
        by_replica.setdefault(a.replica, []).append(a)
    score = agreement(list(by_replica.values()))
    routed = engine.DISAGREEMENT if score < stage.agreement else ""
    for r in runs:
        r.status, r.agreement, r.completed_at = StageRun.Status.COMPLETED, score, timezone.now()
        r.routed_to = routed
    StageRun.objects.bulk_update(runs, ["status", "agreement", "completed_at", "routed_to"])
    events.append(
        _event(
            task,
            "consensus",
            None,
            stage.key,
            agreement=score,
            threshold=stage.agreement,
            agreed=score >= stage.agreement,
        )
    )


@transaction.atomic
def stage_review(
    *, actor, task: Task, stage_key: str, decision: str, comment: str = ""
) -> StageRun:
    """Approve, or reject: the reviewed stages reopen for the same annotators (attempt + 1,
    the comment as feedback) and everything downstream of them is evaluated again."""
    if decision not in {"approve", "reject"}:
        raise ApplicationError("decision is approve or reject.", field="decision")
    task = _lock(task.pk)
    spec = spec_for(task.blueprint)
    stage = spec.by_key.get(stage_key)
    if not isinstance(stage, ReviewStage):
        raise ApplicationError(f"“{stage_key}” is not a review stage.", field="stage")
    run = _run_for(task, stage_key, actor, starting=True)
    _may_work(actor, task, run, spec)
    if run.status == StageRun.Status.READY:  # deciding on a ready review starts it
        run.status, run.assignee, run.started_at = (
            StageRun.Status.IN_PROGRESS,
            actor,
            timezone.now(),
        )
        run.save(update_fields=["status", "assignee", "started_at"])
    if run.status != StageRun.Status.IN_PROGRESS:
        raise InvalidTransition(
            f"Review “{stage_key}” is {run.get_status_display().lower()}, not in progress.",
            field="stage",
        )
    reviewed = {r.stage_key: r for r in task.runs.filter(stage_key__in=stage.reviews)}
    first_pass = all(
        r.attempt == 1 for r in reviewed.values() if r.status != StageRun.Status.SKIPPED
    )
    events = [
        _event(
            task,
            {"approve": "review_approved", "reject": "review_rejected"}[decision],
            actor,
            stage_key,
            comment=comment,
            first_pass=first_pass,
        )
    ]
    now = timezone.now()
    if decision == "approve":
        run.status, run.completed_at = StageRun.Status.COMPLETED, now
        run.save(update_fields=["status", "completed_at"])
    else:
        runs = list(task.runs.all())
        current = {}
        for r in runs:
            current.setdefault(
                r.stage_key, _aggregate([x for x in runs if x.stage_key == r.stage_key])
            )
        reopened = engine.reopen(spec, current, stage_key)
        for r in runs:
            state = reopened[r.stage_key]
            if state == current[r.stage_key]:
                continue
            r.attempt, r.routed_to, r.reason = state.attempt, "", ""
            r.started_at = r.submitted_at = r.completed_at = None
            if r.stage_key in stage.reviews:
                r.feedback = comment
                events.append(
                    _event(
                        task,
                        "stage_reopened",
                        actor,
                        r.stage_key,
                        attempt=r.attempt,
                        assignee=r.assignee.username if r.assignee else None,
                    )
                )
            if state.status == engine.IN_PROGRESS:
                r.status, r.started_at = StageRun.Status.IN_PROGRESS, now
            else:
                # Reset to be decided again; the person who did it is remembered.
                r.status = StageRun.Status.BLOCKED
        StageRun.objects.bulk_update(
            runs,
            [
                "status",
                "attempt",
                "feedback",
                "routed_to",
                "reason",
                "started_at",
                "submitted_at",
                "completed_at",
            ],
        )
    _sync(task, actor, events)
    _save_events(events)
    return run


# --- annotations --------------------------------------------------------------------------


def _annotating_run(task: Task, stage_key: str, actor) -> StageRun:
    spec = spec_for(task.blueprint)
    stage = spec.by_key.get(stage_key)
    if stage is None or stage.kind not in {"annotate", "consensus"}:
        raise ApplicationError(
            f"“{stage_key}” is not an annotate stage of this task.", field="stage"
        )
    run = _run_for(task, stage_key, actor)
    if run.status != StageRun.Status.IN_PROGRESS:
        raise InvalidTransition(
            f"Stage “{stage_key}” is {run.get_status_display().lower()}; "
            "annotations change only while it is in progress.",
            field="stage",
        )
    if run.assignee_id != actor.pk and not project_allows(actor, task.project, Action.CHANGE):
        raise PermissionDenied("Only the stage's annotator (or a manager) annotates it.")
    _may_work(actor, task, run, spec)  # still an annotator of the project and the task
    return run


def _own_replica(actor, task: Task, run: StageRun, annotation: Annotation) -> None:
    """Consensus work is independent: nobody changes another replica's annotations."""
    if annotation.replica != run.replica and not project_allows(actor, task.project, Action.CHANGE):
        raise PermissionDenied("That annotation belongs to another annotator's run.")


@transaction.atomic
def annotation_create(
    *,
    actor,
    task: Task,
    stage: str,
    label: str,
    data: Any,
    attributes: Any = None,
    sample: int | None = None,
    kind: str | None = None,
) -> Annotation:
    task = _lock(task.pk)
    spec = spec_for(task.blueprint)
    run = _annotating_run(task, stage, actor)
    if label not in spec.by_key[stage].classes:
        allowed = ", ".join(spec.by_key[stage].classes)
        raise ApplicationError(
            f"Stage “{stage}” adds only {allowed}, not “{label}”.", field="label"
        )
    cls = spec.classes[label]
    if kind is not None and kind != cls.kind:
        raise ApplicationError(f"{label} is a {cls.kind}, not a {kind}.", field="kind")
    sample_obj = None
    if sample is not None:
        from projects.models import Sample

        sample_obj = Sample.objects.filter(pk=sample, dataset__in=task._dataset_list).first()
        if sample_obj is None:
            raise ApplicationError("That sample is not one of the task's.", field="sample")
    annotation = Annotation.objects.create(
        task=task,
        stage_key=stage,
        replica=run.replica,
        sample=sample_obj,
        label=label,
        kind=cls.kind,
        data=clean_data(cls, data),
        attributes=clean_attributes(cls, attributes),
        author=actor,
    )
    return annotation


@transaction.atomic
def annotation_update(
    *,
    actor,
    annotation: Annotation,
    version: Any,
    data: Any = None,
    attributes: Any = None,
    invalid: bool | None = None,
    invalid_reason: str | None = None,
) -> Annotation:
    """Change an annotation; ``version`` must be the one the editor saw (else 409)."""
    task = _lock(annotation.task_id)
    locked = Annotation.objects.select_for_update().get(pk=annotation.pk)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ApplicationError("Send the version you edited.", field="version")
    if version != locked.version:
        raise Conflict(
            "Someone changed this annotation meanwhile: nothing was overwritten.",
            extra={"version": locked.version, "current": annotation_payload(locked)},
        )
    spec = spec_for(task.blueprint)
    cls = spec.classes[locked.label]
    only_flag = data is None and attributes is None
    if only_flag and invalid is not None:
        allowed = project_allows(actor, task.project, Action.REVIEW) or project_allows(
            actor, task.project, Action.CHANGE
        )
        if not allowed:
            _annotating_run(task, locked.stage_key, actor)
    else:
        run = _annotating_run(task, locked.stage_key, actor)
        _own_replica(actor, task, run, locked)
    if data is not None:
        locked.data = clean_data(cls, data)
    if attributes is not None:
        locked.attributes = clean_attributes(cls, attributes)
    if invalid is not None:
        if invalid and not (invalid_reason or "").strip():
            raise ApplicationError("Say why it is invalid.", field="invalid_reason")
        locked.invalid, locked.invalid_reason = (
            bool(invalid),
            (invalid_reason or "").strip() if invalid else "",
        )
    locked.version += 1
    locked.save()
    return locked


@transaction.atomic
def annotation_delete(*, actor, annotation: Annotation, version: Any = None) -> None:
    task = _lock(annotation.task_id)
    locked = Annotation.objects.select_for_update().get(pk=annotation.pk)
    if version is not None and version != locked.version:
        raise Conflict(
            "Someone changed this annotation meanwhile: nothing was deleted.",
            extra={"version": locked.version},
        )
    run = _annotating_run(task, locked.stage_key, actor)
    _own_replica(actor, task, run, locked)
    locked.delete()


EDITABLE = {"name", "description", "priority", "due_at", "batch", "metadata"}


@transaction.atomic
def task_update(*, actor, task: Task, **fields) -> Task:
    """Change a task's descriptive fields (not its blueprint or status); one event."""
    unknown = set(fields) - EDITABLE
    if unknown:
        raise ApplicationError(
            f"{', '.join(sorted(unknown))} cannot be changed here.", field=sorted(unknown)[0]
        )
    task = _lock(task.pk)
    if not project_allows(actor, task.project, Action.CHANGE):
        raise PermissionDenied("Only managers edit tasks.")
    _check_fields(fields.get("name", task.name), fields.get("priority", task.priority), "")
    changed = {k: v for k, v in fields.items() if getattr(task, k) != v}
    for key, value in changed.items():
        setattr(task, key, value.strip() if key == "name" else value)
    if changed:
        task.save(update_fields=[*changed, "updated_at"])
        TaskEvent.objects.create(
            task=task, kind="updated", actor=actor, data={"fields": sorted(changed)}
        )
    return task


@transaction.atomic
def task_delete(*, actor, task: Task) -> None:
    """Delete a task with its runs, annotations, events and dataset links — never datasets."""
    if not project_allows(actor, task.project, Action.CHANGE):
        raise PermissionDenied("Only managers delete tasks.")
    logger.info("%s deleted task %s (%s)", actor, task.pk, task.name)
    Task.objects.filter(pk=task.pk).delete()


PRIORITY_ORDER = {"urgent": 0, "high": 1, "normal": 2, "low": 3}


def stage_claim_next(*, actor) -> StageRun | None:
    """Claim the next ready annotate run that fits the annotator's skills and capacity:
    highest priority first, then the earliest due date. Two annotators claiming at once
    never get the same run (rows are locked with SKIP LOCKED)."""
    from django.db.models import Case, Count, Exists, F, IntegerField, OuterRef, Value, When

    # Tasks that name their annotators are only for them; the others are for anyone.
    named = Task.annotators.through.objects.filter(task=OuterRef("task"))

    memberships = {
        m.project_id: m for m in Membership.objects.filter(user=actor, role=Role.ANNOTATOR)
    }
    if not memberships:
        return None
    open_runs = dict(
        StageRun.objects.filter(assignee=actor, status=StageRun.Status.IN_PROGRESS)
        .values_list("task__project")
        .annotate(n=Count("id"))
    )
    projects = [p for p, m in memberships.items() if open_runs.get(p, 0) < m.capacity]
    if not projects:
        return None
    rank = Case(
        *[When(task__priority=p, then=Value(n)) for p, n in PRIORITY_ORDER.items()],
        output_field=IntegerField(),
    )
    candidates = (
        StageRun.objects.filter(
            task__project__in=projects,
            status=StageRun.Status.READY,
            kind__in=["annotate", "consensus"],
            assignee__isnull=True,
        )
        .filter(~Exists(named) | Exists(named.filter(user=actor)))
        .select_related("task", "task__blueprint")
        .annotate(rank=rank)
        .order_by("rank", F("task__due_at").asc(nulls_last=True), "task__created_at", "id")
    )
    # No row locks here: stage_start locks the task first and re-checks the run, so two
    # annotators claiming at once never get the same run and locks are taken in one order.
    offset, page = 0, 100
    while offset < 2000:
        batch = list(candidates[offset : offset + page])
        if not batch:
            return None
        for run in batch:
            spec = spec_for(run.task.blueprint)
            needed = set(spec.by_key[run.stage_key].params.required_skills)
            if not needed <= set(memberships[run.task.project_id].skills):
                continue
            mine = StageRun.objects.filter(
                task=run.task_id, stage_key=run.stage_key, assignee=actor
            )
            if mine.exists():
                continue  # consensus: one run per annotator
            try:
                started = stage_start(actor=actor, task=run.task, stage_key=run.stage_key)
            except (InvalidTransition, PermissionDenied):
                continue  # taken meanwhile, or not for this annotator
            if started.assignee_id == actor.pk and started.status == StageRun.Status.IN_PROGRESS:
                return started
        offset += page
    return None


@transaction.atomic
def task_mark_submitted(*, actor, tasks: Iterable[Task], reason: str = "") -> int:
    """review_passed → data_submitted (an export that submits calls this). Returns how many."""
    moved = 0
    for task in Task.objects.select_for_update().filter(pk__in=[t.pk for t in tasks]):
        event = task_transition(task=task, to=TaskStatus.DATA_SUBMITTED, actor=actor)
        event.data["reason"] = reason
        task.save(update_fields=["status", "updated_at"])
        event.save()
        moved += 1
    return moved


@transaction.atomic
def task_datasets_change(
    *, actor, task: Task, add: Iterable[int] = (), remove: Iterable[int] = ()
) -> Task:
    """Link or unlink datasets (never deletes a dataset); one event."""
    task = _lock(task.pk)
    if not project_allows(actor, task.project, Action.CHANGE):
        raise PermissionDenied("Only managers change a task's datasets.")
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


@transaction.atomic
def annotation_manage_invalid(*, actor, annotation: Annotation, restore: bool) -> None:
    """A manager restores an annotation marked invalid, or deletes it; one event."""
    task = _lock(annotation.task_id)
    if not project_allows(actor, task.project, Action.CHANGE):
        raise PermissionDenied("Only managers restore or delete invalid annotations.")
    locked = Annotation.objects.select_for_update().get(pk=annotation.pk)
    if not locked.invalid:
        raise ApplicationError("That annotation is not marked invalid.", field="annotation")
    if restore:
        locked.invalid, locked.invalid_reason = False, ""
        locked.version += 1
        locked.save()
    else:
        locked.delete()
    TaskEvent.objects.create(
        task=task,
        kind="annotation_restored" if restore else "annotation_deleted",
        actor=actor,
        stage_key=annotation.stage_key,
        data={"annotation": annotation.pk, "label": annotation.label},
    )
