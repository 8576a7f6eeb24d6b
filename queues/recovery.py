"""Jobs whose worker died: found within a minute, failed as "worker lost", retried.

RQ notices a killed worker's job only when the job's entry in the started registry
expires — for an export an hour later — and then only in a worker's ten-minute
maintenance; until then the export says "started" and "retry failed" cannot reach it.

Here every Stagecraft worker (``queues.worker.PausableMixin``) keeps a key alive in Redis
(``STAGECRAFT_WORKER_LOST_SECONDS``, refreshed four times per period by a thread of the
worker's main process, busy or idle). A job in a started registry whose worker's key has
expired is lost: its failure callback runs with ``core.jobs.WorkerLost`` (the export or
import is marked failed with "worker lost" and its temporary files removed; the webhook
counts a failed attempt), and the job moves to the failed registry, where "retry failed"
runs it again — or, with ``STAGECRAFT_RETRY_LOST_JOBS``, it is put back on its queue once
by itself. Workers of another class (which keep no such key) are judged by RQ's own worker
key and the execution's heartbeat.

The check runs in every worker (one of them per interval, by a Redis lock) and on each load
of the queue page, so it needs no extra process and works with any number of workers. Each
lost execution is claimed and failed in one Redis transaction — out of the started
registry, into the failed registry with its "worker lost" result — and only then are its
failure callbacks run: however many checks run at once, one handles it, and whatever
interrupts the handling (a gunicorn timeout's SystemExit on the queue page) the job is
never in no registry, where "retry failed" could not reach it. The callback owed to a
claimed job is remembered in the same transaction (``OWED_KEY``) until it has run; one that
was interrupted runs again in a later check.

A failure callback that schedules the job's next attempt itself (a webhook delivery's
backoff) says so in the job's meta (``RETRIES_ITSELF``): such a job is not put back on its
queue by ``STAGECRAFT_RETRY_LOST_JOBS``, which would start a second chain of attempts.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from redis import Redis, WatchError
from rq import Queue
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.executions import Execution, ExecutionRegistry
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.utils import now
from rq.worker import Worker

from core.jobs import WORKER_LOST, WorkerLost

logger = logging.getLogger(__name__)

ALIVE_KEY = "stagecraft:worker-alive:{name}"
WORKERS_KEY = "stagecraft:workers"  # names of workers that keep an ALIVE_KEY
LOCK_KEY = "stagecraft:recovery-lock"
RETRIED = "worker_lost_retried"  # job.meta flag: already retried once by itself
# job.meta flag set by a failure callback that has scheduled the job's next attempt itself
# (tasks/webhooks.py): retrying the failed job as well would run that attempt twice.
RETRIES_ITSELF = "retries_itself"
# Failure callbacks owed to claimed lost jobs, as JSON [queue, job id, worker, detail]; the
# score is when a check may run it (again): the claim's time plus ``lost_after()``.
OWED_KEY = "stagecraft:lost-callbacks"
CLAIM_ATTEMPTS = 20  # transactions tried per lost job before leaving it to the next check


def lost_after() -> int:
    """Seconds without a sign of life after which a worker is lost."""
    return max(2, int(settings.STAGECRAFT_WORKER_LOST_SECONDS))


def beat_interval() -> float:
    """How often a worker says it is alive (and checks for lost jobs)."""
    return max(0.5, lost_after() / 4)


def mark_alive(connection: Redis, name: str) -> None:
    with connection.pipeline() as pipe:
        pipe.set(ALIVE_KEY.format(name=name), 1, ex=lost_after())
        pipe.sadd(WORKERS_KEY, name)
        pipe.execute()


def mark_gone(connection: Redis, name: str) -> None:
    """A worker that stops cleanly (its running job finished or failed first)."""
    with connection.pipeline() as pipe:
        pipe.delete(ALIVE_KEY.format(name=name))
        pipe.srem(WORKERS_KEY, name)
        pipe.execute()


def check_due(connection: Redis) -> bool:
    """True for one caller per interval, however many workers ask."""
    return bool(connection.set(LOCK_KEY, 1, nx=True, px=int(beat_interval() * 1000)))


@dataclass(frozen=True)
class LostJob:
    queue: str
    job_id: str
    execution_id: str
    worker: str  # "" when the execution's record itself expired


def find_lost(connection: Redis, queue_names: list[str] | None = None) -> list[LostJob]:
    """The started jobs whose worker is gone (a few round trips, whatever the counts)."""
    names = queue_names or list(settings.RQ_QUEUE_NAMES)
    entries: list[tuple[str, str, str]] = []
    for name in names:
        registry = StartedJobRegistry(name, connection=connection)
        for job_id, execution_id in registry.get_job_and_execution_ids(cleanup=False):
            entries.append((name, job_id, execution_id))
    if not entries:
        return []
    with connection.pipeline() as pipe:
        for _, job_id, execution_id in entries:
            pipe.hget(f"rq:execution:{job_id}:{execution_id}", "worker_name")
        workers = [w.decode() if isinstance(w, bytes) else w for w in pipe.execute()]
    known = sorted({w for w in workers if w})
    alive: dict[str, bool] = {}
    if known:
        with connection.pipeline() as pipe:
            for worker in known:
                pipe.exists(ALIVE_KEY.format(name=worker))
                pipe.sismember(WORKERS_KEY, worker)
                pipe.exists(Worker.redis_worker_namespace_prefix + worker)
            answers = pipe.execute()
        for i, worker in enumerate(known):
            has_beat, ours, registered = answers[3 * i : 3 * i + 3]
            # Ours: its own key says it. Another class's worker: RQ's worker key.
            alive[worker] = bool(has_beat) if ours else bool(registered)
    lost = []
    for (queue, job_id, execution_id), worker in zip(entries, workers, strict=True):
        if worker is None or (worker and not alive[worker]):
            lost.append(LostJob(queue, job_id, execution_id, worker or ""))
    return lost


def job_lost(job: Job, *, worker: str, detail: str) -> bool:
    """Run the job's failure callback for a lost worker; answers whether to retry it now
    (``STAGECRAFT_RETRY_LOST_JOBS``, once per job, and never a job whose callback scheduled
    its next attempt itself). Used here and by the worker whose work horse was killed under
    it (queues/worker.py)."""
    reason = f"{WORKER_LOST} ({detail})" if detail else WORKER_LOST
    if job.failure_callback is not None:
        try:
            job.failure_callback(job, job.connection, WorkerLost, WorkerLost(reason), None)
        except Exception:
            logger.exception("failure callback of lost job %s failed", job.id)
        except BaseException:
            logger.exception("failure callback of lost job %s was interrupted", job.id)
            raise
    logger.warning("job %s: %s (worker %s)", job.id, reason, worker or "unknown")
    meta = job.get_meta(refresh=True)
    if not settings.STAGECRAFT_RETRY_LOST_JOBS or meta.get(RETRIED) or meta.get(RETRIES_ITSELF):
        return False
    job.meta[RETRIED] = True
    job.save_meta()
    return True


def _claim(connection: Redis, lost: LostJob, owed: str) -> Job | None:
    """In one transaction: take the lost execution out of the started registry, fail the
    job with its "worker lost" result into the failed registry, and record the failure
    callback it is owed. None when another check claimed it first or the job had ended."""
    registry = StartedJobRegistry(lost.queue, connection=connection)
    entry = f"{lost.job_id}:{lost.execution_id}"
    text = (
        f"Worker lost: {lost.worker or 'its worker'} stopped answering for "
        f"{lost_after()} s while running this job, at {now():%Y-%m-%d %H:%M:%S} UTC. "
        "Nothing it was writing was published."
    )
    with connection.pipeline() as pipe:
        for _ in range(CLAIM_ATTEMPTS):
            try:
                pipe.watch(registry.key, Job.key_for(lost.job_id))
                if pipe.zscore(registry.key, entry) is None:
                    pipe.unwatch()
                    return None  # another check handled it
                try:
                    job: Job | None = Job.fetch(lost.job_id, connection=connection)
                except NoSuchJobError:
                    job = None
                pipe.multi()
                pipe.zrem(registry.key, entry)
                pipe.delete(f"rq:execution:{lost.job_id}:{lost.execution_id}")
                ExecutionRegistry(lost.job_id, connection=connection).remove(
                    Execution(lost.execution_id, lost.job_id, connection=connection), pipeline=pipe
                )
                ended = job is None or job.get_status(refresh=False) in {
                    JobStatus.FINISHED,
                    JobStatus.FAILED,
                }
                if job is not None and not ended:
                    job.ended_at = now()
                    job.set_status(JobStatus.FAILED, pipeline=pipe)
                    job._handle_failure(
                        text, pipe, worker_name=lost.worker, execution_id=lost.execution_id
                    )
                    pipe.zadd(OWED_KEY, {owed: time.time() + lost_after()})
                pipe.execute()
                return None if ended else job  # ended as its worker died: nothing lost
            except WatchError:
                continue  # the registry or the job changed meanwhile: look again
    return None  # busy: the next check claims it


def _settle(connection: Redis, job: Job, *, queue: str, worker: str, detail: str, owed: str) -> str:
    """Run the callback owed to a failed lost job, then retry it if so configured."""
    retry = job_lost(job, worker=worker, detail=detail)
    connection.zrem(OWED_KEY, owed)
    if retry:
        try:
            Queue(queue, connection=connection).failed_job_registry.requeue(job.id, at_front=True)
            return "retried"
        except (InvalidJobOperation, NoSuchJobError):
            return "failed"
    return "failed"


def _handle(connection: Redis, lost: LostJob) -> str | None:
    """Fail one lost execution (and retry it if so configured); None when another check
    handled it first."""
    detail = f"{lost.worker} stopped answering" if lost.worker else "no heartbeat"
    owed = json.dumps([lost.queue, lost.job_id, lost.worker, detail])
    job = _claim(connection, lost, owed)
    if job is None:
        return None
    return _settle(connection, job, queue=lost.queue, worker=lost.worker, detail=detail, owed=owed)


# Takes the owed callbacks whose time has come, pushing each one's time on by a lease.
_TAKE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 50)
for _, member in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], member) end
return due
"""


