"""The daily clean-up of expired exports comes back after every run (it ran once before:
the running job held the id its successor needed)."""

import django_rq
import pytest
from rq.job import Job

from queues.jobs import schedule_export_cleanup

pytestmark = pytest.mark.django_db


def run_the_scheduled_cleanup_now(redis_conn, run_jobs) -> str:
    queue = django_rq.get_queue("default", commit_mode="auto")
    (job_id,) = queue.scheduled_job_registry.get_job_ids()
    queue.scheduled_job_registry.remove(job_id)
    queue.enqueue_job(Job.fetch(job_id, connection=redis_conn))  # due: as the scheduler does
    run_jobs("default")
    assert Job.fetch(job_id, connection=redis_conn).get_status() == "finished"
    return job_id


def test_the_cleanup_reschedules_itself_every_time(redis_conn, run_jobs):
    schedule_export_cleanup(delay_hours=1)
    schedule_export_cleanup()  # however many processes make sure of it: one is scheduled
    queue = django_rq.get_queue("default")
    assert queue.scheduled_job_registry.count == 1
    seen = set()
    for _ in range(3):
        seen.add(run_the_scheduled_cleanup_now(redis_conn, run_jobs))
        assert queue.scheduled_job_registry.count == 1  # the next one, a day later
    assert len(seen) == 3
