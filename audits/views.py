"""The audit pages: Audit next, the audit page (the workspace in audit mode), the list of
audits, completing an audit, and answering findings on the task's page."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from core.access import Action, is_admin, project_allows
from core.exceptions import ApplicationError
from projects.selectors import guideline_list
from tasks import selectors as task_selectors
from tasks import services as task_services
from tasks.workspace import class_entries, sample_entries

from . import audit_selectors, services
from .api import FindingSerializer
from .models import Audit, AuditFinding

COMPLETED_SHOWN = 50


@require_POST
@login_required
def audit_next(request):
    try:
        audit = services.audit_claim_next(actor=request.user)
    except (ApplicationError, PermissionDenied) as exc:
        messages.error(request, getattr(exc, "message", str(exc)))
        return redirect("workspace:mine")
    if audit is None:
        messages.info(request, "Nothing is waiting for audit right now.")
        return redirect("workspace:mine")
    return redirect("audits:detail", audit_id=audit.pk)


@login_required
def audit_list(request):
    audits = audit_selectors.audit_list(user=request.user)
    open_audits = list(audits.filter(status=Audit.Status.OPEN))
    completed = list(audits.filter(status=Audit.Status.COMPLETED)[:COMPLETED_SHOWN])
    auditing: dict[int, bool] = {}
    for audit in open_audits + completed:
        if audit.project_id not in auditing:
            auditing[audit.project_id] = audit_selectors.may_audit(
                user=request.user, project=audit.project
            )
        audit.openable = auditing[audit.project_id]
    return render(
        request,
        "audits/list.html",
        {"open_audits": open_audits, "completed": completed, "shown": COMPLETED_SHOWN},
    )


def _unit_stages(task, audit: Audit, spec) -> list:
    """The stages whose annotations the audit looks at: its stage, or every annotate stage."""
    if audit.stage_key:
        return [spec.by_key[audit.stage_key]]
    return [s for s in spec.stages if s.kind in services.WORK_KINDS]


def _audit_rights(user, audit: Audit) -> dict:
    is_open = audit.status == Audit.Status.OPEN
    auditor = audit.auditor_id == user.pk or is_admin(user)
    leads = auditor or project_allows(user, audit.project, Action.CHANGE)
    return {
        "can_add": is_open and leads,
        "can_complete": is_open and leads,
        "can_fix": is_open and auditor and audit.kind == Audit.Kind.STANDARD,
    }


@login_required
def audit_detail(request, audit_id):
    audit = audit_selectors.audit_get_for_user(user=request.user, audit_id=audit_id)
    task = audit.task
    task.project = audit.project
    if not audit_selectors.may_audit(user=request.user, project=audit.project):
        raise PermissionDenied(
            "Only reviewers and managers open an audit; its findings are on the task's page."
        )
    spec = task_services.spec_for(task.blueprint)
    stages = _unit_stages(task, audit, spec)
    samples = list(task_selectors.task_sample_list(task=task))
    in_stage = {
        s.pk
        for stage in stages
        for s in task_services.stage_samples(task=task, stage=stage, samples=samples)
    }
    keys = list(dict.fromkeys(c for stage in stages for c in stage.classes))
    classes = [spec.classes[c] for c in keys]
    rights = _audit_rights(request.user, audit)
    stage = stages[0] if stages else None
    if stage is None:
        raise Http404("This blueprint has no annotate stage.")
    workspace_data = {
        "task": task.pk,
        "stage": stage.key,
        "stages": [s.key for s in stages],
        "review": False,
        "editable": False,
        "samples": sample_entries(samples, in_stage),
        "classes": class_entries(classes),
        "mine": reverse("workspace:mine"),
        "invalid": {f.sample_id: f.reason for f in task.invalid_samples.all()},
        "user": request.user.get_username(),
        "canResolve": True,
        "changed": [],
        "can_sync": False,
        "timing": None,
        "audit": {
            "id": audit.pk,
            "kind": audit.kind,
            "status": audit.status,
            "stage": audit.stage_key,
            "fixing": False,
            "findings": FindingSerializer(audit.findings.all(), many=True).data,
            "types": dict(AuditFinding.Type.choices),
            "categories": dict(AuditFinding.Category.choices),
            **rights,
        },
    }
    return render(
        request,
        "tasks/workspace.html",
        {
            "task": task,
            "project": audit.project,
            "stage": stage,
            "run": None,
            "samples": samples,
            "in_stage_count": len(in_stage),
            "classes": classes,
            "editable": False,
            "reviewing": False,
            "audit": audit,
            "audit_rights": rights,
            "finding_types": AuditFinding.Type.choices,
            "finding_categories": AuditFinding.Category.choices,
            "unit_stages": stages,
            "workspace_data": workspace_data,
            "guidelines": guideline_list(project=audit.project),
            "changed_names": [],
            "released": False,
        },
    )


@require_POST
@login_required
def audit_complete(request, audit_id):
    audit = audit_selectors.audit_get_for_user(user=request.user, audit_id=audit_id)
    decision = request.POST.get("decision") or "accept"
    try:
        services.audit_complete(
            actor=request.user, audit=audit, decision=decision, note=request.POST.get("note", "")
        )
    except (ApplicationError, PermissionDenied) as exc:
        messages.error(request, getattr(exc, "message", str(exc)))
    else:
        messages.success(
            request,
            "Audit completed: sent back for rework."
            if decision == Audit.Decision.REJECT
            else "Audit completed.",
        )
    return redirect("audits:detail", audit_id=audit.pk)


def task_audit_cards(*, task, user) -> list[Audit]:
    """The task's audits for its page, each finding marked with what ``user`` may do."""
    audits = audit_selectors.task_audits(task=task, user=user)
    manager = project_allows(user, task.project, Action.CHANGE)
    openable = bool(audits) and audit_selectors.may_audit(user=user, project=task.project)
    for audit in audits:
        audit.openable = openable
        settles = audit.auditor_id == user.pk or manager or is_admin(user)
        for finding in audit.findings.all():
            answers = (finding.annotator_id == user.pk or manager) and finding.author_id != user.pk
            finding.may_answer = answers and finding.state == AuditFinding.State.OPEN
            finding.may_settle = settles and finding.state == AuditFinding.State.DISPUTED
    return audits


