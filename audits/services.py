"""Audits of delivered work (DESIGN.md §5): open one, record findings, let the annotating
side accept or dispute them, settle disputes, complete it — and, for a standard audit on a
stage-level project, accept, reject back to rework, or fix and deliver again.

A unit is what was delivered: the whole task (task-level delivery, ``stage_key`` empty) or
one annotate stage (stage-level delivery). Every step writes a TaskEvent; one transaction
per action, the task row locked first (as every task service does).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from blueprints import engine
from core.access import Action, actor_user, is_admin, project_allows, require
from core.exceptions import ApplicationError, Conflict, InvalidTransition
from projects.models import Project, Role
from projects.selectors import audit_settings
from tasks.models import Annotation, Delivery, Priority, StageRun, Task, TaskStatus
from tasks.services.base import as_id, event, lock_task, save_events, spec_for, task_sample
from tasks.services.comments import MAX_BODY
from tasks.services.stages import record_outcomes, runs_reopen
from tasks.services.sync import delivery_payload, sync_task

from .models import Audit, AuditedWork, AuditFinding
from .rollups import quality_touch

WORK_KINDS = {"annotate", "consensus"}


def unit_runs(task: Task, stage_key: str) -> list[StageRun]:
    """The annotate runs of a unit: the stage's (stage-level) or all the task's."""
    runs = task.runs.filter(kind__in=WORK_KINDS).exclude(status=StageRun.Status.SKIPPED)
    if stage_key:
        runs = runs.filter(stage_key=stage_key)
    return list(runs.select_related("assignee").order_by("stage_key", "replica"))


def _clean_text(value: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApplicationError(f"{field} must be text.", field=field)
    value = value.strip()
    if len(value) > MAX_BODY:
        raise ApplicationError(f"Keep the {field} under {MAX_BODY} characters.", field=field)
    return value


def _choice(value: Any, choices, field: str) -> str:
    if value not in choices.values:
        raise ApplicationError(f"{field} is one of {', '.join(choices.values)}.", field=field)
    return value


def _not_own_work(actor, runs: list[StageRun]) -> None:
    if actor_user(actor) is not None and any(r.assignee_id == actor.pk for r in runs):
        raise PermissionDenied("Nobody audits their own work.")


@transaction.atomic
def audit_create(
    *, actor, task: Task, stage: str | None = None, kind: str = "fixless", sampled: bool = False
) -> Audit:
    """Open an audit of a delivered unit. Refused: a stage on a task-level project, no stage
    on a stage-level one, a standard audit on task-level delivery, undelivered work, the
    auditor's own work, and a unit someone else is auditing. The same auditor opening it
    again gets their open audit back."""
    require(actor, task.project, Action.REVIEW, "Only reviewers and managers audit.")
    kind = _choice(kind, Audit.Kind, "kind")
    stage_key = stage or ""
    if not isinstance(stage_key, str):
        raise ApplicationError("stage must be a stage key.", field="stage")
    task = lock_task(task.pk)
    project = task.project
    if project.delivery == "task":
        if kind == Audit.Kind.STANDARD:
            raise ApplicationError(
                "A standard audit needs stage-level delivery: this project delivers whole "
                "tasks, so audit it with a fixless audit (findings only).",
                field="kind",
            )
        if stage_key:
            raise ApplicationError(
                "This project delivers whole tasks: audit the task, without a stage.",
                field="stage",
            )
    else:
        spec = spec_for(task.blueprint)
        found = spec.by_key.get(stage_key)
        if not stage_key or found is None or found.kind not in WORK_KINDS:
            raise ApplicationError(
                "This project delivers each stage: name the annotate stage to audit.",
                field="stage",
            )
    runs = unit_runs(task, stage_key)
    attempt = max((r.attempt for r in runs), default=1)
    delivered = task.deliveries.filter(stage_key=stage_key)
    if stage_key:
        delivered = delivered.filter(payload__attempt=attempt)
    if not runs or not delivered.exists():
        unit = f"Stage “{stage_key}”" if stage_key else "This task"
        raise InvalidTransition(
            f"{unit} has not been delivered yet: only delivered work is audited.",
            field="stage" if stage_key else "task",
        )
    _not_own_work(actor, runs)
    open_audit = Audit.objects.filter(
        task=task, stage_key=stage_key, status=Audit.Status.OPEN
    ).first()
    if open_audit is not None:
        if open_audit.auditor_id == getattr(actor, "pk", None):
            return open_audit
        who = open_audit.auditor.get_username() if open_audit.auditor else "someone"
        raise Conflict(f"{who} is auditing this already (audit #{open_audit.pk}).")
    now = timezone.now()
    audit = Audit.objects.create(
        project=project,
        task=task,
        stage_key=stage_key,
        attempt=attempt,
        kind=kind,
        sampled=sampled,
        auditor=actor_user(actor),
    )
    # What was delivered, per stage and annotator: accuracy's denominator.
    counts = Counter(
        (a.stage_key, a.author_id)
        for a in task.annotations.filter(
            stage_key__in={r.stage_key for r in runs}, invalid=False
        ).only("stage_key", "author_id")
    )
    AuditedWork.objects.bulk_create(
        AuditedWork(
            audit=audit,
            project=project,
            task=task,
            stage_key=key,
            annotator_id=author,
            annotations=n,
            current=False,
            completed_at=now,
        )
        for (key, author), n in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0))
    )
    save_events(
        [
            event(
                task,
                "audit_started",
                actor,
                stage_key,
                audit=audit.pk,
                audit_kind=kind,
                sampled=sampled,
            )
        ]
    )
    return audit


def _lock_audit(audit: Audit | int) -> tuple[Task, Audit]:
    audit_id = audit if isinstance(audit, int) else audit.pk
    task_id = Audit.objects.values_list("task_id", flat=True).get(pk=audit_id)
    task = lock_task(task_id)
    return task, Audit.objects.select_for_update().get(pk=audit_id)


def require_auditor(actor, audit: Audit, what: str = "works on the audit") -> None:
    """The auditor of ``audit`` (or a manager of its project): findings, settling and
    completing are theirs. The API checks it before reading the body, the services again."""
    require(actor, audit.project, Action.REVIEW, "Only reviewers and managers audit.")
    if actor_user(actor) is None or is_admin(actor):
        return
    if audit.auditor_id != actor.pk and not project_allows(actor, audit.project, Action.CHANGE):
        raise PermissionDenied(f"Only the auditor {what}.")


def _frames(value: Any, sample) -> tuple[int | None, int | None]:
    if value in (None, [], ""):
        return None, None
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise ApplicationError("frames is [start, end], two frame numbers.", field="frames")
    start, end = value
    if sample is None:
        raise ApplicationError("A frame range needs the sample it is in.", field="frames")
    if not 0 <= start <= end < max(sample.num_frames, 1):
        raise ApplicationError(
            f"frames must lie within 0–{sample.num_frames - 1} with start ≤ end.",
            field="frames",
        )
    return start, end


@transaction.atomic
def finding_add(
    *,
    actor,
    audit: Audit,
    type: Any,
    category: Any = "other",
    annotation: Any = None,
    attribute: Any = "",
    sample: Any = None,
    frames: Any = None,
    note: Any = "",
) -> AuditFinding:
    """Record a finding on an open audit: pinned to an annotation (optionally one of its
    attributes), a frame range of a sample, or the whole unit."""
    task, audit = _lock_audit(audit)
    require_auditor(actor, audit, "records findings")
    if audit.status != Audit.Status.OPEN:
        raise InvalidTransition("This audit is completed: open a new one.", field="audit")
    type = _choice(type, AuditFinding.Type, "type")
    category = _choice(category or "other", AuditFinding.Category, "category")
    note = _clean_text(note, "note")
    attribute = _clean_text(attribute, "attribute")
    runs = unit_runs(task, audit.stage_key)
    annotation_obj = None
    if annotation not in (None, ""):
        number = as_id(annotation, "annotation") or 0
        annotation_obj = (
            Annotation.objects.filter(
                pk=number, task=task, stage_key__in={r.stage_key for r in runs}
            )
            .select_related("sample")
            .first()
        )
        if annotation_obj is None:
            raise ApplicationError(
                "That annotation is not part of the audited work.", field="annotation"
            )
        if category == AuditFinding.Category.MISSING:
            raise ApplicationError(
                "A missing annotation cannot be pinned to an annotation: pin it to a sample "
                "and its frames, or to the whole unit.",
                field="category",
            )
    if attribute:
        if annotation_obj is None:
            raise ApplicationError("An attribute finding names its annotation.", field="attribute")
        cls = spec_for(task.blueprint).classes.get(annotation_obj.label)
        if cls is None or attribute not in {a.key for a in cls.attributes}:
            raise ApplicationError(
                f"{annotation_obj.label} has no attribute “{attribute}”.", field="attribute"
            )
    sample_obj = task_sample(task, sample) if sample not in (None, "") else None
    if annotation_obj is not None and sample_obj is None:
        sample_obj = annotation_obj.sample
    start, end = _frames(frames, sample_obj)
    annotator_id: int | None
    if annotation_obj is not None and annotation_obj.author_id:
        annotator_id = annotation_obj.author_id
        stage_key = annotation_obj.stage_key
    else:
        annotator_id, stage_key = _responsible(task, runs, audit.stage_key, sample_obj)
    finding = AuditFinding.objects.create(
        audit=audit,
        project_id=audit.project_id,
        task=task,
        stage_key=stage_key,
        annotator_id=annotator_id,
        type=type,
        category=category,
        annotation=annotation_obj,
        attribute=attribute,
        sample=sample_obj,
        frame_start=start,
        frame_end=end,
        note=note,
        author=actor_user(actor),
    )
    save_events(
        [
            event(
                task,
                "audit_finding",
                actor,
                audit.stage_key,
                audit=audit.pk,
                finding=finding.pk,
                type=type,
                category=category,
                annotation=annotation_obj.pk if annotation_obj else None,
            )
        ]
    )
    return finding


def _responsible(
    task: Task, runs: list[StageRun], stage_key: str, sample
) -> tuple[int | None, str]:
    """Whose work a finding not pinned to an annotation concerns: on a sample, whoever made
    most of the unit's annotations there; else the unit's first annotator."""
    if sample is not None:
        made = Counter(
            task.annotations.filter(
                sample=sample, stage_key__in={r.stage_key for r in runs}, invalid=False
            ).values_list("author_id", "stage_key")
        ).most_common(1)
        if made and made[0][0][0] is not None:
            return made[0][0]
    run = next((r for r in runs if r.assignee_id), runs[0] if runs else None)
    return (run.assignee_id if run else None), stage_key or (run.stage_key if run else "")


def _lock_finding(finding: AuditFinding | int) -> tuple[Task, Audit, AuditFinding]:
    finding_id = finding if isinstance(finding, int) else finding.pk
    audit_id = AuditFinding.objects.values_list("audit_id", flat=True).get(pk=finding_id)
    task, audit = _lock_audit(audit_id)
    return task, audit, AuditFinding.objects.select_for_update().get(pk=finding_id)


def _counts(finding: AuditFinding) -> bool:
    if finding.type != AuditFinding.Type.ERROR:
        return False
    if finding.state == AuditFinding.State.ACCEPTED:
        return True
    return finding.state == AuditFinding.State.SETTLED and bool(finding.upheld)


def _finding_saved(
    task: Task, audit: Audit, finding: AuditFinding, actor, kind: str, **data: Any
) -> AuditFinding:
    """Store an answered finding (whether it counts follows from its state), rebuild its
    audit's quality day, and write the event."""
    finding.counts = _counts(finding)
    finding.save()
    quality_touch(task.project_id, [audit.completed_at])  # rollups: its audit's day, if done
    save_events(
        [event(task, kind, actor, audit.stage_key, audit=audit.pk, finding=finding.pk, **data)]
    )
    return finding


