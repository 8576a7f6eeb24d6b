"""Queue administration against the real Redis with a real (burst) worker."""

from datetime import UTC, datetime, timedelta

import django_rq
import pytest
from django.core.exceptions import PermissionDenied
from rq.job import Job

from activity.models import Activity
from core.jobs import ping_job
from queues import control
from tests.queues.helpers import fail, pause_while_running

pytestmark = pytest.mark.django_db


def test_pause_stops_new_jobs_while_the_running_one_finishes(admin_user, redis_conn, run_jobs):
    queue = django_rq.get_queue("exports", commit_mode="auto")
    running = queue.enqueue(pause_while_running, "exports")
    waiting = queue.enqueue(ping_job, "later")
    run_jobs("exports")
    assert running.get_status(refresh=True) == "finished"  # it paused the queue mid-run
    assert waiting.get_status(refresh=True) == "queued"
    other = django_rq.get_queue("default", commit_mode="auto").enqueue(ping_job, "elsewhere")
    run_jobs()  # other queues go on
    assert other.get_status(refresh=True) == "finished"
    assert waiting.get_status(refresh=True) == "queued"
    assert control.queue_overview()[1]["paused"] is True
    control.queue_action(actor=admin_user, name="exports", action="resume")
    run_jobs("exports")
    assert waiting.get_status(refresh=True) == "finished"
    assert control.queue_overview()[1]["counts"]["finished"] == 2


def test_empty_removes_waiting_and_delayed_jobs_only(admin_user, redis_conn, run_jobs):
    queue = django_rq.get_queue("default", commit_mode="auto")
    queue.enqueue(fail)
    run_jobs("default")  # one failed job
    queue.enqueue(ping_job, "done")
    run_jobs("default")  # one finished job
    for i in range(3):
        queue.enqueue(ping_job, str(i))
    queue.enqueue_in(timedelta(hours=1), ping_job, "later")
    before = control.queue_overview()[0]["counts"]
    assert (before["queued"], before["scheduled"], before["failed"], before["finished"]) == (
        3,
        1,
        1,
        1,
    )
    result = control.queue_action(actor=admin_user, name="default", action="empty")
    after = control.queue_overview()[0]["counts"]
    assert result["count"] == 4
    assert (after["queued"], after["scheduled"], after["failed"], after["finished"]) == (0, 0, 1, 1)
    assert Activity.objects.get(verb="queue.emptied").after["count"] == 4


def test_clean_removes_history_older_than_a_day(admin_user, redis_conn, run_jobs):
    queue = django_rq.get_queue("default", commit_mode="auto")
    jobs = [queue.enqueue(ping_job, str(i)) for i in range(3)]
    queue.enqueue(fail)
    run_jobs("default")
    old = datetime.now(UTC) - timedelta(hours=30)
    for job in (
        *jobs[:2],
        Job.fetch(queue.failed_job_registry.get_job_ids()[0], connection=redis_conn),
    ):
        job.ended_at = old
        job.save()
    result = control.queue_action(actor=admin_user, name="default", action="clean")
    counts = control.queue_overview()[0]["counts"]
    assert result["count"] == 3
    assert (counts["finished"], counts["failed"]) == (1, 0)


def test_retry_failed_is_capped_at_1000(admin_user, redis_conn):
    queue = django_rq.get_queue("webhooks", commit_mode="auto")
    registry = queue.failed_job_registry
    with redis_conn.pipeline() as pipe:
        for _ in range(1005):
            job = Job.create(fail, connection=redis_conn, origin="webhooks")
            job.save(pipeline=pipe)
            registry.add(job, ttl=3600, exc_string="boom", pipeline=pipe)
        pipe.execute()
    assert registry.count == 1005
    result = control.queue_action(actor=admin_user, name="webhooks", action="retry-failed")
    assert (result["count"], result["remaining"]) == (1000, 5)
    assert queue.count == 1000
    again = control.queue_action(actor=admin_user, name="webhooks", action="retry-failed")
    assert (again["count"], again["remaining"]) == (5, 0)


def test_only_administrators_act(manager, redis_conn):
    with pytest.raises(PermissionDenied):
        control.queue_action(actor=manager, name="default", action="pause")


def test_failed_jobs_show_their_error(redis_conn, run_jobs):
    django_rq.get_queue("default", commit_mode="auto").enqueue(fail)
    run_jobs("default")
    (row,) = control.failed_jobs("default")
    assert "RuntimeError: boom" in row["error"]


def test_throughput_counts_jobs_finished_in_the_last_hour(redis_conn, run_jobs):
    queue = django_rq.get_queue("imports", commit_mode="auto")
    for i in range(6):
        queue.enqueue(ping_job, str(i))
    run_jobs("imports")
    row = next(r for r in control.queue_overview() if r["name"] == "imports")
    assert row["finished_per_minute"] == pytest.approx(6 / 60, abs=0.01)


def test_the_page_says_when_redis_is_down(client, admin_user, settings):
    from core import jobs

    client.force_login(admin_user)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.RQ_QUEUES = {n: {"URL": settings.REDIS_URL} for n in settings.RQ_QUEUE_NAMES}
    jobs.redis_available(fresh=True)
    response = client.get("/queues/")
    assert response.status_code == 200
    assert "Redis is not reachable: the queues cannot be shown" in response.content.decode()
    settings.REDIS_URL = "redis://127.0.0.1:6379/15"
    jobs.redis_available(fresh=True)


def test_a_jobs_log_is_shown_with_its_failure(
    admin_user, client, redis_conn, run_jobs, project, manager, django_capture_on_commit_callbacks
):
    from queues import services

    with django_capture_on_commit_callbacks(execute=True):
        services.export_start(actor=manager, project=project, format="lerobot")
    run_jobs("exports")  # no episodes: the export fails, its job finishes with a log
    client.force_login(admin_user)
    body = client.get("/queues/").content.decode()
    assert "exports" in body
    job = django_rq.get_queue("exports").finished_job_registry.get_job_ids()
    assert job
    log = Job.fetch(job[0], connection=redis_conn).meta["log"]
    assert any("failed: No episodes to export" in line for line in log)
