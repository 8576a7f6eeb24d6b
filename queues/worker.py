"""Workers that honour per-queue pauses, say they are alive, and record throughput.

RQ's own suspend is global; Stagecraft pauses single queues: a paused queue keeps its
jobs waiting while workers take jobs from the other queues, and jobs already running
finish. A pause is immediate: a job is started (put in the started registry) in one Redis
transaction with the check of the pause flag, so once the pause call has returned no job
of that queue starts — one taken by a worker that was already waiting on the queue is put
back at its front. Use with ``rqworker --worker-class queues.worker.PausableWorker``.

Each worker also keeps a key alive in Redis from a thread of its main process, and that
thread looks for the jobs of workers that died (queues/recovery.py).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time

from redis import Redis, WatchError
from rq import SimpleWorker, Worker
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.executions import Execution
from rq.intermediate_queue import IntermediateQueue
from rq.worker import WorkerStatus

from . import recovery

logger = logging.getLogger(__name__)
PAUSED_KEY = "stagecraft:paused-queues"
FINISHED_KEY = "stagecraft:finished:{queue}"
POLL_SECONDS = 5  # how soon a waiting worker notices a resume


def paused_queues(connection) -> set[str]:
    return {
        name.decode() if isinstance(name, bytes) else name
        for name in connection.smembers(PAUSED_KEY)
    }


def record_finished(connection, queue_name: str) -> None:
    now = time.time()
    key = FINISHED_KEY.format(queue=queue_name)
    with connection.pipeline() as pipe:
        pipe.zadd(key, {f"{now:.6f}": now})
        pipe.zremrangebyscore(key, 0, now - 3600)
        pipe.expire(key, 7200)
        pipe.execute()


class QueuePaused(Exception):
    """The job's queue was paused between taking the job and starting it."""


