from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from projects.models import Project

# The verbs the services write, in the order the page's filter lists them.
VERBS = (
    "project.created",
    "project.updated",
    "project.deleted",
    "membership.added",
    "membership.changed",
    "membership.removed",
    "blueprint.saved",
    "blueprint.activated",
    "dataset.import_started",
    "dataset.resync_started",
    "dataset.deleted",
    "connection.created",
    "connection.updated",
    "connection.deleted",
    "connection.sync_started",
    "export.started",
    "export.cancelled",
    "export.downloaded",
    "queue.paused",
    "queue.resumed",
    "queue.emptied",
    "queue.cleaned",
    "queue.retried_failed",
)

# Queue actions whose ``after["count"]`` is a number of jobs (pause and resume touch none).
JOB_COUNT_VERBS = frozenset({"queue.emptied", "queue.cleaned", "queue.retried_failed"})


def verb_label(verb: str) -> str:
    """A verb in words: “dataset import started” for ``dataset.import_started``."""
    return verb.replace(".", " ").replace("_", " ")


@dataclass(frozen=True)
class Change:
    """One field of a row's change, for display: ``field: old → new``."""

    field: str
    old: Any = None
    new: Any = None
    has_old: bool = False
    has_new: bool = False


class Activity(models.Model):
    """One change someone (or the system: no actor) made, written in the change's own
    transaction. ``before``/``after`` hold only the fields that changed."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Kept when the user or project is deleted later, so old rows still read well.
    actor_name = models.CharField(max_length=150, blank=True)
    verb = models.CharField(max_length=50)
    target_type = models.CharField(max_length=50)
    target_id = models.CharField(max_length=100)
    target_label = models.CharField(max_length=300)
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    project_name = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "activities"
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="activity_newest"),
            models.Index(fields=["project", "-created_at"], name="activity_project_newest"),
            models.Index(fields=["verb", "-created_at"], name="activity_verb_newest"),
        ]

    def __str__(self) -> str:
        who = self.actor_name or "system"
        return f"{who} {self.verb} {self.target_label}"

    @property
    def action(self) -> str:
        """The verb without its object: “paused” for ``queue.paused``."""
        return self.verb.split(".", 1)[-1].replace("_", " ")

    @property
    def verb_label(self) -> str:
        return verb_label(self.verb)

    @property
    def changes(self) -> list[Change]:
        """Each changed field once, its old and new values side by side: a creation has
        only new values, a deletion only old ones."""
        before, after = self.before or {}, self.after or {}
        fields = list(before) + [key for key in after if key not in before]
        return [
            Change(
                field=key,
                old=before.get(key),
                new=after.get(key),
                has_old=key in before,
                has_new=key in after,
            )
            for key in fields
        ]

    @property
    def jobs_affected(self) -> int | None:
        """How many jobs a queue action removed or retried; None when it moves no jobs."""
        if self.verb not in JOB_COUNT_VERBS:
            return None
        return (self.after or {}).get("count", 0)
