"""Exports: request (deduplicated), run as a job on `exports` (temporary folder, validation,
manifest with checksums, atomic publish), cancel, and the retention clean-up.

Where the files go (core/objectstore.py): an export is built in a working folder of the
worker's machine and published under the storage key ``exports/<slug>/v<N>-<format>/``
(its zip beside it, ``….zip``). On the local storage the working folder sits beside the
published ones (``MEDIA_ROOT/exports/.tmp-<id>``) and publishing is one rename inside the
transaction that marks the export finished. On a bucket it is ``STAGECRAFT_WORK_DIR/exports/
.tmp-<id>`` of that machine: the zip is uploaded, then every file with the manifest last,
then the row is marked finished. A reader trusts an export only when the row says finished
*and* its manifest object exists; a run that dies before leaves objects without a manifest
(or a manifest naming an unfinished export), which its clean-up (``_discard``) removes."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path, PurePath
from typing import IO, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from activity.services import activity_record
from core import objectstore
from core.access import Action, actor_user, require
from core.exceptions import ApplicationError, describe
from core.jobs import enqueue, job_log, report_progress
from projects.models import Project
from tasks.filters import filter_as_json, task_filter
from tasks.models import Task, TaskStatus

from .models import Export, ExportFormat, ExportStatus

logger = logging.getLogger(__name__)
FINISHED_WORK = [TaskStatus.REVIEW_PASSED, TaskStatus.DATA_SUBMITTED]
# A running export checks for a cancel and writes its progress at most this often
# (seconds), not once per task or episode.
PROGRESS_INTERVAL = 0.25
OPTION_KEYS = {
    "incremental",
    "clean",
    "validate",
    "submit",
    "include_unfinished",
    "task_from",
    "video",
    "robot_type",
    "zip",
    "compress",
}
# Image layouts of the HDF5 export: lossless frames, or ALOHA's padded JPEG rows.
COMPRESS_CHOICES = ("none", "jpeg")


class TooManyExports(ApplicationError):
    status_code = 429


EXPORTS = "exports"  # the storage prefix of every export
MANIFEST = "manifest.json"
UPLOADS = 8  # files of an export uploaded at a time (a LeRobot export is many small files)


def exports_root() -> Path:
    """The folder of the published exports on the local storage (``MEDIA_ROOT/exports``)."""
    return Path(settings.MEDIA_ROOT) / EXPORTS


def work_root() -> Path:
    """Where a run builds an export before publishing it: beside the published exports on
    the local storage (published by one rename), this machine's ``STAGECRAFT_WORK_DIR`` when
    the exports live in a bucket."""
    if objectstore.is_remote():
        return Path(settings.STAGECRAFT_WORK_DIR) / EXPORTS
    return exports_root()


def export_key(name: str) -> str:
    """The storage prefix of a published export (``name`` is ``Export.path``)."""
    return objectstore.join(EXPORTS, name)


def export_dir(export: Export) -> Path:
    """A real folder holding a published export's files: the folder itself on the local
    storage, this machine's cached copy of its objects on a bucket.

    A key can name another export later (a project deleted and made again under its slug
    numbers its exports from v1 again): a cached copy whose manifest is not this export's
    is fetched anew."""
    if not objectstore.is_remote():
        return exports_root() / export.path
    key = export_key(export.path)
    folder = objectstore.local_tree(key, require=MANIFEST)
    if _run_of(json.loads((folder / MANIFEST).read_text())) != _run_of(export.manifest or {}):
        objectstore.evict(key)
        folder = objectstore.local_tree(key, require=MANIFEST)
    return folder


def _run_of(manifest: dict) -> tuple:
    """Which run of which export published a manifest."""
    return manifest.get("export_id"), manifest.get("created_at")


def _profile(project: Project, fmt: str, selection: dict, options: dict) -> str:
    stable = {k: v for k, v in options.items() if k not in {"incremental", "submit"}}
    text = json.dumps([project.pk, fmt, selection, stable], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@transaction.atomic
def export_start(
    *,
    actor,
    project: Project,
    format: str,
    filter: dict | None = None,
    ids: list[int] | None = None,
    options: dict[str, Any] | None = None,
    background: bool = True,
) -> tuple[Export, bool]:
    """Request an export. An identical one already queued or running is answered instead
    (returns it with created=False)."""
    require(actor, project, Action.CHANGE)
    if format not in ExportFormat.values:
        raise ApplicationError(
            f"format must be one of {', '.join(ExportFormat.values)}.", field="format"
        )
    if filter is not None and ids is not None:
        raise ApplicationError("Give a filter or ids, not both.", field="ids")
    options = {k: v for k, v in (options or {}).items() if v is not None}
    unknown = set(options) - OPTION_KEYS
    if unknown:
        raise ApplicationError(f"Unknown option: {', '.join(sorted(unknown))}.", field="options")
    options.setdefault("validate", True)
    if "robot_type" in options:
        from projects.services import ROBOT_TYPE

        if not isinstance(options["robot_type"], str) or not ROBOT_TYPE.fullmatch(
            options["robot_type"]
        ):
            raise ApplicationError(
                "robot_type is up to 100 letters, digits, _ . or -.", field="robot_type"
            )
    if options.get("compress", "none") not in COMPRESS_CHOICES or (
        options.get("compress", "none") != "none" and format != ExportFormat.HDF5
    ):
        raise ApplicationError(
            "compress is 'none' or 'jpeg' (HDF5 exports only).", field="options.compress"
        )
    # The same task filter as the task list and batch actions (a bad key or value is a 400).
    chosen = filter_as_json(task_filter(filter))
    selection: dict[str, Any] = {"ids": sorted(set(ids))} if ids is not None else {"filter": chosen}
    profile = _profile(project, format, selection, options)
    Project.objects.select_for_update().filter(pk=project.pk).first()
    active = Export.objects.filter(
        requested_by=actor_user(actor), status__in=[ExportStatus.QUEUED, ExportStatus.STARTED]
    )
    running = Export.objects.filter(
        project=project, profile=profile, status__in=[ExportStatus.QUEUED, ExportStatus.STARTED]
    ).first()
    if running is not None and running.options == options:
        return running, False
    # Fairness: one person's burst waits its turn instead of filling the queue for everyone.
    limit = settings.STAGECRAFT_MAX_ACTIVE_EXPORTS_PER_USER
    if active.count() >= limit:
        raise TooManyExports(
            f"You already have {limit} exports waiting or running; start more when they finish."
        )
    version = (Export.objects.filter(project=project).aggregate(v=Max("version"))["v"] or 0) + 1
    parent = (
        Export.objects.filter(project=project, profile=profile, status=ExportStatus.FINISHED)
        .order_by("-version")
        .first()
    )
    export = Export.objects.create(
        project=project,
        version=version,
        format=format,
        selection=selection,
        options=options,
        profile=profile,
        parent=parent if options.get("incremental") else None,
        requested_by=actor_user(actor),
    )
    activity_record(
        actor=actor,
        verb="export.started",
        target=export,
        project=project,
        after={"version": version, "format": format, "selection": selection, "options": options},
    )
    if background:  # the command line runs it itself
        export.job_id = f"export-{export.pk}"
        export.save(update_fields=["job_id"])
        from .jobs import export_failed, run_export_job

        enqueue(
            "exports", run_export_job, export.pk, job_id=export.job_id, on_failure=export_failed
        )
    logger.info("%s requested export v%s of %s (%s)", actor, version, project.slug, format)
    return export, True


@transaction.atomic
def export_cancel(*, actor, export: Export) -> Export:
    """Cancel a queued export at once; a running one stops at its next episode."""
    require(actor, export.project, Action.CHANGE)
    moved = Export.objects.filter(
        pk=export.pk, status__in=[ExportStatus.QUEUED, ExportStatus.STARTED]
    ).update(status=ExportStatus.CANCELLED, error="Cancelled by " + actor.get_username())
    if not moved:
        raise ApplicationError("Only queued or running exports can be cancelled.", field="status")
    before = export.status
    export.refresh_from_db()
    activity_record(
        actor=actor,
        verb="export.cancelled",
        target=export,
        project=export.project,
        before={"status": before},
        after={"status": export.status},
    )
    return export


class Cancelled(Exception):
    pass


def _tasks(export: Export) -> QuerySet[Task]:
    """The export's tasks as a query (not fetched: streaming formats read it in chunks)."""
    from tasks.selectors import task_list_for_user

    if "ids" in export.selection:
        tasks = Task.objects.filter(project=export.project, pk__in=export.selection["ids"])
    else:
        filters = {**task_filter(export.selection.get("filter", {})), "project": export.project_id}
        tasks = task_list_for_user(user=export.requested_by, filters=filters).filter(
            project=export.project
        )
    if not export.options.get("include_unfinished"):
        tasks = tasks.filter(status__in=FINISHED_WORK)
    if export.parent_id and export.parent and export.parent.started_at:
        since = export.parent.started_at
        from django.db.models import Exists, OuterRef, Q

        from tasks.models import Annotation

        changed = Annotation.objects.filter(task=OuterRef("pk"), updated_at__gt=since)
        tasks = tasks.filter(Q(updated_at__gt=since) | Exists(changed))
    return tasks.order_by("pk")