@transaction.atomic
def finding_respond(*, actor, finding: AuditFinding, response: str, note: Any = "") -> AuditFinding:
    """The annotating side answers a finding: ``accept`` it (an error then counts against
    accuracy) or ``dispute`` it with their reasons (the auditor settles). Open to the
    annotator whose work it concerns and to managers; never to the finding's author."""
    if response not in {"accept", "dispute"}:
        raise ApplicationError("response is accept or dispute.", field="response")
    task, audit, finding = _lock_finding(finding)
    require(actor, task.project, Action.VIEW)
    manager = project_allows(actor, task.project, Action.CHANGE)
    mine = actor_user(actor) is not None and finding.annotator_id == actor.pk
    if not (mine or manager):
        raise PermissionDenied("Only the annotator whose work it concerns, or a manager, answers.")
    if actor_user(actor) is not None and finding.author_id == actor.pk:
        raise PermissionDenied("The auditor does not answer their own finding.")
    note = _clean_text(note, "note")
    allowed = {
        "accept": {AuditFinding.State.OPEN, AuditFinding.State.DISPUTED},
        "dispute": {AuditFinding.State.OPEN},
    }[response]
    if finding.state not in allowed:
        raise InvalidTransition(
            f"This finding is {finding.get_state_display().lower()}: it cannot be "
            f"{'accepted' if response == 'accept' else 'disputed'} now.",
            field="state",
        )
    if response == "dispute" and not note:
        raise ApplicationError("Say why you dispute it.", field="note")
    finding.state = (
        AuditFinding.State.ACCEPTED if response == "accept" else AuditFinding.State.DISPUTED
    )
    finding.response = note or finding.response
    finding.responded_by = actor_user(actor)
    return _finding_saved(task, audit, finding, actor, f"finding_{finding.state}", note=note)