ANSWERS = {"accept", "dispute", "uphold", "withdraw"}


@require_POST
@login_required
def finding_answer(request, audit_id, finding_id):
    """Accept or dispute a finding (the annotating side), uphold or withdraw a disputed one
    (the auditor)."""
    audit = audit_selectors.audit_get_for_user(user=request.user, audit_id=audit_id)
    finding = next((f for f in audit.findings.all() if f.pk == finding_id), None)
    answer = request.POST.get("answer", "")
    if finding is None:
        raise Http404("No such finding.")
    if answer not in ANSWERS:
        raise BadRequest("Answer with accept, dispute, uphold or withdraw.")
    note = request.POST.get("note", "")
    error = ""
    try:
        if answer in {"accept", "dispute"}:
            services.finding_respond(
                actor=request.user, finding=finding, response=answer, note=note
            )
        else:
            services.finding_settle(
                actor=request.user, finding=finding, uphold=answer == "uphold", note=note
            )
    except (ApplicationError, PermissionDenied) as exc:
        error = getattr(exc, "message", str(exc))
    task = audit.task
    task.project = audit.project
    if request.htmx:
        audits = task_audit_cards(task=task, user=request.user)
        return render(
            request,
            "audits/_task_audits.html",
            {
                "task": task,
                "audits": audits,
                "audit_error": error,
                "audit_notice": "" if error else DONE[answer],
            },
        )
    if error:
        messages.error(request, error)
    else:
        messages.success(request, DONE[answer])
    return redirect(reverse("tasks:detail", args=[task.pk]) + "#task-audits")


DONE = {
    "accept": "Finding accepted.",
    "dispute": "Finding disputed: the auditor settles it.",
    "uphold": "Finding upheld.",
    "withdraw": "Finding withdrawn.",
}
