"""Applying the engine to a task: the status machine, syncing runs after a change, deliveries."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from blueprints import engine
from blueprints.models import Blueprint
from blueprints.spec import BlueprintSpec
from blueprints.validation import validate
from core.exceptions import ApplicationError, InvalidTransition

from ..models import Annotation, Delivery, StageRun, Task, TaskEvent, TaskStatus

logger = logging.getLogger(__name__)
User = get_user_model()

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


def _facts(
    task: Task, assignees: dict[str, tuple[str, ...]], active_seconds: float
) -> engine.TaskFacts:
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
        status=status,
        attempt=first.attempt,
        routed_to=first.routed_to or None,
        reason=first.reason,
        rejected=any(r.rejected for r in runs),
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


def _as_id(value: Any, field: str) -> int | None:
    """An id sent by a client (int or digits), or a clear error naming the field."""
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ApplicationError(f"{field} must be an id.", field=field)
    try:
        number = int(value)
    except ValueError:
        raise ApplicationError(f"{field} must be an id.", field=field) from None
    if not 0 < number < 2**31:
        raise ApplicationError(f"{field} must be an id.", field=field)
    return number


def task_sample(task: Task, sample_id: Any, field: str = "sample"):
    """One of the task's samples, or a clear error."""
    from projects.models import Sample

    number = _as_id(sample_id, field)
    sample = Sample.objects.filter(pk=number, dataset__tasks=task).first() if number else None
    if sample is None:
        raise ApplicationError("That sample is not one of the task's.", field=field)
    return sample


def _lock(task_id: int) -> Task:
    task = Task.objects.select_for_update().select_related("blueprint", "project").get(pk=task_id)
    task._dataset_list = list(task.datasets.all())
    return task


def _sync(task: Task, actor, events: list[TaskEvent]) -> None:
    """Run the engine on the locked task, store what changed, derive the status."""
    spec = spec_for(task.blueprint)
    runs = list(task.runs.select_related("assignee"))
    by_stage: dict[str, list[StageRun]] = {}
    for run in runs:
        by_stage.setdefault(run.stage_key, []).append(run)
    current = {key: _aggregate(group) for key, group in by_stage.items()}
    # Who annotated (annotate and consensus work only: a reviewer is not an annotator).
    assignees = {
        key: tuple(r.assignee.username for r in group if r.assignee_id and r.assignee)
        for key, group in by_stage.items()
        if group[0].kind in {"annotate", "consensus"}
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
    from ..webhooks import queue_callback

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
