"""The project page for importing pre-labels and following the imports."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from blueprints.selectors import active_blueprint
from core.access import Action, project_allows
from core.exceptions import ApplicationError
from core.forms import add_application_error
from projects.selectors import project_get_for_user

from .prelabel_forms import PrelabelImportForm
from .services import spec_for
from .services.prelabels import prelabel_import_list, prelabel_import_start


def _stages(project) -> list[str]:
    blueprint = active_blueprint(project=project)
    if blueprint is None:
        return []
    return [s.key for s in spec_for(blueprint).stages if s.kind in {"annotate", "consensus"}]


@login_required
def project_prelabels(request, slug):
    action = Action.CHANGE if request.method == "POST" else Action.VIEW
    project = project_get_for_user(user=request.user, slug=slug, action=action)
    form = PrelabelImportForm(request.POST or None, request.FILES or None, stages=_stages(project))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            prelabel_import_start(
                actor=request.user,
                project=project,
                upload=data["file"],
                format=data["format"],
                stage=data["stage"],
                task_id=data["task"],
                detail=data["source_detail"],
            )
        except ApplicationError as exc:
            add_application_error(form, exc)
        else:
            messages.success(request, f"Importing pre-labels from “{data['file'].name}”.")
            return redirect("projects:prelabels", slug=project.slug)
    imports = prelabel_import_list(project=project)
    context = {
        "project": project,
        "form": form,
        "imports": imports,
        "running": any(i["status"] in {"queued", "started"} for i in imports),
        "can_import": project_allows(request.user, project, Action.CHANGE),
    }
    if request.htmx:
        return render(request, "projects/prelabels.html#prelabel-imports", context)
    return render(request, "projects/prelabels.html", context)
