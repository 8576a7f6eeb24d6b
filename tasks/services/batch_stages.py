"""Stage actions on many tasks at once: start a stage, approve or reject a review — the same
decisions as the per-task services (``start_decide``, ``review_decide`` on each task, the
pure engine's ``advance`` per task in Python), with the reads and writes set-based: the
tasks locked in one statement (id order), what the decisions read in a handful of queries,
and every kind of row written in one statement for the whole batch — the runs and statuses
the engine moved, one TaskEvent per task per transition, review outcomes, comments,
deliveries. The query count does not grow with the number of tasks.

A batch is all or nothing: when any task may not take the action (not found or not
visible, the stage not ready, not the actor's to review, …) nothing is written and the
error names the tasks and why."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404

from core.access import Action, project_allows
from core.exceptions import ApplicationError

from ..models import Task
from .base import lock_tasks
from .comments import MAX_BODY
from .stages import StageAction, actions_write, review_decide, start_decide
from .sync import BatchAnnotations

MAX_TASKS = 5_000  # per call: one transaction holds every task's lock
SHOWN = 5  # refused tasks named in the error


def _task_ids(task_ids: Any) -> list[int]:
    if not isinstance(task_ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**63 for i in task_ids
    ):
        raise ApplicationError("ids is a list of task ids.", field="ids")
    ids = sorted(set(task_ids))
    if not ids:
        raise ApplicationError("Choose at least one task.", field="ids")
    if len(ids) > MAX_TASKS:
        raise ApplicationError(f"At most {MAX_TASKS:,} tasks per stage action.", field="ids")
    return ids


def _each(
    actor, ids: list[int], outcomes: bool, decide: Callable[[Task, BatchAnnotations], Any]
) -> list[StageAction]:
    """Lock the tasks, decide on each (``decide(task, loader)``), refuse the whole batch if
    any task is refused; the decisions, not yet written."""
    tasks = lock_tasks(ids, actor, outcomes=outcomes)
    visible = [t for t in tasks if project_allows(actor, t.project, Action.VIEW)]
    refused = [(pk, "not found") for pk in sorted(set(ids) - {t.pk for t in visible})]
    loader = BatchAnnotations(t.pk for t in visible)
    actions = []
    for task in visible:
        try:
            actions.append(decide(task, loader))
        except (ApplicationError, PermissionDenied, Http404) as error:
            refused.append((task.pk, str(getattr(error, "message", "") or error)))
    if refused:
        refused.sort()
        named = "; ".join(f"task {pk}: {why}" for pk, why in refused[:SHOWN])
        more = f" (and {len(refused) - SHOWN} more)" if len(refused) > SHOWN else ""
        raise ApplicationError(
            f"{len(refused)} of the {len(ids)} tasks cannot take this action, nothing was "
            f"changed — {named}{more}.",
            field="ids",
            extra={"refused": [{"task": pk, "reason": why} for pk, why in refused]},
        )
    return actions


@transaction.atomic
def stage_start_many(*, actor, task_ids: list[int], stage_key: str) -> int:
    """Start the stage on every task for ``actor`` (as ``stage_start`` on each: their run,
    or a free or reserved ready one; a run they hold in progress already is left as it is).
    Returns how many runs were started."""
    ids = _task_ids(task_ids)
    if not isinstance(stage_key, str) or not stage_key:
        raise ApplicationError("Name the stage.", field="stage")
    actions = _each(
        actor, ids, False, lambda task, loader: start_decide(task, actor, stage_key, loader)
    )
    actions_write(actions, actor)
    return sum(1 for a in actions if a.plan is not None)


@transaction.atomic
def stage_review_many(
    *, actor, task_ids: list[int], stage_key: str, decision: str, comment: str = ""
) -> int:
    """Approve or reject the review stage on every task (as ``stage_review`` on each, a ready
    review started by deciding it); a reject reopens each task's reviewed stages for their
    annotators with ``comment`` as feedback. Returns how many tasks were decided."""
    if decision not in {"approve", "reject"}:
        raise ApplicationError("decision is approve or reject.", field="decision")
    comment = comment.strip() if isinstance(comment, str) else ""
    if len(comment) > MAX_BODY:
        raise ApplicationError(f"Keep the comment under {MAX_BODY} characters.", field="comment")
    ids = _task_ids(task_ids)
    if not isinstance(stage_key, str) or not stage_key:
        raise ApplicationError("Name the review stage.", field="stage")
    pin: dict = {"sample": None, "frame": None, "annotation": None}

    def decide(task: Task, loader: BatchAnnotations) -> StageAction:
        return review_decide(task, actor, stage_key, decision, comment, dict(pin), loader)

    actions = _each(actor, ids, True, decide)
    actions_write(actions, actor)
    return len(actions)
