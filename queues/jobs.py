"""RQ entry points for exports: take ids, call a service."""

from datetime import timedelta

from core.access import SYSTEM
from core.jobs import failure_reason
from notifications.services import notify_export_done

from .services import export_abandon, export_clean_expired, export_run

CLEANUP_KEY = "stagecraft:clean-exports:next"  # the id of the scheduled clean-up job
CLEANUP_LOCK = "stagecraft:clean-exports:lock"


def run_export_job(export_id: int) -> str:
    export = export_run(export_id=export_id)
    if export is not None:  # ready, or failed on a refusal (a crash: export_failed says it)
        notify_export_done(export_id=export_id)
        # Copies to the project's export targets (buckets of its own), each a job of its own.
        from connectors.exports import connection_exports_enqueue

        connection_exports_enqueue(export_id=export_id)
    return export.status if export else "skipped"


def export_failed(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback: the job raised, or its worker was lost (queues/recovery.py)."""
    export_abandon(export_id=job.args[0], reason=failure_reason(exc_type))
    notify_export_done(export_id=job.args[0])


def clean_exports_job() -> int:
    """Delete expired export files and purge deleted tasks a failed purge left (tasks
    hidden already: tasks.services.deletion), then come back in a day."""
    from tasks.jobs import purge_deleted_tasks_job

    try:
        return export_clean_expired(actor=SYSTEM)
    finally:
        try:
            purge_deleted_tasks_job()
        finally:
            schedule_export_cleanup()


def schedule_export_cleanup(delay_hours: float = 24) -> None:
    """Make sure the next clean-up is scheduled: idempotent however many processes call it
    (``make serve`` at start, every worker's periodic check, the clean-up job itself).

    Each clean-up job has an id of its own, remembered in Redis: the running one is not
    the next one, so it can schedule its successor (a fixed id could not — the running job
    still held it, and the clean-up ran only once)."""
    import uuid

    import django_rq
    from rq.job import Job

    queue = django_rq.get_queue("default", commit_mode="auto")
    connection = queue.connection
    if not connection.set(CLEANUP_LOCK, 1, nx=True, ex=10):
        return  # another process is making sure of it right now
    try:
        current = connection.get(CLEANUP_KEY)
        if current:
            name = current.decode() if isinstance(current, bytes) else str(current)
            job = Job.fetch_many([name], connection=connection)[0]
            if job is not None and job.get_status(refresh=False) in {"scheduled", "queued"}:
                return
        job = queue.enqueue_in(
            timedelta(hours=delay_hours),
            clean_exports_job,
            job_id=f"clean-exports-{uuid.uuid4().hex[:12]}",
        )
        connection.set(CLEANUP_KEY, job.id)
    finally:
        connection.delete(CLEANUP_LOCK)
