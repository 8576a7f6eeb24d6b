"""Pages of a project's bucket connections (managers): list and add, edit, test, list the
episodes, sync now, delete. The secret is never rendered back."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from core.access import Action
from core.exceptions import ApplicationError
from core.forms import add_application_error
from core.jobs import jobs_progress
from projects import selectors as project_selectors

from . import selectors, services
from .forms import ConnectionEditForm, ConnectionForm


def _connection(request, slug, connection_id):
    connection = selectors.connection_get_for_user(user=request.user, connection_id=connection_id)
    if connection.project.slug != slug:
        raise Http404("No such connection in this project.")
    return connection


def _edit_form(connection, data=None) -> ConnectionEditForm:
    initial = {f: getattr(connection, f) for f in services.EDITABLE}
    return ConnectionEditForm(data, initial=initial, has_secret=connection.has_secret)


@login_required
def connection_list(request, slug):
    project = project_selectors.project_get_for_user(
        user=request.user, slug=slug, action=Action.CHANGE
    )
    form = ConnectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            connection = services.connection_create(
                actor=request.user, project=project, **form.cleaned_data
            )
        except ApplicationError as exc:
            add_application_error(form, exc)
        else:
            messages.success(request, f"Connected “{connection.name}”: test it, then sync.")
            return redirect("connectors:detail", slug=slug, connection_id=connection.pk)
    connections = list(selectors.connection_list(project=project))
    return render(
        request,
        "connectors/list.html",
        {"project": project, "connections": connections, "form": form},
    )


@login_required
def connection_detail(request, slug, connection_id):
    connection = _connection(request, slug, connection_id)
    form = _edit_form(connection, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            connection = services.connection_update(
                actor=request.user, connection=connection, **form.cleaned_data
            )
        except ApplicationError as exc:
            add_application_error(form, exc)
        else:
            messages.success(request, f"Saved “{connection.name}”.")
            return redirect("connectors:detail", slug=slug, connection_id=connection.pk)
    context = {"project": connection.project, "connection": connection, "form": form}
    if connection.sync_status in services.BUSY:  # the job's stage while it runs
        context["job"] = jobs_progress([connection.sync_job_id]).get(connection.sync_job_id, {})
    if request.htmx and request.method == "GET":  # the status polling while a sync runs
        return render(request, "connectors/detail.html#sync-status", context)
    return render(request, "connectors/detail.html", context)


@require_POST
@login_required
def connection_test(request, slug, connection_id):
    connection = _connection(request, slug, connection_id)
    result = services.connection_test(actor=request.user, connection=connection)
    if request.htmx:
        return render(
            request,
            "connectors/detail.html#test-result",
            {"project": connection.project, "connection": connection, "result": result},
        )
    (messages.success if result["ok"] else messages.error)(request, result["message"])
    return redirect("connectors:detail", slug=slug, connection_id=connection.pk)


@require_GET
@login_required
def connection_episodes(request, slug, connection_id):
    connection = _connection(request, slug, connection_id)
    try:
        listing, error = services.connection_episodes(actor=request.user, connection=connection), ""
    except ApplicationError as exc:
        listing, error = None, exc.message
    context = {"project": connection.project, "connection": connection}
    context.update(listing=listing, listing_error=error, form=_edit_form(connection))
    template = "connectors/detail.html#episodes" if request.htmx else "connectors/detail.html"
    return render(request, template, context)


@require_POST
@login_required
def connection_sync(request, slug, connection_id):
    connection = _connection(request, slug, connection_id)
    keys = request.POST.getlist("keys") or None
    try:
        services.connection_sync_start(actor=request.user, connection=connection, keys=keys)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Sync queued: the page shows its result when it ends.")
    return redirect("connectors:detail", slug=slug, connection_id=connection.pk)


@require_POST
@login_required
def connection_delete(request, slug, connection_id):
    connection = _connection(request, slug, connection_id)
    try:
        services.connection_delete(actor=request.user, connection=connection)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("connectors:detail", slug=slug, connection_id=connection.pk)
    messages.success(request, f"Disconnected “{connection.name}”.")
    return redirect("connectors:list", slug=slug)
