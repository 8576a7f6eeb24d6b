"""Transfer and reassignment that moves work.

``run_transfer``: an annotator hands their own in-progress run to another eligible person
(with a reason), or a manager moves anyone's ready or in-progress run.

``reassign_runs``: when a task's annotators (or reviewers) are replaced, the open runs of
the people no longer named move to the people added — or, when that is ambiguous, the
service asks (an ``ApplicationError`` on ``moves``) and takes an explicit
``moves={"old": "new"}`` mapping.

A moved run keeps its status, attempt, annotations, feedback and time: the time the previous
holder spent since they started is added to ``active_seconds`` and ``started_at`` restarts
at the transfer (the new holder's time limit and time spent count from when they got it).
Every move writes one ``run_transferred`` event: ``{"replica", "from", "to", "reason",
"via": "handover" | "manager" | "reassign"}`` (``to`` is "" when the run went back to the
pool, with ``"unassigned": true``; ``"added_to_task": true`` when the new person was named
on the task by the transfer).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from blueprints.models import Blueprint
from blueprints.spec import BlueprintSpec, ReviewStage
from core.access import Action, project_allows
from core.exceptions import ApplicationError, InvalidTransition
from projects.models import Membership, Project, Role

from ..models import StageRun, Task, TaskEvent
from .base import event, lock_task, save_events, spec_for
from .bulk import copy_available, id_set, update_rows
from .eligibility import NOT_TASK_ANNOTATOR, NOT_TASK_REVIEWER, REASONS, eligibility_code

User = get_user_model()
OPEN = (StageRun.Status.READY, StageRun.Status.IN_PROGRESS)
MAX_REASON = 500
# The task's people who may work a run of each kind.
FIELD_OF_KIND = {"annotate": "annotators", "consensus": "annotators", "review": "reviewers"}
KINDS_OF_FIELD = {"annotators": ("annotate", "consensus"), "reviewers": ("review",)}


class _People:
    def __init__(self, users: list) -> None:
        self.users = users

    def all(self) -> list:
        return self.users


class _Named:
    """The task as eligibility sees it once ``user`` is named among its people (a transfer
    names the new person): every other rule still applies."""

    def __init__(self, task: Task, user) -> None:
        self._task = task
        self.annotators = _People([*task.annotators.all(), user])
        self.reviewers = _People([*task.reviewers.all(), user])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task, name)


def _refusal(user, task: Task, run: StageRun, spec: BlueprintSpec, memberships=None) -> str | None:
    """Why ``user`` may not take ``run`` (tasks.services.eligibility), leaving out “not one
    of the task's people”: a transfer names the new person on the task."""
    found = eligibility_code(user, task, run, spec, memberships)
    if found is not None and found[0] in {NOT_TASK_ANNOTATOR, NOT_TASK_REVIEWER}:
        found = eligibility_code(user, _Named(task, user), run, spec, memberships)  # type: ignore[arg-type]
    if found is None:
        return None
    code, details = found
    return REASONS[code].format(**details)


def _move(run: StageRun, to_user, now: datetime) -> None:
    """Give ``run`` to ``to_user`` (None: back to the pool), keeping its work and time."""
    if run.status == StageRun.Status.IN_PROGRESS and run.started_at:
        end = run.last_active_at if run.last_active_at and run.last_active_at < now else now
        run.active_seconds += max(0.0, (end - run.started_at).total_seconds())
    run.assignee = to_user
    run.last_active_at = None
    if to_user is None:
        run.status, run.started_at = StageRun.Status.READY, None
    elif run.status == StageRun.Status.IN_PROGRESS:
        run.started_at = now


MOVED_FIELDS = ["assignee", "status", "started_at", "last_active_at", "active_seconds"]


def _transfer_event(
    task: Task, run: StageRun, actor, *, old: str, new: str, reason: str, via: str, **more: Any
) -> TaskEvent:
    return event(
        task,
        "run_transferred",
        actor,
        run.stage_key,
        replica=run.replica,
        **{"from": old, "to": new},
        reason=reason,
        via=via,
        attempt=run.attempt,
        **more,
    )