@transaction.atomic
def finding_settle(*, actor, finding: AuditFinding, uphold: Any, note: Any = "") -> AuditFinding:
    """The auditor (or a manager) settles a disputed finding: upheld (an error then counts)
    or withdrawn."""
    if not isinstance(uphold, bool):
        raise ApplicationError("uphold is true or false.", field="uphold")
    task, audit, finding = _lock_finding(finding)
    require_auditor(actor, audit, "settles disputes")
    if finding.state != AuditFinding.State.DISPUTED:
        raise InvalidTransition(
            f"Only a disputed finding is settled; this one is "
            f"{finding.get_state_display().lower()}.",
            field="state",
        )
    finding.state, finding.upheld = AuditFinding.State.SETTLED, uphold
    finding.resolution = _clean_text(note, "note")
    return _finding_saved(
        task, audit, finding, actor, "finding_settled", upheld=uphold, note=finding.resolution
    )


def _make_current(audit: Audit, now) -> None:
    """This audit's findings and work count from now on; the unit's earlier audits' stop."""
    earlier = Audit.objects.filter(task=audit.task_id, stage_key=audit.stage_key).exclude(
        pk=audit.pk
    )
    # Quality rollups: today, and the days of the earlier audits that stop counting.
    superseded = earlier.filter(current=True).values_list("completed_at", flat=True)
    quality_touch(audit.project_id, [now, *superseded])
    earlier.filter(current=True).update(current=False)
    AuditFinding.objects.filter(audit__in=earlier, current=True).update(current=False)
    AuditedWork.objects.filter(audit__in=earlier, current=True).update(current=False)
    audit.findings.update(current=True)
    audit.work.update(current=True, completed_at=now)
    audit.current = True


