"""The audit trail page: managers (their projects' rows) and administrators (all rows)."""

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from core.access import is_admin

from . import selectors
from .models import VERBS

PER_PAGE = 50
FILTER_KEYS = ("project", "actor", "verb")


@require_GET
@login_required
def activity_list(request):
    selectors.activity_require_reader(user=request.user)
    filters = {key: request.GET.get(key, "").strip() for key in FILTER_KEYS}
    rows = selectors.activity_list_for_user(user=request.user, filters=filters)
    # Queue actions belong to no project: only administrators read them.
    verbs = [v for v in VERBS if is_admin(request.user) or not v.startswith("queue.")]
    page = Paginator(rows, PER_PAGE).get_page(request.GET.get("page"))
    projects = list(selectors.activity_projects_for_user(user=request.user))
    families = sorted({verb.split(".")[0] for verb in verbs})
    context = {
        "page": page,
        "filters": filters,
        "query": urlencode({k: v for k, v in filters.items() if v}),
        "projects": projects,
        "verbs": verbs,
        "families": families,
        "unknown": _unknown_filters(filters, projects, [*families, *verbs]),
    }
    template = "activity/list.html#activity-results" if request.htmx else "activity/list.html"
    return render(request, template, context)


def _unknown_filters(filters, projects, verbs) -> dict[str, str]:
    """The URL's project or action when the filter lists do not offer it, so the page can
    say so instead of showing an empty list under a select that reads “All”."""
    project, verb = filters["project"], filters["verb"]
    return {
        "project": project if project and project not in {str(p.pk) for p in projects} else "",
        "verb": verb if verb and verb not in verbs else "",
    }