class Throttle:
    """At most one call of ``action`` per ``interval`` seconds (the first call runs)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.last = float("-inf")

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.interval:
            return False
        self.last = now
        return True


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def export_run(*, export_id: int) -> Export | None:
    """The job's body. Writes into a temporary folder and publishes it — by renaming it on
    the local storage, by uploading it with its manifest last on a bucket; any failure or a
    cancel leaves nothing published. Safe to run twice (only a queued export runs)."""
    from .exporters import ExportContext, get_writer

    # A failed export runs again when its job is retried (queue administration).
    claimed = Export.objects.filter(
        pk=export_id, status__in=[ExportStatus.QUEUED, ExportStatus.FAILED]
    ).update(status=ExportStatus.STARTED, started_at=timezone.now(), error="", progress=0)
    if not claimed:
        return None
    export = Export.objects.select_related("project", "requested_by", "parent").get(pk=export_id)
    remote = objectstore.is_remote()
    tmp = work_root() / f".tmp-{export.pk}"

    throttle = Throttle(PROGRESS_INTERVAL)

    def progress(fraction: float, detail: str = "") -> None:
        # One query (an UPDATE that also reads the status) a few times a second at most.
        if not throttle.due():
            return
        moved = Export.objects.filter(pk=export.pk, status=ExportStatus.STARTED).update(
            progress=round(fraction, 4)
        )
        if not moved:  # cancelled (the only way out of "started" while the job runs)
            raise Cancelled()
        report_progress(fraction, detail=detail)

    try:
        shutil.rmtree(tmp, ignore_errors=True)
        if remote:  # what an earlier run of it left in the bucket (killed mid-upload)
            _discard_published(export.pk)
        tmp.mkdir(parents=True)  # a folder that cannot be written fails the export, said
        writer = get_writer(export.format)
        # Every format streams: the tasks over a server-side cursor a chunk at a time (and
        # the episode formats each chunk's samples), never the whole export in memory.
        query = _tasks(export)
        total = query.count()
        ctx = ExportContext(
            export, [], [], {}, export.options, progress=progress, source=query, total=total
        )
        if export.options.get("clean"):
            ctx.count("dropped_invalid_annotations", 0)
        job_log(f"export v{export.version} ({export.format}): {total} task(s)")
        ctx.count("tasks", 0)
        writer.write(ctx, tmp)
        ctx.counts["tasks"] = len(ctx.task_ids)
        if export.options.get("validate", True):
            job_log("validating")
            writer.validate(ctx, tmp)
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        manifest = {
            "project": export.project.slug,
            "version": export.version,
            "format": export.format,
            "selection": export.selection,
            "options": export.options,
            "parent_version": export.parent.version if export.parent else None,
            "counts": ctx.counts,
            "casts": ctx.casts,
            "tasks": ctx.task_ids,
            "files": {str(p.relative_to(tmp)): _sha256(p) for p in files},
            "created_at": timezone.now().isoformat(),
        }
        name = f"{export.project.slug}/v{export.version}-{export.format}"
        final = exports_root() / name
        if remote:
            if _published(name):  # left by a database that was reset: never overwrite it
                name = f"{name}-{export.pk}"
            final = Path(name)  # only its name is used below
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():  # left by a database that was reset: never overwrite it
                name = f"{name}-{export.pk}"
                final = exports_root() / name
        # The download of a folder format is a zip the job builds (never the web request);
        # ``zip: false`` leaves it out.
        wanted = export.format != ExportFormat.JSONL and export.options.get("zip", True)
        manifest["archive"] = f"{final.name}.zip" if wanted else None
        # Whose folder this is: a run that dies between publishing and recording its
        # finish leaves a folder that its clean-up (``_discard``) recognises and removes.
        manifest["export_id"] = export.pk
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
        if wanted:
            job_log("zipping")
            _zip(tmp, _zip_tmp(export.pk), final.name)
        size = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        if remote:
            if not Export.objects.filter(pk=export.pk, status=ExportStatus.STARTED).exists():
                raise Cancelled()  # not worth an upload
            # Uploaded before the row says finished: the zip, then every file with the
            # manifest last (multipart for large files). Killed on the way, the run leaves
            # no manifest, or one naming an unfinished export: _discard removes either.
            job_log(f"uploading to {export_key(name)}")
            if wanted:
                objectstore.put_file(_zip_tmp(export.pk), f"{export_key(name)}.zip")
            objectstore.publish_tree(tmp, export_key(name), last=[MANIFEST], workers=UPLOADS)
        # Published and finished together: the renames happen inside the transaction that
        # marks the export finished (its row locked by the UPDATE), so no one sees it
        # finished before its files are there, and a failure before the commit (or a worker
        # killed there: recovery calls _discard) takes the published files away again.
        with transaction.atomic():
            done = Export.objects.filter(pk=export.pk, status=ExportStatus.STARTED).update(
                status=ExportStatus.FINISHED,
                path=name,
                manifest=manifest,
                progress=1.0,
                size_bytes=size,
                finished_at=timezone.now(),
                error="",
            )
            if not done:  # cancelled at the last moment
                _discard(export.pk)
                return Export.objects.get(pk=export.pk)
            if export.options.get("submit"):
                from tasks.services import task_mark_submitted

                passed = Task.objects.filter(pk__in=ctx.passed_ids).only("pk")
                task_mark_submitted(
                    actor=export.requested_by, tasks=passed, reason=f"export v{export.version}"
                )
            if not remote:
                tmp.replace(final)  # atomic publish
                if wanted:
                    _zip_tmp(export.pk).replace(final.with_suffix(".zip"))
            job_log(f"published {name}")
        if remote:  # this machine's working copy is no longer needed
            shutil.rmtree(tmp, ignore_errors=True)
            _zip_tmp(export.pk).unlink(missing_ok=True)
        report_progress(1.0, detail="done")
    except Cancelled:
        _discard(export.pk)
        logger.info("export %s cancelled", export.pk)
    except ApplicationError as exc:
        _discard(export.pk)
        job_log(f"failed: {exc.message}")
        Export.objects.filter(pk=export.pk).exclude(status=ExportStatus.FINISHED).update(
            status=ExportStatus.FAILED, error=exc.message
        )
    except Exception as exc:
        _discard(export.pk)
        # A finished export stays finished (an error after its commit, e.g. in reporting
        # progress, does not take back what was published).
        Export.objects.filter(pk=export.pk).exclude(status=ExportStatus.FINISHED).update(
            status=ExportStatus.FAILED,
            error=f"The export failed unexpectedly ({describe(exc)}).",
        )
        logger.exception("export %s crashed", export.pk)
        raise
    return Export.objects.get(pk=export.pk)


def export_abandon(*, export_id: int, reason: str) -> None:
    stuck = Export.objects.filter(
        pk=export_id, status__in=[ExportStatus.QUEUED, ExportStatus.STARTED]
    )
    if stuck.update(
        status=ExportStatus.FAILED,
        error=f"The export job stopped ({reason}); nothing was published.",
    ):
        _discard(export_id)


def _zip_tmp(export_id: int) -> Path:
    return work_root() / f".tmp-{export_id}.zip"


def _published(name: str) -> bool:
    """Whether anything is stored under an export's name (its folder or its zip)."""
    key = export_key(name)
    return objectstore.exists(f"{key}.zip") or any(objectstore.list_keys(key))


