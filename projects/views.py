from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from audits import charts
from core.access import Action, can_create_project, project_allows
from core.exceptions import ApplicationError
from core.forms import add_application_error, save_versioned

from . import progress, selectors, services
from .forms import (
    AuditSettingsForm,
    GuidelineForm,
    MemberAddForm,
    MemberEditForm,
    ProjectEditForm,
    ProjectForm,
    RandomSampleReviewForm,
)
from .models import Role


@login_required
def project_list(request):
    projects = selectors.project_list_for_user(user=request.user)
    return render(request, "projects/list.html", {"projects": projects})


@login_required
def project_create(request):
    if not can_create_project(request.user):
        raise PermissionDenied("Only administrators and project creators may create projects.")
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project = services.project_create(actor=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            add_application_error(form, exc)
        else:
            messages.success(request, f"Project “{project.name}” created. Add its members next.")
            return redirect("projects:members", slug=project.slug)
    return render(request, "projects/form.html", {"form": form, "creating": True})


@login_required
def project_detail(request, slug):
    """The project's dashboard: progress, ETA, the stage funnel, people and charts; an htmx
    request (the page refreshing when its tab becomes visible again) gets the figures only."""
    project = selectors.project_get_for_user(user=request.user, slug=slug)
    context = {"project": project, "progress": _progress_context(request.user, project)}
    if request.htmx:
        return render(request, "projects/detail.html#project-figures", context)
    memberships = selectors.membership_list(project=project)
    return render(
        request,
        "projects/detail.html",
        context
        | {
            "memberships": memberships,
            "my_roles": [m.role for m in memberships if m.user_id == request.user.pk],
            "can_change": project_allows(request.user, project, Action.CHANGE),
            "audit": selectors.audit_settings(project),  # (percent, kind)
        },
    )


@login_required
def project_tasks(request, slug):
    """The project's Tasks tab: the task list filtered to the project."""
    project = selectors.project_get_for_user(user=request.user, slug=slug)
    return redirect(f"{reverse('tasks:list')}?{urlencode({'project': project.pk})}")


def _progress_context(user, project) -> dict:
    """The Overview's figures and its two charts (throughput per day, time per run)."""
    figures = progress.project_overview(project=project, user=user)
    days = figures["throughput"]
    figures["throughput_chart"] = charts.count_chart(
        label=f"Tasks finished per day, last {len(days)} days",
        x_labels=[d.day.strftime("%-d %b") for d in days],
        x_titles=[d.day.strftime("%-d %B %Y") for d in days],
        series=[
            charts.Series("Tasks finished", [d.tasks for d in days]),
        ],
        unit=("task", "tasks"),
        width=560,
        height=240,
    )
    weeks = figures["trend"]
    figures["trend_chart"] = charts.count_chart(
        label="Median minutes per annotate run, by week",
        x_labels=[w.week.strftime("%-d %b") for w in weeks],
        x_titles=[f"week of {w.week.strftime('%-d %B %Y')}" for w in weeks],
        series=[
            charts.Series(
                "Median minutes per run",
                [round(w.median_seconds / 60, 1) if w.median_seconds else None for w in weeks],
            )
        ],
        unit=("minute", "minutes"),
        width=560,
        height=240,
    )
    return figures


def _edit_form(project, data=None) -> ProjectEditForm:
    initial = {f: getattr(project, f) for f in ("name", "description", "delivery", "version")}
    initial["assignment"] = selectors.assignment_mode(project)
    initial["robot_type"] = selectors.robot_type(project)
    return ProjectEditForm(data, initial=initial)


def _whole(number: float) -> float | int:
    return int(number) if float(number).is_integer() else number


def _quality_context(project, overview=None, *, audit_form=None, sample_form=None) -> dict:
    """The quality-control card: checks, review stages, audit sampling, and their forms."""
    overview = overview or selectors.quality_overview(project=project)
    initial = {"audit_percent": _whole(overview.audit_percent), "audit_kind": overview.audit_kind}
    return {
        "project": project,
        "quality": overview,
        "audit_form": audit_form or AuditSettingsForm(initial=initial),
        "sample_form": sample_form or RandomSampleReviewForm(review_stages=overview.full_reviews),
    }


def _quality_response(request, project, saved: str = "", **forms):
    """After a quality-control POST: htmx gets the card (message out of band); a plain
    request a redirect when it saved, else the whole page with the form's errors."""
    if saved:
        messages.success(request, saved)
        if not request.htmx:
            return redirect("projects:edit", slug=project.slug)
        forms = {}
    context = _quality_context(project, **forms)
    if request.htmx:
        return render(request, "projects/form.html#quality-control", context)
    context["form"] = _edit_form(project)
    return render(request, "projects/form.html", context)


@login_required
def project_edit(request, slug):
    project = selectors.project_get_for_user(user=request.user, slug=slug, action=Action.CHANGE)
    form = _edit_form(project, request.POST or None)
    current = None
    if request.method == "POST" and form.is_valid():
        saved, current = save_versioned(
            form,
            project,
            lambda: services.project_update(
                actor=request.user, project=project, **form.cleaned_data
            ),
        )
        if saved:
            messages.success(request, "Project saved.")
            return redirect("projects:detail", slug=project.slug)
    context = _quality_context(project) | {"form": form, "current": current}
    return render(request, "projects/form.html", context)


@require_POST
@login_required
def project_quality(request, slug):
    """Audit sampling settings (the quality-control card)."""
    project = selectors.project_get_for_user(user=request.user, slug=slug, action=Action.CHANGE)
    form = AuditSettingsForm(request.POST)
    if form.is_valid():
        try:
            project = services.project_quality_settings_update(
                actor=request.user, project=project, **form.cleaned_data
            )
        except ApplicationError as exc:
            add_application_error(form, exc)
        else:
            return _quality_response(request, project, saved="Audit sampling saved.")
    return _quality_response(request, project, audit_form=form)


@require_POST
@login_required
def project_random_sample_review(request, slug):
    """One click: put a random sample in front of a review stage (a new blueprint version)."""
    project = selectors.project_get_for_user(user=request.user, slug=slug, action=Action.CHANGE)
    overview = selectors.quality_overview(project=project)
    form = RandomSampleReviewForm(request.POST, review_stages=overview.full_reviews)
    if form.is_valid():
        try:
            blueprint = services.project_random_sample_review_add(
                actor=request.user, project=project, **form.cleaned_data
            )
        except ApplicationError as exc:
            add_application_error(form, exc)
        else:
            saved = f"Random-sample review added: {blueprint.name} v{blueprint.version} is active."
            return _quality_response(request, project, saved=saved)
    return _quality_response(request, project, sample_form=form)


def _members_context(request, project, add_form=None, row_errors=None):
    row_errors = row_errors or {}
    memberships = selectors.membership_list(project=project)
    return {
        "project": project,
        "rows": [(m, row_errors.get(m.pk)) for m in memberships],
        "roles": Role.choices,
        "can_change": project_allows(request.user, project, Action.CHANGE),
        "add_form": add_form or MemberAddForm(),
    }


def _members_response(request, project, **extra):
    context = _members_context(request, project, **extra)
    template = "projects/members.html#members" if request.htmx else "projects/members.html"
    return render(request, template, context)


def _member_action_response(request, project, row_errors: dict):
    """After a row action: htmx gets the member section with errors in their rows,
    a plain form post a redirect with the errors as messages."""
    if request.htmx:
        return _members_response(request, project, row_errors=row_errors)
    for error in row_errors.values():
        messages.error(request, error)
    return redirect("projects:members", slug=project.slug)


@login_required
def project_members(request, slug):
    action = Action.CHANGE if request.method == "POST" else Action.VIEW
    project = selectors.project_get_for_user(user=request.user, slug=slug, action=action)
    if request.method != "POST":
        return _members_response(request, project)
    form = MemberAddForm(request.POST)
    if form.is_valid():
        try:
            membership, created = services.membership_add(
                actor=request.user, project=project, **form.cleaned_data
            )
        except ApplicationError as exc:
            add_application_error(form, exc)
        else:
            verb = "added as" if created else "updated as"
            messages.success(request, f"{membership.user.username} {verb} {membership.role}.")
            if not request.htmx:
                return redirect("projects:members", slug=project.slug)
            form = None
    return _members_response(request, project, add_form=form)


@require_POST
@login_required
def member_update(request, slug, membership_id):
    project = selectors.project_get_for_user(user=request.user, slug=slug, action=Action.CHANGE)
    membership = selectors.membership_get(project=project, membership_id=membership_id)
    form = MemberEditForm(request.POST)
    row_errors = {}
    if form.is_valid():
        try:
            services.membership_update(
                actor=request.user, membership=membership, **form.cleaned_data
            )
        except ApplicationError as exc:
            row_errors[membership.pk] = exc.message
        else:
            messages.success(request, f"{membership.user.username}'s membership saved.")
    else:
        row_errors[membership.pk] = " ".join(e for errs in form.errors.values() for e in errs)
    return _member_action_response(request, project, row_errors)


@require_POST
@login_required
def member_remove(request, slug, membership_id):
    project = selectors.project_get_for_user(user=request.user, slug=slug, action=Action.CHANGE)
    membership = selectors.membership_get(project=project, membership_id=membership_id)
    row_errors = {}
    try:
        services.membership_remove(actor=request.user, membership=membership)
    except ApplicationError as exc:
        row_errors[membership.pk] = exc.message
    else:
        messages.success(
            request, f"{membership.user.username} is no longer a {membership.role} here."
        )
    return _member_action_response(request, project, row_errors)


@login_required
def project_guidelines(request, slug):
    """The project's guidelines; reviewers and managers add new ones here."""
    action = Action.WRITE_GUIDELINES if request.method == "POST" else Action.VIEW
    project = selectors.project_get_for_user(user=request.user, slug=slug, action=action)
    form = GuidelineForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.guideline_create(
                actor=request.user,
                project=project,
                title=form.cleaned_data["title"],
                body=form.cleaned_data["body"],
            )
        except ApplicationError as exc:
            add_application_error(form, exc)
        else:
            messages.success(request, "Guideline added.")
            return redirect("projects:guidelines", slug=project.slug)
    context = {
        "project": project,
        "guidelines": selectors.guideline_list(project=project),
        "can_write": project_allows(request.user, project, Action.WRITE_GUIDELINES),
        "form": form,
    }
    return render(request, "projects/guidelines.html", context)


@login_required
def guideline_edit(request, slug, guideline_id):
    guideline = selectors.guideline_get_for_user(
        user=request.user, slug=slug, guideline_id=guideline_id, action=Action.WRITE_GUIDELINES
    )
    initial = {"title": guideline.title, "body": guideline.body, "version": guideline.version}
    form = GuidelineForm(request.POST or None, initial=initial)
    current = None
    if request.method == "POST" and form.is_valid():
        saved, current = save_versioned(
            form,
            guideline,
            lambda: services.guideline_update(
                actor=request.user, guideline=guideline, **form.cleaned_data
            ),
        )
        if saved:
            messages.success(request, "Guideline saved.")
            return redirect("projects:guidelines", slug=slug)
    context = {"form": form, "project": guideline.project, "guideline": guideline}
    return render(request, "projects/guideline_form.html", context | {"current": current})


@require_POST
@login_required
def guideline_delete(request, slug, guideline_id):
    guideline = selectors.guideline_get_for_user(
        user=request.user, slug=slug, guideline_id=guideline_id, action=Action.WRITE_GUIDELINES
    )
    services.guideline_delete(actor=request.user, guideline=guideline)
    messages.success(request, f"Deleted “{guideline.title}”.")
    return redirect("projects:guidelines", slug=slug)
