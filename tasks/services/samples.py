"""A task's samples: mark one invalid (with a reason) or restore it, and catch up with
samples that a dataset re-sync changed."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction

from core.access import Action, project_allows
from core.exceptions import ApplicationError, Conflict

from ..models import Annotation, InvalidSample, StageRun, Task, TaskEvent
from .access import annotating_run
from .base import lock_task, task_sample

FRAME_KEYS = ("frame", "start", "end")


@transaction.atomic
def sample_mark_invalid(
    *, actor, task: Task, sample: Any, stage: str, reason: Any
) -> InvalidSample:
    """The stage's annotator (or a manager) marks a whole sample unusable, with a reason."""
    task = lock_task(task.pk)
    annotating_run(task, stage, actor)
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise ApplicationError("Say why the sample is invalid.", field="reason")
    if len(reason) > 500:
        raise ApplicationError("Keep the reason under 500 characters.", field="reason")
    sample_obj = task_sample(task, sample)
    existing = InvalidSample.objects.filter(task=task, sample=sample_obj).first()
    if existing:
        raise Conflict(
            f"{sample_obj.name} is already marked invalid: {existing.reason}",
            extra={"reason": existing.reason},
        )
    flag = InvalidSample.objects.create(
        task=task, sample=sample_obj, stage_key=stage, reason=reason, author=actor
    )
    TaskEvent.objects.create(
        task=task,
        kind="sample_invalid",
        actor=actor,
        stage_key=stage,
        data={"sample": sample_obj.pk, "name": sample_obj.name, "reason": reason},
    )
    return flag


@transaction.atomic
def sample_restore(*, actor, task: Task, sample: Any) -> None:
    """Undo a sample's invalid mark: a manager, or its author while their stage is open."""
    task = lock_task(task.pk)
    manager = project_allows(actor, task.project, Action.CHANGE)
    if not manager and not project_allows(actor, task.project, Action.ANNOTATE):
        raise PermissionDenied("Only a manager or whoever marked it restores a sample.")
    sample_obj = task_sample(task, sample)
    flag = InvalidSample.objects.filter(task=task, sample=sample_obj).first()
    if flag is None:
        raise ApplicationError(f"{sample_obj.name} is not marked invalid.", field="sample")
    if not manager:
        if flag.author_id != actor.pk:
            raise PermissionDenied("Only a manager or whoever marked it restores a sample.")
        annotating_run(task, flag.stage_key, actor)
    flag.delete()
    TaskEvent.objects.create(
        task=task,
        kind="sample_restored",
        actor=actor,
        stage_key=flag.stage_key,
        data={"sample": sample_obj.pk, "name": sample_obj.name},
    )


def changed_samples(task: Task):
    """The task's samples that a dataset re-sync changed since the task last caught up."""
    from projects.models import Sample

    return Sample.objects.filter(
        dataset__tasks=task, changed_at__gt=task.samples_synced_at
    ).order_by("dataset__name", "index")


@transaction.atomic
def task_samples_sync(*, actor, task: Task) -> dict:
    """Catch up with re-synced samples: annotations that now point past a sample's last
    frame are marked invalid (kept, with the reason), and the reminder goes away.

    A manager, or someone with a stage of this task in progress."""
    task = lock_task(task.pk)
    if not project_allows(actor, task.project, Action.CHANGE) and not (
        project_allows(actor, task.project, Action.ANNOTATE)
        and task.runs.filter(assignee=actor, status=StageRun.Status.IN_PROGRESS).exists()
    ):
        raise PermissionDenied("Only a manager or someone working on this task syncs it.")
    changed = {s.pk: s for s in changed_samples(task)}
    outside = []
    for a in Annotation.objects.filter(task=task, sample__in=changed, invalid=False):
        last = changed[a.sample_id].num_frames - 1
        frames = [a.data.get(k) for k in FRAME_KEYS if isinstance(a.data.get(k), int)]
        if any(f > last for f in frames):
            a.invalid = True
            a.invalid_reason = (
                f"{changed[a.sample_id].name} now ends at frame {last} (dataset re-synced)."
            )
            a.version += 1
            outside.append(a)
    Annotation.objects.bulk_update(outside, ["invalid", "invalid_reason", "version"])
    if changed:
        # Up to the newest change seen, not "now": a re-sync committing meanwhile with an
        # earlier stamp still shows up next time.
        task.samples_synced_at = max(s.changed_at for s in changed.values())
        task.save(update_fields=["samples_synced_at"])
    result = {"samples": [s.name for s in changed.values()], "invalidated": len(outside)}
    TaskEvent.objects.create(task=task, kind="samples_synced", actor=actor, data=result)
    return result