def _discard(export_id: int) -> None:
    """What a failed, cancelled or abandoned run leaves: its working folder and zip (on
    this machine), and — when it is not finished — what it published before it died."""
    shutil.rmtree(work_root() / f".tmp-{export_id}", ignore_errors=True)
    try:  # best effort: the failure being recorded must not be lost to its clean-up
        _zip_tmp(export_id).unlink(missing_ok=True)
        _discard_published(export_id)
    except Exception as exc:  # e.g. the exports folder is not a folder, the bucket is down
        logger.warning("export %s: could not remove its partial files: %s", export_id, exc)


def _discard_published(export_id: int) -> None:
    for name in _unfinished_publications(export_id):
        objectstore.delete_prefix(export_key(name))
        objectstore.delete(f"{export_key(name)}.zip")
        logger.warning("export %s: removed %s, published by a run that died", export_id, name)


def _unfinished_publications(export_id: int) -> list[str]:
    """The names (``Export.path``) an unfinished export's run published to, where
    ``export_run`` puts them: those whose manifest says ``export_id`` and, on a bucket,
    those with objects but no manifest (an upload cut short: only this export has this
    version). None for a finished export."""
    row = (
        Export.objects.filter(pk=export_id)
        .exclude(status=ExportStatus.FINISHED)
        .values_list("project__slug", "version", "format")
        .first()
    )
    if row is None:
        return []
    base = f"{row[0]}/v{row[1]}-{row[2]}"
    found = []
    for name in (base, f"{base}-{export_id}"):
        try:
            with objectstore.open_read(objectstore.join(export_key(name), MANIFEST)) as handle:
                manifest = json.loads(handle.read())
        except FileNotFoundError:
            if objectstore.is_remote() and _published(name):
                found.append(name)
            continue
        except (OSError, ValueError):
            continue
        if isinstance(manifest, dict) and manifest.get("export_id") == export_id:
            found.append(name)
    return found


