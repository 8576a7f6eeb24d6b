"""Queue administration (administrators): counts, pause/resume, empty, clean, retry."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import django_rq
from django.conf import settings
from django.db import transaction
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job

from activity.services import Target, activity_record
from core.access import Action, require
from core.exceptions import ApplicationError

from .worker import FINISHED_KEY, PAUSED_KEY, paused_queues

logger = logging.getLogger(__name__)
RETRY_LIMIT = 1000
ACTIONS = ("pause", "resume", "empty", "clean", "retry-failed")


def _queue(name: str):
    if name not in settings.RQ_QUEUE_NAMES:
        raise ApplicationError(f"No queue named “{name}”.", field="queue")
    return django_rq.get_queue(name)


def recover_lost_jobs() -> dict:
    """Fail (or, with ``STAGECRAFT_RETRY_LOST_JOBS``, retry once) the jobs of workers that
    died; the queue page runs it on each load, the workers every few seconds."""
    from .recovery import recover_lost_jobs as recover

    return recover(django_rq.get_connection("default"))


def queue_overview() -> list[dict]:
    """Per queue: counts by state, paused, workers, jobs finished per minute (last hour)."""
    from rq import Worker

    connection = django_rq.get_connection("default")
    paused = paused_queues(connection)
    workers = Worker.all(connection=connection)
    now = time.time()
    rows = []
    for name in settings.RQ_QUEUE_NAMES:
        queue = django_rq.get_queue(name)
        finished_last_hour = connection.zcount(FINISHED_KEY.format(queue=name), now - 3600, now)
        rows.append(
            {
                "name": name,
                "paused": name in paused,
                "workers": sum(1 for w in workers if name in w.queue_names()),
                "counts": {
                    "queued": queue.count,
                    "scheduled": queue.scheduled_job_registry.count,
                    "deferred": queue.deferred_job_registry.count,
                    "started": queue.started_job_registry.count,
                    "finished": queue.finished_job_registry.count,
                    "failed": queue.failed_job_registry.count,
                },
                "finished_per_minute": round(finished_last_hour / 60, 2),
            }
        )
    return rows


def failed_jobs(name: str, limit: int = 50) -> list[dict]:
    queue = _queue(name)
    ids = queue.failed_job_registry.get_job_ids(0, limit - 1)
    jobs = [j for j in Job.fetch_many(ids, connection=queue.connection) if j is not None]
    rows = []
    for job in jobs:
        result = job.latest_result()
        rows.append(
            {
                "id": job.id,
                "description": job.description,
                "ended_at": job.ended_at,
                "error": (result.exc_string if result else "") or "",
                "log": job.meta.get("log", []),
            }
        )
    return rows


VERBS = {
    "pause": "queue.paused",
    "resume": "queue.resumed",
    "empty": "queue.emptied",
    "clean": "queue.cleaned",
    "retry-failed": "queue.retried_failed",
}


@transaction.atomic
def _log(actor, name: str, action: str, result: dict) -> None:
    count = result["count"]
    after = {k: v for k, v in result.items() if k in {"count", "remaining"}}
    activity_record(
        actor=actor, verb=VERBS[action], target=Target("queue", name, name), after=after
    )
    logger.info("%s: %s on queue %s affected %d job(s)", actor, action, name, count)


def queue_action(*, actor, name: str, action: str) -> dict:
    """Run one administrative action on a queue; returns what it did."""
    require(actor, None, Action.CONTROL_QUEUES)
    if action not in ACTIONS:
        raise ApplicationError(f"action must be one of {', '.join(ACTIONS)}.", field="action")
    queue = _queue(name)
    connection = queue.connection
    result: dict = {"queue": name, "action": action}
    if action == "pause":
        connection.sadd(PAUSED_KEY, name)
        result["count"] = 0
    elif action == "resume":
        connection.srem(PAUSED_KEY, name)
        result["count"] = 0
    elif action == "empty":
        # Waiting and delayed jobs only: started, finished and failed stay as they are.
        waiting = queue.count
        queue.empty()
        delayed = 0
        for registry in (queue.scheduled_job_registry, queue.deferred_job_registry):
            for job_id in registry.get_job_ids():
                registry.remove(job_id, delete_job=True)
                delayed += 1
        result["count"] = waiting + delayed
    elif action == "clean":
        limit = datetime.now(UTC) - timedelta(hours=24)
        removed = 0
        for registry in (queue.finished_job_registry, queue.failed_job_registry):
            ids = registry.get_job_ids()
            for job_id, job in zip(ids, Job.fetch_many(ids, connection=connection), strict=True):
                ended = job.ended_at if job is not None else None
                if ended is not None and ended.tzinfo is None:
                    ended = ended.replace(tzinfo=UTC)
                if job is None or (ended is not None and ended < limit):
                    registry.remove(job_id, delete_job=job is not None)
                    removed += 1
        result["count"] = removed
    else:
        registry = queue.failed_job_registry
        ids = registry.get_job_ids(0, RETRY_LIMIT - 1)
        retried = 0
        for job_id in ids:
            try:
                registry.requeue(job_id)
                retried += 1
            except (InvalidJobOperation, NoSuchJobError):
                registry.remove(job_id)
        result["count"] = retried
        result["remaining"] = registry.count
    _log(actor, name, action, result)
    return result