@transaction.atomic
def audit_complete(*, actor, audit: Audit, decision: Any = None, note: Any = "") -> Audit:
    """Complete an audit. Fixless: its findings are the result (no findings: "no errors").
    Standard: ``accept`` (delivered again, marked, when it fixed annotations) or ``reject``
    (the stage goes back to its annotator for rework, attempt + 1, downstream reset, the
    findings as feedback)."""
    task, audit = _lock_audit(audit)
    require_auditor(actor, audit, "completes the audit")
    if audit.status != Audit.Status.OPEN:
        raise InvalidTransition("This audit is completed already.", field="audit")
    decision = decision or Audit.Decision.ACCEPT
    if decision not in {Audit.Decision.ACCEPT, Audit.Decision.REJECT}:
        raise ApplicationError("decision is accept or reject.", field="decision")
    if decision == Audit.Decision.REJECT and audit.kind != Audit.Kind.STANDARD:
        raise ApplicationError(
            "A fixless audit changes nothing: record error findings instead of rejecting.",
            field="decision",
        )
    if decision == Audit.Decision.REJECT and task.status == TaskStatus.DATA_SUBMITTED:
        raise InvalidTransition(
            "This task's data was submitted to training: it cannot go back to rework.",
            field="decision",
        )
    note = _clean_text(note, "note")
    now = timezone.now()
    spec = spec_for(task.blueprint)
    runs = unit_runs(task, audit.stage_key)
    events: list = []
    audit.status, audit.decision, audit.note, audit.completed_at = (
        Audit.Status.COMPLETED,
        decision,
        note,
        now,
    )
    audit.annotation_count = sum(w.annotations for w in audit.work.all())
    audit.fixed = audit.fixes.exists()
    _make_current(audit, now)
    if audit.kind == Audit.Kind.STANDARD:
        record_outcomes(
            task, runs, accepted=decision == Audit.Decision.ACCEPT, actor=actor, source="audit"
        )
        if decision == Audit.Decision.REJECT:
            findings = [
                f"{f.get_type_display()} ({f.get_category_display().lower()})"
                + (f": {f.note}" if f.note else "")
                for f in audit.findings.all()
            ]
            feedback = f"Audit #{audit.pk} sent this back for rework."
            if note:
                feedback += f" {note}"
            if findings:
                feedback += " Findings: " + "; ".join(findings)
            runs_reopen(
                task,
                spec,
                engine.rework,
                {audit.stage_key},
                {audit.stage_key},
                feedback,
                actor,
                events,
            )
            sync_task(task, actor, events)
        elif audit.fixed:
            _deliver_fixed(task, audit, runs, events)
    audit.save()
    events.append(
        event(
            task,
            "audit_completed",
            actor,
            audit.stage_key,
            audit=audit.pk,
            audit_kind=audit.kind,
            decision=decision,
            fixed=audit.fixed,
            findings=audit.findings.count(),
        )
    )
    save_events(events)
    return audit


