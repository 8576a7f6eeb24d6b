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
    context = {
        "page": page,
        "filters": filters,
        "query": urlencode({k: v for k, v in filters.items() if v}),
        "projects": selectors.activity_projects_for_user(user=request.user),
        "verbs": verbs,
        "families": sorted({verb.split(".")[0] for verb in verbs}),
    }
    template = "activity/list.html#activity-results" if request.htmx else "activity/list.html"
    return render(request, template, context)
