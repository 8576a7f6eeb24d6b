"""Pages for assignment: the task list's Auto-assign preview and apply, and a manager's
assignment of one ready stage run on the task page. Thin: tasks.services.assignment
decides; these read the request and show the answer."""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from core.access import Action, require
from core.exceptions import ApplicationError, Conflict
from core.parsers import whole_number
from projects.selectors import project_list_for_user

from . import batch as batch_services
from . import selectors
from .forms import TaskFilterForm
from .services import assignment
from .views import FILTER_FIELDS


def _chosen(request) -> tuple[dict, list[tuple[str, str]], str]:
    """The tasks the form names, as batch_selection takes them; the hidden fields that name
    them again; the list's query string (to go back to it)."""
    post = request.POST
    params = {k: v for k, v in post.items() if k in FILTER_FIELDS and v not in ("", None)}
    query = urlencode(params)
    if post.get("all_matching") == "1":
        form = TaskFilterForm(params, projects=project_list_for_user(user=request.user))
        form.is_valid()
        hidden = [("all_matching", "1"), *params.items()]
        return {"filters": form.filters()}, hidden, query
    ids = [n for i in post.getlist("ids") if (n := whole_number(i)) is not None][:100_000]
    hidden = [("ids", str(i)) for i in ids] + list(params.items())
    return {"ids": ids}, hidden, query


def _people_word(n: int) -> str:
    return f"{n} {'person' if n == 1 else 'people'}"


@require_POST
@login_required
def auto_assign(request):
    """The Auto-assign preview (who gets how many of the chosen tasks' ready runs, the runs
    nobody can take and why) and, with ``apply``, the assignment itself."""
    if not batch_services.can_batch(request.user):
        raise PermissionDenied("Only managers and administrators auto-assign.")
    chosen, hidden, query = _chosen(request)
    weight = request.POST.get("weight_by_quality") == "1"
    back = f"{reverse('tasks:list')}?{query}" if query else reverse("tasks:list")
    stale = ""
    try:
        selection = batch_services.batch_selection(user=request.user, **chosen)
        if request.POST.get("apply") == "1":
            try:
                done = assignment.auto_assign_apply(
                    actor=request.user,
                    selection=selection,
                    weight_by_quality=weight,
                    expected=request.POST.get("token") or None,
                )
            except Conflict as exc:
                stale = exc.message  # shown in the panel, over the new preview
            else:
                messages.success(
                    request,
                    f"{done.assigned} run{'s' if done.assigned != 1 else ''} assigned to "
                    f"{_people_word(len(done.shares))}.",
                )
                return HttpResponseClientRedirect(back) if request.htmx else redirect(back)
        plan = assignment.auto_assign_plan(
            actor=request.user, selection=selection, weight_by_quality=weight
        )
    except ApplicationError as exc:  # e.g. a selection too large: said in the panel
        stale, plan = exc.message, assignment.Plan(shares=[], unassignable=[], considered=0)
    context = {
        "plan": plan,
        "hidden": hidden,
        "weight": weight,
        "back": back,
        "unassignable_shown": plan.unassignable[:50],
        "stale": stale,
    }
    template = (
        "tasks/auto_assign.html#auto-assign-panel" if request.htmx else "tasks/auto_assign.html"
    )
    return render(request, template, context)


@login_required
def run_assign(request, task_id: int):
    """GET: the task page's “Assign a ready run” card (loaded into it), or the same as a
    page; POST: reserve one ready run for a person (or clear it), back to the task page."""
    task = selectors.task_get_for_user(user=request.user, task_id=task_id)
    require(request.user, task.project, Action.CHANGE, "Only managers assign stage runs.")
    if request.method == "POST":
        post = request.POST
        replica = post.get("replica", "")
        try:
            run = assignment.run_assign(
                actor=request.user,
                task=task,
                stage_key=post.get("stage", ""),
                replica=whole_number(replica),
                user=assignment.person_for_assignment(task=task, username=post.get("username")),
                force=post.get("force") == "1",
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            who = run.assignee.username if run.assignee else "nobody (anyone may start it)"
            messages.success(request, f"“{run.stage_key}” is reserved for {who}.")
        return redirect("tasks:detail", task_id=task.pk)
    context = {"task": task, "runs": assignment.ready_runs_to_assign(task=task)}
    template = "tasks/assign_run.html#run-assign" if request.htmx else "tasks/assign_run.html"
    return render(request, template, context)