@transaction.atomic
def run_transfer(
    *, actor, task: Task, stage_key: str, replica: int | None = None, to_user, reason: str
) -> StageRun:
    """Hand over (the run's annotator, their in-progress run) or move (a manager, any ready
    or in-progress run) one stage run to ``to_user``. Returns the run."""
    task = lock_task(task.pk)
    spec = spec_for(task.blueprint)
    if stage_key not in spec.by_key:
        raise ApplicationError(f"The blueprint has no stage “{stage_key}”.", field="stage")
    runs = list(task.runs.filter(stage_key=stage_key).select_related("assignee"))
    if replica is not None:
        runs = [r for r in runs if r.replica == replica]
        if not runs:
            raise ApplicationError(
                f"Stage “{stage_key}” has no replica {replica}.", field="replica"
            )
    manager = project_allows(actor, task.project, Action.CHANGE)
    own = [r for r in runs if r.assignee_id == actor.pk]
    if own:
        run = own[0]
    elif not manager:
        raise PermissionDenied("Only the run's annotator or a manager transfers it.")
    elif len(runs) == 1 or replica is not None:
        run = runs[0]
    else:
        taken = [r for r in runs if r.assignee_id and r.status in OPEN]
        if len(taken) != 1:
            raise ApplicationError(
                f"Stage “{stage_key}” has several runs: say which replica.", field="replica"
            )
        run = taken[0]
    via = "handover" if run.assignee_id == actor.pk else "manager"
    if via == "handover" and not manager and run.kind == "review":
        # DESIGN §8: reviewers do not move runs; only an annotator hands over their work.
        raise PermissionDenied("A review is not handed over; a manager moves it.")
    if via == "handover" and not manager and run.status != StageRun.Status.IN_PROGRESS:
        raise InvalidTransition(
            f"Stage “{stage_key}” is {run.get_status_display().lower()}: only work in "
            "progress is handed over.",
            field="stage",
        )
    if run.assignee_id is None and run.status in OPEN:
        raise ApplicationError(
            f"Nobody holds stage “{stage_key}”: assign it instead of transferring it.",
            field="stage",
        )
    if run.status not in OPEN:
        raise InvalidTransition(
            f"Stage “{stage_key}” is {run.get_status_display().lower()}: only ready or "
            "in-progress runs are transferred.",
            field="stage",
        )
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("Say why the work is transferred.", field="reason")
    if len(reason) > MAX_REASON:
        raise ApplicationError(f"Keep the reason under {MAX_REASON} characters.", field="reason")
    if to_user is None:
        raise ApplicationError("Choose who takes the work over.", field="username")
    if to_user.pk == run.assignee_id:
        raise ApplicationError(
            f"{to_user.username} already holds this run; choose someone else.", field="username"
        )
    refused = _refusal(to_user, task, run, spec)
    if refused:
        raise ApplicationError(f"{to_user.username} cannot take it: {refused}.", field="username")
    people = getattr(task, FIELD_OF_KIND.get(run.kind, "annotators"))
    added = people.exists() and not people.filter(pk=to_user.pk).exists()
    if added:
        people.add(to_user)
    old = run.assignee.username if run.assignee else ""
    _move(run, to_user, timezone.now())
    run.save(update_fields=MOVED_FIELDS)
    more = {"added_to_task": True} if added else {}
    save_events(
        [
            _transfer_event(
                task, run, actor, old=old, new=to_user.username, reason=reason, via=via, **more
            )
        ]
    )
    return run


