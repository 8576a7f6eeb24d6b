"""Reads of bucket connections. Every connection is a managers' matter (it names buckets and
access keys): others of the project get 403, outsiders 404."""

from django.db.models import Count, QuerySet
from django.shortcuts import get_object_or_404

from core.access import Action, check_project_access
from projects.models import Project

from .models import BucketConnection


def connection_list(*, project: Project) -> QuerySet[BucketConnection]:
    """The project's connections with how many objects each has imported (one query)."""
    return (
        BucketConnection.objects.filter(project=project)
        .annotate(imported_count=Count("imported_objects"))
        .order_by("name", "pk")
    )


def connection_get_for_user(
    *, user, connection_id: int, action: Action = Action.CHANGE
) -> BucketConnection:
    connection = get_object_or_404(
        BucketConnection.objects.select_related("project"), pk=connection_id
    )
    check_project_access(user=user, project=connection.project, action=action)
    return connection
