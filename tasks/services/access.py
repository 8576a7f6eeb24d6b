"""Who may work on which run of a task: the one place the task services ask it."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from blueprints.spec import BlueprintSpec, ConsensusStage, ReviewStage
from core.access import Action, is_admin, project_allows
from core.exceptions import ApplicationError, InvalidTransition

from ..models import StageRun, Task
from .base import spec_for


def run_for(task: Task, stage_key: str, actor, *, starting: bool = False) -> StageRun:
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


def may_work(actor, task: Task, run: StageRun, spec: BlueprintSpec) -> None:
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
    if run.assignee and run.assignee_id != actor.pk and not manager:
        raise PermissionDenied(f"This stage is {run.assignee.username}'s.")


def annotating_run(task: Task, stage_key: str, actor) -> StageRun:
    spec = spec_for(task.blueprint)
    stage = spec.by_key.get(stage_key)
    if stage is None or stage.kind not in {"annotate", "consensus"}:
        raise ApplicationError(
            f"“{stage_key}” is not an annotate stage of this task.", field="stage"
        )
    run = run_for(task, stage_key, actor)
    if run.status != StageRun.Status.IN_PROGRESS:
        raise InvalidTransition(
            f"Stage “{stage_key}” is {run.get_status_display().lower()}; "
            "annotations change only while it is in progress.",
            field="stage",
        )
    if run.assignee_id != actor.pk and not project_allows(actor, task.project, Action.CHANGE):
        raise PermissionDenied("Only the stage's annotator (or a manager) annotates it.")
    may_work(actor, task, run, spec)  # still an annotator of the project and the task
    return run
