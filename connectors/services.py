"""Bucket connections: create, change, delete, test; sync a source; copy exports to a target.

A **source** is listed (``connection_episodes``) and synced by a job on ``imports``
(``connection_sync_run``): the episodes it has not imported before (keys and ETags are
remembered in ``ImportedObject``), or those picked, are downloaded into a working folder of
this machine (``STAGECRAFT_WORK_DIR``) and handed to the dataset import
(projects.dataset_services) as a server folder, one dataset per LeRobot dataset and one per
format for the rest. A **target** receives every export of its project that finishes: a job
on ``exports`` (``connection_push_run``) uploads the export's files under
``<prefix>/<version folder>/``, its ``manifest.json`` last, so a reader that waits for the
manifest never sees half an export.
"""

from __future__ import annotations

import logging
import re
import shutil
import uuid
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, models, transaction
from django.http import Http404
from django.utils import timezone

from activity.services import activity_record
from core.access import SYSTEM, Action, require
from core.exceptions import ApplicationError, Conflict, describe
from core.jobs import enqueue, job_log, report_progress
from projects.models import DatasetFormat, Project

from . import crypto
from .backends import Bucket, BucketError, Credentials, check_endpoint, open_bucket
from .episodes import Episode, Listing, episodes_in
from .models import BucketConnection, ConnectionKind, Direction, ImportedObject, SyncStatus

logger = logging.getLogger(__name__)

# A sync whose job vanished without saying so (its worker's machine gone) stops blocking
# the next one after this long.
SYNC_CLAIM_TIMEOUT = timedelta(hours=2)
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.\-_]{1,253}[a-z0-9]$")
_REGION = re.compile(r"^[a-z0-9-]{0,64}$")
EDITABLE = (
    "name",
    "direction",
    "bucket",
    "prefix",
    "endpoint_url",
    "region",
    "access_key_id",
    "format",
)


def _clean(fields: dict[str, Any], *, kind: str) -> dict[str, Any]:
    """The connection's fields as stored, or an ApplicationError naming the bad one."""
    out = {k: ("" if v is None else str(v)).strip() for k, v in fields.items()}
    if kind not in ConnectionKind.values:
        raise ApplicationError(
            f"Kind must be one of {', '.join(ConnectionKind.values)}.", field="kind"
        )
    if not out["name"]:
        raise ApplicationError("A connection needs a name.", field="name")
    if len(out["name"]) > 200:
        raise ApplicationError("At most 200 characters.", field="name")
    if out["direction"] not in Direction.values:
        raise ApplicationError(
            f"Direction must be one of {', '.join(Direction.values)}.", field="direction"
        )
    if not _BUCKET_NAME.match(out["bucket"]):
        raise ApplicationError(
            "A bucket name is 3 to 255 lower-case letters, digits, dots, hyphens or "
            "underscores, starting and ending with a letter or digit.",
            field="bucket",
        )
    prefix = out["prefix"].strip("/")
    if any(part in {".", ".."} for part in prefix.split("/")) or "//" in prefix:
        raise ApplicationError("A prefix is a path of folder names (no . or ..).", field="prefix")
    if len(prefix) > 1000:
        raise ApplicationError("At most 1,000 characters.", field="prefix")
    out["prefix"] = prefix
    out["endpoint_url"] = check_endpoint(out["endpoint_url"])
    if not _REGION.match(out["region"]):
        raise ApplicationError("A region such as eu-west-1.", field="region")
    if len(out["access_key_id"]) > 256:
        raise ApplicationError("At most 256 characters.", field="access_key_id")
    if out["format"] and out["format"] not in DatasetFormat.values:
        raise ApplicationError(
            f"Format must be empty (tell it from the files) or one of "
            f"{', '.join(DatasetFormat.values)}.",
            field="format",
        )
    if out["direction"] == Direction.TARGET:
        out["format"] = ""
    return out