def transfer_candidates(*, task: Task, run: StageRun, exclude: Iterable[int] = ()) -> list:
    """The project's people who may take ``run`` over (its annotators for annotate work,
    its reviewers for review), by username: the handover and move forms' choices."""
    spec = spec_for(task.blueprint)
    stage = spec.by_key.get(run.stage_key)
    role = Role.REVIEWER if isinstance(stage, ReviewStage) else Role.ANNOTATOR
    memberships = list(
        Membership.objects.filter(project=task.project_id, role__in=[role, Role.MANAGER])
        .select_related("user")
        .order_by("user__username")
    )
    by_user: dict[int, list[Membership]] = defaultdict(list)
    for m in memberships:
        by_user[m.user_id].append(m)
    skip = {run.assignee_id, *exclude}
    found = []
    for held in by_user.values():
        user = held[0].user
        if user.pk in skip or not user.is_active:
            continue
        if not any(m.role == role for m in held):
            continue  # managers are not offered: the work goes to the role's people
        if _refusal(user, task, run, spec, held) is None:
            found.append(user)
    return found


def transfer_forms(*, task: Task, user) -> list[dict]:
    """The task page's Transfer forms for ``user``: their own in-progress runs (hand over)
    and, for managers, every run someone holds that is ready or in progress (move), each
    with the people who may take it over."""
    manager = project_allows(user, task.project, Action.CHANGE)
    forms = []
    for run in task.runs.all():
        if run.assignee_id is None or run.status not in OPEN:
            continue
        own = run.assignee_id == user.pk and run.status == StageRun.Status.IN_PROGRESS
        if not (own or manager):
            continue
        forms.append(
            {
                "run": run,
                "via": "handover" if own else "manager",
                "candidates": transfer_candidates(task=task, run=run),
            }
        )
    return forms


def ensure_may_transfer(*, actor, task: Task, stage_key: str) -> None:
    """Refuse (PermissionDenied) someone who may transfer no run of the stage: managers
    move any run, everyone else only a run of their own."""
    if project_allows(actor, task.project, Action.CHANGE):
        return
    if not task.runs.filter(stage_key=stage_key, assignee=actor).exists():
        raise PermissionDenied("Only the run's annotator or a manager transfers it.")


def user_named(username: str, *, field: str = "username"):
    """The active user called ``username``, or a clear error naming the field."""
    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        raise ApplicationError(f"No user named {username}.", field=field)
    return user


def _name(user) -> str:
    return user.username if user is not None else ""


