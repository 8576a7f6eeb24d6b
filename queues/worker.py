"""Workers that honour per-queue pauses and record throughput.

RQ's own suspend is global; Stagecraft pauses single queues: a paused queue keeps its
jobs waiting while workers take jobs from the other queues, and jobs already running
finish. Use with ``rqworker --worker-class queues.worker.PausableWorker``.
"""

from __future__ import annotations

import time

from rq import SimpleWorker, Worker

PAUSED_KEY = "stagecraft:paused-queues"
FINISHED_KEY = "stagecraft:finished:{queue}"
POLL_SECONDS = 5  # how soon a running worker notices a pause or a resume


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


class PausableMixin:
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
