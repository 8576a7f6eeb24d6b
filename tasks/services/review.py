"""Review per annotation: a reviewer accepts or rejects each annotation of the stages they
review, or marks one missing (a sample, frame, label and optional region), the comment
pinned where it applies. The feedback concerns the stage whose work it is about — it shows
there only — and a reject of the review stage reopens those stages with it flagged.

(An auditor's per-annotation feedback is the audits app's findings, AuditFinding.)"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from blueprints.spec import ReviewStage
from core.access import actor_user
from core.exceptions import ApplicationError, InvalidTransition

from ..models import Annotation, AnnotationReview, Comment, StageRun, Task
from ..validation import clean_data
from .access import may_work, run_for
from .base import as_id, event, lock_task, save_events, spec_for, task_runs
from .comments import MAX_BODY, pin_target
from .sync import sync_task

VERDICTS = {
    "accept": AnnotationReview.Verdict.ACCEPTED,
    "reject": AnnotationReview.Verdict.REJECTED,
    "missing": AnnotationReview.Verdict.MISSING,
}
OPEN = (AnnotationReview.Verdict.REJECTED, AnnotationReview.Verdict.MISSING)


def _review_stage(task: Task, review_stage: str) -> ReviewStage:
    stage = spec_for(task.blueprint).by_key.get(review_stage)
    if not isinstance(stage, ReviewStage):
        raise ApplicationError(f"“{review_stage}” is not a review stage.", field="stage")
    return stage


def _reviewing_run(task: Task, review_stage: str, actor) -> StageRun:
    """The actor's review run, in progress (a ready one is started, as deciding it does)."""
    spec = spec_for(task.blueprint)
    run = run_for(task, review_stage, actor, starting=True)
    may_work(actor, task, run, spec)
    if run.status == StageRun.Status.READY:
        run.status, run.assignee, run.started_at = (
            StageRun.Status.IN_PROGRESS,
            actor,
            timezone.now(),
        )
        events = [
            event(
                task, "stage_started", actor, review_stage, replica=run.replica, attempt=run.attempt
            )
        ]
        sync_task(
            task, actor, events, changed={run.pk: (run, {"status", "assignee", "started_at"})}
        )
        save_events(events)
    if run.status != StageRun.Status.IN_PROGRESS:
        raise InvalidTransition(
            f"Review “{review_stage}” is {run.get_status_display().lower()}, not in progress.",
            field="stage",
        )
    return run


def review_fix_run(*, actor, task: Task, stage_key: str, review_stage: Any) -> StageRun:
    """The actor's review run in progress through which they correct in place an annotation
    of ``stage_key`` (a reviewed stage) — where the review stage says ``allow_fixes``; the
    fix is recorded before/after by ``record_review_fix``. Refused (403) otherwise."""
    if not isinstance(review_stage, str) or not review_stage:
        raise ApplicationError("Name the review stage you fix in.", field="review")
    reviewing = spec_for(task.blueprint).by_key.get(review_stage)
    if not isinstance(reviewing, ReviewStage):
        raise ApplicationError(f"“{review_stage}” is not a review stage.", field="review")
    if stage_key not in reviewing.reviews:
        raise PermissionDenied(
            f"“{review_stage}” reviews {', '.join(reviewing.reviews)}, not “{stage_key}”."
        )
    if not reviewing.allow_fixes:
        raise PermissionDenied(
            f"Review “{review_stage}” does not allow fixes: accept or reject the annotation "
            "(with a comment) instead."
        )
    run = run_for(task, review_stage, actor)
    may_work(actor, task, run, spec_for(task.blueprint))
    if run.status != StageRun.Status.IN_PROGRESS or run.assignee_id != actor.pk:
        raise PermissionDenied(
            f"Fix annotations while your review “{review_stage}” is in progress (start it first)."
        )
    return run


def record_review_fix(
    *, actor, task: Task, review_stage: str, action: str, before: dict, after: dict | None
) -> None:
    """One TaskEvent per fix, in the stage whose annotation it changed: before and after
    (``after`` None: deleted)."""
    save_events(
        [
            event(
                task,
                "annotation_fixed_in_review",
                actor,
                before["stage"],
                review_stage=review_stage,
                annotation=before["id"],
                label=before["label"],
                action=action,
                before=before,
                after=after,
            )
        ]
    )


