from django.conf import settings
from django.db import models
from django.utils import timezone


class Notification(models.Model):
    """Something that happened in the app that one person should know about (never sent
    outside it): a sentence, where to look, and whether they have looked."""

    class Kind(models.TextChoices):
        RUN_ASSIGNED = "run_assigned", "Run assigned"
        RUN_TRANSFERRED = "run_transferred", "Run handed over"
        REVIEW_REJECTED = "review_rejected", "Sent back"
        PROBLEM_REPORTED = "problem_reported", "Problem reported"
        PROBLEM_ANSWERED = "problem_answered", "Problem answered"
        AUDIT_FINDING = "audit_finding", "Audit finding"
        EXPORT_FINISHED = "export_finished", "Export ready"
        EXPORT_FAILED = "export_failed", "Export failed"
        POST_COMMENTED = "post_commented", "Comment on your post"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=40, choices=Kind.choices)
    message = models.CharField(max_length=500)
    url = models.CharField(max_length=500, blank=True)
    project = models.ForeignKey(
        "projects.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    task = models.ForeignKey(
        "tasks.Task", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # My notifications, newest first (the list and the API).
            models.Index(fields=["user", "-created_at", "-id"], name="notification_user_newest"),
            # My unread ones, newest first (the top bar's count, ?unread=1): a partial index
            # stays small however many read notifications pile up.
            models.Index(
                fields=["user", "-created_at"],
                condition=models.Q(read_at__isnull=True),
                name="notification_user_unread",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.message}"

    @property
    def unread(self) -> bool:
        return self.read_at is None