def _check_credentials(access_key_id: str, has_secret: bool) -> None:
    if bool(access_key_id) != has_secret:
        field = "secret_access_key" if access_key_id else "access_key_id"
        raise ApplicationError(
            "Give both the access key id and the secret access key (or neither, for a "
            "public bucket).",
            field=field,
        )


def _public(connection: BucketConnection) -> dict[str, Any]:
    """What the audit trail keeps of a connection: never the secret."""
    return {
        "name": connection.name,
        "direction": connection.direction,
        "location": connection.location,
        "endpoint_url": connection.endpoint_url,
        "access_key_id": connection.access_key_id,
        "secret": "set" if connection.secret_encrypted else "none",
    }


@transaction.atomic
def connection_create(
    *,
    actor,
    project: Project,
    name: str,
    direction: str,
    bucket: str,
    prefix: str = "",
    endpoint_url: str = "",
    region: str = "",
    access_key_id: str = "",
    secret_access_key: str = "",
    format: str = "",
    kind: str = ConnectionKind.S3,
) -> BucketConnection:
    """Connect a bucket (and prefix) to ``project``; managers only. The secret is encrypted
    before it is saved and never shown again."""
    require(actor, project, Action.CHANGE, "Only the project's managers connect buckets.")
    fields = _clean(
        {
            "name": name,
            "direction": direction,
            "bucket": bucket,
            "prefix": prefix,
            "endpoint_url": endpoint_url,
            "region": region,
            "access_key_id": access_key_id,
            "format": format,
        },
        kind=kind,
    )
    secret = secret_access_key or ""
    _check_credentials(fields["access_key_id"], bool(secret))
    if BucketConnection.objects.filter(project=project, name=fields["name"]).exists():
        raise Conflict("The project has a connection of that name already.", field="name")
    try:
        with transaction.atomic():
            connection = BucketConnection.objects.create(
                project=project,
                kind=kind,
                secret_encrypted=crypto.encrypt(secret) if secret else "",
                created_by=actor if getattr(actor, "pk", None) else None,
                **fields,
            )
    except IntegrityError:
        raise Conflict("The project has a connection of that name already.", field="name") from None
    activity_record(
        actor=actor,
        verb="connection.created",
        target=connection,
        project=project,
        after=_public(connection),
    )
    logger.info("connection %s (%s) created by %s", connection.pk, connection.location, actor)
    return connection


@transaction.atomic
def connection_update(
    *,
    actor,
    connection: BucketConnection,
    secret_access_key: str | None = None,
    clear_secret: bool = False,
    **changes: Any,
) -> BucketConnection:
    """Change a connection's fields (those given). ``secret_access_key`` replaces the stored
    secret when given and not empty; ``clear_secret`` removes it (a public bucket)."""
    require(actor, connection.project, Action.CHANGE, "Only the project's managers do this.")
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise ApplicationError(f"{unknown[0]} cannot be changed.", field=unknown[0])
    locked = BucketConnection.objects.select_for_update().get(pk=connection.pk)
    before = _public(locked)
    current = {f: getattr(locked, f) for f in EDITABLE}
    fields = _clean({**current, **changes}, kind=locked.kind)
    if fields["direction"] != locked.direction and locked.sync_status in _BUSY:
        raise ApplicationError("Wait until the running sync ends.", field="direction")
    if secret_access_key:
        locked.secret_encrypted = crypto.encrypt(secret_access_key)
    elif clear_secret:
        locked.secret_encrypted = ""
    _check_credentials(fields["access_key_id"], bool(locked.secret_encrypted))
    if (
        BucketConnection.objects.filter(project=locked.project_id, name=fields["name"])
        .exclude(pk=locked.pk)
        .exists()
    ):
        raise Conflict("The project has a connection of that name already.", field="name")
    for key, value in fields.items():
        setattr(locked, key, value)
    locked.save()
    after = _public(locked)
    if secret_access_key:
        after["secret"] = "replaced"  # noqa: S105 (a word for the audit trail)
    changed_before = {k: v for k, v in before.items() if after.get(k) != v}
    changed_after = {k: after[k] for k in changed_before}
    if changed_after:
        activity_record(
            actor=actor,
            verb="connection.updated",
            target=locked,
            project=locked.project,
            before=changed_before,
            after=changed_after,
        )
    return locked