def _zip(folder: Path, archive: Path, top: str) -> None:
    """``folder``'s files, stored (not compressed: HDF5 frames are gzipped, videos encoded,
    PNGs compressed), under ``top/`` in ``archive``; streamed file by file."""
    import zipfile

    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            zf.write(path, f"{top}/{path.relative_to(folder)}")


def export_clean_expired(*, actor, now=None) -> int:
    """Delete the files of finished exports older than the retention period (a scheduled
    job: the system acts; administrators may run it too)."""
    require(actor, None, Action.CONTROL_QUEUES)
    now = now or timezone.now()
    limit = now - timedelta(days=settings.STAGECRAFT_EXPORT_RETENTION_DAYS)
    removed = 0
    for export in Export.objects.filter(
        status=ExportStatus.FINISHED, finished_at__lt=limit
    ).exclude(path=""):
        try:
            objectstore.delete_prefix(export_key(export.path))
            objectstore.delete(f"{export_key(export.path)}.zip")
        except Exception:  # the storage is down: the next clean-up tries again
            logger.exception("export %s: could not remove its files", export.pk)
            continue
        Export.objects.filter(pk=export.pk).update(
            path="", error="Files removed after the retention period."
        )
        removed += 1
    export_sweep_work_folder()
    return removed


def export_sweep_work_folder() -> None:
    """This machine's working folders and zips of exports that are not running (a worker
    killed here, whose clean-up ran on another machine): by the daily clean-up and as a
    worker starts (queues/worker.py)."""
    root = work_root()
    if not root.is_dir():
        return
    found: dict[int, list[Path]] = {}
    for path in root.glob(".tmp-*"):
        number = path.name.removeprefix(".tmp-").removesuffix(".zip")
        if number.isdigit():
            found.setdefault(int(number), []).append(path)
    running = set(
        Export.objects.filter(
            pk__in=found, status__in=[ExportStatus.QUEUED, ExportStatus.STARTED]
        ).values_list("pk", flat=True)
    )
    for export_id, paths in found.items():
        if export_id in running:
            continue
        for path in paths:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def export_delete_project_files(slug: str) -> None:
    """Every export file of a project (after the project is deleted)."""
    try:
        objectstore.delete_prefix(objectstore.join(EXPORTS, slug))
    except Exception:
        logger.exception("exports of %s: could not remove their files", slug)


