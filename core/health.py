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
    """The data storage answers: a local folder must exist and be writable; a bucket must
    answer a HEAD with these credentials (core/objectstore.py)."""
    from core import objectstore

    if objectstore.is_remote():
        return _check_bucket()
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


_clients: dict[tuple, object] = {}


def _check_bucket() -> str | None:
    """HEAD the bucket with a client of short timeouts and no retries: a probe must answer
    within seconds, not after boto3's minute of retries."""
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    store = default_storage
    bucket = store.bucket_name  # type: ignore[attr-defined]
    identity = (
        store.endpoint_url,  # type: ignore[attr-defined]
        store.region_name,  # type: ignore[attr-defined]
        store.access_key,  # type: ignore[attr-defined]
        store.secret_key,  # type: ignore[attr-defined]
        store.session_profile,  # type: ignore[attr-defined]
    )
    try:
        client = _clients.get(identity)
        if client is None:
            quick = Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 1})
            client = store._create_session().client(  # type: ignore[attr-defined]
                "s3",
                region_name=store.region_name,  # type: ignore[attr-defined]
                endpoint_url=store.endpoint_url,  # type: ignore[attr-defined]
                use_ssl=store.use_ssl,  # type: ignore[attr-defined]
                verify=store.verify,  # type: ignore[attr-defined]
                config=store.client_config.merge(quick),  # type: ignore[attr-defined]
            )
            _clients[identity] = client
        client.head_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    except ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404:
            return f"storage: bucket {bucket} not found"
        if status in (401, 403):
            return f"storage: access to bucket {bucket} denied (credentials?)"
        return f"storage: bucket {bucket} answered {status}"
    except BotoCoreError as error:  # unreachable endpoint, no credentials, timeouts
        return f"storage: {type(error).__name__}"
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
