"""Reads of the audit trail: managers see their projects' rows, administrators all."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from core.access import is_admin
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
    filters = filters or {}
    rows = Activity.objects.select_related("actor", "project")
    if not is_admin(user):
        managed = Membership.objects.filter(user=user.pk, role=Role.MANAGER).values("project")
        rows = rows.filter(project__in=managed)
    project = str(filters.get("project") or "").strip()
    if project:
        valid = project.isdigit() and int(project) < 2**63  # a bigint, not a 500
        rows = rows.filter(project=int(project)) if valid else rows.none()
    actor = str(filters.get("actor") or "").strip()
    if actor:
        rows = rows.filter(Q(actor__username=actor) | Q(actor=None, actor_name=actor))
    verb = str(filters.get("verb") or "").strip()
    if verb:
        rows = rows.filter(verb=verb) if "." in verb else rows.filter(verb__startswith=f"{verb}.")
    return rows.order_by("-created_at", "-pk")