@transaction.atomic
def connection_delete(*, actor, connection: BucketConnection) -> None:
    """Disconnect a bucket. Datasets it imported stay; nothing in the bucket is touched."""
    require(actor, connection.project, Action.CHANGE, "Only the project's managers do this.")
    locked = BucketConnection.objects.select_for_update().get(pk=connection.pk)
    if locked.sync_status in _BUSY and not _stale(locked):
        raise ApplicationError("Wait until the running sync ends.", field="connection")
    activity_record(
        actor=actor,
        verb="connection.deleted",
        target=locked,
        project=locked.project,
        before=_public(locked),
    )
    locked.delete()


def credentials(connection: BucketConnection) -> Credentials:
    return Credentials(
        bucket=connection.bucket,
        prefix=connection.prefix,
        endpoint_url=connection.endpoint_url,
        region=connection.region,
        access_key_id=connection.access_key_id,
        secret=crypto.decrypt(connection.secret_encrypted),
    )


def bucket_for(connection: BucketConnection) -> Bucket:
    # The endpoint is checked again: the allowed addresses (or DNS) may have changed.
    check_endpoint(connection.endpoint_url)
    return open_bucket(connection.kind, credentials(connection))


def connection_test(*, actor, connection: BucketConnection) -> dict[str, Any]:
    """List one key under the prefix: ``{"ok": True, "message", "example"}``, or ``ok``
    False and what is wrong (credentials, bucket, endpoint) — never an exception."""
    require(actor, connection.project, Action.CHANGE, "Only the project's managers do this.")
    try:
        found = bucket_for(connection).probe()
    except ApplicationError as exc:
        return {"ok": False, "message": exc.message, "example": None}
    if found is None:
        return {
            "ok": True,
            "message": f"Connected to {connection.location}: nothing under the prefix yet.",
            "example": None,
        }
    return {"ok": True, "message": f"Connected to {connection.location}.", "example": found.key}


def _listing(connection: BucketConnection, bucket: Bucket) -> Listing:
    return episodes_in(bucket.objects(), connection.prefix)


def _seen(connection: BucketConnection) -> dict[str, str]:
    return dict(ImportedObject.objects.filter(connection=connection).values_list("key", "etag"))


def connection_episodes(*, actor, connection: BucketConnection) -> dict[str, Any]:
    """The episodes under a source's prefix, each marked new or imported (a read of the
    bucket; managers only, as it uses the stored credentials)."""
    require(actor, connection.project, Action.CHANGE, "Only the project's managers do this.")
    if connection.direction != Direction.SOURCE:
        raise ApplicationError("Only a source's episodes are listed.", field="connection")
    listing = _listing(connection, bucket_for(connection))
    seen = _seen(connection)
    rows = [
        {
            "key": e.key,
            "kind": e.kind,
            "objects": len(e.objects),
            "size": e.size,
            "etag": e.etag,
            "new": e.is_new(seen),
        }
        for e in listing.episodes
    ]
    return {
        "episodes": rows,
        "new": sum(1 for r in rows if r["new"]),
        "ignored": listing.ignored,
    }


_BUSY = (SyncStatus.QUEUED, SyncStatus.RUNNING)


def _stale(connection: BucketConnection) -> bool:
    started = connection.sync_started_at
    return started is None or started < timezone.now() - SYNC_CLAIM_TIMEOUT


def sync_job_id(connection: BucketConnection) -> str:
    return f"sync-connection-{connection.pk}-{uuid.uuid4().hex[:8]}"


