"""Pages for a project's data: the dataset list with imports, a dataset's samples."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from core.access import Action, project_allows
from core.exceptions import ApplicationError
from core.forms import add_application_error
from core.jobs import jobs_progress

from . import dataset_selectors, selectors
from .dataset_services import check_import_path, dataset_import_start, dataset_resync_start
from .formats import DataError
from .forms import DatasetImportForm
from .models import ImportStatus

SAMPLES_PER_PAGE = 25


def _import_state(dataset, meta: dict | None = None) -> dict:
    """Progress of a dataset's import for the progress bar (job meta, else the row)."""
    if dataset.status == ImportStatus.FINISHED:
        return {"percent": 100, "stage": "done", "detail": ""}
    if dataset.status == ImportStatus.FAILED:
        return {"percent": 0, "stage": "failed", "detail": dataset.error}
    if meta is None:
        meta = jobs_progress([dataset.job_id]).get(dataset.job_id)
    meta = meta or {}
    return {
        "percent": round(100 * float(meta.get("progress", 0.0))),
        "stage": meta.get("stage", "waiting for a worker"),
        "detail": meta.get("detail", ""),
    }


@login_required
def project_data(request, slug):
    action = Action.CHANGE if request.method == "POST" else Action.VIEW
    project = selectors.project_get_for_user(user=request.user, slug=slug, action=action)
    can_import = project_allows(request.user, project, Action.CHANGE)
    form = DatasetImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            path = check_import_path(data["path"]) if data["path"] else None
            dataset = dataset_import_start(
                actor=request.user,
                project=project,
                name=data["name"],
                format=data["format"],
                source_path=path,
                uploads=request.FILES.getlist("files"),
                options=data["options"],
            )
        except ApplicationError as exc:
            add_application_error(form, exc)
        else:
            messages.success(request, f"Importing “{dataset.name}”.")
            return redirect("projects:dataset", slug=project.slug, dataset_id=dataset.pk)
    datasets = list(dataset_selectors.dataset_list(project=project))
    thumbnails = dataset_selectors.dataset_thumbnails(datasets)
    running = [d.job_id for d in datasets if d.status in {"queued", "started"} and d.job_id]
    metas = jobs_progress(running)  # one Redis round trip for all running imports
    rows = [
        {
            "dataset": d,
            "thumb": thumbnails.get(d.pk),
            "progress": _import_state(d, metas.get(d.job_id, {})),
        }
        for d in datasets
    ]
    return render(
        request,
        "projects/data.html",
        {"project": project, "rows": rows, "form": form, "can_import": can_import},
    )


@login_required
def dataset_detail(request, slug, dataset_id):
    dataset = dataset_selectors.dataset_get_for_user(user=request.user, dataset_id=dataset_id)
    if dataset.project.slug != slug:
        return redirect("projects:dataset", slug=dataset.project.slug, dataset_id=dataset.pk)
    page = Paginator(dataset_selectors.sample_list(dataset=dataset), SAMPLES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "projects/dataset.html",
        {
            "project": dataset.project,
            "dataset": dataset,
            "page": page,
            "progress": _import_state(dataset),
            "can_resync": bool(dataset.source_path)
            and dataset.status == ImportStatus.FINISHED
            and project_allows(request.user, dataset.project, Action.CHANGE),
        },
    )


@require_POST
@login_required
def dataset_resync(request, slug, dataset_id):
    dataset = dataset_selectors.dataset_get_for_user(
        user=request.user, dataset_id=dataset_id, action=Action.CHANGE
    )
    try:
        dataset_resync_start(actor=request.user, dataset=dataset)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, "Re-sync queued: the dataset is read again from its source folder."
        )
    return redirect("projects:dataset", slug=dataset.project.slug, dataset_id=dataset.pk)


@require_GET
@login_required
def dataset_progress(request, slug, dataset_id):
    dataset = dataset_selectors.dataset_get_for_user(user=request.user, dataset_id=dataset_id)
    # When the import ends the partial shows its last state, then loads the dataset page.
    done = dataset.status in {ImportStatus.FINISHED, ImportStatus.FAILED}
    return render(
        request,
        "projects/dataset.html#import-progress",
        {
            "project": dataset.project,
            "dataset": dataset,
            "progress": _import_state(dataset),
            "done": done,
        },
    )


IMAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def cached_image(
    request, etag: str, render_bytes, content_type: str, csp: str = IMAGE_CSP
) -> HttpResponse:
    """An image with an ETag (304 when the browser has it) that never runs scripts.
    ``render_bytes`` may raise DataError; callers answer it in their own way."""
    if etag in request.headers.get("If-None-Match", ""):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(render_bytes(), content_type=content_type)
    response["ETag"] = etag
    response["Cache-Control"] = "private, max-age=86400"
    response["Content-Security-Policy"] = csp
    return response


def _cached_image(request, etag: str, render_bytes, content_type: str) -> HttpResponse:
    try:
        return cached_image(request, etag, render_bytes, content_type)
    except DataError as exc:
        return HttpResponse(exc.message, status=422, content_type="text/plain")


@require_GET
@login_required
def sample_strip(request, slug, sample_id, camera):
    sample = dataset_selectors.sample_get_for_user(user=request.user, sample_id=sample_id)
    try:
        count = int(request.GET.get("n", 8))
    except ValueError:
        count = 8
    etag = dataset_selectors.frame_etag(sample, "strip", camera, count)
    try:
        return _cached_image(
            request,
            etag,
            lambda: dataset_selectors.sample_strip(sample=sample, camera=camera, count=count),
            "image/jpeg",
        )
    except ApplicationError as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain")


@require_GET
@login_required
def sample_plot(request, slug, sample_id):
    sample = dataset_selectors.sample_get_for_user(user=request.user, sample_id=sample_id)
    etag = dataset_selectors.frame_etag(sample, "plot")
    return _cached_image(
        request,
        etag,
        lambda: dataset_selectors.sample_plot_svg(sample=sample).encode(),
        "image/svg+xml",
    )
