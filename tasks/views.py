from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from core.access import Action
from core.exceptions import ApplicationError
from core.forms import add_application_error
from projects.selectors import project_get_for_user

from . import selectors, services
from .forms import TaskCreateForm


@login_required
def task_create(request, slug):
    """The task form, opened from the data page's selection (or empty)."""
    project = project_get_for_user(user=request.user, slug=slug, action=Action.CHANGE)
    initial = {"datasets": request.GET.getlist("datasets")}
    form = TaskCreateForm(request.POST or None, project=project, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            task = services.task_create(
                actor=request.user,
                project=project,
                name=data["name"],
                description=data["description"],
                priority=data["priority"],
                datasets=[d.pk for d in data["datasets"]],
                annotators=data["annotators"],
                reviewers=data["reviewers"],
                due_at=data["due_at"],
                blueprint=data["blueprint"],
                batch=data["batch"],
            )
        except ApplicationError as exc:
            add_application_error(form, exc)
        else:
            messages.success(request, f"Task “{task.name}” created.")
            return redirect("tasks:detail", task_id=task.pk)
    return render(request, "tasks/create.html", {"project": project, "form": form})


@login_required
def task_detail(request, task_id):
    task = selectors.task_get_for_user(user=request.user, task_id=task_id)
    return render(
        request,
        "tasks/detail.html",
        {
            "task": task,
            "project": task.project,
            "events": task.events.select_related("actor").order_by("-id")[:200],
        },
    )
