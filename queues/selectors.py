"""Reads for exports and queue administration."""

from django.db.models import QuerySet
from django.db.models.fields.json import KeyTransform

from activity.models import Activity
from projects.models import Project

from .models import Export


def export_summaries(exports: QuerySet[Export]) -> QuerySet[Export]:
    """Exports without their manifests (every task id: 632 KB for 90,000 tasks), with the
    manifest's counts (``export.counts``) read in the database."""
    return exports.defer("manifest").annotate(listed_counts=KeyTransform("counts", "manifest"))


def export_list(*, project: Project, limit: int = 50) -> QuerySet[Export]:
    """The project's newest exports with who asked for them (callers check access)."""
    exports = Export.objects.filter(project=project).select_related("requested_by")
    return export_summaries(exports)[:limit]


def queue_action_list(*, limit: int = 20) -> QuerySet[Activity]:
    """The newest queue administration actions (administrators' page), from the audit trail."""
    return Activity.objects.filter(target_type="queue")[:limit]
