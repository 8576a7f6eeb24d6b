"""Assigning ready stage runs to people: a manager's manual choice for one run, and
auto-assign for many (a preview, then apply), also used by push projects on task creation.

A ready run with an assignee is *reserved* for that person: it waits in their My work and
is the first thing Start next task gives them; nobody else starts it (``may_work``).
Every assignment writes a TaskEvent ``run_assigned`` with data ``{"replica", "to", "from",
"via"}`` (``via``: ``manual``, ``auto`` or ``push``; ``to``/``from`` usernames or None).

Auto-assign distributes the selected tasks' ready, unreserved runs — annotate and
consensus runs to the project's annotators, review runs to its reviewers — in priority then
due-date order. For each run, among the people eligible for it (tasks.services.eligibility:
role, the task's named people, consensus replicas, own work, required skills) whose open
load plus what this plan already gave them is under their membership's capacity, the least
loaded takes it (ties by username). Open load = in-progress plus reserved ready runs in the
project (``open_load``). Weighted by quality, the comparison is of
(load + 1) ÷ (0.5 + quality) — the load after taking the run, scaled by the person's
accuracy (or first-pass rate when no audit measured them; else the project's figure; else
0.5): with nothing open, someone with quality 1.0 takes 3 runs for every 2 of someone with
0.5. A run nobody can take is listed with the reason.

Manual assignment refuses an ineligible person (the reason) and a person at capacity,
unless the manager insists (``force=True``: the page's “assign anyway”, the API's
``"force": true``); capacity is a guide for automatic distribution, a manager deciding
about one run may go over it knowingly. Moving in-progress work is a transfer
(tasks.services.transfer), not an assignment.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from core.access import Action, actor_user, require
from core.exceptions import ApplicationError, Conflict, InvalidTransition
from projects.models import Membership, Project, Role

from ..models import Priority, StageRun, Task, TaskEvent
from .base import event, lock_task, save_events, spec_for
from .eligibility import open_load, run_eligibility

User = get_user_model()

VIA = {"manual", "auto", "push"}
ASSIGNABLE = ["annotate", "consensus", "review"]
MAX_TASKS = 20_000  # tasks one auto-assign takes (with their ready runs)
NEUTRAL_QUALITY = 0.5


def _role_for(kind: str) -> str:
    return Role.REVIEWER if kind == "review" else Role.ANNOTATOR


def _assigned_event(task: Task, run: StageRun, actor, to, previous, via: str) -> TaskEvent:
    return event(
        task,
        "run_assigned",
        actor,
        run.stage_key,
        replica=run.replica,
        to=to.username if to is not None else None,
        **{"from": previous.username if previous is not None else None},
        via=via,
    )


# --- one run ------------------------------------------------------------------------------


def assignable_people(*, task: Task, run: StageRun) -> list[dict[str, Any]]:
    """The people a manager may reserve ``run`` for, each with their open load and capacity:
    ``[{"user", "username", "load", "capacity", "full", "reason"}]`` — ``reason`` None when
    eligible. Members holding the run's role (annotator, or reviewer for a review), by
    username; a bounded number of queries."""
    spec = spec_for(task.blueprint)
    role = _role_for(run.kind)
    memberships = list(
        Membership.objects.filter(project=task.project_id, user__is_active=True).select_related(
            "user"
        )
    )
    by_user: dict[int, list[Membership]] = {}
    for m in memberships:
        by_user.setdefault(m.user_id, []).append(m)
    candidates = sorted(
        (m for m in memberships if m.role == role), key=lambda m: m.user.username.lower()
    )
    task = Task.objects.prefetch_related("annotators", "reviewers", "runs").get(pk=task.pk)
    run = next(r for r in task.runs.all() if r.pk == run.pk)
    load = open_loads([m.user_id for m in candidates], [task.project_id])
    people = []
    for m in candidates:
        n = load.get((task.project_id, m.user_id), 0)
        if run.assignee_id == m.user_id:
            n -= 1  # the run itself is part of their load
        people.append(
            {
                "user": m.user,
                "username": m.user.username,
                "load": n,
                "capacity": m.capacity,
                "full": n >= m.capacity,
                "reason": run_eligibility(m.user, task, run, spec, by_user[m.user_id]),
            }
        )
    return people


def _pick_run(task: Task, stage_key: str, replica: int | None) -> StageRun:
    spec = spec_for(task.blueprint)
    if stage_key not in spec.by_key:
        raise ApplicationError(f"The blueprint has no stage “{stage_key}”.", field="stage")
    runs = list(task.runs.filter(stage_key=stage_key).order_by("replica"))
    if replica is not None:
        if isinstance(replica, bool) or not isinstance(replica, int):
            raise ApplicationError("replica is a number.", field="replica")
        chosen = [r for r in runs if r.replica == replica]
        if not chosen:
            raise ApplicationError(
                f"Stage “{stage_key}” has no replica {replica}.", field="replica"
            )
        return chosen[0]
    ready = [r for r in runs if r.status == StageRun.Status.READY]
    free = [r for r in ready if r.assignee_id is None]
    return (free or ready or runs)[0]


@transaction.atomic
def run_assign(
    *,
    actor,
    task: Task,
    stage_key: str,
    replica: int | None = None,
    user=None,
    via: str = "manual",
    force: bool = False,
) -> StageRun:
    """Reserve a ready run for ``user`` (None: clear the reservation); one ``run_assigned``
    event. ``replica`` None: the stage's first ready unreserved replica (else its first ready
    one). Refused: a run that is not ready (in-progress work moves by transfer), a person
    who may not take it (the reason), a person at capacity unless ``force``."""
    if via not in VIA:
        raise ApplicationError("via is manual, auto or push.", field="via")
    task = lock_task(task.pk)
    require(actor, task.project, Action.CHANGE, "Only managers assign stage runs.")
    run = _pick_run(task, stage_key, replica)
    if run.status != StageRun.Status.READY:
        raise InvalidTransition(
            f"Stage “{stage_key}” is {run.get_status_display().lower()}, not ready: only a "
            "ready run is assigned"
            + (
                "; move in-progress work with a transfer."
                if run.status == StageRun.Status.IN_PROGRESS
                else "."
            ),
            field="stage",
        )
    previous = run.assignee
    if user is not None:
        if previous is not None and previous.pk == user.pk:
            return run  # already theirs
        role = _role_for(run.kind)
        memberships = list(Membership.objects.filter(user=user, project=task.project_id))
        spec = spec_for(task.blueprint)
        reason = run_eligibility(user, task, run, spec, memberships)
        if reason is None and not any(m.role == role for m in memberships):
            reason = (
                f"not {'a reviewer' if role == Role.REVIEWER else 'an annotator'} of the project"
            )
        if reason is not None:
            raise ApplicationError(f"{user.username} cannot take this run: {reason}.", field="user")
        capacity = next(m.capacity for m in memberships if m.role == role)
        lock_assignment([task.project_id])
        load = open_load([user], task.project_id)[user.pk]
        if load >= capacity and not force:
            raise ApplicationError(
                f"{user.username} is at capacity ({load} open of {capacity}); assign anyway to "
                "go over it.",
                field="user",
                extra={"at_capacity": True},
            )
    elif previous is None:
        return run  # nothing reserved, nothing to clear
    run.assignee = user
    run.save(update_fields=["assignee"])
    task.save(update_fields=["updated_at"])
    save_events([_assigned_event(task, run, actor_user(actor), user, previous, via)])
    return run


def lock_assignment(project_ids) -> None:
    """Hold the projects' rows while people's open loads are read and runs reserved: two
    assignments at once in one project (auto-assign, a manual reservation, push) would
    otherwise both count the same loads and take a person past capacity. Always taken after
    the task locks (tasks in id order, then projects in id order)."""
    list(
        Project.objects.select_for_update()
        .filter(pk__in=sorted(set(project_ids)))
        .order_by("pk")
        .values_list("pk")
    )


def open_loads(user_ids: list[int], project_ids: list[int]) -> dict[tuple[int, int], int]:
    """Open runs (in progress plus reserved ready) per (project, person), one query."""
    if not user_ids or not project_ids:
        return {}
    rows = (
        StageRun.objects.filter(
            Q(status=StageRun.Status.IN_PROGRESS) | Q(status=StageRun.Status.READY),
            task__project_id__in=project_ids,
            assignee_id__in=user_ids,
        )
        .values("task__project_id", "assignee_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {(r["task__project_id"], r["assignee_id"]): r["n"] for r in rows}


# --- many runs: the plan --------------------------------------------------------------------


@dataclass
class Share:
    """What one person gets in a plan."""

    user_id: int
    username: str
    load: int  # open runs before the plan
    capacity: int
    runs: list[StageRun] = field(default_factory=list)


@dataclass
class Plan:
    shares: list[Share]  # people who get runs, most runs first (then by username)
    unassignable: list[dict[str, Any]]  # {"task", "task_name", "stage", "replica", "reason"}
    considered: int  # ready unreserved runs of the selection
    applied: bool = False

    @property
    def assigned(self) -> int:
        return sum(len(s.runs) for s in self.shares)

    def counts(self) -> dict[str, int]:
        return {s.username: len(s.runs) for s in self.shares}

    @property
    def token(self) -> str:
        """Stands for exactly which run goes to whom: a preview's token differs from the
        apply's when anything changed in between."""
        pairs = sorted((r.pk, s.user_id) for s in self.shares for r in s.runs)
        return hashlib.sha256(repr(pairs).encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, Any]:
        return {
            "assignments": [
                {
                    "username": s.username,
                    "runs": len(s.runs),
                    "load": s.load,
                    "capacity": s.capacity,
                }
                for s in self.shares
            ],
            "unassignable": [
                {
                    "task": u["task"],
                    "stage": u["stage"],
                    "replica": u["replica"],
                    "reason": u["reason"],
                }
                for u in self.unassignable
            ],
            "assigned": self.assigned,
            "considered": self.considered,
            "token": self.token,
            "applied": self.applied,
        }


