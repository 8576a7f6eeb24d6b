"""Fixtures of the queue tests."""

from tests.queues.processes import worker_process  # noqa: F401 (a fixture: real workers)
