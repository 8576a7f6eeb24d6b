"""Comments on a task: remarks, problems (open until resolved) and their solutions, each
optionally pinned to a sample, a frame and an annotation."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from core.access import Action, project_allows, require
from core.exceptions import ApplicationError
from core.parsers import whole_number

from ..models import Annotation, Comment, Task, TaskEvent
from .base import as_id, save_events, spec_for, task_sample

MAX_BODY = 5000


def pin_target(task: Task, sample: Any, frame: Any, annotation: Any, actor) -> dict:
    """Where a comment points; an annotation pin brings its sample, and nobody pins to an
    annotation they may not see (another annotator's consensus replica)."""
    from ..selectors import hidden_annotation_ids

    pin: dict = {"sample": None, "frame": None, "annotation": None}
    annotation_id = as_id(annotation, "annotation")
    if annotation_id:
        found = Annotation.objects.filter(pk=annotation_id, task=task).first()
        if found is None or found.pk in hidden_annotation_ids(task=task, user=actor):
            raise ApplicationError("That annotation is not one of the task's.", field="annotation")
        pin["annotation"] = found
        if found.sample_id:
            if sample not in (None, "") and as_id(sample, "sample") != found.sample_id:
                raise ApplicationError(
                    "The annotation belongs to another sample than the one given.",
                    field="sample",
                )
            sample = found.sample_id
    if sample not in (None, ""):
        pin["sample"] = task_sample(task, sample)
    if frame not in (None, ""):
        if pin["sample"] is None:
            raise ApplicationError("A frame is pinned together with its sample.", field="frame")
        number = None
        if isinstance(frame, int) and not isinstance(frame, bool):
            number = frame
        elif isinstance(frame, str):
            number = whole_number(frame)
        if number is None or number < 0:
            raise ApplicationError("frame must be a whole number.", field="frame")
        if number >= pin["sample"].num_frames:
            raise ApplicationError(
                f"{pin['sample'].name} has frames 0–{pin['sample'].num_frames - 1}.", field="frame"
            )
        pin["frame"] = number
    return pin


@transaction.atomic
def comment_create(
    *,
    actor,
    task: Task,
    body: Any,
    kind: str = Comment.Kind.COMMENT,
    parent: Any = None,
    stage_key: str = "",
    sample: Any = None,
    frame: Any = None,
    annotation: Any = None,
) -> Comment:
    """Any member who sees the task may comment; a solution answers one of its problems."""
    require(actor, task.project, Action.VIEW)
    body = body.strip() if isinstance(body, str) else ""
    if not body:
        raise ApplicationError("Write something.", field="body")
    if len(body) > MAX_BODY:
        raise ApplicationError(f"Keep it under {MAX_BODY} characters.", field="body")
    if kind not in Comment.Kind.values:
        raise ApplicationError(f"kind is one of {', '.join(Comment.Kind.values)}.", field="kind")
    parent_id = as_id(parent, "parent")
    parent_obj = Comment.objects.filter(pk=parent_id, task=task).first() if parent_id else None
    if parent_id and parent_obj is None:
        raise ApplicationError("That comment is not one of this task's.", field="parent")
    if kind == Comment.Kind.SOLUTION and (
        parent_obj is None or parent_obj.kind != Comment.Kind.PROBLEM
    ):
        raise ApplicationError("A solution answers a problem: give the problem.", field="parent")
    if stage_key and stage_key not in spec_for(task.blueprint).by_key:
        raise ApplicationError(f"“{stage_key}” is not a stage of this task.", field="stage")
    comment = Comment.objects.create(
        task=task,
        kind=kind,
        body=body,
        parent=parent_obj,
        stage_key=stage_key or "",
        author=actor,
        **pin_target(task, sample, frame, annotation, actor),
    )
    # Through save_events, so that a problem or a solution notifies the people concerned.
    save_events(
        [
            TaskEvent(
                task=task,
                kind="commented",
                actor=actor,
                stage_key=comment.stage_key,
                data={"comment_id": comment.pk, "kind": kind},
            )
        ]
    )
    return comment


@transaction.atomic
def comment_resolve(*, actor, comment: Comment, resolved: bool = True) -> Comment:
    """Close (or reopen) a problem: its author, a reviewer or a manager."""
    comment = Comment.objects.select_for_update().select_related("task__project").get(pk=comment.pk)
    if comment.kind != Comment.Kind.PROBLEM:
        raise ApplicationError("Only problems are resolved.", field="comment")
    project = comment.task.project
    if comment.author_id != actor.pk and not (
        project_allows(actor, project, Action.REVIEW)
        or project_allows(actor, project, Action.CHANGE)
    ):
        raise PermissionDenied("Only its author, a reviewer or a manager resolves a problem.")
    if comment.resolved == resolved:
        return comment
    comment.resolved = resolved
    comment.resolved_by = actor if resolved else None
    comment.resolved_at = timezone.now() if resolved else None
    comment.save(update_fields=["resolved", "resolved_by", "resolved_at"])
    TaskEvent.objects.create(
        task=comment.task,
        kind="problem_resolved" if resolved else "problem_reopened",
        actor=actor,
        stage_key=comment.stage_key,
        data={"comment_id": comment.pk},
    )
    return comment