@transaction.atomic
def connection_sync_start(
    *, actor, connection: BucketConnection, keys: list[str] | None = None
) -> str:
    """Queue a sync: a source imports its new episodes (or the ``keys`` picked); a target
    receives the project's newest finished export. One sync of a connection at a time."""
    require(actor, connection.project, Action.CHANGE, "Only the project's managers do this.")
    now = timezone.now()
    if connection.direction == Direction.TARGET:
        from queues.models import Export, ExportStatus

        latest = (
            Export.objects.filter(project=connection.project_id, status=ExportStatus.FINISHED)
            .order_by("-finished_at", "-pk")
            .values_list("pk", flat=True)
            .first()
        )
        if latest is None:
            raise ApplicationError(
                "The project has no finished export to copy yet.", field="connection"
            )
    if keys is not None and connection.direction != Direction.SOURCE:
        raise ApplicationError("Episodes are picked from a source only.", field="keys")
    if keys is not None and not keys:
        raise ApplicationError("Pick at least one episode.", field="keys")
    job_id = sync_job_id(connection)
    claimed = (
        BucketConnection.objects.filter(pk=connection.pk)
        .filter(
            ~models.Q(sync_status__in=_BUSY)
            | models.Q(sync_started_at__lt=now - SYNC_CLAIM_TIMEOUT)
        )
        .update(
            sync_status=SyncStatus.QUEUED,
            sync_job_id=job_id,
            sync_started_at=now,
            sync_finished_at=None,
            sync_error="",
        )
    )
    if not claimed:
        raise Conflict("A sync of this connection is queued or running already.")
    activity_record(
        actor=actor,
        verb="connection.sync_started",
        target=connection,
        project=connection.project,
        after={"location": connection.location, "picked": len(keys) if keys else None},
    )
    actor_id = getattr(actor, "pk", None)
    from .jobs import connection_sync_failed, push_export_job, sync_connection_job

    if connection.direction == Direction.SOURCE:
        enqueue(
            "imports",
            sync_connection_job,
            connection.pk,
            keys,
            actor_id,
            job_id=job_id,
            on_failure=connection_sync_failed,
        )
    else:
        enqueue(
            "exports",
            push_export_job,
            connection.pk,
            latest,
            job_id=job_id,
            on_failure=connection_sync_failed,
        )
    return job_id


def _claim(connection_id: int, statuses: tuple[str, ...]) -> bool:
    return bool(
        BucketConnection.objects.filter(pk=connection_id, sync_status__in=statuses).update(
            sync_status=SyncStatus.RUNNING, sync_started_at=timezone.now()
        )
    )


def _finish(connection_id: int, *, counts: dict, error: str = "", failed: bool = False) -> None:
    BucketConnection.objects.filter(pk=connection_id).update(
        sync_status=SyncStatus.FAILED if failed else SyncStatus.FINISHED,
        sync_finished_at=timezone.now(),
        sync_counts=counts,
        sync_error=error[:4000],
    )


def connection_sync_abandon(*, connection_id: int, reason: str) -> None:
    """The job died (a crash, its worker lost): say so on the connection."""
    BucketConnection.objects.filter(pk=connection_id, sync_status__in=_BUSY).update(
        sync_status=SyncStatus.FAILED,
        sync_finished_at=timezone.now(),
        sync_error=f"The sync stopped before it finished ({reason}). Sync again.",
    )


def _work_dir(connection: BucketConnection) -> Path:
    folder = (
        Path(settings.STAGECRAFT_WORK_DIR)
        / "connections"
        / (f"{connection.pk}-{uuid.uuid4().hex[:8]}")
    )
    folder.mkdir(parents=True)
    return folder


def _actor(actor_id: int | None):
    if actor_id is None:
        return SYSTEM
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(pk=actor_id).first() or SYSTEM


