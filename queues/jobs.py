"""RQ entry points for exports: take ids, call a service."""

from core.access import SYSTEM
from notifications.services import notify_export_done

from .services import export_abandon, export_clean_expired, export_run


def run_export_job(export_id: int) -> str:
    export = export_run(export_id=export_id)
    if export is not None:  # ready, or failed on a refusal (a crash: export_failed says it)
        notify_export_done(export_id=export_id)
    return export.status if export else "skipped"


def export_failed(job, connection, exc_type, exc_value, traceback) -> None:
    reason = exc_type.__name__ if exc_type else "the worker stopped"
    export_abandon(export_id=job.args[0], reason=reason)
    notify_export_done(export_id=job.args[0])


def clean_exports_job() -> int:
    """Delete expired export files, then come back in a day."""
    removed = export_clean_expired(actor=SYSTEM)
    schedule_export_cleanup()
    return removed


def schedule_export_cleanup(delay_hours: float = 24) -> None:
    """Make sure one clean-up is scheduled (idempotent: one job id)."""
    from datetime import timedelta

    import django_rq
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    queue = django_rq.get_queue("default", commit_mode="auto")
    try:
        job = Job.fetch("clean-exports", connection=queue.connection)
        if job.get_status() in {"scheduled", "queued", "started"}:
            return
        job.delete()
    except NoSuchJobError:
        pass
    queue.enqueue_in(timedelta(hours=delay_hours), clean_exports_job, job_id="clean-exports")
