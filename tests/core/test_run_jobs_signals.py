"""The suite's ``run_jobs`` (tests/conftest.py) leaves the process's stop signals alone: an
RQ worker's ``work()`` replaces SIGINT/SIGTERM handlers and never puts them back, and a run
whose process ignores a stop request hangs (pytest-xdist's teardown did)."""

import signal

import django_rq
import pytest


def _double(x: int) -> int:
    return 2 * x


@pytest.mark.django_db(transaction=True)  # enqueue() waits for a commit otherwise
def test_run_jobs_runs_the_job_and_keeps_the_signal_handlers(run_jobs):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    job = django_rq.get_queue("default").enqueue(_double, 21)
    run_jobs("default")
    job.refresh()
    assert job.return_value() == 42
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
