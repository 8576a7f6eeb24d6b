"""Blueprint pages: list, pipeline graph, YAML editor with live validation, compare."""

import difflib
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core.access import Action, project_allows
from core.exceptions import ApplicationError
from projects.selectors import project_get_for_user

from . import selectors, services
from .forms import BlueprintEditorForm, BlueprintUploadForm
from .graph import pipeline_svg
from .spec import BlueprintInvalid
from .validation import check_text, to_yaml, validate


def _annotated(source: str, errors) -> list[dict]:
    """The document's lines, each with the errors that point at it."""
    by_line: dict[int, list[str]] = {}
    for error in errors:
        where = f"{error.path}: " if error.path else ""
        by_line.setdefault(error.line or 1, []).append(where + error.message)
    lines = source.splitlines() or [""]
    return [
        {"number": n, "text": text, "errors": by_line.get(n, [])}
        for n, text in enumerate(lines, start=1)
    ]


def _validation_context(source: str) -> dict:
    _, spec, errors = check_text(source)
    return {
        "errors": errors,
        "lines": _annotated(source, errors) if errors else [],
        "spec": spec,
        "svg": pipeline_svg(spec) if spec else "",
    }


@login_required
def blueprint_list(request, slug):
    project = project_get_for_user(user=request.user, slug=slug)
    return render(
        request,
        "blueprints/list.html",
        {
            "project": project,
            "groups": selectors.blueprint_groups(project=project),
            "can_change": project_allows(request.user, project, Action.CHANGE),
            "upload_form": BlueprintUploadForm(),
        },
    )


@login_required
def blueprint_detail(request, slug, blueprint_id):
    blueprint = selectors.blueprint_get_for_user(user=request.user, blueprint_id=blueprint_id)
    project = blueprint.project
    spec = validate(blueprint.definition)
    return render(
        request,
        "blueprints/detail.html",
        {
            "project": project,
            "blueprint": blueprint,
            "spec": spec,
            "svg": pipeline_svg(spec),
            "others": selectors.blueprint_list(project=project).exclude(pk=blueprint.pk),
            "can_change": project_allows(request.user, project, Action.CHANGE),
        },
    )


def _editor(request, project, blueprint=None, *, source=None, name=None):
    initial = {
        "name": name if name is not None else (blueprint.name if blueprint else ""),
        "source": source if source is not None else (blueprint.source if blueprint else ""),
    }
    # Given a source (an upload, an example), the editor opens on it unbound.
    data = None if source is not None else (request.POST or None)
    form = BlueprintEditorForm(data, initial=initial)
    if form.is_bound and form.is_valid():
        text = form.cleaned_data["source"]
        definition, spec, errors = check_text(text)
        if not errors:
            try:
                saved, changed = services.blueprint_save(
                    actor=request.user,
                    project=project,
                    definition=definition,
                    name=form.cleaned_data["name"] or (blueprint.name if blueprint else None),
                    source=text,
                    new_version=form.cleaned_data["new_version"],
                )
            except ApplicationError as exc:
                form.add_error("name", exc.message)
            else:
                verb = "saved" if changed else "unchanged"
                messages.success(request, f"Blueprint {saved.name} v{saved.version} {verb}.")
                return redirect("blueprints:detail", slug=project.slug, blueprint_id=saved.pk)
    text = form.data.get("source") if form.is_bound else initial["source"]
    context = {"project": project, "blueprint": blueprint, "form": form}
    context.update(_validation_context(text or ""))
    return render(request, "blueprints/editor.html", context)


@login_required
def blueprint_create(request, slug):
    project = project_get_for_user(user=request.user, slug=slug, action=Action.CHANGE)
    if request.method == "GET" and request.GET.get("example"):
        example = request.GET["example"]
        if example in {"default", "pick-and-place", "driving-scene"}:
            return _editor(request, project, source=services.example_source(example), name="")
    return _editor(request, project)


@login_required
def blueprint_edit(request, slug, blueprint_id):
    blueprint = selectors.blueprint_get_for_user(
        user=request.user, blueprint_id=blueprint_id, action=Action.CHANGE
    )
    if not blueprint.source:
        blueprint.source = to_yaml(blueprint.definition)
    return _editor(request, blueprint.project, blueprint)


@require_POST
@login_required
def blueprint_validate(request, slug):
    """The editor's live check (htmx): errors next to their lines, or the graph."""
    project = project_get_for_user(user=request.user, slug=slug, action=Action.CHANGE)
    context = {"project": project, **_validation_context(request.POST.get("source", ""))}
    return render(request, "blueprints/editor.html#validation", context)


@require_POST
@login_required
def blueprint_upload(request, slug):
    project = project_get_for_user(user=request.user, slug=slug, action=Action.CHANGE)
    form = BlueprintUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("blueprints:list", slug=project.slug)
    text = form.cleaned_data["file"]
    definition, spec, errors = check_text(text)
    if errors:
        messages.error(request, "The uploaded blueprint has errors: fix them here, then save.")
        return _editor(request, project, source=text, name=form.cleaned_data["name"])
    try:
        saved, changed = services.blueprint_save(
            actor=request.user,
            project=project,
            definition=definition,
            name=form.cleaned_data["name"] or None,
            source=text,
        )
    except (ApplicationError, BlueprintInvalid) as exc:
        messages.error(request, exc.message)
        return redirect("blueprints:list", slug=project.slug)
    messages.success(
        request, f"Blueprint {saved.name} v{saved.version} {'saved' if changed else 'unchanged'}."
    )
    return redirect("blueprints:detail", slug=project.slug, blueprint_id=saved.pk)


@login_required
def blueprint_download(request, slug, blueprint_id):
    blueprint = selectors.blueprint_get_for_user(user=request.user, blueprint_id=blueprint_id)
    stem = f"{blueprint.name}-v{blueprint.version}"
    if request.GET.get("format") == "json":
        content, kind, ext = json.dumps(blueprint.definition, indent=2), "application/json", "json"
    else:
        content = blueprint.source or to_yaml(blueprint.definition)
        kind, ext = "application/yaml", "yaml"
    response = HttpResponse(content, content_type=f"{kind}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{stem}.{ext}"'
    return response


@require_POST
@login_required
def blueprint_activate(request, slug, blueprint_id):
    blueprint = selectors.blueprint_get_for_user(
        user=request.user, blueprint_id=blueprint_id, action=Action.CHANGE
    )
    services.blueprint_activate(actor=request.user, blueprint=blueprint)
    messages.success(
        request,
        f"{blueprint.name} v{blueprint.version} is now the active blueprint: new tasks use it.",
    )
    return redirect("blueprints:detail", slug=blueprint.project.slug, blueprint_id=blueprint.pk)


@login_required
def blueprint_compare(request, slug):
    project = project_get_for_user(user=request.user, slug=slug)
    versions = selectors.blueprint_list(project=project)
    chosen = {str(b.pk): b for b in versions}
    a, b = chosen.get(request.GET.get("a", "")), chosen.get(request.GET.get("b", ""))
    diff = []
    if a and b:
        old = to_yaml(a.definition).splitlines()
        new = to_yaml(b.definition).splitlines()
        for line in difflib.unified_diff(old, new, f"{a}", f"{b}", lineterm="", n=3):
            kind = (
                "meta"
                if line.startswith(("---", "+++", "@@"))
                else ("add" if line.startswith("+") else "del" if line.startswith("-") else "same")
            )
            diff.append({"kind": kind, "text": line})
    return render(
        request,
        "blueprints/compare.html",
        {"project": project, "versions": versions, "a": a, "b": b, "diff": diff},
    )