def _attempt(task: Task, stage_key: str, replica: int = 0) -> int:
    runs = [r for r in task_runs(task) if r.stage_key == stage_key]
    own = [r for r in runs if r.replica == replica] or runs
    return own[0].attempt if own else 1


def _text(comment: Any) -> str:
    text = comment.strip() if isinstance(comment, str) else ""
    if len(text) > MAX_BODY:
        raise ApplicationError(f"Keep the comment under {MAX_BODY} characters.", field="comment")
    return text


@transaction.atomic
def annotation_review(
    *,
    actor,
    task: Task,
    review_stage: str,
    verdict: str,
    annotation: Any = None,
    comment: Any = "",
    sample: Any = None,
    frame: Any = None,
    label: str = "",
    data: Any = None,
    stage: str = "",
    mark: Any = None,
) -> AnnotationReview:
    """Accept or reject one annotation of a reviewed stage (a reject says why), or mark one
    missing (``sample``, ``frame``, ``label``, optional ``data`` region, a comment) — or, with
    ``mark`` and ``accept``, withdraw a missing mark. The latest verdict per annotation is
    kept; its comment is a problem pinned to the annotation (or the sample and frame), in the
    stage the annotation belongs to. One TaskEvent each."""
    if verdict not in VERDICTS:
        raise ApplicationError("verdict is accept, reject or missing.", field="verdict")
    text = _text(comment)
    task = lock_task(task.pk, actor)
    reviewing = _review_stage(task, review_stage)
    _reviewing_run(task, review_stage, actor)
    spec = spec_for(task.blueprint)
    now_verdict = VERDICTS[verdict]
    mark_id = as_id(mark, "mark")
    annotation_id = as_id(annotation, "annotation")
    if verdict in {"reject", "missing"} and not text:
        raise ApplicationError("Say what is wrong or missing.", field="comment")
    if mark_id is not None:  # a missing mark, withdrawn (accept) or said again
        review = (
            AnnotationReview.objects.select_for_update()
            .filter(pk=mark_id, task=task, review_stage=review_stage, annotation=None)
            .first()
        )
        if review is None:
            raise ApplicationError("No such missing mark of this review.", field="mark")
        if verdict == "reject":
            raise ApplicationError("A missing mark is withdrawn (accept) or kept.", field="verdict")
        target_stage, found = review.stage_key, None
    elif annotation_id is not None:
        if verdict == "missing":
            raise ApplicationError(
                "An existing annotation is accepted or rejected.", field="verdict"
            )
        found = Annotation.objects.filter(pk=annotation_id, task=task).first()
        if found is None:
            raise ApplicationError("That annotation is not one of the task's.", field="annotation")
        if found.stage_key not in reviewing.reviews:
            raise ApplicationError(
                f"“{review_stage}” reviews {', '.join(reviewing.reviews)}, "
                f"not “{found.stage_key}”.",
                field="annotation",
            )
        target_stage = found.stage_key
        review = (
            AnnotationReview.objects.select_for_update()
            .filter(annotation=found, review_stage=review_stage)
            .first()
        )
    else:
        if verdict != "missing":
            raise ApplicationError("Name the annotation you judge.", field="annotation")
        found, review = None, None
        if not isinstance(label, str) or not label:
            raise ApplicationError("Say which label is missing.", field="label")
        stages = [k for k in reviewing.reviews if label in spec.by_key[k].classes]
        if stage:
            if stage not in stages:
                raise ApplicationError(
                    f"“{stage}” is not a reviewed stage that draws {label}.", field="stage"
                )
            stages = [stage]
        if not stages:
            raise ApplicationError(
                f"No stage reviewed by “{review_stage}” draws {label}.", field="label"
            )
        if len(stages) > 1:
            raise ApplicationError(
                f"{label} is drawn in {', '.join(stages)}: say which stage misses it.",
                field="stage",
            )
        target_stage = stages[0]
    # Where the comment (and a missing mark) is pinned.
    if found is not None:
        pin = pin_target(task, None, frame, found.pk, actor)
        if pin["frame"] is None and isinstance(found.data, dict):
            at = found.data.get("frame", found.data.get("start"))
            pin["frame"] = at if isinstance(at, int) and found.sample_id else None
    elif review is not None:
        pin = {"sample": review.sample, "frame": review.frame, "annotation": None}
    else:
        pin = pin_target(task, sample, frame, None, actor)
        if pin["sample"] is None:
            raise ApplicationError("Say on which sample it is missing.", field="sample")
    region: dict = {}
    if found is None and review is None and data not in (None, {}, ""):
        region = clean_data(spec.classes[label], data, pin["sample"])
    note = None
    if text:
        note = Comment.objects.create(
            task=task,
            kind=Comment.Kind.COMMENT if verdict == "accept" else Comment.Kind.PROBLEM,
            body=text,
            stage_key=target_stage,
            author=actor_user(actor),
            **pin,
        )
    previous = review.verdict if review is not None else ""
    # The open problem of a verdict given before is settled by an accept, or replaced.
    if review is not None and review.comment_id and review.comment_id != getattr(note, "pk", 0):
        old = review.comment
        if old is not None and old.kind == Comment.Kind.PROBLEM and not old.resolved:
            old.resolved, old.resolved_by, old.resolved_at = True, actor_user(actor), timezone.now()
            old.save(update_fields=["resolved", "resolved_by", "resolved_at"])
    replica = found.replica if found is not None else 0
    if review is None:
        review = AnnotationReview(
            task=task,
            review_stage=review_stage,
            stage_key=target_stage,
            annotation=found,
            sample=pin["sample"],
            frame=pin["frame"],
            label=found.label if found is not None else label,
            data=region,
        )
    review.verdict = now_verdict
    review.reviewer = actor_user(actor)
    review.attempt = _attempt(task, target_stage, replica)
    if note is not None or verdict == "accept":
        review.comment = note
    review.save()
    save_events(
        [
            event(
                task,
                "annotation_reviewed",
                actor,
                target_stage,
                review=review.pk,
                review_stage=review_stage,
                annotation=found.pk if found is not None else None,
                label=review.label,
                verdict=now_verdict,
                previous=previous,
                comment_id=note.pk if note else None,
            )
        ]
    )
    return review


