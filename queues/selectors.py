"""Reads for exports and queue administration."""

from django.db.models import QuerySet

from activity.models import Activity
from projects.models import Project

from .models import Export


def export_list(*, project: Project, limit: int = 50) -> QuerySet[Export]:
    """The project's newest exports with who asked for them (callers check access)."""
    return Export.objects.filter(project=project).select_related("requested_by")[:limit]


def queue_action_list(*, limit: int = 20) -> QuerySet[Activity]:
    """The newest queue administration actions (administrators' page), from the audit trail."""
    return Activity.objects.filter(target_type="queue")[:limit]
