"""The notifications page: my notifications, newest first, the unread ones marked; opening
one marks it read and goes where it points; "Mark all read"."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from core.exceptions import ApplicationError

from . import selectors, services

PER_PAGE = 30


def _list_context(request) -> dict:
    unread_only = request.GET.get("unread") == "1"
    rows = selectors.notification_list(user=request.user, unread_only=unread_only)
    return {
        "page": Paginator(rows, PER_PAGE).get_page(request.GET.get("page")),
        "unread_only": unread_only,
    }


@require_GET
@login_required
def notification_list(request):
    template = "notifications/list.html"
    if request.htmx and request.htmx.target == "notification-list":
        template += "#notification-list"
    return render(request, template, _list_context(request))


@require_GET
@login_required
def notification_open(request, notification_id):
    """Opening a notification reads it: mark it and go where it points."""
    notification = selectors.notification_get_for_user(
        user=request.user, notification_id=notification_id
    )
    services.mark_read(user=request.user, ids=[notification.pk])
    target = notification.url
    if not target or not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect("notifications:list")
    return redirect(target)


@require_POST
@login_required
def notification_read(request):
    """Mark all read (or the ``ids`` given); htmx gets the list back, others a redirect."""
    ids = request.POST.getlist("ids")
    try:
        marked = services.mark_read(user=request.user, ids=ids, all=not ids)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        marked = 0
    if request.htmx:
        response = render(
            request, "notifications/list.html#notification-list", _list_context(request)
        )
        response["HX-Trigger"] = "notificationsRead"
        return response
    if marked:
        messages.success(request, f"Marked {marked} notification{'s' if marked != 1 else ''} read.")
    return redirect("notifications:list")
