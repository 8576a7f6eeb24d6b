from django.conf import settings
from django.db import models

from blueprints.models import Blueprint
from projects.models import Dataset, Project


class TaskStatus(models.TextChoices):
    PENDING_START = "pending_start", "Pending start"
    IN_PROGRESS = "in_progress", "In progress"
    PENDING_REVIEW = "pending_review", "Pending review"
    REVIEW_PASSED = "review_passed", "Review passed"
    DATA_SUBMITTED = "data_submitted", "Data submitted"


class Priority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class Task(models.Model):
    """A unit of work that flows through the stages of one blueprint version.

    Its blueprint version is fixed at creation (PROTECT: a used version is never
    deleted or changed). Deleting a task removes its links to datasets, never the
    datasets themselves.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    blueprint = models.ForeignKey(Blueprint, on_delete=models.PROTECT, related_name="tasks")
    name = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    status = models.CharField(
        max_length=20, choices=TaskStatus.choices, default=TaskStatus.PENDING_START
    )
    due_at = models.DateTimeField(null=True, blank=True)
    batch = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    callback_url = models.URLField(max_length=1000, blank=True)
    unique_id = models.CharField(max_length=200, blank=True)
    datasets = models.ManyToManyField(Dataset, blank=True, related_name="tasks")
    annotators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="annotator_tasks"
    )
    reviewers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="reviewer_tasks"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["project", "status"]),
            models.Index(fields=["project", "priority"]),
            models.Index(fields=["project", "batch"]),
            models.Index(fields=["project", "due_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "unique_id"],
                condition=~models.Q(unique_id=""),
                name="task_unique_id_per_project",
            )
        ]

    def __str__(self) -> str:
        return self.name
