"""The shared pieces of the task services: the status machine, locking a task, the
blueprint spec of a task, events, and reading ids and samples sent by clients.

Every other module of the package builds on this one (and on ``sync`` and ``access``);
nothing here imports them back."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.utils import timezone

from blueprints.models import Blueprint
from blueprints.spec import BlueprintSpec
from blueprints.validation import validate
from core.exceptions import ApplicationError, InvalidTransition

from ..models import Task, TaskEvent, TaskStatus

# Done: every stage run completed or skipped (an export sending the data on keeps it done).
DONE_STATUSES: frozenset[str] = frozenset({TaskStatus.REVIEW_PASSED, TaskStatus.DATA_SUBMITTED})
# The columns a status change writes (callers save them: ``task.save(update_fields=...)``).
STATUS_FIELDS: list[str] = ["status", "finished_at", "updated_at"]

TRANSITIONS: dict[str, set[str]] = {
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


def task_seed(task: Task) -> str:
    """The task's seed for every reproducible draw (logic ``random_sample``, ``sampling``)."""
    return f"task-{task.pk}"


def event(task: Task, kind: str, actor=None, stage_key: str = "", **data: Any) -> TaskEvent:
    return TaskEvent(task=task, kind=kind, actor=actor, stage_key=stage_key, data=data)


def task_transition(*, task: Task, to: str, actor=None) -> TaskEvent:
    """Move the stored status; anything the status machine does not allow is refused.
    ``finished_at`` follows: set when the task becomes done, kept while it stays done
    (review_passed → data_submitted), cleared when it is reopened. The caller saves
    ``STATUS_FIELDS``."""
    if to not in TRANSITIONS[task.status]:
        raise InvalidTransition(
            f"A task cannot go from {task.get_status_display().lower()} to "
            f"{TaskStatus(to).label.lower()}.",
            field="status",
        )
    previous, task.status = task.status, to
    if to in DONE_STATUSES:
        if previous not in DONE_STATUSES or task.finished_at is None:
            task.finished_at = timezone.now()
    else:
        task.finished_at = None
    return event(task, "status_changed", actor, previous=previous, status=to)


def as_id(value: Any, field: str) -> int | None:
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

    number = as_id(sample_id, field)
    sample = Sample.objects.filter(pk=number, dataset__tasks=task).first() if number else None
    if sample is None:
        raise ApplicationError("That sample is not one of the task's.", field=field)
    return sample


def lock_task(task_id: int) -> Task:
    task = Task.objects.select_for_update().select_related("blueprint", "project").get(pk=task_id)
    task._dataset_list = list(task.datasets.all())
    return task


def save_events(events: list[TaskEvent]) -> None:
    from notifications.services import notify_for_events

    TaskEvent.objects.bulk_create(events)
    notify_for_events(events)  # who should hear of it (assigned, sent back, problems, audits)
