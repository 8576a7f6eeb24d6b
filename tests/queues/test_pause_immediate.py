"""A pause is immediate: once the pause call has returned, no job of that queue starts
until it is resumed — also a job enqueued at once, while real worker processes are blocked
waiting on that very queue."""

import time

import django_rq
import pytest

from queues import control
from tests.queues.helpers import STARTED_KEY, record_start

pytestmark = pytest.mark.django_db


def started(redis_conn) -> list[str]:
    return [name.decode() for name in redis_conn.lrange(STARTED_KEY, 0, -1)]


def test_a_job_enqueued_right_after_a_pause_waits_for_the_resume(
    admin_user, redis_conn, worker_process
):
    # One worker waits on the queue alone (RQ moves the job to its intermediate list), the
    # other on two queues at once (a plain BLPOP).
    worker_process("exports")
    worker_process("default", "exports")
    queue = django_rq.get_queue("exports", commit_mode="auto")
    for i in range(20):
        control.queue_action(actor=admin_user, name="exports", action="resume")
        time.sleep(1.5)  # the workers are back, blocked waiting on the queue
        control.queue_action(actor=admin_user, name="exports", action="pause")
        queue.enqueue(record_start, f"job-{i}")
        time.sleep(0.4)
        assert f"job-{i}" not in started(redis_conn), f"job {i} started while paused"
    time.sleep(6)  # longer than a worker's blocking wait: still nothing
    assert "job-19" not in started(redis_conn)
    assert queue.count == 1 and queue.started_job_registry.count == 0

    control.queue_action(actor=admin_user, name="exports", action="resume")
    deadline = time.monotonic() + 30
    while len(started(redis_conn)) < 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sorted(started(redis_conn)) == sorted(f"job-{i}" for i in range(20))
    assert queue.count == 0