@dataclass
class _Person:
    user: Any
    memberships: list[Membership]
    load: int  # open runs of every kind in the project (one load per person)
    capacities: dict[str, int]  # per role (one may review less than they annotate)
    quality: float
    runs: list[StageRun] = field(default_factory=list)


def _qualities(project: Project, user_ids: list[int]) -> dict[int, float]:
    from audits.selectors import project_quality

    figures = project_quality(project=project)
    overall = figures.get("accuracy")
    if overall is None:
        overall = figures.get("first_pass_rate")
    fallback = overall if overall is not None else NEUTRAL_QUALITY
    found: dict[int, float] = {}
    for row in figures["by_annotator"]:
        value = row.get("accuracy")
        if value is None:
            value = row.get("first_pass_rate")
        if row.get("user_id") is not None and value is not None:
            found[row["user_id"]] = float(value)
    return {pk: found.get(pk, fallback) for pk in user_ids}


def _ready_runs(task_ids: Any) -> list[Task]:
    """The selected tasks that have ready unreserved runs, with their blueprint, project,
    named people and every run (5 queries)."""
    free = StageRun.objects.filter(
        task=OuterRef("pk"),
        status=StageRun.Status.READY,
        assignee__isnull=True,
        kind__in=ASSIGNABLE,
    )
    return list(
        Task.objects.filter(pk__in=task_ids)
        .filter(Exists(free))
        .select_related("blueprint", "project")
        .prefetch_related("annotators", "reviewers", "runs")
        .order_by("pk")
    )


