from django.conf import settings
from django.db import models

from projects.models import Project


class ExportFormat(models.TextChoices):
    LEROBOT = "lerobot", "LeRobot dataset (v3.0)"
    HDF5 = "hdf5", "HDF5 episodes (ALOHA layout + annotations)"
    ROBOMIMIC = "robomimic", "robomimic HDF5 (demos in one file, replayable in robosuite)"
    JSONL = "jsonl", "JSON lines (one task per line)"
    COCO = "coco", "COCO boxes with images"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    STARTED = "started", "Exporting"
    FINISHED = "finished", "Ready"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Export(models.Model):
    """One numbered version of a project's training data, written by a job on `exports`."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="exports")
    version = models.PositiveIntegerField()
    format = models.CharField(max_length=10, choices=ExportFormat.choices)
    selection = models.JSONField(default=dict)  # {"filter": {...}} or {"ids": [...]}
    options = models.JSONField(default=dict)
    # Same format, selection and options (incremental aside): versions of one profile.
    profile = models.CharField(max_length=64, db_index=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=10, choices=ExportStatus.choices, default=ExportStatus.QUEUED
    )
    progress = models.FloatField(default=0)
    job_id = models.CharField(max_length=64, blank=True)
    path = models.CharField(max_length=500, blank=True)  # under MEDIA_ROOT/exports
    manifest = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="export_unique_version")
        ]
        indexes = [models.Index(fields=["project", "status"])]

    def __str__(self) -> str:
        return f"{self.project} export v{self.version} ({self.format})"

    @property
    def counts(self) -> dict:
        """The manifest's counts. Lists annotate them (``listed_counts``) and leave the
        manifest, with its every task id, unread."""
        listed = self.__dict__.get("listed_counts")
        if listed is not None:
            return listed
        if "manifest" in self.get_deferred_fields():
            return {}
        return (self.manifest or {}).get("counts", {})
