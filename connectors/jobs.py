"""RQ entry points of bucket connections: take ids, call a service."""

from typing import Any

from .exports import connection_push_run
from .sync import connection_sync_run


def sync_connection_job(
    connection_id: int, keys: list[str] | None = None, actor_id: int | None = None
) -> dict[str, Any]:
    return connection_sync_run(connection_id=connection_id, keys=keys, actor_id=actor_id)


def push_export_job(connection_id: int, export_id: int) -> dict[str, Any]:
    return connection_push_run(connection_id=connection_id, export_id=export_id)


def connection_sync_failed(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback: the job raised, or its worker was lost."""
    from core.jobs import failure_reason

    from .services import connection_sync_abandon

    connection_sync_abandon(connection_id=job.args[0], reason=failure_reason(exc_type))