def _plan(tasks: list[Task], *, weight_by_quality: bool) -> Plan:
    """Distribute the tasks' ready unreserved runs (in memory: each chosen run's
    ``assignee_id`` is set on the task's prefetched run, so consensus replicas see it)."""
    if not tasks:
        return Plan(shares=[], unassignable=[], considered=0)
    projects = {t.project_id: t.project for t in tasks}
    memberships = list(
        Membership.objects.filter(project__in=projects, user__is_active=True).select_related("user")
    )
    held: dict[tuple[int, int], list[Membership]] = {}
    for m in memberships:
        held.setdefault((m.project_id, m.user_id), []).append(m)
    user_ids = sorted({m.user_id for m in memberships})
    loads = open_loads(user_ids, list(projects))
    qualities: dict[int, dict[int, float]] = {}
    if weight_by_quality:
        for project_id, project in projects.items():
            qualities[project_id] = _qualities(
                project, [m.user_id for m in memberships if m.project_id == project_id]
            )
    # Candidates per (project, role), with their load and the role's capacity.
    pools: dict[tuple[int, str], list[_Person]] = {}
    people: dict[tuple[int, int], _Person] = {}  # one load per person and project
    for m in sorted(memberships, key=lambda m: m.user.username.lower()):
        if m.role not in {Role.ANNOTATOR, Role.REVIEWER}:
            continue
        key = (m.project_id, m.user_id)
        person = people.get(key)
        if person is None:
            person = people[key] = _Person(
                user=m.user,
                # Not the manager role: its "any task" exception would hand someone a
                # task that names other people, who could then no longer start it.
                memberships=[h for h in held[key] if h.role != Role.MANAGER],
                load=loads.get(key, 0),
                capacities={},
                quality=qualities.get(m.project_id, {}).get(m.user_id, NEUTRAL_QUALITY),
            )
        person.capacities[m.role] = m.capacity
        pools.setdefault((m.project_id, m.role), []).append(person)

    rank = {value: n for n, value in enumerate(Priority.values)}
    order = []
    for task in tasks:
        spec = spec_for(task.blueprint)
        position = {s.key: n for n, s in enumerate(spec.stages)}
        for run in task.runs.all():
            if (
                run.status == StageRun.Status.READY
                and run.assignee_id is None
                and run.kind in ASSIGNABLE
            ):
                due = task.due_at
                order.append(
                    (
                        (
                            -rank.get(task.priority, 1),
                            due is None,
                            due.timestamp() if due else 0.0,
                            task.created_at.timestamp(),
                            task.pk,
                            position.get(run.stage_key, 0),
                            run.replica,
                        ),
                        task,
                        spec,
                        run,
                    )
                )
    order.sort(key=lambda item: item[0])

    unassignable = []
    for _, task, spec, run in order:
        role = _role_for(run.kind)
        pool = pools.get((task.project_id, role), [])
        eligible: list[tuple[_Person, str | None]] = []
        refused: list[tuple[_Person, str | None]] = []
        for person in pool:
            reason = run_eligibility(person.user, task, run, spec, person.memberships)
            (eligible if reason is None else refused).append((person, reason))
        room = [p for p, _ in eligible if p.load + len(p.runs) < p.capacities[role]]
        if room:
            if weight_by_quality:
                chosen = min(
                    room,
                    key=lambda p: (
                        (p.load + len(p.runs) + 1) / (0.5 + p.quality),
                        p.user.username.lower(),
                    ),
                )
            else:
                chosen = min(room, key=lambda p: (p.load + len(p.runs), p.user.username.lower()))
            chosen.runs.append(run)
            run.assignee_id = chosen.user.pk
            continue
        if eligible:
            reason = f"every eligible {role} is at capacity"
        elif not pool:
            reason = f"the project has no {role}s"
        else:
            reasons = sorted({r for _, r in refused if r})
            reason = "nobody eligible: " + "; ".join(reasons)
        unassignable.append(
            {
                "task": task.pk,
                "task_name": task.name,
                "stage": run.stage_key,
                "replica": run.replica,
                "reason": reason,
            }
        )
    shares = [
        Share(
            user_id=p.user.pk,
            username=p.user.username,
            load=p.load,
            capacity=max(p.capacities[_role_for(r.kind)] for r in p.runs),
            runs=p.runs,
        )
        for p in people.values()
        if p.runs
    ]
    shares.sort(key=lambda s: (-len(s.runs), s.username.lower()))
    return Plan(shares=shares, unassignable=unassignable, considered=len(order))


