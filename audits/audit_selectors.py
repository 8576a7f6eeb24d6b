"""Reading audits: who sees which, and the audits of a task (the quality figures live in
``audits.selectors``)."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.shortcuts import get_object_or_404

from core.access import Action, is_admin, project_allows
from projects.models import Membership, Role
from tasks.models import StageRun

from .models import Audit, AuditFinding, AuditFix


def audit_visibility(user) -> Q:
    """Reviewers and managers see their projects' audits; an annotator sees the audits of
    their own work (to accept or dispute the findings)."""
    if is_admin(user):
        return Q()
    checking = Membership.objects.filter(user=user, role__in=[Role.REVIEWER, Role.MANAGER]).values(
        "project_id"
    )
    own = StageRun.objects.filter(
        task=OuterRef("task"), assignee=user, kind__in=["annotate", "consensus"]
    )
    own_stage = own.filter(stage_key=OuterRef("stage_key"))
    annotator = Membership.objects.filter(user=user, role=Role.ANNOTATOR).values("project_id")
    return Q(project__in=checking) | (
        Q(project__in=annotator)
        & ((Q(stage_key="") & Exists(own)) | (~Q(stage_key="") & Exists(own_stage)))
    )


def _with_details(audits: QuerySet[Audit]) -> QuerySet[Audit]:
    return audits.select_related("auditor", "task", "project").prefetch_related(
        Prefetch(
            "findings",
            queryset=AuditFinding.objects.select_related(
                "author", "annotator", "responded_by", "annotation", "sample"
            ).order_by("id"),
        ),
        Prefetch("fixes", queryset=AuditFix.objects.order_by("id")),
    )


def _visible(user) -> QuerySet[Audit]:
    """The audits the user may see, of live tasks: a deleted task's audits wait for its
    purge (tasks.services.deletion) unseen."""
    return Audit.objects.filter(audit_visibility(user), task__deleted_at__isnull=True)


def audit_list(
    *, user, project: int | None = None, task: int | None = None, status: str | None = None
) -> QuerySet[Audit]:
    audits = _visible(user)
    if project is not None:
        audits = audits.filter(project=project)
    if task is not None:
        audits = audits.filter(task=task)
    if status:
        audits = audits.filter(status=status)
    return _with_details(audits).order_by("-created_at", "-id")


def audit_get_for_user(*, user, audit_id: int) -> Audit:
    """404 when the user may not see the audit (or its task was deleted)."""
    return get_object_or_404(_with_details(_visible(user)), pk=audit_id)


def task_audits(*, task, user) -> list[Audit]:
    """The audits of one task the user may see, newest first, with findings and fixes."""
    return list(audit_list(user=user, task=task.pk))


def may_audit(*, user, project) -> bool:
    return project_allows(user, project, Action.REVIEW)


CHECKING_ROLES = {"reviewer", "manager", "admin"}


def audit_waiting(*, user) -> int | None:
    """How many units wait in the user's audit queue (None: the user does not audit): the
    count My work and the reviewer's dashboard show."""
    from projects.selectors import user_roles

    from .services import audit_queue

    if not user.is_authenticated or not (user_roles(user=user) & CHECKING_ROLES):
        return None
    return audit_queue(actor=user).count()