def connection_sync_run(
    *, connection_id: int, keys: list[str] | None = None, actor_id: int | None = None
) -> dict[str, Any]:
    """The sync job's body: list the source, import the new (or picked) episodes, record
    their keys and ETags, and leave the counts (and any error) on the connection. Runs once
    per queued sync (a second run of the same job finds nothing queued)."""
    if not _claim(connection_id, (SyncStatus.QUEUED,)):
        return {"skipped": True}
    connection = BucketConnection.objects.select_related("project").get(pk=connection_id)
    counts: dict[str, Any] = {"episodes": 0, "new": 0, "imported": 0, "failed": 0}
    try:
        bucket = bucket_for(connection)
        listing = _listing(connection, bucket)
        seen = _seen(connection)
        picked = set(keys) if keys is not None else None
        chosen = [
            e for e in listing.episodes if (picked is None or e.key in picked) and e.is_new(seen)
        ]
        counts.update(
            episodes=len(listing.episodes),
            new=len(chosen),
            unchanged=len(listing.episodes) - sum(1 for e in listing.episodes if e.is_new(seen)),
            ignored=listing.ignored,
            objects=0,
            bytes=0,
            samples=0,
            datasets=[],
        )
        if picked is not None:
            missing = picked - {e.key for e in listing.episodes}
            counts["missing"] = len(missing)
        job_log(f"connection {connection.pk}: {len(chosen)} new episode(s) to import")
        errors = _import(connection, bucket, chosen, _actor(actor_id), counts)
    except ApplicationError as exc:
        _finish(connection_id, counts=counts, error=exc.message, failed=True)
        logger.info("connection %s sync failed: %s", connection_id, exc.message)
        return {**counts, "error": exc.message}
    except Exception as exc:
        message = f"The sync failed unexpectedly ({describe(exc)})."
        _finish(connection_id, counts=counts, error=message, failed=True)
        logger.exception("connection %s sync crashed", connection_id)
        raise
    failed = bool(errors) and not counts["imported"]
    _finish(connection_id, counts=counts, error="\n".join(errors), failed=failed)
    report_progress(1.0, stage="done")
    return counts


def _groups(
    connection: BucketConnection, episodes: list[Episode]
) -> list[tuple[str, list[Episode]]]:
    """The datasets a sync makes: one per LeRobot dataset, one per kind for the rest (HDF5
    files are split by the layout found in them once downloaded)."""
    groups: list[tuple[str, list[Episode]]] = []
    rest: dict[str, list[Episode]] = {}
    for episode in episodes:
        if episode.kind == "lerobot":
            groups.append(("lerobot", [episode]))
        else:
            rest.setdefault(connection.format or episode.kind, []).append(episode)
    groups.extend(rest.items())
    return groups


def _relative(connection: BucketConnection, episode: Episode, key: str) -> str:
    if episode.kind == "lerobot":
        return key[len(episode.key) :]
    base = f"{connection.prefix}/" if connection.prefix else ""
    return key[len(base) :]


def _import(
    connection: BucketConnection,
    bucket: Bucket,
    episodes: list[Episode],
    actor,
    counts: dict[str, Any],
) -> list[str]:
    """Download and import each group; the errors of the groups that failed."""
    errors: list[str] = []
    work = _work_dir(connection)
    try:
        groups = _groups(connection, episodes)
        for n, (kind, members) in enumerate(groups):
            report_progress(n / max(len(groups), 1), stage="downloading", detail=members[0].key)
            folder = work / f"{n}-{kind}"
            try:
                _download(connection, bucket, members, folder, counts)
                for fmt, files_of in _formats(kind, folder, members, connection).items():
                    error = _import_folder(connection, fmt, files_of, actor, counts)
                    if error:
                        errors.append(error)
            except ApplicationError as exc:
                counts["failed"] += len(members)
                errors.append(f"{members[0].key}: {exc.message}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return errors


def _download(
    connection: BucketConnection,
    bucket: Bucket,
    members: list[Episode],
    folder: Path,
    counts: dict[str, Any],
) -> None:
    total = sum(e.size for e in members)
    limit = settings.STAGECRAFT_MAX_IMPORT_BYTES
    if limit and total > limit:
        raise ApplicationError(f"{total / 1e9:.1f} GB, over the import limit.")
    if total > shutil.disk_usage(folder.parent).free * 0.9:
        raise ApplicationError("These files do not fit on the worker's disk.")
    for episode in members:
        for obj in episode.objects:
            bucket.download(obj.key, folder / _relative(connection, episode, obj.key))
            counts["objects"] += 1
            counts["bytes"] += obj.size


def _formats(
    kind: str, folder: Path, members: list[Episode], connection: BucketConnection
) -> dict[str, tuple[Path, list[Episode]]]:
    """{dataset format: (folder to import, its episodes)}: HDF5 files go to the format
    their layout says (ALOHA episodes or robomimic), each in a folder of its own."""
    if kind != "hdf5" or connection.format:
        fmt = connection.format if kind != "lerobot" and connection.format else kind
        return {fmt: (folder, members)}
    from projects.dataset_services import detect_format

    found: dict[str, tuple[Path, list[Episode]]] = {}
    for episode in members:
        relative = _relative(connection, episode, episode.key)
        try:
            fmt = detect_format(folder / relative)
        except ApplicationError:
            fmt = DatasetFormat.HDF5  # the importer then says what is wrong with it
        target = folder.with_name(f"{folder.name}-{fmt}")
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).replace(target / relative)
        found.setdefault(fmt, (target, []))[1].append(episode)
    return found