def auto_assign_plan(*, actor, selection: QuerySet, weight_by_quality: bool = False) -> Plan:
    """The preview: who would get which of the selection's ready unreserved runs (nothing
    is saved). ``selection`` comes from tasks.batch.batch_selection (tasks the actor
    manages)."""
    from ..batch import ensure_manager

    ensure_manager(actor)
    return _plan(_ready_runs(_task_ids(selection)), weight_by_quality=weight_by_quality)


def _task_ids(selection: QuerySet) -> list[int]:
    """The selection's task ids, or a clear refusal past ``MAX_TASKS`` (one query)."""
    ids = list(selection.values_list("pk", flat=True).order_by("pk")[: MAX_TASKS + 1])
    if len(ids) > MAX_TASKS:
        raise ApplicationError(
            f"At most {MAX_TASKS:,} tasks per auto-assign: narrow the filter.", field="ids"
        )
    return ids


def _store(plan: Plan, actor, via: str, sink: list[TaskEvent] | None = None) -> None:
    """Save the plan's reservations: one UPDATE per person, one event per run (bulk;
    appended to ``sink`` instead when the caller saves its events itself)."""
    events = []
    for share in plan.shares:
        StageRun.objects.filter(pk__in=[r.pk for r in share.runs]).update(assignee=share.user_id)
        events += [
            TaskEvent(
                task_id=run.task_id,
                kind="run_assigned",
                actor=actor_user(actor),
                stage_key=run.stage_key,
                data={"replica": run.replica, "to": share.username, "from": None, "via": via},
            )
            for run in share.runs
        ]
    if events and sink is not None:
        sink += events
    elif events:
        Task.objects.filter(pk__in={e.task_id for e in events}).update(updated_at=timezone.now())
        save_events(events)


