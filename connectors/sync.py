"""A source's sync, the job's body: list the bucket, download the new episodes into a working
folder of this machine (``STAGECRAFT_WORK_DIR``), import them through the dataset import
(projects.dataset_services, as a server folder), remember their keys and ETags."""

from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone

from core.access import SYSTEM
from core.exceptions import ApplicationError, describe
from core.jobs import job_log, report_progress
from projects.models import DatasetFormat

from .backends import Bucket
from .episodes import Episode
from .models import BucketConnection, ImportedObject, SyncStatus
from .services import bucket_for, bucket_listing, imported_etags, sync_finish

logger = logging.getLogger(__name__)


def _claim(connection_id: int, statuses: tuple[str, ...]) -> bool:
    return bool(
        BucketConnection.objects.filter(pk=connection_id, sync_status__in=statuses).update(
            sync_status=SyncStatus.RUNNING, sync_started_at=timezone.now()
        )
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
        listing = bucket_listing(connection, bucket)
        seen = imported_etags(connection)
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
        sync_finish(connection_id, counts=counts, error=exc.message, failed=True)
        logger.info("connection %s sync failed: %s", connection_id, exc.message)
        return {**counts, "error": exc.message}
    except Exception as exc:
        message = f"The sync failed unexpectedly ({describe(exc)})."
        sync_finish(connection_id, counts=counts, error=message, failed=True)
        logger.exception("connection %s sync crashed", connection_id)
        raise
    failed = bool(errors) and not counts["imported"]
    sync_finish(connection_id, counts=counts, error="\n".join(errors), failed=failed)
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
    inside = folder.resolve()
    for episode in members:
        for obj in episode.objects:
            target = folder / _relative(connection, episode, obj.key)
            if not target.resolve().is_relative_to(inside):  # episodes_in leaves such keys out
                raise ApplicationError(f"The key {obj.key!r} is not a path under the prefix.")
            bucket.download(obj.key, target)
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
