"""Health checks for the proxy, the orchestrator and the monitoring (README, "Several
machines"): can this web process reach what every request needs, and does every queue have
a living worker? Each check answers an error message or ``None``; nothing here needs a
request, a session or a user."""

from __future__ import annotations

import os
import time

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # any driver error means "not healthy", said briefly
        return f"database: {type(error).__name__}"
    return None


def check_redis() -> str | None:
    import django_rq

    try:
        django_rq.get_connection("default").ping()
    except Exception as error:
        return f"redis: {type(error).__name__}"
    return None


def check_storage() -> str | None:
    """The media storage answers (a local folder must exist and be writable)."""
    try:
        location = getattr(default_storage, "location", None)
        if location is not None:
            os.makedirs(location, exist_ok=True)
            if not os.access(location, os.W_OK):
                return "storage: media folder not writable"
        default_storage.exists("healthz-probe")
    except Exception as error:
        return f"storage: {type(error).__name__}"
    return None


def web_health() -> tuple[bool, dict[str, str]]:
    """(healthy, {check: "ok" or its error}), each check timed in ms."""
    checks: dict[str, str] = {}
    healthy = True
    for name, check in (
        ("database", check_database),
        ("redis", check_redis),
        ("storage", check_storage),
    ):
        started = time.perf_counter()
        error = check()
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        checks[name] = error or f"ok ({elapsed} ms)"
        healthy = healthy and error is None
    return healthy, checks


def worker_health() -> tuple[bool, dict[str, int]]:
    """(every queue has a living worker, {queue: living workers listening on it}).

    A worker counts while its heartbeat key lives (queues/recovery.py), so a killed worker
    stops counting within ``STAGECRAFT_WORKER_LOST_SECONDS``."""
    import django_rq
    from rq import Worker

    from queues.recovery import ALIVE_KEY

    redis = django_rq.get_connection("default")
    counts = dict.fromkeys(settings.RQ_QUEUE_NAMES, 0)
    workers = Worker.all(connection=redis)
    if workers:
        with redis.pipeline() as pipe:
            for worker in workers:
                pipe.exists(ALIVE_KEY.format(name=worker.name))
            living = pipe.execute()
        for worker, alive in zip(workers, living, strict=True):
            if alive:
                for name in worker.queue_names():
                    if name in counts:
                        counts[name] += 1
    return all(counts.values()), counts
