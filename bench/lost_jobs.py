"""What the lost-job check costs (queues/recovery.py): each worker runs it every
STAGECRAFT_WORKER_LOST_SECONDS / 4 (one of them per interval) and the queue page on each
load. Prints JSON: CPU and wall milliseconds per check with N running jobs of living
workers (the usual case: nothing to do), and per lost job handled.

    REDIS_URL=redis://127.0.0.1:6379/6 .venv/bin/python bench/lost_jobs.py [N]

It empties that Redis database before and after: give it one of its own.
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench")

import django  # noqa: E402

django.setup()

import django_rq  # noqa: E402
from rq.executions import Execution  # noqa: E402

from core.jobs import ping_job  # noqa: E402
from queues.recovery import WORKERS_KEY, mark_alive, recover_lost_jobs  # noqa: E402


def started(connection, n: int, worker: str) -> None:
    queue = django_rq.get_queue("default", commit_mode="auto")
    with connection.pipeline() as pipe:
        for i in range(n):
            job = queue.create_job(ping_job, args=(str(i),))
            job.save(pipeline=pipe)
            Execution.create(job, ttl=3600, pipeline=pipe, worker_name=worker)
        pipe.execute()


def timed(connection, calls: int) -> dict:
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        counts = recover_lost_jobs(connection)
    return {
        "cpu_ms": round((time.process_time() - cpu) * 1000 / calls, 2),
        "wall_ms": round((time.perf_counter() - wall) * 1000 / calls, 2),
        "last": counts,
    }


def main() -> None:
    import logging

    logging.disable(logging.WARNING)  # one "worker lost" line per handled job otherwise
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    connection = django_rq.get_connection("default")
    connection.flushdb()
    try:
        out = {"running_jobs": n, "empty": timed(connection, 50)}
        mark_alive(connection, "alive-worker")
        started(connection, n, "alive-worker")
        out["living_workers"] = timed(connection, 20)
        connection.sadd(WORKERS_KEY, "dead-worker")
        started(connection, n, "dead-worker")
        one = timed(connection, 1)
        out["lost_jobs_handled"] = one["last"]["failed"]
        out["per_lost_job_ms"] = {
            k: round(one[k] / max(one["last"]["failed"], 1), 3) for k in ("cpu_ms", "wall_ms")
        }
        out["load"] = os.getloadavg()[0]
        print(json.dumps(out, indent=2))
    finally:
        connection.flushdb()


if __name__ == "__main__":
    main()
