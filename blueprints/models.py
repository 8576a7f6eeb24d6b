from django.conf import settings
from django.db import models

from projects.models import Project


class Blueprint(models.Model):
    """One version of a named blueprint document of a project.

    Exactly one row per project is active (a partial unique constraint). A version
    that tasks use is never changed: an edit makes version n+1.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="blueprints")
    name = models.CharField(max_length=200)
    version = models.PositiveIntegerField(default=1)
    definition = models.JSONField()
    # The document as its author wrote it (YAML keeps comments); the definition is the truth.
    source = models.TextField(blank=True)
    active = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "name", "version"], name="blueprint_unique_version"
            ),
            models.UniqueConstraint(
                fields=["project"],
                condition=models.Q(active=True),
                name="blueprint_one_active_per_project",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"
