"""Enqueueing background jobs, with a synchronous fallback when Redis is down.

Jobs go to the RQ queues of ``settings.RQ_QUEUE_NAMES`` after the current
transaction commits. When Redis cannot be reached and
``STAGECRAFT_JOBS_SYNC_FALLBACK`` is on (the ``make run`` default), the job's
function runs in the web process instead, and every page shows a banner saying
so. In production the fallback is off and a missing Redis is an error.
"""

import logging
import time
from collections.abc import Callable
from typing import Any

import django_rq
import redis
from django.conf import settings
from django.db import transaction
from rq import Callback, get_current_job

logger = logging.getLogger(__name__)
WORKER_LOST = "worker lost"


class WorkerLost(Exception):
    """A job's worker died under it (killed, out of memory, its machine gone): what failure
    callbacks receive for such a job (queues/recovery.py)."""


def failure_reason(exc_type: type[BaseException] | None) -> str:
    """What a failure callback says of why a job stopped: "worker lost" when its worker
    died (found by queues/recovery.py, or by RQ's own clean-up of abandoned jobs), else the
    exception's name."""
    from rq.exceptions import AbandonedJobError

    if exc_type is None or issubclass(exc_type, WorkerLost | AbandonedJobError):
        return WORKER_LOST
    return exc_type.__name__


_PING_TTL_SECONDS = 5.0
_ping_cache: dict[str, tuple[float, bool]] = {}


def redis_available(*, fresh: bool = False) -> bool:
    """Whether Redis answers; the answer is cached for a few seconds per URL."""
    url: str = settings.REDIS_URL or ""
    now = time.monotonic()
    cached = _ping_cache.get(url)
    if cached and not fresh and now - cached[0] < _PING_TTL_SECONDS:
        return cached[1]
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.3, socket_timeout=0.5)
        ok = bool(client.ping())
        client.close()
    except (redis.RedisError, OSError, ValueError):
        ok = False
    _ping_cache[url] = (now, ok)
    return ok


def jobs_run_inline() -> bool:
    """True when jobs run in the web process because Redis is unreachable."""
    return settings.STAGECRAFT_JOBS_SYNC_FALLBACK and not redis_available()


def enqueue(
    queue_name: str,
    func: Callable[..., Any],
    *args: Any,
    job_id: str | None = None,
    on_failure: Callable[..., Any] | None = None,
    **kwargs: Any,
) -> None:
    """Run ``func(*args, **kwargs)`` as an RQ job on ``queue_name`` once the transaction commits.

    ``job_id`` names the job so that pages can follow its progress. ``on_failure(job,
    connection, exc_type, exc_value, traceback)`` runs when the job raises or its worker
    dies (``exc_type`` is then ``WorkerLost``: queues/recovery.py finds such jobs).
    """
    if queue_name not in settings.RQ_QUEUE_NAMES:
        raise ValueError(f"Unknown queue {queue_name!r}")

    def run_inline() -> None:
        logger.warning("Redis unreachable: running %s inline", func.__name__)
        try:
            func(*args, **kwargs)
        except Exception:
            # The job records its own failure (as a worker would); the request goes on.
            logger.exception("inline job %s failed", func.__name__)

    def submit() -> None:
        if jobs_run_inline():
            run_inline()
            return
        try:
            django_rq.get_queue(queue_name).enqueue(
                func,
                *args,
                job_id=job_id,
                on_failure=Callback(on_failure) if on_failure else None,
                **kwargs,
            )
        except redis.RedisError:
            if not settings.STAGECRAFT_JOBS_SYNC_FALLBACK:
                raise
            run_inline()

    transaction.on_commit(submit)


def report_progress(fraction: float, **meta: Any) -> None:
    """Store progress (0..1) and extra fields in the current job's meta; no-op inline."""
    job = get_current_job()
    if job is None:
        return
    job.meta["progress"] = max(0.0, min(1.0, float(fraction)))
    job.meta.update(meta)
    job.save_meta()


def job_log(message: str) -> None:
    """Append a line to the current job's log (kept in its meta; RQ keeps no job logs)."""
    job = get_current_job()
    if job is None:
        return
    from django.utils import timezone

    lines = job.meta.setdefault("log", [])
    lines.append(f"{timezone.now():%Y-%m-%d %H:%M:%S} {message}")
    del lines[:-200]
    job.save_meta()


def ping_job(value: str) -> str:
    """A trivial job: proves a worker takes jobs from the queues (used by tests and checks)."""
    report_progress(1.0, echoed=value)
    return f"pong:{value}"


def jobs_progress(job_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Status and progress meta of jobs, fetched in one round trip; missing jobs are left out."""
    job_ids = [j for j in job_ids if j]
    if not job_ids or not redis_available():
        return {}
    from rq.job import Job

    try:
        jobs = Job.fetch_many(job_ids, connection=django_rq.get_connection("default"))
    except redis.RedisError:
        return {}
    return {
        job.id: {"status": job.get_status(refresh=False), **(job.meta or {})}
        for job in jobs
        if job is not None
    }
