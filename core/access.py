"""The one permission layer (DESIGN.md §8), used by pages and the API alike.

Membership rows say who holds which role in a project; django-guardian grants on
the Project are kept in step with them (projects.services) and are what this
layer reads. Administrators (superusers and staff) may do everything.

Objects a user may not see answer 404; visible objects with a forbidden action
answer 403.
"""

from collections.abc import Iterable
from enum import StrEnum
from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404
from guardian.core import ObjectPermissionChecker

if TYPE_CHECKING:
    from projects.models import Project


class Action(StrEnum):
    VIEW = "view"  # see the project, its data and (role-filtered) tasks
    CHANGE = "change"  # edit project, blueprints, members; create/edit/delete tasks
    ANNOTATE = "annotate"  # work on annotate stages
    REVIEW = "review"  # review and audit
    WRITE_GUIDELINES = "write guidelines"  # reviewers and managers
    # Not about one project (``require(actor, None, action)``):
    CREATE_PROJECT = "create projects"
    CONTROL_QUEUES = "control the queues"  # administrators


ACTION_PERMISSION = {
    Action.VIEW: "view_project",
    Action.CHANGE: "change_project",
    Action.ANNOTATE: "annotate_project",
    Action.REVIEW: "review_project",
    Action.WRITE_GUIDELINES: "review_project",
}
GLOBAL_ACTIONS = frozenset({Action.CREATE_PROJECT, Action.CONTROL_QUEUES})

# Object permissions that each membership role grants on its project.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "manager": frozenset({"view_project", "change_project", "annotate_project", "review_project"}),
    "annotator": frozenset({"view_project", "annotate_project"}),
    "reviewer": frozenset({"view_project", "review_project"}),
}


def is_admin(user) -> bool:
    return bool(user.is_authenticated and user.is_active and (user.is_superuser or user.is_staff))


def can_create_project(user) -> bool:
    return is_admin(user) or bool(user.is_authenticated and user.has_perm("projects.add_project"))


def permissions_for_roles(roles: Iterable[str]) -> frozenset[str]:
    granted: set[str] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS[role]
    return frozenset(granted)


def grant_queries(user, project: "Project") -> list[QuerySet] | None:
    """The reads of ``user``'s guardian grants on ``project`` (their own and their groups',
    as guardian's ``ObjectPermissionChecker.get_perms`` reads them), each a queryset of
    codenames; None when no read is needed (administrators, inactive and anonymous users,
    or grants already cached on the instance). A caller may send them in a larger query and
    hand the codenames to ``remember_permissions``."""
    if not grants_unread(user, project):
        return None
    checker = ObjectPermissionChecker(user)
    return [
        checker.get_user_perms(project).order_by(),
        checker.get_group_perms(project).order_by(),
    ]


def grants_unread(user, project: "Project") -> bool:
    """Whether ``grant_queries`` has reads to give (without building them)."""
    if is_admin(user) or not user.is_authenticated or not user.is_active:
        return False
    return user.pk not in project.__dict__.get("_permission_cache", {})


def remember_permissions(user, project: "Project", codenames: Iterable[str]) -> None:
    """Cache on ``project`` the grants read through ``grant_queries``."""
    project.__dict__.setdefault("_permission_cache", {})[user.pk] = frozenset(codenames)


def project_permissions(user, project: "Project") -> frozenset[str]:
    """The object permissions ``user`` holds on ``project`` (cached on the instance): their
    own grants and their groups', in one query."""
    if is_admin(user):
        return frozenset(ACTION_PERMISSION.values())
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    reads = grant_queries(user, project)
    if reads is not None:
        remember_permissions(user, project, reads[0].union(*reads[1:], all=True).order_by())
    return project.__dict__["_permission_cache"][user.pk]


def project_allows(user, project: "Project", action: Action) -> bool:
    return ACTION_PERMISSION[action] in project_permissions(user, project)


class SystemActor:
    """Management commands and scheduled jobs that act on no one's behalf.

    It may do everything; the audit trail records it as no one (``actor_user`` is None).
    """

    pk = id = None
    is_authenticated = is_active = is_superuser = is_staff = True
    is_anonymous = False
    username = "system"

    def get_username(self) -> str:
        return self.username

    def __str__(self) -> str:
        return self.username


SYSTEM = SystemActor()


def actor_user(actor):
    """The user to store as who did something: None for the system and anonymous users."""
    if actor is None or isinstance(actor, SystemActor) or not actor.is_authenticated:
        return None
    return actor


def require(actor, project: "Project | None", action: Action, message: str | None = None) -> None:
    """The one authorization check of every service that changes data.

    For a project action: Http404 when ``actor`` may not even see ``project``,
    PermissionDenied (403) when they see it but may not ``action``. For the actions
    that concern no single project (``GLOBAL_ACTIONS``) pass ``project=None``. ``message``
    says what was refused, in the service's words.
    """
    if isinstance(actor, SystemActor):
        return
    if actor is None:
        raise PermissionDenied("Sign in first.")
    if action in GLOBAL_ACTIONS:
        allowed = can_create_project(actor) if action == Action.CREATE_PROJECT else is_admin(actor)
        if not allowed:
            raise PermissionDenied(f"You may not {action}.")
        return
    if project is None:
        raise ValueError(f"{action} needs a project")
    perms = project_permissions(actor, project)
    if ACTION_PERMISSION[Action.VIEW] not in perms:
        raise Http404("No such project.")
    if ACTION_PERMISSION[action] not in perms:
        raise PermissionDenied(message or f"You may not {action} in this project.")


def check_project_access(*, user, project: "Project", action: Action = Action.VIEW) -> None:
    """Raise Http404 when ``user`` may not see ``project``, 403 when they may not act."""
    require(user, project, action)
