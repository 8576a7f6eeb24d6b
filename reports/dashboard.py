"""The personal parts of the role dashboard at ``/``: an annotator's queue, progress,
quality and feedback; a reviewer's queue and reviewed-today figures.

Each section is there only when the user holds the role in some project; the queries are a
fixed number per section (the quality figures three per project the person annotates in)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import CharField, Exists, Max, Min, OuterRef, Subquery
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils import timezone

from audits.models import Audit, AuditFinding
from audits.rollups import period_bounds
from projects.selectors import user_roles
from tasks.models import Comment, Priority, StageRun, TaskEvent
from tasks.selectors import my_work_runs

from . import selectors
from .periods import Period, last_days

QUEUE_SHOWN = 5
FEEDBACK_SHOWN = 5
QUALITY_DAYS = 30
OPEN = (StageRun.Status.READY, StageRun.Status.IN_PROGRESS)


def personal_sections(*, user) -> dict:
    roles = user_roles(user=user)
    sections: dict[str, Any] = {}
    if "annotator" in roles:
        sections["annotator_section"] = annotator_section(user=user)
    if "reviewer" in roles:
        sections["reviewer_section"] = reviewer_section(user=user)
    return sections


def _this_week(today: dt.date) -> Period:
    return Period(start=today - dt.timedelta(days=today.weekday()), end=today)


def annotator_section(*, user) -> dict[str, Any]:
    today = timezone.localdate()
    queue = my_work_runs(user=user).filter(kind__in=selectors.WORK_KINDS)
    week = _this_week(today)
    table, _ = selectors.activity(period=week, person_id=user.pk)
    days = table.get(user.pk, {})
    week_totals = dict.fromkeys(selectors.ACTIVITY_KEYS, 0.0)
    for figures in days.values():
        for key in selectors.ACTIVITY_KEYS:
            week_totals[key] += figures[key]
    today_figures = days.get(today, dict.fromkeys(selectors.ACTIVITY_KEYS, 0.0))
    quality_period = last_days(QUALITY_DAYS, today=today)
    return {
        "queue_count": queue.count(),
        "queue": list(queue[:QUEUE_SHOWN]),
        "today": today_figures,
        "week": week_totals,
        "quality": selectors.person_quality(user=user, period=quality_period),
        "quality_period": quality_period,
    } | feedback_waiting(user=user)


def feedback_waiting(*, user) -> dict[str, Any]:
    """What waits for the annotator's answer: their runs sent back with a reviewer's
    feedback, open error findings on their work (to accept or dispute, whether or not the
    audit is complete: the services take an answer either way), and open
    problems others reported on their tasks (a reviewer's reject is the rework item, not a
    problem here)."""
    reworks = (
        StageRun.objects.filter(
            assignee=user,
            kind__in=selectors.WORK_KINDS,
            attempt__gt=1,
            status__in=OPEN,
        )
        .exclude(feedback="")
        .select_related("task", "task__project")
        .annotate(rank=Priority.rank("task__priority"))
        .order_by("-rank", "task_id", "id")
    )
    findings = (
        AuditFinding.objects.filter(
            annotator=user,
            state=AuditFinding.State.OPEN,
            type=AuditFinding.Type.ERROR,
            task__deleted_at__isnull=True,  # a deleted task's findings wait for its purge
        )
        .select_related("task", "audit")
        .order_by("-created_at", "-id")
    )
    mine = StageRun.objects.filter(
        task=OuterRef("task"), assignee=user, kind__in=selectors.WORK_KINDS
    )
    # A reviewer's reject note is the one its review_rejected event names (its stage is the
    # stage it concerns, not the review's: tasks.services.stages.stage_review).
    review_note = (
        TaskEvent.objects.filter(task=OuterRef("task"), kind="review_rejected")
        .annotate(note=KeyTextTransform("comment_id", "data"))
        .filter(note=Cast(OuterRef("pk"), CharField()))
    )
    problems = (
        Comment.objects.filter(Exists(mine), kind=Comment.Kind.PROBLEM, resolved=False)
        .exclude(author=user)
        .exclude(Exists(review_note))
        .select_related("task", "author")
        .order_by("-created_at", "-id")
    )
    rework_list = list(reworks[: FEEDBACK_SHOWN + 1])
    finding_list = list(findings[: FEEDBACK_SHOWN + 1])
    problem_list = list(problems[: FEEDBACK_SHOWN + 1])
    return {
        "reworks": rework_list[:FEEDBACK_SHOWN],
        "more_reworks": len(rework_list) > FEEDBACK_SHOWN,
        "findings": finding_list[:FEEDBACK_SHOWN],
        "more_findings": len(finding_list) > FEEDBACK_SHOWN,
        "problems": problem_list[:FEEDBACK_SHOWN],
        "more_problems": len(problem_list) > FEEDBACK_SHOWN,
        "feedback_count": len(rework_list) + len(finding_list) + len(problem_list),
    }


def reviewer_section(*, user) -> dict[str, Any]:
    """The reviewer's queue (its size and how long its oldest review has waited), what they
    reviewed and audited today, and the units waiting for audit."""
    from audits.audit_selectors import audit_waiting  # the count My work shows

    ready_at = (
        TaskEvent.objects.filter(
            task=OuterRef("task"), stage_key=OuterRef("stage_key"), kind="stage_ready"
        )
        .order_by()
        .values("task")
        .annotate(at=Max("created_at"))
        .values("at")
    )
    queue = my_work_runs(user=user).filter(kind="review")
    waiting = queue.filter(status=StageRun.Status.READY).annotate(ready_at=Subquery(ready_at))
    oldest = waiting.order_by().aggregate(oldest=Min("ready_at"))["oldest"]
    today = timezone.localdate()
    since, _ = period_bounds(today, today)
    reviewed = TaskEvent.objects.filter(
        actor=user,
        kind__in=["review_approved", "review_rejected"],
        created_at__gte=since,
        task__deleted_at__isnull=True,  # a deleted task's events wait for its purge
    ).count()
    audited = Audit.objects.filter(
        auditor=user,
        status=Audit.Status.COMPLETED,
        completed_at__gte=since,
        task__deleted_at__isnull=True,  # as after the purge, which takes them
    ).count()
    return {
        "queue_count": queue.count(),
        "queue": list(queue[:QUEUE_SHOWN]),
        "oldest_waiting": oldest,
        "oldest_age": timezone.now() - oldest if oldest else None,
        "reviewed_today": reviewed,
        "audited_today": audited,
        "audit_waiting": audit_waiting(user=user),
    }
