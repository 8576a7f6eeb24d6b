"""Reads of the audit trail: managers see their projects' rows, administrators all."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from core.access import is_admin
from core.parsers import whole_number
from projects.models import Membership, Project, Role

from .models import Activity


def activity_may_read(*, user) -> bool:
    """Administrators, and the managers of at least one project."""
    if not user.is_authenticated:
        return False
    if is_admin(user):
        return True
    return Membership.objects.filter(user=user, role=Role.MANAGER).exists()


def activity_require_reader(*, user) -> None:
    if not activity_may_read(user=user):
        raise PermissionDenied("Only managers and administrators read the audit trail.")


def activity_projects_for_user(*, user) -> QuerySet[Project]:
    """The projects whose rows ``user`` may read (the page's project filter)."""
    projects = Project.objects.order_by("name", "pk")
    if is_admin(user):
        return projects
    return projects.filter(memberships__user=user, memberships__role=Role.MANAGER).distinct()


def activity_list_for_user(*, user, filters: dict | None = None) -> QuerySet[Activity]:
    """The rows ``user`` may read, newest first, narrowed by ``filters``: ``project`` (id),
    ``actor`` (username), ``verb`` (a verb, or its family such as ``dataset``)."""
    filters = {k: str(v or "").strip() for k, v in (filters or {}).items()}
    rows = Activity.objects.select_related("actor", "project")
    if any("\x00" in value for value in filters.values()):
        return rows.none()  # PostgreSQL text cannot hold NUL: nothing matches
    if not is_admin(user):
        managed = Membership.objects.filter(user=user.pk, role=Role.MANAGER).values("project")
        rows = rows.filter(project__in=managed)
    project = filters.get("project", "")
    if project:
        number = whole_number(project, below=2**63)  # a bigint, not a 500
        rows = rows.filter(project=number) if number is not None else rows.none()
    actor = filters.get("actor", "")
    if actor:
        rows = rows.filter(Q(actor__username=actor) | Q(actor=None, actor_name=actor))
    verb = filters.get("verb", "")
    if verb:
        rows = rows.filter(verb=verb) if "." in verb else rows.filter(verb__startswith=f"{verb}.")
    return rows.order_by("-created_at", "-pk")
