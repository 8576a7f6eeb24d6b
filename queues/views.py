"""The exports page of a project: start an export, follow its progress, download versions."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from core.access import Action
from core.exceptions import ApplicationError
from projects.selectors import project_get_for_user

from . import selectors, services
from .forms import ExportForm


@login_required
def export_list(request, slug):
    project = project_get_for_user(user=request.user, slug=slug, action=Action.CHANGE)
    form = ExportForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        fmt = data.pop("format")
        try:
            export, created = services.export_start(
                actor=request.user,
                project=project,
                format=fmt,
                options={k: v for k, v in data.items() if v not in (False, "")},
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            word = "started" if created else "is already under way"
            messages.success(request, f"Export v{export.version} ({export.format}) {word}.")
        return redirect("exports:list", slug=project.slug)
    exports = selectors.export_list(project=project)
    return render(
        request, "queues/exports.html", {"project": project, "form": form, "exports": exports}
    )


@require_GET
@login_required
def export_row(request, slug, export_id):
    """One history row (htmx polls it while the export runs)."""
    export = services.export_get_for_user(user=request.user, export_id=export_id)
    return render(
        request, "queues/exports.html#export-row", {"project": export.project, "export": export}
    )


@require_POST
@login_required
def export_cancel(request, slug, export_id):
    export = services.export_get_for_user(user=request.user, export_id=export_id)
    try:
        services.export_cancel(actor=request.user, export=export)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("exports:list", slug=export.project.slug)


@require_GET
@login_required
def export_download(request, slug, export_id):
    export = services.export_get_for_user(user=request.user, export_id=export_id)
    try:
        download = services.export_download(actor=request.user, export=export)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("exports:list", slug=export.project.slug)
    if download.url:  # on a bucket: a short-lived signed URL, the bytes never pass through us
        return HttpResponseRedirect(download.url)
    return FileResponse(download.open(), as_attachment=True, filename=download.filename)
