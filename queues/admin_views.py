"""The queue administration page (administrators only; others get 404)."""

import redis
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
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
            # A dead worker's jobs are failed here too (also with no worker left to do it).
            context["recovered"] = control.recover_lost_jobs()
            context["queues"] = control.queue_overview()
            failed = {q["name"]: control.failed_jobs(q["name"], 20) for q in context["queues"]}
            # Only the queues that have failed jobs get a heading; none at all reads “None.”
            context["failed"] = {name: jobs for name, jobs in failed.items() if jobs}
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
        messages.success(request, _done(name, action, result))
    if request.htmx:  # confirmed in the browser: reload the page with the message
        from django_htmx.http import HttpResponseClientRefresh

        return HttpResponseClientRefresh()
    return redirect("queues:page")


def _jobs(count: int, kind: str = "") -> str:
    return f"{count} {kind}{' ' if kind else ''}job{pluralize(count)}"


def _done(name: str, action: str, result: dict) -> str:
    """What an action did, in words: “Retried 2 failed jobs on imports.”"""
    count = result["count"]
    text = {
        "pause": f"Paused {name}: its waiting jobs stay until it is resumed.",
        "resume": f"Resumed {name}.",
        "empty": f"Emptied {name}: deleted {_jobs(count, 'waiting or delayed')}.",
        "clean": f"Cleaned the history of {name}: deleted {_jobs(count, 'old')}.",
        "retry-failed": f"Retried {_jobs(count, 'failed')} on {name}.",
    }[action]
    if "remaining" in result:
        remaining = result["remaining"]
        text += f" {_jobs(remaining, 'failed')} remain{'' if remaining != 1 else 's'}."
    return text
