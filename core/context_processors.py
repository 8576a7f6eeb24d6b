from functools import cached_property

from django.conf import settings

from core.access import is_admin
from core.jobs import redis_available

ROLE_ORDER = ["admin", "manager", "reviewer", "annotator"]


class Nav:
    """Navigation facts of the page's user, read when a template first asks (a fragment that
    shows no navigation costs no query) and once per request: the roles held and whether
    the user may create projects come from one query (``user_roles_and_creation``)."""

    def __init__(self, user) -> None:
        self._user = user
        self.is_admin = bool(user and is_admin(user))

    @cached_property
    def _facts(self) -> tuple[list[str], bool]:
        from projects.selectors import user_roles_and_creation

        if not (self._user and self._user.is_authenticated):
            return [], False
        roles, can_create = user_roles_and_creation(user=self._user)
        return [role for role in ROLE_ORDER if role in roles], can_create

    def know(self, *, roles: set[str], can_create_project: bool) -> None:
        """Take the answers from a page that read them already (the task list's one query
        of the user's memberships and grants): the navigation then reads nothing."""
        self.__dict__["_facts"] = (
            [role for role in ROLE_ORDER if role in roles],
            can_create_project,
        )

    @property
    def roles(self) -> list[str]:
        return self._facts[0]

    @property
    def can_create_project(self) -> bool:
        return self._facts[1]


def nav_for(request) -> Nav:
    """The request's navigation facts (one object per request)."""
    if not hasattr(request, "_stagecraft_nav"):
        request._stagecraft_nav = Nav(getattr(request, "user", None))
    return request._stagecraft_nav


def stagecraft(request) -> dict:
    """Navigation facts and the job-mode banner for every page."""
    return {
        "nav": nav_for(request),
        "redis_down": not redis_available(),
        "jobs_inline_fallback": settings.STAGECRAFT_JOBS_SYNC_FALLBACK,
    }
