"""Export targets: a finished export of the project is copied to each of its target buckets
by a job on ``exports``, under ``<prefix>/<version folder>/``, its ``manifest.json`` last (a
reader that waits for the manifest never sees half an export)."""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath
from typing import Any

from django.utils import timezone

from core.exceptions import ApplicationError, describe
from core.jobs import enqueue, job_log, report_progress

from .backends import BucketError
from .models import BucketConnection, Direction, SyncStatus
from .services import bucket_for, sync_finish

logger = logging.getLogger(__name__)


def connection_exports_enqueue(*, export_id: int) -> int:
    """After an export finished: queue its copy to each export target of its project.
    How many were queued."""
    from queues.models import Export, ExportStatus

    export = Export.objects.filter(pk=export_id, status=ExportStatus.FINISHED).first()
    if export is None:
        return 0
    from .jobs import connection_sync_failed, push_export_job

    targets = list(
        BucketConnection.objects.filter(
            project=export.project_id, direction=Direction.TARGET
        ).values_list("pk", flat=True)
    )
    for pk in targets:
        job_id = f"push-export-{export_id}-{pk}"
        BucketConnection.objects.filter(pk=pk).update(
            sync_status=SyncStatus.QUEUED,
            sync_job_id=job_id,
            sync_started_at=timezone.now(),
            sync_error="",
        )
        enqueue(
            "exports",
            push_export_job,
            pk,
            export_id,
            job_id=job_id,
            on_failure=connection_sync_failed,
        )
    return len(targets)


def _export_folder(export) -> Path | None:
    """The export's files as a real folder on this machine (the published folder, or the
    cached copy of a bucket's whose manifest is this export's), None when they are gone."""
    from queues import services as export_services

    try:
        folder = export_services.export_dir(export)
    except FileNotFoundError:  # no manifest in the bucket: nothing trusted to copy
        return None
    return folder if folder.is_dir() else None


def connection_push_run(*, connection_id: int, export_id: int) -> dict[str, Any]:
    """Upload a finished export's files under the target's prefix, the manifest last.
    Uploading again writes the same keys: safe to run twice."""
    from queues.models import Export, ExportStatus

    connection = (
        BucketConnection.objects.select_related("project")
        .filter(pk=connection_id, direction=Direction.TARGET)
        .first()
    )
    if connection is None:
        return {"skipped": True}
    BucketConnection.objects.filter(pk=connection_id).update(
        sync_status=SyncStatus.RUNNING, sync_started_at=timezone.now()
    )
    counts: dict[str, Any] = {"export": None, "files": 0, "bytes": 0}
    try:
        export = Export.objects.filter(
            pk=export_id, project=connection.project_id, status=ExportStatus.FINISHED
        ).first()
        if export is None or not export.path:
            raise ApplicationError("The export is gone, or not finished.")
        counts["export"] = export.version
        folder = _export_folder(export)
        files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder else []
        if folder is None or not files:
            raise ApplicationError(f"The files of export v{export.version} are gone.")
        top = PurePosixPath(export.path).name
        base = "/".join(p for p in (connection.prefix, top) if p)
        counts["prefix"] = base + "/"
        # The manifest last: a reader that waits for it never sees a partial export.
        ordered = sorted(files, key=lambda p: p.relative_to(folder).as_posix() == "manifest.json")
        bucket = bucket_for(connection)
        for n, path in enumerate(ordered):
            relative = path.relative_to(folder).as_posix()
            report_progress(n / len(ordered), stage="uploading", detail=relative)
            bucket.upload(path, f"{base}/{relative}")
            counts["files"] += 1
            counts["bytes"] += path.stat().st_size
    except (ApplicationError, BucketError) as exc:
        sync_finish(connection_id, counts=counts, error=exc.message, failed=True)
        return {**counts, "error": exc.message}
    except Exception as exc:
        sync_finish(
            connection_id,
            counts=counts,
            error=f"The copy failed unexpectedly ({describe(exc)}).",
            failed=True,
        )
        logger.exception("connection %s push of export %s crashed", connection_id, export_id)
        raise
    sync_finish(connection_id, counts=counts)
    job_log(f"export {export_id} copied to {connection.location}: {counts['files']} file(s)")
    return counts
