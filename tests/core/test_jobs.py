"""Jobs go through real Redis and a real RQ worker; without Redis they run inline."""

import django_rq
import pytest
from django.test import override_settings
from rq import SimpleWorker

from core import jobs

pytestmark = pytest.mark.django_db

UNREACHABLE = "redis://127.0.0.1:1/0"


def test_queues_are_wired(settings):
    assert settings.RQ_QUEUE_NAMES == ["default", "exports", "imports", "webhooks"]
    for name in settings.RQ_QUEUE_NAMES:
        assert django_rq.get_queue(name).name == name


@pytest.mark.parametrize("queue", ["default", "exports", "imports", "webhooks"])
def test_a_worker_runs_enqueued_jobs_after_commit(
    redis_conn, django_capture_on_commit_callbacks, queue
):
    with django_capture_on_commit_callbacks(execute=True):
        jobs.enqueue(queue, jobs.ping_job, queue)
    rq_queue = django_rq.get_queue(queue)
    assert rq_queue.count == 1
    job = rq_queue.jobs[0]
    SimpleWorker([rq_queue], connection=redis_conn).work(burst=True)
    job.refresh()
    assert job.get_status() == "finished"
    assert job.return_value() == f"pong:{queue}"
    assert job.get_meta(refresh=True)["progress"] == 1.0


def test_nothing_is_enqueued_when_the_transaction_rolls_back(redis_conn):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        jobs.enqueue("default", jobs.ping_job, "x")
        raise RuntimeError("rollback")
    assert django_rq.get_queue("default").count == 0


def test_unknown_queues_are_refused():
    with pytest.raises(ValueError, match="Unknown queue"):
        jobs.enqueue("nope", jobs.ping_job, "x")


def test_without_redis_jobs_run_inline(django_capture_on_commit_callbacks):
    seen = []
    with override_settings(REDIS_URL=UNREACHABLE):
        assert not jobs.redis_available(fresh=True)
        with django_capture_on_commit_callbacks(execute=True):
            jobs.enqueue("default", seen.append, "ran")
    assert seen == ["ran"]


def test_without_redis_every_page_says_so(client, manager):
    client.force_login(manager)
    with override_settings(REDIS_URL=UNREACHABLE):
        jobs.redis_available(fresh=True)
        body = client.get("/").content.decode()
    assert "Redis is not reachable: background jobs run synchronously" in body
    jobs.redis_available(fresh=True)
    assert "Redis is not reachable" not in client.get("/").content.decode()