def export_list_for_user(*, user):
    """Exports of the projects the user manages (administrators: all), as summaries: counts,
    not the manifest's task ids (the detail has those)."""
    from core.access import is_admin
    from projects.models import Membership, Role

    from .selectors import export_summaries

    exports = export_summaries(Export.objects.select_related("project", "requested_by"))
    if is_admin(user):
        return exports
    managed = Membership.objects.filter(user=user, role=Role.MANAGER).values("project")
    return exports.filter(project__in=managed)


def export_get_for_user(*, user, export_id: int) -> Export:
    from django.shortcuts import get_object_or_404

    from core.access import check_project_access

    export = get_object_or_404(Export.objects.select_related("project"), pk=export_id)
    check_project_access(user=user, project=export.project, action=Action.CHANGE)
    return export


def export_archive(*, actor, export: Export) -> Path:
    """The file to download: the JSONL itself, or the zip the job built. An export published
    before the jobs built zips gets one made here, once."""
    require(actor, export.project, Action.CHANGE)
    if export.status != ExportStatus.FINISHED or not export.path:
        raise ApplicationError("This export has no files to download.", field="status")
    folder = export_dir(export)
    if export.format == ExportFormat.JSONL:
        activity_record(
            actor=actor, verb="export.downloaded", target=export, project=export.project
        )
        return folder / "tasks.jsonl"
    archive = folder.with_suffix(".zip")
    if not archive.exists():
        if (export.manifest or {}).get("archive", "") is None:
            raise ApplicationError(
                "This export was made without a zip archive (option zip: false); request it "
                "again to download it.",
                field="status",
            )
        if "archive" in (export.manifest or {}):
            raise ApplicationError(
                "This export's archive is missing from the server; request it again.",
                field="status",
            )
        partial = archive.with_suffix(".zip.part")  # older exports: made once
        _zip(folder, partial, folder.name)
        partial.replace(archive)
    activity_record(actor=actor, verb="export.downloaded", target=export, project=export.project)
    return archive


