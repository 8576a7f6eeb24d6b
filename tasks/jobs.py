"""RQ entry points of the tasks app: take ids (or nothing), call a service."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from .services.deletion import tasks_purge_deleted
from .services.timing import stage_release_expired

RELEASE_EVERY_SECONDS = 60


def purge_deleted_tasks_job() -> int:
    """Delete the deleted tasks (hidden already) with their rows: every one waiting, so a
    purge that failed or whose worker died is finished by the next."""
    return tasks_purge_deleted()


def release_expired_runs_job() -> int:
    """Give runs whose time limit passed back to the pool, then come back in a minute."""
    try:
        return stage_release_expired()
    finally:
        schedule_release_expired()


def schedule_release_expired() -> None:
    """Make sure the next sweep is scheduled. The job id names its minute, so however many
    processes call this, one sweep runs per minute (a sweep also schedules its successor,
    which a fixed id could not do while the sweep itself still holds that id)."""
    import django_rq

    slot = int(time.time() // RELEASE_EVERY_SECONDS) + 1
    at = datetime.fromtimestamp(slot * RELEASE_EVERY_SECONDS, tz=UTC)
    queue = django_rq.get_queue("default", commit_mode="auto")
    job_id = f"release-expired-runs-{slot}"
    if queue.fetch_job(job_id) is not None:
        return
    queue.enqueue_at(at, release_expired_runs_job, job_id=job_id, result_ttl=600)


def import_prelabels_job(project_id: int, import_id: str) -> str:
    from .services.prelabels import prelabel_import_run

    return prelabel_import_run(project_id=project_id, import_id=import_id).get("status", "skipped")


def import_prelabels_failed(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback: the job raised, or its worker died mid-import."""
    from core.jobs import failure_reason

    from .services.prelabels import prelabel_import_abandon

    prelabel_import_abandon(
        project_id=job.args[0], import_id=job.args[1], reason=failure_reason(exc_type)
    )
