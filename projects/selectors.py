"""Reads for projects and memberships; permission filtering happens here, once."""

from django.db.models import Count, Prefetch, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from guardian.shortcuts import get_objects_for_user

from core.access import Action, check_project_access, is_admin

from .models import Guideline, Membership, Project


def project_list_for_user(*, user) -> QuerySet[Project]:
    """The projects ``user`` may see, with member counts and the user's own roles."""
    if is_admin(user):
        projects = Project.objects.all()
    elif not user.is_authenticated:
        return Project.objects.none()
    else:
        projects = get_objects_for_user(
            user, "projects.view_project", klass=Project, accept_global_perms=False
        )
    counted = projects.annotate(member_count=Count("memberships__user", distinct=True))
    return counted.order_by("name", "pk").prefetch_related(
        Prefetch(
            "memberships",
            queryset=Membership.objects.filter(user=user.pk),
            to_attr="own_memberships",
        )
    )


def project_get_for_user(
    *, user, slug: str | None = None, project_id: int | None = None, action: Action = Action.VIEW
) -> Project:
    """A project the user may act on: 404 if they may not see it, 403 if not ``action``."""
    lookup: dict[str, object] = {"slug": slug} if slug is not None else {"pk": project_id}
    project = get_object_or_404(Project, **lookup)
    check_project_access(user=user, project=project, action=action)
    return project


def membership_list(*, project: Project) -> QuerySet[Membership]:
    return Membership.objects.filter(project=project).select_related("user")


def membership_get(*, project: Project, membership_id: int) -> Membership:
    return get_object_or_404(
        Membership.objects.select_related("user", "project"), project=project, pk=membership_id
    )


def user_roles(*, user) -> set[str]:
    """Every role the user holds in any project, plus ``admin`` for administrators."""
    if not user.is_authenticated:
        return set()
    roles = set(Membership.objects.filter(user=user).values_list("role", flat=True).distinct())
    if is_admin(user):
        roles.add("admin")
    return roles


def guideline_list(*, project: Project) -> QuerySet[Guideline]:
    return Guideline.objects.filter(project=project).select_related("author")


def guideline_get_for_user(*, user, slug: str, guideline_id: int, action: Action) -> Guideline:
    """A guideline of a project the user may ``action`` (404 for outsiders, 403 otherwise)."""
    project = project_get_for_user(user=user, slug=slug)
    guideline = get_object_or_404(Guideline.objects.select_related("project"), pk=guideline_id)
    if guideline.project_id != project.pk:
        raise Http404("No such guideline.")
    check_project_access(user=user, project=project, action=action)
    return guideline
