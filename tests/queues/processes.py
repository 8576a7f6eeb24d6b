"""Real RQ worker processes for the queue tests: ``manage.py rqworker`` with our worker
class, on the test's database, Redis database and media folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    def __init__(self, queues: tuple[str, ...], log: Path, env: dict[str, str]):
        self.log = log
        before = self._names()
        with log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 (our own fixed arguments)
                [sys.executable, "manage.py", "rqworker", *queues,
                 "--worker-class", "queues.worker.PausableWorker"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # ready once it has registered in Redis
            if self.proc.poll() is not None:
                pytest.fail(f"worker exited ({self.proc.returncode}):\n{log.read_text()}")
            new = self._names() - before
            if new:
                self.name = new.pop()
                return
            time.sleep(0.05)
        pytest.fail(f"worker did not start:\n{log.read_text()}")

    @staticmethod
    def _names() -> set[str]:
        import django_rq
        from rq import Worker

        return {w.name for w in Worker.all(connection=django_rq.get_connection("default"))}

    @property
    def pid(self) -> int:
        return self.proc.pid

    def children(self) -> list[int]:
        """The work horses it forked (processes whose parent it is)."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.pid:
                found.append(int(stat.parent.name))
        return found

    def kill(self) -> None:
        """SIGKILL the worker process itself (as the OOM killer or a lost machine would)."""
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def worker_process(redis_conn, tmp_path):
    """``worker_process("exports", env={...})``: a real worker process on those queues,
    stopped (or already killed) at the end of the test."""
    started: list[WorkerProcess] = []

    def start(*queues: str, env: dict[str, str] | None = None) -> WorkerProcess:
        environ = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.queues.worker_settings",
            "TEST_REDIS_URL": settings.REDIS_URL,
            "STAGECRAFT_TEST_DATABASE": connection.settings_dict["NAME"],
            "STAGECRAFT_TEST_MEDIA_ROOT": str(settings.MEDIA_ROOT),
            **(env or {}),
        }
        environ.pop("PYTEST_XDIST_WORKER", None)  # TEST_REDIS_URL is already this run's
        worker = WorkerProcess(queues, tmp_path / f"worker-{len(started)}.log", environ)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
