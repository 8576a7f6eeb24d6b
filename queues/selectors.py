"""Reads for exports and queue administration."""

from django.db.models import QuerySet

from projects.models import Project

from .models import Export, QueueAction


def export_list(*, project: Project, limit: int = 50) -> QuerySet[Export]:
    """The project's newest exports with who asked for them (callers check access)."""
    return Export.objects.filter(project=project).select_related("requested_by")[:limit]


def queue_action_list(*, limit: int = 20) -> QuerySet[QueueAction]:
    """The newest queue administration actions (administrators' page)."""
    return QueueAction.objects.select_related("actor")[:limit]
