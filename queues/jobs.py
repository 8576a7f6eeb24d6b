"""RQ entry points for exports: take ids, call a service."""

from .services import export_abandon, export_clean_expired, export_run


def run_export_job(export_id: int) -> str:
    export = export_run(export_id=export_id)
    return export.status if export else "skipped"


def export_failed(job, connection, exc_type, exc_value, traceback) -> None:
    reason = exc_type.__name__ if exc_type else "the worker stopped"
    export_abandon(export_id=job.args[0], reason=reason)


def clean_exports_job() -> int:
    return export_clean_expired()