def _run_owed(connection: Redis) -> int:
    """Run the failure callbacks that an interrupted check owed to jobs it had claimed;
    answers how many of those jobs were retried."""
    moment = time.time()
    due = connection.eval(_TAKE_DUE, 1, OWED_KEY, moment, moment + lost_after())
    retried = 0
    for member in due:
        queue, job_id, worker, detail = json.loads(member)
        try:
            job = Job.fetch(job_id, connection=connection)
        except NoSuchJobError:
            connection.zrem(OWED_KEY, member)
            continue
        if job.get_status(refresh=False) != JobStatus.FAILED:
            connection.zrem(OWED_KEY, member)  # retried or removed meanwhile
            continue
        try:
            outcome = _settle(
                connection, job, queue=queue, worker=worker, detail=detail, owed=member
            )
        except Exception:
            logger.exception("could not run the failure callback owed to lost job %s", job_id)
            continue
        retried += outcome == "retried"
    return retried


def recover_lost_jobs(connection: Redis, queue_names: list[str] | None = None) -> dict:
    """Find and handle the jobs of lost workers; returns how many were failed and retried."""
    counts = {"failed": 0, "retried": _run_owed(connection)}
    for lost in find_lost(connection, queue_names):
        try:
            outcome = _handle(connection, lost)
        except Exception:
            logger.exception("could not recover lost job %s", lost.job_id)
            continue
        if outcome:
            counts[outcome] += 1
    # Forget workers that are gone and no longer hold a job (their names stay otherwise).
    names = [n.decode() if isinstance(n, bytes) else n for n in connection.smembers(WORKERS_KEY)]
    if names:
        with connection.pipeline() as pipe:
            for name in names:
                pipe.exists(ALIVE_KEY.format(name=name))
            beating = pipe.execute()
        gone = [n for n, b in zip(names, beating, strict=True) if not b]
        if gone and not find_lost(connection, queue_names):
            connection.srem(WORKERS_KEY, *gone)
    return counts
