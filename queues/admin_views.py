"""The queue administration page (administrators only; others get 404)."""

import redis
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.access import is_admin
from core.exceptions import ApplicationError
from core.jobs import redis_available

from . import control, selectors


def _admin_only(request) -> None:
    if not is_admin(request.user):
        raise Http404("No such page.")


@login_required
def queue_page(request):
    _admin_only(request)
    context = {"redis_down": not redis_available(fresh=True), "queues": [], "failed": {}}
    if not context["redis_down"]:
        try:
            context["queues"] = control.queue_overview()
            context["failed"] = {
                q["name"]: control.failed_jobs(q["name"], 20) for q in context["queues"]
            }
        except redis.RedisError:
            context["redis_down"] = True
    context["actions"] = selectors.queue_action_list()
    template = "queues/queues.html#queue-table" if request.htmx else "queues/queues.html"
    return render(request, template, context)


@require_POST
@login_required
def queue_action(request, name, action):
    _admin_only(request)
    try:
        result = control.queue_action(actor=request.user, name=name, action=action)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    except redis.RedisError:
        messages.error(request, "Redis is not reachable: nothing was changed.")
    else:
        text = f"{action} on {name}: {result['count']} job(s)."
        if "remaining" in result:
            text += f" {result['remaining']} failed job(s) remain."
        messages.success(request, text)
    if request.htmx:  # confirmed in the browser: reload the page with the message
        from django_htmx.http import HttpResponseClientRefresh

        return HttpResponseClientRefresh()
    return redirect("queues:page")
