"""Bucket connections: create, change, delete, test, list; start a sync. The jobs' bodies:
connectors/sync.py (a source's import) and connectors/exports.py (copies to a target).

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
import uuid
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, models, transaction
from django.utils import timezone

from activity.services import activity_record
from core.access import Action, require
from core.exceptions import ApplicationError, Conflict
from core.jobs import enqueue
from projects.models import DatasetFormat, Project

from . import crypto
from .backends import Bucket, Credentials, check_endpoint, open_bucket
from .episodes import Listing, episodes_in
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
    if fields["direction"] != locked.direction and locked.sync_status in BUSY:
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
    if locked.sync_status in BUSY and not _stale(locked):
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


def bucket_listing(connection: BucketConnection, bucket: Bucket) -> Listing:
    return episodes_in(bucket.objects(), connection.prefix)


def imported_etags(connection: BucketConnection) -> dict[str, str]:
    """{key: ETag} of every object the connection imported."""
    return dict(ImportedObject.objects.filter(connection=connection).values_list("key", "etag"))


def connection_episodes(*, actor, connection: BucketConnection) -> dict[str, Any]:
    """The episodes under a source's prefix, each marked new or imported (a read of the
    bucket; managers only, as it uses the stored credentials)."""
    require(actor, connection.project, Action.CHANGE, "Only the project's managers do this.")
    if connection.direction != Direction.SOURCE:
        raise ApplicationError("Only a source's episodes are listed.", field="connection")
    listing = bucket_listing(connection, bucket_for(connection))
    seen = imported_etags(connection)
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


BUSY = (SyncStatus.QUEUED, SyncStatus.RUNNING)


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
            ~models.Q(sync_status__in=BUSY) | models.Q(sync_started_at__lt=now - SYNC_CLAIM_TIMEOUT)
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


def sync_finish(connection_id: int, *, counts: dict, error: str = "", failed: bool = False) -> None:
    """Leave a sync's (or a copy's) end on the connection: its counts and any error."""
    BucketConnection.objects.filter(pk=connection_id).update(
        sync_status=SyncStatus.FAILED if failed else SyncStatus.FINISHED,
        sync_finished_at=timezone.now(),
        sync_counts=counts,
        sync_error=error[:4000],
    )


def connection_sync_abandon(*, connection_id: int, reason: str) -> None:
    """The job died (a crash, its worker lost): say so on the connection."""
    BucketConnection.objects.filter(pk=connection_id, sync_status__in=BUSY).update(
        sync_status=SyncStatus.FAILED,
        sync_finished_at=timezone.now(),
        sync_error=f"The sync stopped before it finished ({reason}). Sync again.",
    )


def connection_secrets_rotate() -> tuple[int, list[str]]:
    """Encrypt every stored secret under the first (newest) key: how many, and the
    connections whose secret no configured key reads (named, left as they are)."""
    from cryptography.fernet import InvalidToken

    rotated, unreadable = 0, []
    with transaction.atomic():
        rows = BucketConnection.objects.select_for_update().exclude(secret_encrypted="")
        for connection in rows.select_related("project"):
            try:
                token = crypto.reencrypt(connection.secret_encrypted)
            except InvalidToken:
                unreadable.append(f"{connection.project.slug}/{connection.name}")
                continue
            BucketConnection.objects.filter(pk=connection.pk).update(secret_encrypted=token)
            rotated += 1
    return rotated, unreadable