def _deliver_fixed(task: Task, audit: Audit, runs: list[StageRun], events: list) -> None:
    """A fixed stage is delivered again, its fixes marked (before and after)."""
    from tasks.webhooks import queue_callback

    annotations = list(task.annotations.filter(stage_key=audit.stage_key, invalid=False))
    payload = delivery_payload(task, annotations, stage=audit.stage_key)
    payload["attempt"] = audit.attempt
    payload["audit"] = {
        "id": audit.pk,
        "fixed": True,
        "fixes": [
            {
                "action": f.action,
                "annotation": f.annotation_id,
                "before": f.before,
                "after": f.after,
            }
            for f in audit.fixes.all()
        ],
    }
    fixed_ids = {f.annotation_id for f in audit.fixes.all()}
    for record in payload["annotations"]:
        record["fixed"] = record["id"] in fixed_ids
    delivery = Delivery.objects.create(
        task=task,
        stage_key=audit.stage_key,
        payload=payload,
        callback=Delivery.Callback.PENDING if task.callback_url else Delivery.Callback.NONE,
    )
    events.append(
        event(task, "delivered", None, audit.stage_key, delivery=delivery.pk, audit=audit.pk)
    )
    if task.callback_url:
        queue_callback(delivery)


def audit_queue(*, actor):
    """Delivered units drawn for audit (the project's audit percentage, a reproducible draw
    per unit) that nobody has audited since they were delivered, excluding the actor's own
    work: most urgent first, then the earliest due, then the oldest delivery."""
    projects = Project.objects.all()
    if not is_admin(actor):
        projects = projects.filter(
            memberships__user=actor_user(actor),
            memberships__role__in=[Role.REVIEWER, Role.MANAGER],
        ).distinct()
    drawn = Q(pk__in=[])
    for project in projects:
        percent, _ = audit_settings(project)
        if percent > 0:
            drawn |= Q(task__project=project, audit_draw__lt=percent)
    audited = Audit.objects.filter(
        task=OuterRef("task"),
        stage_key=OuterRef("stage_key"),
        created_at__gte=OuterRef("created_at"),
    )
    own = StageRun.objects.filter(
        task=OuterRef("task"), assignee=actor_user(actor), kind__in=WORK_KINDS
    )
    own_stage = own.filter(stage_key=OuterRef("stage_key"))
    return (
        Delivery.objects.filter(drawn, task__deleted_at=None)  # a deleted task awaiting its purge
        .exclude(payload__has_key="audit")  # a fixed stage's redelivery is not a new unit
        .filter(~Exists(audited))
        .exclude(Q(stage_key="") & Exists(own))
        .exclude(~Q(stage_key="") & Exists(own_stage))
        .select_related("task", "task__project")
        .annotate(rank=Priority.rank("task__priority"))
        .order_by("-rank", F("task__due_at").asc(nulls_last=True), "created_at", "id")
    )


def audit_claim_next(*, actor) -> Audit | None:
    """Open an audit of the next delivered unit in the audit queue (Audit next); two
    auditors pressing it at once get different units."""
    for delivery in audit_queue(actor=actor)[:50]:
        _, kind = audit_settings(delivery.task.project)
        try:
            with transaction.atomic():
                return audit_create(
                    actor=actor,
                    task=delivery.task,
                    stage=delivery.stage_key or None,
                    kind=kind,
                    sampled=True,
                )
        except (ApplicationError, PermissionDenied, IntegrityError):
            continue  # taken meanwhile, or no longer deliverable
    return None


__all__ = [
    "audit_claim_next",
    "audit_complete",
    "audit_create",
    "audit_queue",
    "audit_settings",
    "finding_add",
    "finding_respond",
    "finding_settle",
    "require_auditor",
    "unit_runs",
]