def _open(task: Task) -> list[tuple[str, str, int]]:
    """(review stage, stage, attempt) of the task's open verdicts: as read with the lock
    (``lock_task(..., outcomes=True)``), else read now."""
    known = task.__dict__.get("_open_verdicts")
    if known is not None:
        return known
    return list(
        AnnotationReview.objects.filter(task=task, verdict__in=OPEN).values_list(
            "review_stage", "stage_key", "attempt"
        )
    )


def open_verdicts(task: Task, reviewing: ReviewStage, review_stage: str) -> list[str]:
    """The stages of the review's rejections and missing marks on the reviewed stages'
    current attempts (one entry each): what a stage reject sends back, and what an approve
    may not leave behind."""
    attempts = {r.stage_key: r.attempt for r in task_runs(task) if r.stage_key in reviewing.reviews}
    return [
        stage
        for review, stage, attempt in _open(task)
        if review == review_stage and attempt >= attempts.get(stage, 1)
    ]


def settle_on_approve(task: Task, review_stage: str, actor) -> int:
    """An approve accepts the earlier rounds' verdicts left open (the rework answered them);
    their problems are resolved. Returns how many."""
    return settle_on_approve_many([(task, review_stage)], actor)


def settle_on_approve_many(approved: list[tuple[Task, str]], actor) -> int:
    """``settle_on_approve`` for many tasks (each with its approving review stage): no
    query when none has open verdicts of it, three in all otherwise."""
    due = [
        (task, stage)
        for task, stage in approved
        if any(review == stage for review, _, _ in _open(task))
    ]
    if not due:
        return 0
    wanted = {(task.pk, stage) for task, stage in due}
    stale = [
        v
        for v in AnnotationReview.objects.filter(
            task__in=[task.pk for task, _ in due], verdict__in=OPEN
        )
        if (v.task_id, v.review_stage) in wanted
    ]
    now = timezone.now()
    Comment.objects.filter(
        pk__in=[v.comment_id for v in stale if v.comment_id], resolved=False
    ).update(resolved=True, resolved_by=actor_user(actor), resolved_at=now)
    AnnotationReview.objects.filter(pk__in=[v.pk for v in stale]).update(
        verdict=AnnotationReview.Verdict.ACCEPTED, updated_at=now
    )
    return len(stale)
