"""Who may take which stage run: the one definition of eligibility.

``run_eligibility`` answers for one person and one run (None, or the reason in words);
``may_work`` (tasks.services.access) refuses with the same rules, worded for the person
acting; ``stage_claim_next`` and assignment (tasks.services.assignment) ask it too.

The rules, in order: the role in the project (annotators annotate, reviewers review;
managers and administrators may do both), nobody reviews their own work (administrators
excepted), a task that names its annotators (reviewers) is only for them (managers
excepted), one annotator per replica of a consensus stage, and — for annotate and consensus
work — the stage's ``params.required_skills`` held by the person's annotator membership.

Bounded use: pass ``memberships`` (the person's Membership rows in the task's project) and
prefetch ``task.annotators``, ``task.reviewers`` and ``task.runs`` to ask about many people and
runs without a query per question.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Q

from blueprints.spec import BlueprintSpec, ConsensusStage, ReviewStage
from core.access import Action, is_admin, project_allows
from projects.models import Membership, Project, Role

from ..models import StageRun, Task
from .base import named_ids

# The reasons, by code: third person for a manager choosing people (``run_eligibility``);
# tasks.services.access words the same codes for the person acting.
NOT_REVIEWER = "not_reviewer"
OWN_WORK = "own_work"
NOT_TASK_REVIEWER = "not_task_reviewer"
NOT_ANNOTATOR = "not_annotator"
NOT_TASK_ANNOTATOR = "not_task_annotator"
OTHER_REPLICA = "other_replica"
SKILLS = "skills"

REASONS = {
    NOT_REVIEWER: "not a reviewer of the project",
    OWN_WORK: "reviewing their own work",
    NOT_TASK_REVIEWER: "not one of the task's reviewers",
    NOT_ANNOTATOR: "not an annotator of the project",
    NOT_TASK_ANNOTATOR: "not one of the task's annotators",
    OTHER_REPLICA: "already holds another replica of this consensus stage",
    SKILLS: "lacks skills {skills}",
}


def _roles(user, project: Project, memberships: Iterable[Membership] | None) -> set[str]:
    """The roles the user holds in the project: from the given memberships (no query), or
    from the permission layer."""
    if is_admin(user):
        return {Role.MANAGER, Role.ANNOTATOR, Role.REVIEWER}
    if memberships is not None:
        return {m.role for m in memberships if m.project_id == project.pk}
    roles: set[str] = set()
    if project_allows(user, project, Action.CHANGE):
        roles.add(Role.MANAGER)
    if project_allows(user, project, Action.ANNOTATE):
        roles.add(Role.ANNOTATOR)
    if project_allows(user, project, Action.REVIEW):
        roles.add(Role.REVIEWER)
    return roles


def missing_skills(run: StageRun, spec: BlueprintSpec, skills: Iterable[str]) -> list[str]:
    """The stage's required skills the person lacks (review stages require none)."""
    stage = spec.by_key[run.stage_key]
    if isinstance(stage, ReviewStage) or stage.kind == "logic":
        return []
    have = set(skills)
    return [s for s in stage.params.required_skills if s not in have]


def eligibility_code(
    user,
    task: Task,
    run: StageRun,
    spec: BlueprintSpec,
    memberships: Iterable[Membership] | None = None,
    *,
    skills: bool = True,
) -> tuple[str, dict] | None:
    """None, or the rule that refuses (a code of ``REASONS`` and its details)."""
    if memberships is not None:
        memberships = [m for m in memberships if m.project_id == task.project_id]
    roles = _roles(user, task.project, memberships)
    manager = Role.MANAGER in roles
    stage = spec.by_key[run.stage_key]
    if isinstance(stage, ReviewStage):
        if not roles & {Role.REVIEWER, Role.MANAGER}:
            return NOT_REVIEWER, {}
        reviewed = set(stage.reviews)
        authors = {r.assignee_id for r in task.runs.all() if r.stage_key in reviewed}
        if user.pk in authors and not is_admin(user):
            return OWN_WORK, {}
        named = named_ids(task, "reviewers")
        if not manager and named and user.pk not in named:
            return NOT_TASK_REVIEWER, {}
        return None
    if not roles & {Role.ANNOTATOR, Role.MANAGER}:
        return NOT_ANNOTATOR, {}
    named = named_ids(task, "annotators")
    if not manager and named and user.pk not in named:
        return NOT_TASK_ANNOTATOR, {}
    if isinstance(stage, ConsensusStage):
        if any(
            r.stage_key == run.stage_key and r.pk != run.pk and r.assignee_id == user.pk
            for r in task.runs.all()
        ):
            return OTHER_REPLICA, {}
    if skills and not is_admin(user):
        if memberships is None:
            memberships = list(
                Membership.objects.filter(user=user, project=task.project_id, role=Role.ANNOTATOR)
            )
        held = [s for m in memberships if m.role == Role.ANNOTATOR for s in m.skills]
        if Role.ANNOTATOR not in roles:
            held = list(stage.params.required_skills)  # managers: no annotator skills asked
        lacking = missing_skills(run, spec, held)
        if lacking:
            return SKILLS, {"skills": ", ".join(lacking)}
    return None


def run_eligibility(
    user,
    task: Task,
    run: StageRun,
    spec: BlueprintSpec,
    memberships: Iterable[Membership] | None = None,
) -> str | None:
    """None if ``user`` may take ``run``; otherwise the reason in words (“not an annotator
    of the project”, “lacks skills lidar”, …). Whom the run is reserved for does not matter
    here (assignment replaces a reservation; ``may_work`` refuses someone else's run)."""
    found = eligibility_code(user, task, run, spec, memberships)
    if found is None:
        return None
    code, details = found
    return REASONS[code].format(**details)


def open_load(users: Iterable, project: Project | int) -> dict[int, int]:
    """Open stage runs per person in the project: in progress plus reserved ready runs
    (one query). Everyone asked about is in the answer, 0 when they hold none."""
    ids = [getattr(u, "pk", u) for u in users]
    project_id: int = project.pk if isinstance(project, Project) else project
    load = dict.fromkeys(ids, 0)
    if not ids:
        return load
    rows = (
        StageRun.objects.filter(
            Q(status=StageRun.Status.IN_PROGRESS) | Q(status=StageRun.Status.READY),
            task__project_id=project_id,
            assignee_id__in=ids,
        )
        .values("assignee_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        load[row["assignee_id"]] = row["n"]
    return load
