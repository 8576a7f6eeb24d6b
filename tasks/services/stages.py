"""Stage actions: start, submit, review, consensus, and claiming the next run."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from audits.measures import agreement_scores, completeness
from audits.models import AgreementScore, ReviewOutcome
from audits.rollups import quality_today, quality_touch
from blueprints import engine
from blueprints.spec import ConsensusStage, ReviewStage
from core.access import actor_user
from core.exceptions import ApplicationError, InvalidTransition
from projects.models import Membership, Role, Sample

from ..checks import run_checks
from ..models import Annotation, Comment, InvalidSample, Priority, StageRun, Task, TaskEvent
from .access import may_work, run_for
from .base import event, lock_task, save_events, spec_for, task_runs
from .comments import MAX_BODY, pin_target
from .eligibility import run_eligibility
from .prelabels import unaccepted_prelabels
from .review import open_verdicts, settle_on_approve_many
from .sampling import stage_samples
from .sync import Synced, aggregate_runs, runs_save, sync_plan, sync_task, syncs_write
from .timing import stage_release_expired

logger = logging.getLogger(__name__)
User = get_user_model()


@transaction.atomic
def stage_start(*, actor, task: Task, stage_key: str) -> StageRun:
    task = lock_task(task.pk, actor)
    action = start_decide(task, actor, stage_key)
    actions_write([action], actor)
    return action.run


@dataclass
class StageAction:
    """One task's stage action, decided in memory on the locked task (``start_decide``,
    ``review_decide``) and written with others by ``actions_write``: the per-task services
    write one, the batch services (tasks.services.batch_stages) many at once."""

    task: Task
    run: StageRun
    events: list[TaskEvent] = field(default_factory=list)
    plan: Synced | None = None  # None: nothing to write (started twice)
    outcomes: list[ReviewOutcome] = field(default_factory=list)
    note: Comment | None = None  # the decision's comment, saved with its event's id
    decided: TaskEvent | None = None
    settle: str = ""  # an approve's review stage: its earlier rounds' open verdicts settle
    days: list = field(default_factory=list)  # the quality days the action changes


def start_decide(task: Task, actor, stage_key: str, loader=None) -> StageAction:
    """Start the actor's run of the stage on the locked task (nothing when they hold it in
    progress already: starting twice is harmless). ``loader``: reads the task's annotations
    if the engine asks (a batch's, ``BatchAnnotations``)."""
    spec = spec_for(task.blueprint)
    run = run_for(task, stage_key, actor, starting=True)
    may_work(actor, task, run, spec)
    if run.status == StageRun.Status.IN_PROGRESS and run.assignee_id == actor.pk:
        return StageAction(task, run)
    if run.status != StageRun.Status.READY:
        raise InvalidTransition(
            f"Stage “{stage_key}” is {run.get_status_display().lower()}, not ready.", field="stage"
        )
    run.status, run.assignee, run.started_at = StageRun.Status.IN_PROGRESS, actor, timezone.now()
    events = [
        event(task, "stage_started", actor, stage_key, replica=run.replica, attempt=run.attempt)
    ]
    plan = sync_plan(task, events, changed={run.pk: (run, set(STARTED))}, loader=loader)
    return StageAction(task, run, events, plan)


def actions_write(actions: list[StageAction], actor) -> None:
    """Write decided stage actions, however many, in a bounded number of statements: their
    comments, review outcomes, settled verdicts, quality marks (one per project), the runs
    and statuses the engine moved (``syncs_write``) and every event, each kind in one
    INSERT or UPDATE."""
    notes = [a.note for a in actions if a.note is not None]
    if len(notes) == 1:
        notes[0].save()
    elif notes:
        Comment.objects.bulk_create(notes)
    for a in actions:
        if a.note is not None and a.decided is not None:
            a.decided.data["comment_id"] = a.note.pk
    outcomes = [o for a in actions for o in a.outcomes]
    if outcomes:
        ReviewOutcome.objects.bulk_create(outcomes)
    settle_on_approve_many([(a.task, a.settle) for a in actions if a.settle], actor)
    days: dict[int, list] = {}
    for a in actions:
        if a.days:
            days.setdefault(a.task.project_id, []).extend(a.days)
    for project_id, marked in days.items():
        quality_touch(project_id, marked)
    events = [e for a in actions for e in a.events]
    plans = [a.plan for a in actions if a.plan is not None]
    if plans:
        syncs_write(plans, actor, events)
    if events:
        save_events(events)


STARTED = ("status", "assignee", "started_at")


def _samples(task: Task) -> tuple[list[Sample], list[int]]:
    """The task's usable samples (those not marked invalid for it), in the order of its
    datasets and their samples, and the ids of all its samples (a ``sampling`` draw runs over
    them all): one query, none for a task without datasets."""
    if not task._dataset_list:
        return [], []
    position = {d.pk: i for i, d in enumerate(task._dataset_list)}
    every = list(
        Sample.objects.filter(dataset__in=list(position)).annotate(
            unusable=Exists(InvalidSample.objects.filter(task=task, sample=OuterRef("pk")))
        )
    )
    every.sort(key=lambda s: (position[s.dataset_id], s.index, s.pk))
    ids = sorted(s.pk for s in every)
    return [s for s in every if not s.unusable], ids


@transaction.atomic
def stage_submit(*, actor, task: Task, stage_key: str) -> StageRun:
    """Submit annotate work: the stage's checks run first and refuse with their messages."""
    task = lock_task(task.pk, actor)
    spec = spec_for(task.blueprint)
    run = run_for(task, stage_key, actor)
    stage = spec.by_key[stage_key]
    if isinstance(stage, ReviewStage) or stage.kind == "logic":
        raise ApplicationError(
            f"“{stage_key}” is not annotation work: review it instead.", field="stage"
        )
    may_work(actor, task, run, spec)
    if run.status != StageRun.Status.IN_PROGRESS:
        raise InvalidTransition(
            f"Stage “{stage_key}” is {run.get_status_display().lower()}, not in progress.",
            field="stage",
        )
    everything = list(task.annotations.select_related("sample"))  # sync_task's too
    annotations = [a for a in everything if a.stage_key == stage_key and a.replica == run.replica]
    if pending := unaccepted_prelabels(annotations):
        raise ApplicationError(
            f"{pending} pre-label(s) are neither accepted nor deleted: accept or delete them "
            "first (Accept all / Delete all pre-labels).",
            field="prelabels",
        )
    samples, every = _samples(task)
    samples = stage_samples(task=task, stage=stage, samples=samples, every=every)  # its draw
    found = run_checks(spec, stage, annotations, samples)
    # A `severity: warn` check flags the work for reviewers (QC flags); only errors block.
    failures = [f for f in found if getattr(f, "severity", "error") != "warn"]
    warnings = [str(f) for f in found if getattr(f, "severity", "error") == "warn"]
    if failures:
        by_sample: dict[str, list[str]] = {}
        for failure in failures:
            for sample_id in getattr(failure, "samples", ()):
                note = getattr(failure, "note", "") or str(failure)
                by_sample.setdefault(str(sample_id), []).append(note)
        raise ApplicationError(
            "The stage's checks failed.",
            field="checks",
            extra={"checks": [str(f) for f in failures], "by_sample": by_sample},
        )
    now = timezone.now()
    run.submitted_at = now
    run.active_seconds += (now - run.started_at).total_seconds() if run.started_at else 0
    run.samples_total, run.samples_complete = completeness(spec, stage, annotations, samples)
    run.qc_flags = warnings
    events = [
        event(
            task,
            "stage_submitted",
            actor,
            stage_key,
            replica=run.replica,
            attempt=run.attempt,
            **({"qc_flags": warnings} if warnings else {}),
        )
    ]
    measured = {"submitted_at", "active_seconds", "samples_total", "samples_complete", "qc_flags"}
    quality_today(task.project_id)  # quality rollups: today's completeness changed
    if isinstance(stage, ConsensusStage):
        run.status = StageRun.Status.SUBMITTED
        run.save(update_fields=["status", *sorted(measured)])
        _consensus(task, stage, events, everything)
        changed = {}
    else:
        run.status, run.completed_at = StageRun.Status.COMPLETED, now
        changed = {run.pk: (run, {"status", "completed_at", *measured})}
        _double_annotation(task, spec, stage, run, annotations, everything)
    sync_task(task, actor, events, annotations=everything, changed=changed)
    save_events(events)
    return run


def _store_agreement(task: Task, stage_key: str, scores: list) -> None:
    """The quality figures' consistency rows of one stage of a task, replacing those of an
    earlier attempt (their days are rebuilt too)."""
    earlier = AgreementScore.objects.filter(task=task, stage_key=stage_key)
    days = list(earlier.values_list("created_at", flat=True))
    earlier.delete()
    quality_touch(task.project_id, [timezone.now(), *days])
    AgreementScore.objects.bulk_create(
        AgreementScore(
            project_id=task.project_id,
            task=task,
            stage_key=stage_key,
            measure=s.measure,
            annotator_a=s.a,
            annotator_b=s.b,
            score=s.score,
        )
        for s in scores
    )


def _double_annotation(
    task: Task, spec, stage, run: StageRun, annotations: list, everything: list[Annotation]
) -> None:
    """Double annotation outside consensus: another completed annotate stage of the task
    that adds some of the same classes — its work and this one's on those classes are
    compared (box IoU, temporal IoU, alpha) as two annotators on the same samples."""
    shared_with = {
        other.key: set(stage.classes) & set(other.classes)
        for other in spec.stages
        if other.key != stage.key and other.kind == "annotate"
        and set(stage.classes) & set(other.classes)
    }  # fmt: skip
    if not shared_with:
        return
    others = [
        r
        for r in task_runs(task)
        if r.stage_key in shared_with and r.status == StageRun.Status.COMPLETED
    ]
    scores = []
    for other in others:
        shared = shared_with[other.stage_key]
        theirs = [
            a
            for a in everything
            if a.stage_key == other.stage_key and a.label in shared and not a.invalid
        ]
        mine = [a for a in annotations if a.label in shared and not a.invalid]
        scores += agreement_scores([(other.assignee, theirs), (run.assignee, mine)])
    if scores:
        _store_agreement(task, stage.key, scores)


def _consensus(
    task: Task, stage: ConsensusStage, events: list, everything: list[Annotation]
) -> None:
    from ..agreement import agreement

    runs = [r for r in task_runs(task) if r.stage_key == stage.key]
    if any(r.status != StageRun.Status.SUBMITTED for r in runs):
        return
    by_replica: dict[int, list[Annotation]] = {r.replica: [] for r in runs}
    for a in everything:
        if a.stage_key == stage.key and not a.invalid:
            by_replica.setdefault(a.replica, []).append(a)
    score = agreement(list(by_replica.values()))
    # The quality figures' consistency: per pair of annotators and per measure.
    people = {r.replica: r.assignee for r in runs}
    _store_agreement(
        task,
        stage.key,
        agreement_scores(
            [(people.get(replica), found) for replica, found in sorted(by_replica.items())]
        ),
    )
    routed = engine.DISAGREEMENT if score < stage.agreement else ""
    for r in runs:
        r.status, r.agreement, r.completed_at = StageRun.Status.COMPLETED, score, timezone.now()
        r.routed_to = routed
    StageRun.objects.bulk_update(runs, ["status", "agreement", "completed_at", "routed_to"])
    events.append(
        event(
            task,
            "consensus",
            None,
            stage.key,
            agreement=score,
            threshold=stage.agreement,
            agreed=score >= stage.agreement,
        )
    )


@transaction.atomic
def stage_review(
    *,
    actor,
    task: Task,
    stage_key: str,
    decision: str,
    comment: str = "",
    sample: Any = None,
    frame: Any = None,
    annotation: Any = None,
) -> StageRun:
    """Approve, or reject: the reviewed stages reopen for the same annotators (attempt + 1,
    the comment as feedback) and everything downstream of them is evaluated again.

    The comment is also kept as a Comment (a problem when rejecting), pinned to the
    sample, frame and annotation it concerns when given."""
    if decision not in {"approve", "reject"}:
        raise ApplicationError("decision is approve or reject.", field="decision")
    comment = comment.strip() if isinstance(comment, str) else ""
    if len(comment) > MAX_BODY:
        raise ApplicationError(f"Keep the comment under {MAX_BODY} characters.", field="comment")
    task = lock_task(task.pk, actor, outcomes=True)
    pin = pin_target(task, sample, frame, annotation, actor)
    action = review_decide(task, actor, stage_key, decision, comment, pin)
    actions_write([action], actor)
    return action.run


def review_decide(
    task: Task, actor, stage_key: str, decision: str, comment: str, pin: dict, loader=None
) -> StageAction:
    """A review's decision on the locked task (read with ``outcomes``), in memory: the
    checks, the run's change, the reopened runs of a reject, the outcomes, the comment to
    save (``pin``: where it points), the events and the engine's step."""
    spec = spec_for(task.blueprint)
    stage = spec.by_key.get(stage_key)
    if not isinstance(stage, ReviewStage):
        raise ApplicationError(f"“{stage_key}” is not a review stage.", field="stage")
    run = run_for(task, stage_key, actor, starting=True)
    may_work(actor, task, run, spec)
    # The runs this decision changes, stored together by syncs_write (one UPDATE).
    changed: dict[int, tuple[StageRun, set[str]]] = {}
    if run.status == StageRun.Status.READY:  # deciding on a ready review starts it
        run.status, run.assignee, run.started_at = (
            StageRun.Status.IN_PROGRESS,
            actor,
            timezone.now(),
        )
        changed[run.pk] = (run, set(STARTED))
    if run.status != StageRun.Status.IN_PROGRESS:
        raise InvalidTransition(
            f"Review “{stage_key}” is {run.get_status_display().lower()}, not in progress.",
            field="stage",
        )
    # Review per annotation (tasks.services.review): an approve may not leave this round's
    # rejections behind (earlier rounds' are settled by it); a reject's feedback concerns the
    # stages of its pinned annotation and of the annotations rejected or marked missing, and
    # only those when there are any (every reviewed stage otherwise).
    flagged = open_verdicts(task, stage, stage_key)
    if decision == "approve" and flagged:
        raise ApplicationError(
            f"{len(flagged)} annotation{'s are' if len(flagged) > 1 else ' is'} rejected or "
            "marked missing in this review: accept them, or reject the stage.",
            field="decision",
        )
    concerns = set(flagged)
    if pin["annotation"] is not None and pin["annotation"].stage_key in stage.reviews:
        concerns.add(pin["annotation"].stage_key)
    concerns = concerns or set(stage.reviews)
    note = None
    if comment:
        note = Comment(
            task=task,
            kind=Comment.Kind.PROBLEM if decision == "reject" else Comment.Kind.COMMENT,
            body=comment,
            # The stage it concerns when that is one (its feedback shows there only).
            stage_key=next(iter(concerns))
            if decision == "reject" and len(concerns) == 1
            else stage_key,
            author=actor,
            **pin,
        )
    reviewed_runs = [
        r
        for r in task_runs(task)
        if r.stage_key in stage.reviews and r.status != StageRun.Status.SKIPPED
    ]
    first_pass = all(r.attempt == 1 for r in reviewed_runs)
    days: list = [timezone.localdate()]  # the quality days this decision changes
    outcomes = review_outcomes(
        task, reviewed_runs, accepted=decision == "approve", actor=actor, source="review"
    )
    decided = event(
        task,
        {"approve": "review_approved", "reject": "review_rejected"}[decision],
        actor,
        stage_key,
        comment=comment,
        comment_id=None,  # the note's, once saved (actions_write)
        first_pass=first_pass,
        **({"concerns": sorted(concerns), "flagged": len(flagged)} if decision == "reject" else {}),
    )
    events = [decided]
    now = timezone.now()
    if decision == "approve":
        run.status, run.completed_at = StageRun.Status.COMPLETED, now
        changed.setdefault(run.pk, (run, set()))[1].update({"status", "completed_at"})
    else:
        runs_reopen(
            task,
            spec,
            engine.reopen,
            stage_key,
            set(stage.reviews),
            comment,
            actor,
            events,
            days=days,
            changed=changed,
            concerns=concerns,
        )
    plan = sync_plan(task, events, changed=changed, loader=loader)
    return StageAction(
        task,
        run,
        events,
        plan,
        outcomes=outcomes,
        note=note,
        decided=decided,
        settle=stage_key if decision == "approve" else "",
        days=days,
    )


def runs_reopen(
    task: Task,
    spec,
    change,
    target: Any,
    reworked: set[str],
    feedback: str,
    actor,
    events: list,
    *,
    days: list | None = None,
    changed: dict[int, tuple[StageRun, set[str]]] | None = None,
    concerns: set[str] | None = None,
) -> None:
    """Persist a reopening the engine decides (``change(spec, runs, target)``: a review's
    reject, or a standard audit's): the reworked runs go back to their annotators in progress
    with ``feedback``, the runs downstream are reset to be decided again; one event each.

    ``days``: a list to add the quality days to mark (else marked here); ``changed``: the
    caller's runs to store (``sync_task``), else the runs are stored here; ``concerns``: the
    reworked stages the feedback is about (the others reopen without it), else all."""
    runs = task_runs(task)
    current: dict[str, engine.Run] = {}
    for r in runs:
        current.setdefault(
            r.stage_key, aggregate_runs([x for x in runs if x.stage_key == r.stage_key])
        )
    reopened = change(spec, current, target)
    now = timezone.now()
    # Quality rollups: the reopened runs' submissions stop counting (their days) and today.
    touched = [now, *(r.submitted_at for r in runs)]
    if days is None:
        quality_touch(task.project_id, touched)
    else:
        days += touched
    moved: dict[int, tuple[StageRun, set[str]]] = {} if changed is None else changed
    for r in runs:
        state = reopened[r.stage_key]
        if state == current[r.stage_key]:
            continue
        moved.setdefault(r.pk, (r, set()))[1].update(REOPENED)
        r.attempt, r.routed_to, r.reason, r.rejected = state.attempt, "", "", state.rejected
        r.started_at = r.submitted_at = r.completed_at = None
        if r.stage_key in reworked:
            r.feedback = feedback if concerns is None or r.stage_key in concerns else ""
            events.append(
                event(
                    task,
                    "stage_reopened",
                    actor,
                    r.stage_key,
                    attempt=r.attempt,
                    assignee=r.assignee.username if r.assignee else None,
                    # Which reject reopened it and the stages its feedback concerns: the
                    # workspace says why a stage came back without feedback of its own.
                    **({"review": target, "concerns": sorted(concerns)} if concerns else {}),
                )
            )
        if state.status == engine.IN_PROGRESS:
            r.status, r.started_at = StageRun.Status.IN_PROGRESS, now
        else:
            # Reset to be decided again; the person who did it is remembered.
            r.status = StageRun.Status.BLOCKED
    if changed is None:
        runs_save(moved)


REOPENED = (
    "status",
    "attempt",
    "rejected",
    "feedback",
    "routed_to",
    "reason",
    "started_at",
    "submitted_at",
    "completed_at",
)


def record_outcomes(
    task: Task,
    runs: list[StageRun],
    *,
    accepted: bool,
    actor,
    source: str,
    days: list | None = None,
) -> None:
    """One ReviewOutcome per decided run (``review_outcomes``), written now.
    ``days``: a list to add today to (the caller marks the quality days), else marked here."""
    if days is None:
        quality_today(task.project_id)  # quality rollups: today's review outcomes changed
    else:
        days.append(timezone.localdate())
    ReviewOutcome.objects.bulk_create(
        review_outcomes(task, runs, accepted=accepted, actor=actor, source=source)
    )


def review_outcomes(
    task: Task, runs: list[StageRun], *, accepted: bool, actor, source: str
) -> list[ReviewOutcome]:
    """One ReviewOutcome per decided run, not saved; ``first`` on the first decision of a
    first attempt (the first-pass rate's denominator), whoever decided it, review or
    standard audit."""
    decided: set[tuple[str, int]] = task.__dict__.get("_decided", set())  # read with the lock
    if "_decided" not in task.__dict__ and any(r.attempt == 1 for r in runs):
        decided = set(
            ReviewOutcome.objects.filter(
                task=task, stage_key__in={r.stage_key for r in runs}, attempt=1
            ).values_list("stage_key", "replica")
        )
    return [
        ReviewOutcome(
            project_id=task.project_id,
            task=task,
            stage_key=r.stage_key,
            replica=r.replica,
            attempt=r.attempt,
            annotator_id=r.assignee_id,
            decided_by=actor_user(actor),
            source=source,
            accepted=accepted,
            first=r.attempt == 1 and (r.stage_key, r.replica) not in decided,
        )
        for r in runs
    ]


def stage_claim_next(*, actor, review: bool = False) -> StageRun | None:
    """Claim the next ready annotate run that fits the annotator's skills and capacity
    (or, with ``review``, the next ready review run for a reviewer — never of their own
    work): the runs reserved for them first (a manager's assignment), then unassigned runs,
    highest priority first, then the earliest due date. Who may take a run is
    tasks.services.eligibility's one definition. Two people claiming at once never get the
    same run."""
    from django.db.models import Case, Count, Exists, F, OuterRef, Q, When

    stage_release_expired()  # runs past their stage's time limit are free to claim again
    kinds = ["review"] if review else ["annotate", "consensus"]
    # Tasks that name their annotators (reviewers) are only for them; others for anyone.
    people = Task.reviewers if review else Task.annotators
    named = people.through.objects.filter(task=OuterRef("task"))
    role = Role.REVIEWER if review else Role.ANNOTATOR
    held = list(Membership.objects.filter(user=actor))
    memberships = {m.project_id: m for m in held if m.role == role}
    if not memberships:
        return None
    mine_open = StageRun.objects.filter(
        assignee=actor, status=StageRun.Status.IN_PROGRESS, kind__in=kinds
    )
    open_runs = dict(mine_open.values_list("task__project").annotate(n=Count("id")))
    projects = [p for p, m in memberships.items() if open_runs.get(p, 0) < m.capacity]
    if not projects:
        return None
    candidates = (
        StageRun.objects.filter(
            Q(assignee__isnull=True) | Q(assignee=actor),
            task__project__in=projects,
            status=StageRun.Status.READY,
            kind__in=kinds,
        )
        .filter(~Exists(named) | Exists(named.filter(user=actor)))
        .select_related("task", "task__blueprint", "task__project")
        .prefetch_related("task__annotators", "task__reviewers", "task__runs")
        .annotate(
            rank=Priority.rank("task__priority"),
            reserved=Case(When(assignee=actor, then=1), default=0),
        )
        .order_by(
            "-reserved",
            "-rank",
            F("task__due_at").asc(nulls_last=True),
            "task__created_at",
            "id",
        )
    )
    # No locks on the candidates: stage_start locks the task and re-checks the run, so two
    # people claiming at once never get the same run. The capacity check and the claim are
    # one decision: the person's membership row is locked first (always before a task), so
    # one person's simultaneous claims queue up and are counted one after another.
    full: set[int] = set()
    offset, page = 0, 100
    while offset < 2000:
        batch = list(candidates[offset : offset + page])
        if not batch:
            return None
        for run in batch:
            project_id = run.task.project_id
            if project_id in full:
                continue
            spec = spec_for(run.task.blueprint)
            if run_eligibility(actor, run.task, run, spec, held) is not None:
                continue  # skills, their own work, another replica of the consensus …
            # This person's runs of the stage, but for this one while it waits reserved for
            # them: one they hold already (another claim of theirs took it) means skip.
            mine = StageRun.objects.filter(
                task=run.task_id, stage_key=run.stage_key, assignee=actor
            ).exclude(pk=run.pk, status=StageRun.Status.READY)
            try:
                with transaction.atomic():
                    membership = Membership.objects.select_for_update().get(
                        pk=memberships[project_id].pk
                    )
                    if mine_open.filter(task__project=project_id).count() >= membership.capacity:
                        full.add(project_id)
                        continue
                    if mine.exists():
                        continue  # this person's other claim took it meanwhile
                    started = stage_start(actor=actor, task=run.task, stage_key=run.stage_key)
            except (InvalidTransition, PermissionDenied):
                continue  # taken meanwhile, or not for this annotator
            if started.assignee_id == actor.pk and started.status == StageRun.Status.IN_PROGRESS:
                return started
        if len(full) == len(projects):
            return None
        offset += page
    return None
