from django.conf import settings

from core.access import can_create_project, is_admin
from core.jobs import redis_available


def stagecraft(request) -> dict:
    """Navigation facts and the job-mode banner for every page."""
    user = getattr(request, "user", None)
    authenticated = bool(user and user.is_authenticated)
    return {
        "nav": {
            "is_admin": authenticated and is_admin(user),
            "can_create_project": authenticated and can_create_project(user),
            "roles": _roles(request) if authenticated else [],
        },
        "redis_down": not redis_available(),
        "jobs_inline_fallback": settings.STAGECRAFT_JOBS_SYNC_FALLBACK,
    }


def _roles(request) -> list[str]:
    # One query per request, memoised on the request (templates may ask twice).
    if not hasattr(request, "_stagecraft_roles"):
        from projects.selectors import user_roles

        order = ["admin", "manager", "reviewer", "annotator"]
        roles = user_roles(user=request.user)
        request._stagecraft_roles = [role for role in order if role in roles]
    return request._stagecraft_roles