@transaction.atomic
def auto_assign_apply(
    *,
    actor,
    selection: QuerySet,
    weight_by_quality: bool = False,
    expected: Any = None,
) -> Plan:
    """Recompute the plan with the tasks locked and apply it in one transaction. ``expected``
    (the preview's token, or its per-person counts ``{username: runs}``) guards against a
    plan that changed since the preview: then nothing is saved and Conflict (409) carries
    the new plan (``extra["plan"]``) to show instead."""
    from ..batch import ensure_manager

    ensure_manager(actor)
    ids = _task_ids(selection)
    # Lock the tasks (in id order, like every multi-task lock) so the runs stay as planned.
    list(Task.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk"))
    tasks = _ready_runs(ids)
    lock_assignment(t.project_id for t in tasks)
    plan = _plan(tasks, weight_by_quality=weight_by_quality)
    if expected is not None and not _matches(plan, expected):
        raise Conflict(
            "The assignment changed since the preview (work was started, assigned or "
            "added meanwhile); look at the new preview and apply again.",
            field="expected",
            extra={"plan": plan.as_dict()},
        )
    _store(plan, actor, "auto")
    plan.applied = True
    return plan


def _matches(plan: Plan, expected: Any) -> bool:
    if isinstance(expected, str):
        return expected == plan.token
    if isinstance(expected, dict):
        try:
            return {str(k): int(v) for k, v in expected.items() if int(v)} == plan.counts()
        except (TypeError, ValueError):
            raise ApplicationError(
                "expected is the preview's token or its counts per username.", field="expected"
            ) from None
    raise ApplicationError(
        "expected is the preview's token or its counts per username.", field="expected"
    )


def push_assign(*, actor, task_ids: list[int], events: list[TaskEvent] | None = None) -> Plan:
    """Push projects: reserve the ready unreserved runs of these tasks (just created, or
    with stages that just became ready) for eligible people, as auto-assign would; called
    inside the caller's transaction, with the tasks and runs already written. ``events``:
    the caller's list to add the ``run_assigned`` events to (else they are saved here)."""
    tasks = _ready_runs(task_ids)
    lock_assignment(t.project_id for t in tasks)
    plan = _plan(tasks, weight_by_quality=False)
    _store(plan, actor, "push", events)
    plan.applied = True
    return plan


def is_push(project: Project) -> bool:
    from projects.selectors import assignment_mode

    return assignment_mode(project) == "push"


def push_projects(project_ids) -> set[int]:
    """Which of these projects assign by push (``settings["assignment"] == "push"``)."""
    return set(
        Project.objects.filter(pk__in=list(project_ids), settings__assignment="push").values_list(
            "pk", flat=True
        )
    )


def assignment_selection(*, actor, ids: Any = None, filters: Any = None) -> QuerySet:
    """The tasks an auto-assign touches, as the batch actions choose them: ``ids``, or every
    task matching ``filters`` (a client's filter, read strictly by tasks.filters) — always
    tasks the actor manages. Managers and administrators only."""
    from ..batch import batch_selection, ensure_manager
    from ..filters import task_filter

    ensure_manager(actor)
    chosen = task_filter(filters) if filters is not None else None
    return batch_selection(user=actor, ids=ids, filters=chosen)


def person_for_assignment(*, task: Task, username: Any) -> Any:
    """The user named to take a run of ``task`` (None for none), or a clear 400."""
    if username is None or username == "":
        return None
    if not isinstance(username, str):
        raise ApplicationError("username is a username or null.", field="username")
    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        raise ApplicationError(f"No user named {username}.", field="username")
    return user


def ready_runs_to_assign(*, task: Task) -> list[dict[str, Any]]:
    """The task's ready annotate, consensus and review runs, each with the people a manager
    may reserve it for (``assignable_people``): ``[{"run", "people"}]``, in stage order."""
    spec = spec_for(task.blueprint)
    position = {s.key: n for n, s in enumerate(spec.stages)}
    runs = sorted(
        task.runs.filter(status=StageRun.Status.READY, kind__in=ASSIGNABLE).select_related(
            "assignee"
        ),
        key=lambda r: (position.get(r.stage_key, 0), r.replica),
    )
    return [{"run": run, "people": assignable_people(task=task, run=run)} for run in runs]