def reassign_runs(
    *,
    actor,
    task_ids: list[int],
    field: str,
    before: dict[int, set[int]],
    after: list,
    moves: dict[str, str | None] | None = None,
    now: datetime | None = None,
) -> list[TaskEvent]:
    """Move the open runs of the people no longer named in ``field`` ("annotators" or
    "reviewers") of the tasks, after the list was replaced by ``after`` (users); ``before``
    is each task's previous list (user ids). Unambiguous: one person added takes the runs of
    everyone removed; nobody added sends them back to the pool. Several people added (or
    a consensus stage where the one added already holds another replica) asks: a clear
    ``ApplicationError`` on ``moves``, unless ``moves`` says who takes whose work
    (``None``/"" for the pool). Returns the events to save (the caller saves them); the runs
    are saved here. Queries do not grow with the number of tasks."""
    if field not in KINDS_OF_FIELD:
        raise ValueError(field)
    moves = dict(moves or {})
    now = now or timezone.now()
    new_ids = {u.pk for u in after}
    by_name = {u.username: u for u in after}
    if not new_ids or not task_ids:
        return []  # "anyone": every holder may go on
    runs = list(
        StageRun.objects.filter(
            task_id__in=id_set(task_ids), kind__in=KINDS_OF_FIELD[field], status__in=OPEN
        )
        .exclude(assignee=None)
        .exclude(assignee_id__in=new_ids)
        .select_related("assignee")
    )
    if not runs:
        return []
    holders = {_name(r.assignee) for r in runs}
    named = [n for n in moves if n in holders and moves[n]]
    unknown = sorted({str(moves[n]) for n in named} - set(by_name))
    if unknown:
        raise ApplicationError(
            f"{', '.join(map(str, unknown))} is not among the new {field}: work moves only to "
            "the people named.",
            field="moves",
        )
    tasks = {
        t.pk: t
        for t in Task.objects.filter(pk__in=id_set({r.task_id for r in runs})).prefetch_related(
            "runs", "annotators", "reviewers"
        )
    }
    # Projects and blueprints once each, not joined to (and parsed for) every task.
    projects = Project.objects.in_bulk({t.project_id for t in tasks.values()})
    blueprints = Blueprint.objects.in_bulk({t.blueprint_id for t in tasks.values()})
    for t in tasks.values():
        t.project, t.blueprint = projects[t.project_id], blueprints[t.blueprint_id]
    memberships: dict[int, list[Membership]] = defaultdict(list)
    for m in Membership.objects.filter(
        user__in=new_ids, project__in={t.project_id for t in tasks.values()}
    ):
        memberships[m.user_id].append(m)
    # The prefetched runs are the ones changed, so a later check in the same task (another
    # replica of a consensus stage) sees the moves already decided.
    live = {r.pk: r for t in tasks.values() for r in t.runs.all()}
    ask: dict[str, set[str]] = defaultdict(set)
    counts: dict[str, int] = defaultdict(int)
    plan: list[tuple[StageRun, Any, str]] = []
    for stale in sorted(runs, key=lambda r: (r.task_id, r.stage_key, r.replica)):
        run = live[stale.pk]
        task = tasks[run.task_id]
        spec = spec_for(task.blueprint)
        old = _name(stale.assignee)
        added = [u for u in after if u.pk not in before.get(task.pk, set())]
        if old in moves:
            target = by_name.get(moves[old] or "")
        elif len(added) == 1:
            target = added[0]
            if _refusal(target, task, run, spec, memberships[target.pk]):
                # e.g. they already hold another replica of this consensus stage: ask, with
                # whoever else named may take it (or the pool).
                ask[old].update(
                    u.username
                    for u in after
                    if u.pk != target.pk and not _refusal(u, task, run, spec, memberships[u.pk])
                )
                counts[old] += 1
                continue
        elif not added:
            target = None
        else:
            ask[old].update(u.username for u in added)
            counts[old] += 1
            continue
        if target is not None:
            refused = _refusal(target, task, run, spec, memberships[target.pk])
            if refused:
                raise ApplicationError(
                    f"{target.username} cannot take {old}'s {run.stage_key} of “{task.name}”: "
                    f"{refused}.",
                    field="moves",
                )
        run.assignee_id = target.pk if target else None  # seen by the next checks
        plan.append((run, target, old))
    if ask:
        said = "; ".join(
            f"{old}'s {counts[old]} open run{'s' if counts[old] != 1 else ''} to "
            f"{' or '.join(sorted(choices)) or 'nobody named (back to the pool)'}"
            for old, choices in sorted(ask.items())
        )
        raise ApplicationError(
            f"Say who takes over the work in progress: {said}.",
            field="moves",
            extra={
                "choices": {old: sorted(ask[old]) for old in sorted(ask)},
                "runs": {old: counts[old] for old in sorted(ask)},
            },
        )
    events = []
    kind_word = "annotators" if field == "annotators" else "reviewers"
    for run, target, old in plan:
        _move(run, target, now)
        task = tasks[run.task_id]
        more: dict[str, Any] = {"unassigned": True} if target is None else {}
        reason = f"{old} is no longer among the task's {kind_word}" + (
            "; back to the pool, the work kept" if target is None else ""
        )
        events.append(
            _transfer_event(
                task, run, actor, old=old, new=_name(target), reason=reason, via="reassign", **more
            )
        )
    moved = [p[0] for p in plan]
    if copy_available():
        update_rows(StageRun, moved, MOVED_FIELDS)
    else:
        StageRun.objects.bulk_update(moved, MOVED_FIELDS, batch_size=1000)
    return events
