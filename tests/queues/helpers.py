"""Jobs for the queue tests (RQ needs importable functions)."""

import django_rq

from queues.worker import PAUSED_KEY


def pause_while_running(queue_name: str) -> str:
    django_rq.get_connection("default").sadd(PAUSED_KEY, queue_name)
    return "finished anyway"


def fail() -> None:
    raise RuntimeError("boom")


STARTED_KEY = "test:started"


def record_start(name: str) -> str:
    """Says it started (a list in Redis the test reads)."""
    django_rq.get_connection("default").rpush(STARTED_KEY, name)
    return name