def _die_with_parent(parent: int) -> None:
    """In a work horse: be killed when the worker that forked it dies (Linux), so a killed
    worker never leaves a job running unwatched (and publishing after it was failed)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - not glibc
            return
    if os.getppid() != parent:  # the worker died before that took effect
        os._exit(1)


class _Beat(threading.Thread):
    """Says the worker is alive every ``recovery.beat_interval()`` seconds, busy or idle;
    with ``recover``, a second such thread looks for lost jobs instead (one worker per
    interval does) — apart, so a slow check never delays the heartbeat."""

    def __init__(self, worker: PausableMixin, *, recover: bool = False) -> None:
        kind = "recovery" if recover else "beat"
        super().__init__(name=f"stagecraft-{kind}-{worker.name}", daemon=True)
        self.worker_name = worker.name
        pool = worker.connection.connection_pool
        # A connection of its own: the main process forks work horses while this runs.
        self.connection = Redis(connection_pool=pool.__class__(**pool.connection_kwargs))
        self.recover = recover
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(recovery.beat_interval()):
            try:
                if self.recover:
                    self.maintain()
                else:
                    recovery.mark_alive(self.connection, self.worker_name)
            except Exception:
                logger.exception("worker %s: heartbeat or recovery failed", self.worker_name)

    def maintain(self) -> None:
        from django.db import close_old_connections, connections

        if not recovery.check_due(self.connection):
            return
        try:
            close_old_connections()
            counts = recovery.recover_lost_jobs(self.connection)
            if counts["failed"] or counts["retried"]:
                logger.warning("lost jobs: %s", counts)
            from .jobs import schedule_export_cleanup

            schedule_export_cleanup()  # the daily clean-up is always scheduled
        finally:
            connections.close_all()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)
        self.connection.connection_pool.disconnect()


def _sweep_work_folder() -> None:
    """What exports left in this machine's working folder when a worker here died (their
    clean-up ran on another machine, or not at all): removed as a worker starts here."""
    from django.db import connections

    from .services import export_sweep_work_folder

    try:
        export_sweep_work_folder()
    except Exception:
        logger.exception("could not sweep the working folder")
    finally:
        connections.close_all()  # none kept open across the work horses' forks


class PausableMixin:
    _threads: list[_Beat] = []
    _lost_retry: str | None = None

    # --- liveness -------------------------------------------------------------------
    def work(self, burst: bool = False, *args, **kwargs):
        self._burst = burst
        return super().work(burst, *args, **kwargs)

    def register_birth(self):
        super().register_birth()
        recovery.mark_alive(self.connection, self.name)
        self._threads = [_Beat(self)]
        if not getattr(self, "_burst", False):  # a long-running worker also watches
            self._threads.append(_Beat(self, recover=True))
            _sweep_work_folder()
        for thread in self._threads:
            thread.start()

    def teardown(self):
        super().teardown()
        if not self.is_horse and self._threads:
            for thread in self._threads:
                thread.stop()
            self._threads = []
            recovery.mark_gone(self.connection, self.name)

    def execute_job(self, job, queue):
        self._parent_pid = os.getpid()
        try:
            super().execute_job(job, queue)
        except QueuePaused:
            # Back at the front of its queue, as if it had never been taken.
            with self.connection.pipeline() as pipe:
                pipe.lrem(IntermediateQueue.get_intermediate_queue_key(queue.key), 1, job.id)
                queue.push_job_id(job.id, pipeline=pipe, at_front=True)
                pipe.execute()
            self.set_state(WorkerStatus.IDLE)
            logger.info("job %s put back: queue %s was paused", job.id, queue.name)

    def main_work_horse(self, job, queue):
        _die_with_parent(self._parent_pid)
        super().main_work_horse(job, queue)

    def setup_work_horse_signals(self):
        """The job's process ignores SIGINT and SIGTERM: a process manager stopping the
        service signals the whole process group (systemd's default, ``kill 0``), and the
        worker's warm shutdown lets the current job finish. A second signal to the worker
        is its cold shutdown, which kills the job's process with SIGKILL; a job killed
        that way is failed as "worker lost" like any killed job (queues/recovery.py)."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def handle_work_horse_killed(self, job, retpid, ret_val, rusage):
        """The job's process died under a living worker (out of memory, killed): fail the
        export or import as "worker lost" (RQ then moves the job to the failed registry)."""
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        code = os.WTERMSIG(ret_val) if ret_val and os.WIFSIGNALED(ret_val) else None
        detail = f"its process was killed by signal {code}" if code else "its process died"
        try:
            if recovery.job_lost(job, worker=self.name, detail=detail):
                self._lost_retry = job.id
        finally:
            from django.db import connections

            connections.close_all()  # the next work horse must not inherit this connection

    def handle_job_failure(self, job, queue, started_job_registry=None, exc_string=""):
        super().handle_job_failure(job, queue, started_job_registry, exc_string)
        if self._lost_retry == job.id:
            self._lost_retry = None
            try:
                job.requeue(at_front=True)  # STAGECRAFT_RETRY_LOST_JOBS: once, by itself
            except (InvalidJobOperation, NoSuchJobError):
                logger.warning("lost job %s could not be put back on its queue", job.id)

    # --- pause ----------------------------------------------------------------------
    def prepare_execution(self, job):
        """Start the job (started registry, worker busy) only if its queue is not paused,
        in one transaction with the check: a pause either comes first and the job goes
        back, or it comes after the job started."""
        with self.connection.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(PAUSED_KEY)
                    if pipe.sismember(PAUSED_KEY, job.origin):
                        pipe.unwatch()
                        raise QueuePaused(job.origin)
                    pipe.multi()
                    ttl = self.get_heartbeat_ttl(job)
                    self.execution = Execution.create(
                        job, ttl, pipeline=pipe, worker_name=self.name
                    )
                    self.set_state(WorkerStatus.BUSY, pipeline=pipe)
                    pipe.execute()
                    return self.execution
                except WatchError:
                    continue  # the paused set changed meanwhile: look again

    def prepare_job_execution(self, job, remove_from_intermediate_queue: bool = False):
        # A worker of several queues with all but one paused takes jobs through RQ's
        # intermediate list too; leaving them there would fail them later as "stuck".
        super().prepare_job_execution(job, remove_from_intermediate_queue=True)

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        burst = timeout is None
        idle_since = time.monotonic()
        while True:
            paused = paused_queues(self.connection)
            everyone = self._ordered_queues
            active = [q for q in everyone if q.name not in paused]
            result = None
            if active:
                self._ordered_queues = active
                try:
                    wait = None if burst else POLL_SECONDS
                    result = super().dequeue_job_and_maintain_ttl(
                        wait, None if burst else POLL_SECONDS
                    )
                finally:
                    order = [q.name for q in self._ordered_queues]
                    self._ordered_queues = sorted(
                        everyone,
                        key=lambda q: order.index(q.name) if q.name in order else len(order),
                    )
                if result is not None or burst:
                    return result
            elif burst:
                return None
            else:
                self.heartbeat()
                time.sleep(1)
            if max_idle_time is not None and time.monotonic() - idle_since > max_idle_time:
                return None

    def handle_job_success(self, job, queue, started_job_registry):
        super().handle_job_success(job, queue, started_job_registry)
        record_finished(self.connection, queue.name)


class PausableWorker(PausableMixin, Worker):
    pass


class PausableSimpleWorker(PausableMixin, SimpleWorker):
    """The same in the worker's own process (tests, and machines without fork)."""