def _import_folder(
    connection: BucketConnection,
    fmt: str,
    folder_and_episodes: tuple[Path, list[Episode]],
    actor,
    counts: dict[str, Any],
) -> str:
    """Import one folder as a dataset (the dataset import, run here in the sync's job); on
    success remember its objects. The error, or "" when it was imported."""
    from projects.dataset_services import dataset_import_run, dataset_import_start
    from projects.models import Dataset, ImportStatus

    folder, members = folder_and_episodes
    first = members[0].key or "/"
    label = PurePosixPath(first.rstrip("/")).name or connection.bucket
    name = f"{connection.name}: {label}" + (f" (+{len(members) - 1})" if len(members) > 1 else "")
    try:
        dataset = dataset_import_start(
            actor=actor,
            project=connection.project,
            name=name[:200],
            format=fmt,
            source_path=folder,
            description=f"Imported from {connection.location} ({len(members)} item(s)).",
            background=False,
        )
    except (PermissionDenied, Http404):
        counts["failed"] += len(members)
        return f"{first}: the person who started the sync may no longer import here."
    except ApplicationError as exc:
        counts["failed"] += len(members)
        return f"{first}: {exc.message}"
    result = dataset_import_run(dataset_id=dataset.pk)
    # The working folder is gone after the sync: the bucket is the source (synced again).
    Dataset.objects.filter(pk=dataset.pk).update(source_path="")
    if result is None or result.status != ImportStatus.FINISHED:
        counts["failed"] += len(members)
        return f"{first}: {result.error if result else 'the import did not run'}"
    counts["imported"] += len(members)
    counts["samples"] += result.num_samples
    counts["datasets"].append(result.pk)
    ImportedObject.objects.bulk_create(
        [
            ImportedObject(
                connection=connection, key=o.key, etag=o.etag, size=o.size, dataset=result
            )
            for e in members
            for o in e.objects
        ],
        update_conflicts=True,
        unique_fields=["connection", "key"],
        update_fields=["etag", "size", "dataset", "imported_at"],
    )
    return ""


# --- export targets -----------------------------------------------------------------------


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


def _export_folder(export) -> Path:
    """The export's files as a real folder on this machine."""
    from core import objectstore
    from queues import services as export_services

    local = export_services.export_dir(export)
    if local.is_dir():
        return local
    return objectstore.local_tree(objectstore.join("exports", export.path))


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
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        if not files:
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
        _finish(connection_id, counts=counts, error=exc.message, failed=True)
        return {**counts, "error": exc.message}
    except Exception as exc:
        _finish(
            connection_id,
            counts=counts,
            error=f"The copy failed unexpectedly ({describe(exc)}).",
            failed=True,
        )
        logger.exception("connection %s push of export %s crashed", connection_id, export_id)
        raise
    _finish(connection_id, counts=counts)
    job_log(f"export {export_id} copied to {connection.location}: {counts['files']} file(s)")
    return counts
