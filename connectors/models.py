"""A project's connections to cloud buckets: sources of episodes and targets of exports.

What Label Studio calls storage connectors and CVAT cloud storages: the customer's own bucket
(not Stagecraft's data storage, core/objectstore.py), reached with credentials the manager
gives. The secret is stored encrypted (connectors/crypto.py) and never shown back.
"""

from django.conf import settings
from django.db import models

from projects.models import Dataset, Project


class ConnectionKind(models.TextChoices):
    # One kind so far; each kind is a client class in connectors/backends.py.
    S3 = "s3", "Amazon S3 or S3-compatible (MinIO, Ceph, R2…)"


class Direction(models.TextChoices):
    SOURCE = "source", "Source: import episodes from the bucket"
    TARGET = "target", "Export target: finished exports are copied to the bucket"


class SyncStatus(models.TextChoices):
    NEVER = "", "Never synced"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    FAILED = "failed", "Failed"


class BucketConnection(models.Model):
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="bucket_connections"
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=ConnectionKind.choices, default="s3")
    direction = models.CharField(max_length=10, choices=Direction.choices)
    bucket = models.CharField(max_length=255)
    prefix = models.CharField(max_length=1024, blank=True)
    endpoint_url = models.CharField(max_length=500, blank=True)
    region = models.CharField(max_length=64, blank=True)
    access_key_id = models.CharField(max_length=256, blank=True)
    # A Fernet token (connectors/crypto.py); the plain secret is never stored nor shown.
    secret_encrypted = models.TextField(blank=True)
    # Sources: the dataset format of what is imported, "" to tell it from the files.
    format = models.CharField(max_length=20, blank=True)
    # The last sync of a source, or the last export copied to a target.
    sync_status = models.CharField(
        max_length=10, choices=SyncStatus.choices, default=SyncStatus.NEVER, blank=True
    )
    sync_job_id = models.CharField(max_length=80, blank=True)
    sync_started_at = models.DateTimeField(null=True, blank=True)
    sync_finished_at = models.DateTimeField(null=True, blank=True)
    sync_counts = models.JSONField(default=dict, blank=True)
    sync_error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project", "name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="connection_unique_name")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_encrypted)

    @property
    def location(self) -> str:
        """``s3://bucket/prefix/`` as people write it."""
        tail = f"{self.prefix.strip('/')}/" if self.prefix.strip("/") else ""
        return f"{self.kind}://{self.bucket}/{tail}"


class ImportedObject(models.Model):
    """An object a source's sync imported, with the ETag it had: a later sync imports only
    objects it has not seen, or whose ETag changed."""

    connection = models.ForeignKey(
        BucketConnection, on_delete=models.CASCADE, related_name="imported_objects"
    )
    key = models.CharField(max_length=1024)
    etag = models.CharField(max_length=200)
    size = models.PositiveBigIntegerField(default=0)
    # Deleting the dataset forgets the objects: the next sync imports them again.
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    imported_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "key"], name="imported_object_unique")
        ]

    def __str__(self) -> str:
        return self.key
