"""The annotator's pages: "My work" and the workspace of one stage run."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from core.access import Action, project_allows
from core.exceptions import ApplicationError

from . import review_selectors, selectors, services
from .models import StageRun

MY_WORK_SHOWN = 200


@login_required
def my_work(request):
    # Lazily too: the time limit holds without a scheduler. Its search (every run in
    # progress, joined to its task) only where a blueprint has a time limit at all.
    if selectors.any_time_limits():
        services.stage_release_expired()
    # The most urgent runs (a reviewer's queue can hold thousands): the rest come through
    # "Start next task" / "Review next task", or once these are done.
    waiting = selectors.my_work_runs(user=request.user)
    runs = list(waiting[: MY_WORK_SHOWN + 1])
    more = len(runs) > MY_WORK_SHOWN
    runs = runs[:MY_WORK_SHOWN]
    done = DONE_MESSAGES.get(request.GET.get("done", ""))
    if done:
        messages.success(request, done)
    from audits.audit_selectors import audit_waiting

    return render(
        request,
        "tasks/my_work.html",
        {
            "runs": runs,
            "more": waiting.count() - MY_WORK_SHOWN if more else 0,
            "audit_waiting": audit_waiting(user=request.user),
        },
    )


# What the workspace says after it sends someone back here.
DONE_MESSAGES = {
    "submitted": "Stage submitted.",
    "approved": "Review approved.",
    "rejected": "Sent back for rework with your comment.",
}


@require_POST
@login_required
def start_next(request):
    review = request.POST.get("kind") == "review"
    run = services.stage_claim_next(actor=request.user, review=review)
    if run is None:
        messages.info(
            request,
            "Nothing is waiting for your review right now."
            if review
            else "No work fits your skills right now.",
        )
        return redirect("workspace:mine")
    return redirect("workspace:run", task_id=run.task_id, stage_key=run.stage_key)


@require_POST
@login_required
def open_run(request, task_id, stage_key):
    task = selectors.task_get_for_user(user=request.user, task_id=task_id)
    try:
        services.stage_start(actor=request.user, task=task, stage_key=stage_key)
    except (ApplicationError, PermissionDenied) as exc:
        messages.error(request, getattr(exc, "message", str(exc)))
        return redirect("workspace:mine")
    return redirect("workspace:run", task_id=task.pk, stage_key=stage_key)


@login_required
def workspace(request, task_id, stage_key):
    task = selectors.task_get_for_user(user=request.user, task_id=task_id)
    spec = services.spec_for(task.blueprint)
    stage = spec.by_key.get(stage_key)
    if stage is None:
        from django.http import Http404

        raise Http404("No such stage.")
    services.stage_release_expired(task=task)
    run = (
        task.runs.filter(stage_key=stage_key, assignee=request.user).first()
        or task.runs.filter(stage_key=stage_key).first()
    )
    samples = list(selectors.task_sample_list(task=task))
    classes = [spec.classes[c] for c in stage.classes]
    editable = (
        run is not None
        and run.status == "in_progress"
        and run.assignee_id == request.user.pk
        and stage.kind in {"annotate", "consensus"}
    )
    reviewing = (
        stage.kind == "review"
        and run is not None
        and run.status in {"ready", "in_progress"}
        and project_allows(request.user, task.project, Action.REVIEW)
    )
    from projects.selectors import guideline_list

    invalid = {f.sample_id: f.reason for f in task.invalid_samples.all()}
    # The samples this stage annotates (or reviews): all, or its `sampling` draw.
    in_stage = {s.pk for s in services.stage_samples(task=task, stage=stage, samples=samples)}
    changed_list = list(services.changed_samples(task))
    changed = [s.pk for s in changed_list]
    shown_stages = list(stage.reviews) if stage.kind == "review" else [stage.key]
    if stage.kind == "review":
        classes = [spec.classes[c] for k in stage.reviews for c in spec.by_key[k].classes]
    workspace_data = {
        "task": task.pk,
        "stage": stage.key,
        "stages": shown_stages,
        "review": reviewing,
        "editable": editable,
        # A review that allows fixes: the reviewed stages whose shapes its reviewer edits in
        # place while the review is theirs and in progress (each write names the review).
        "fixes": list(stage.reviews)
        if reviewing
        and stage.allow_fixes
        and run.status == "in_progress"
        and run.assignee_id == request.user.pk
        else [],
        "samples": sample_entries(samples, in_stage),
        "classes": class_entries(classes),
        "mine": reverse("workspace:mine"),
        "invalid": invalid,
        "user": request.user.get_username(),
        "canResolve": project_allows(request.user, task.project, Action.REVIEW)
        or project_allows(request.user, task.project, Action.CHANGE),
        "changed": changed,
        "can_sync": bool(changed)
        and (editable or project_allows(request.user, task.project, Action.CHANGE)),
        **_timing(request, task, run),
    }
    return render(
        request,
        "tasks/workspace.html",
        {
            "task": task,
            "project": task.project,
            "stage": stage,
            "run": run,
            "samples": samples,
            "in_stage_count": len(in_stage),
            "classes": classes,
            "editable": editable,
            "reviewing": reviewing,
            # Review per annotation (static/js/workspace/review.js): loaded where it shows.
            "verdicts": reviewing or review_selectors.has_reviews(task=task, stage_key=stage_key),
            # Reopened by a reject that concerned other stages: the page says so (issue 17).
            "reopened_for": review_selectors.reopened_for_others(task=task, run=run),
            "workspace_data": workspace_data,
            "guidelines": guideline_list(project=task.project),
            "changed_names": [s.name for s in changed_list],
            "released": run is not None
            and run.status == StageRun.Status.READY
            and services.stage_released_from(task=task, stage_key=stage_key, user=request.user),
        },
    )


def sample_entries(samples, in_stage: set[int]) -> list[dict]:
    """The samples as the workspace script reads them (also the audit page's)."""
    return [
        {
            "id": s.pk,
            "name": s.name,
            "frames": s.num_frames,
            "fps": s.fps or 10,
            "cameras": [c["name"] for c in s.cameras],
            "series": bool(s.arrays),
            "in_stage": s.pk in in_stage,
        }
        for s in samples
    ]


def class_entries(classes) -> dict:
    return {
        c.key: {
            "kind": c.kind,
            "choices": c.choices or [],
            "attributes": [a.model_dump() for a in c.attributes],
        }
        for c in classes
    }


def _timing(request, task, run) -> dict:
    """The countdown of the viewer's own run under a stage with a time_limit."""
    from django.utils import timezone

    mine = run is not None and run.assignee_id == request.user.pk
    timing = services.run_timing(run=run, task=task) if mine else None
    if timing is None:
        return {"timing": None}
    return {
        "timing": timing.as_json(timezone.now()),
        "activity": reverse("workspace:activity", args=[task.pk, run.stage_key]),
    }


@require_POST
@login_required
def activity(request, task_id, stage_key):
    """The workspace's ping while someone works: keeps a run past its time limit theirs."""
    task = selectors.task_get_for_user(user=request.user, task_id=task_id)
    try:
        run = services.stage_activity(actor=request.user, task=task, stage_key=stage_key)
    except ApplicationError as exc:
        return JsonResponse(exc.body(), status=exc.status_code)
    return JsonResponse(_timing(request, task, run))
