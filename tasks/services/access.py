"""Who may work on which run of a task: the one place the task services ask it."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from blueprints.spec import BlueprintSpec
from core.access import Action, project_allows
from core.exceptions import ApplicationError, InvalidTransition

from ..models import StageRun, Task
from . import eligibility
from .base import spec_for, task_runs


def run_for(task: Task, stage_key: str, actor, *, starting: bool = False) -> StageRun:
    """The actor's run of the stage (starting: else a free one, else one reserved for
    someone), from the task's runs as read once (``task_runs``)."""
    spec = spec_for(task.blueprint)
    if stage_key not in spec.by_key:
        raise ApplicationError(f"The blueprint has no stage “{stage_key}”.", field="stage")
    runs = sorted((r for r in task_runs(task) if r.stage_key == stage_key), key=lambda r: r.replica)
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


# The eligibility rules (tasks.services.eligibility), worded for the person acting.
YOU = {
    eligibility.NOT_REVIEWER: "Only reviewers review.",
    eligibility.OWN_WORK: "Nobody reviews their own work.",
    eligibility.NOT_TASK_REVIEWER: "You are not a reviewer of this task.",
    eligibility.NOT_ANNOTATOR: "Only annotators annotate.",
    eligibility.NOT_TASK_ANNOTATOR: "You are not an annotator of this task.",
    eligibility.OTHER_REPLICA: "Consensus needs different annotators for each run.",
}


def may_work(actor, task: Task, run: StageRun, spec: BlueprintSpec) -> None:
    """Refuse (PermissionDenied) unless ``actor`` may work on ``run``: the eligibility rules
    (without the skills, which claiming and assignment ask) and nobody else's reserved run
    (managers excepted)."""
    refused = eligibility.eligibility_code(actor, task, run, spec, skills=False)
    if refused is not None:
        raise PermissionDenied(YOU[refused[0]])
    manager = project_allows(actor, task.project, Action.CHANGE)
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