@dataclass(frozen=True)
class ExportDownload:
    """How to hand an export's file to its requester: a short-lived signed ``url`` of the
    bucket's object, or the local ``path`` to stream."""

    filename: str
    url: str | None = None
    path: Path | None = None

    def open(self) -> IO[bytes]:
        if self.path is None:
            raise ApplicationError("This export is downloaded from its URL.", field="status")
        return self.path.open("rb")


def export_download(*, actor, export: Export) -> ExportDownload:
    """The download of an export for someone allowed to change its project (checked before
    anything is signed). On a bucket the export must be finished and its manifest stored."""
    if not objectstore.is_remote():
        path = export_archive(actor=actor, export=export)
        return ExportDownload(filename=export_download_name(export, path), path=path)
    require(actor, export.project, Action.CHANGE)
    if export.status != ExportStatus.FINISHED or not export.path:
        raise ApplicationError("This export has no files to download.", field="status")
    prefix = export_key(export.path)
    if not objectstore.exists(objectstore.join(prefix, MANIFEST)):
        raise ApplicationError(
            "This export's files are missing from the storage; request it again.", field="status"
        )
    if export.format == ExportFormat.JSONL:
        key = objectstore.join(prefix, "tasks.jsonl")
    else:
        if (export.manifest or {}).get("archive", "") is None:
            raise ApplicationError(
                "This export was made without a zip archive (option zip: false); request it "
                "again to download it.",
                field="status",
            )
        key = f"{prefix}.zip"
        if not objectstore.exists(key):
            raise ApplicationError(
                "This export's archive is missing from the storage; request it again.",
                field="status",
            )
    filename = export_download_name(export, PurePath(key))
    url = objectstore.download_url(key, filename=filename)
    activity_record(actor=actor, verb="export.downloaded", target=export, project=export.project)
    return ExportDownload(filename=filename, url=url)


def export_download_name(export: Export, path: PurePath) -> str:
    stem = path.parent.name if path.suffix == ".jsonl" else path.stem
    return f"{export.project.slug}-{stem}{path.suffix}"
