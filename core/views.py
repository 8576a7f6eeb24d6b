from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import requires_csrf_token

from projects.dashboard import project_sections
from projects.selectors import project_list_for_user
from reports.dashboard import personal_sections


@login_required
def dashboard(request):
    """The role dashboard: personal sections (annotator, reviewer) and project sections
    (manager cards, administrator queue health), each shown when the user holds the role."""
    context = {"projects": project_list_for_user(user=request.user)[:20]}
    context |= personal_sections(user=request.user)
    context |= project_sections(user=request.user)
    return render(request, "core/dashboard.html", context)


def _wants_json(request) -> bool:
    return request.path.startswith("/api/")


@requires_csrf_token
def bad_request(request, exception=None):
    if _wants_json(request):
        return JsonResponse({"detail": "Bad request."}, status=400)
    return render(request, "400.html", status=400)


@requires_csrf_token
def permission_denied(request, exception=None):
    message = str(exception) if exception else ""
    if _wants_json(request):
        return JsonResponse({"detail": message or "You do not have permission."}, status=403)
    return render(request, "403.html", {"message": message}, status=403)


@requires_csrf_token
def page_not_found(request, exception=None):
    if _wants_json(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return render(request, "404.html", status=404)


@requires_csrf_token
def server_error(request):
    if _wants_json(request):
        return JsonResponse({"detail": "Server error. It has been logged."}, status=500)
    return render(request, "500.html", status=500)
