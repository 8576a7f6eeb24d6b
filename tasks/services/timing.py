"""A stage's ``time_limit`` (seconds): a run someone started goes back to the pool when its
time is up, unless that person is still working on it.

The workspace pings ``stage_activity`` about once a minute while the page has input; a run
past its limit whose last ping is older than ``ACTIVE_WINDOW`` is released: status back to
ready, no assignee, the annotations kept, a ``stage_released`` event. ``stage_release_expired``
does that for every run; a periodic job calls it (tasks.jobs) and so do the pages that list
or hand out work, so the limit holds even without a scheduler.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from blueprints.models import Blueprint
from core.exceptions import Conflict

from ..models import StageRun, Task
from .base import event, lock_task, save_events, spec_for

logger = logging.getLogger(__name__)

# A person whose workspace pinged within this window is still working (pings come every
# minute while they use the page; one missed ping is forgiven).
ACTIVE_WINDOW = timedelta(minutes=2)
WARN_AT = 0.8  # the workspace warns when this share of the time is used


@dataclass(frozen=True)
class Timing:
    limit: int  # seconds
    deadline: datetime
    warn_at: datetime

    def as_json(self, now: datetime) -> dict:
        return {
            "limit": self.limit,
            "deadline": self.deadline.isoformat(),
            "remaining": max(0.0, (self.deadline - now).total_seconds()),
            "warn_when_left": (self.deadline - self.warn_at).total_seconds(),
            "active_window": ACTIVE_WINDOW.total_seconds(),
        }


def run_timing(*, run: StageRun | None, task: Task) -> Timing | None:
    """The deadline of a run in progress under a stage with a time limit, else None."""
    if run is None or run.status != StageRun.Status.IN_PROGRESS or run.started_at is None:
        return None
    stage = spec_for(task.blueprint).by_key.get(run.stage_key)
    limit = stage.params.time_limit if stage is not None else None
    if not limit:
        return None
    return Timing(
        limit=limit,
        deadline=run.started_at + timedelta(seconds=limit),
        warn_at=run.started_at + timedelta(seconds=limit * WARN_AT),
    )


def _quiet(now: datetime) -> Q:
    return Q(last_active_at__isnull=True) | Q(last_active_at__lt=now - ACTIVE_WINDOW)


def stage_activity(*, actor, task: Task, stage_key: str, now: datetime | None = None) -> StageRun:
    """The workspace's ping: ``actor`` is working on their run of ``stage_key`` now.

    A run that has already gone back to the pool (or was never theirs) is refused, so the
    page can say so."""
    now = now or timezone.now()
    # Released first if its time ran out while nobody pinged (a sleeping laptop).
    stage_release_expired(now=now, task=task)
    mine = StageRun.objects.filter(
        task=task, stage_key=stage_key, assignee=actor, status=StageRun.Status.IN_PROGRESS
    )
    run = mine.first()
    if run is None or not mine.filter(pk=run.pk).update(last_active_at=now):
        why = (
            " It went back to the pool: its time limit passed while you were away."
            if stage_released_from(task=task, stage_key=stage_key, user=actor)
            else ""
        )
        raise Conflict(f"This stage is not in progress for you.{why}", field="stage")
    run.last_active_at = now
    return run


def stage_released_from(*, task: Task, stage_key: str, user) -> bool:
    """Whether the stage's run last went back to the pool from ``user`` (time limit), with
    nobody starting it since."""
    last = (
        task.events.filter(stage_key=stage_key, kind__in=["stage_started", "stage_released"])
        .order_by("-id")
        .first()
    )
    return bool(
        last and last.kind == "stage_released" and last.data.get("assignee") == user.get_username()
    )


def _limits(now: datetime, task: Task | None) -> Q | None:
    """Which in-progress runs are past their stage's limit, as one filter (None: none can be).

    Only the blueprints of runs in progress are read, each spec once (cached)."""
    running = StageRun.objects.filter(status=StageRun.Status.IN_PROGRESS)
    if task is not None:
        running = running.filter(task=task)
    blueprints = Blueprint.objects.filter(pk__in=running.values("task__blueprint"))
    expired = Q()
    for blueprint in blueprints:
        for stage in spec_for(blueprint).stages:
            if stage.params.time_limit:
                expired |= Q(
                    task__blueprint=blueprint,
                    stage_key=stage.key,
                    started_at__lte=now - timedelta(seconds=stage.params.time_limit),
                )
    return expired or None


def stage_release_expired(*, now: datetime | None = None, task: Task | None = None) -> int:
    """Release every run (of ``task``, or of all tasks) whose time limit has passed and whose
    person has gone quiet. Safe to run at any time and twice: each release is a conditional
    update under the task's lock. Returns how many runs went back to the pool."""
    now = now or timezone.now()
    expired = _limits(now, task)
    if expired is None:
        return 0
    candidates = StageRun.objects.filter(expired, status=StageRun.Status.IN_PROGRESS).filter(
        _quiet(now)
    )
    if task is not None:
        candidates = candidates.filter(task=task)
    released = 0
    for run_id, task_id in candidates.values_list("pk", "task_id"):
        released += _release(run_id=run_id, task_id=task_id, now=now)
    return released


@transaction.atomic
def _release(*, run_id: int, task_id: int, now: datetime) -> int:
    task = lock_task(task_id)
    run = StageRun.objects.select_related("assignee").filter(pk=run_id).first()
    timing = run_timing(run=run, task=task)
    if run is None or timing is None or timing.deadline > now:
        return 0
    worked = (
        (run.last_active_at - run.started_at).total_seconds()
        if run.last_active_at and run.started_at
        else 0
    )
    # Only the state read above is released: a ping, a submit or a restart meanwhile wins.
    changed = (
        StageRun.objects.filter(
            pk=run.pk,
            status=StageRun.Status.IN_PROGRESS,
            assignee=run.assignee_id,
            started_at=run.started_at,
            last_active_at=run.last_active_at,
        )
        .filter(_quiet(now))
        .update(
            status=StageRun.Status.READY,
            assignee=None,
            started_at=None,
            last_active_at=None,
            active_seconds=run.active_seconds + max(0.0, worked),
        )
    )
    if not changed:
        return 0
    who = run.assignee.get_username() if run.assignee else None
    save_events(
        [
            event(
                task,
                "stage_released",
                None,
                run.stage_key,
                reason="time limit",
                assignee=who,
                replica=run.replica,
                attempt=run.attempt,
                time_limit=timing.limit,
            )
        ]
    )
    logger.info("released %s of task %s from %s: time limit", run.stage_key, task.pk, who)
    return 1
