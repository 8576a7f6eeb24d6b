"""Reads for review per annotation (which comments and verdicts concern a stage, shown in
its workspace; a task's verdicts) and for the task page's Batch annotation tab."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from blueprints.spec import ReviewStage

from .models import AnnotationReview, Comment, StageRun, Task
from .selectors import hidden_annotation_ids
from .services.base import spec_for


def shown_stages(*, task: Task, stage_key: str) -> list[str]:
    """The stages whose work a stage's workspace shows: a review's reviewed stages and its
    own key, else the stage itself."""
    stage = spec_for(task.blueprint).by_key.get(stage_key)
    if isinstance(stage, ReviewStage):
        return [*stage.reviews, stage_key]
    return [stage_key]


def stage_comments(*, task: Task, user, stage_key: str) -> QuerySet[Comment]:
    """The comments that concern ``stage_key``: pinned to an annotation of a stage it shows,
    or, unpinned to an annotation, about the task as a whole, one of those stages, or a
    review of them. A reviewer's remark about another stage's box stays in that stage."""
    shown = shown_stages(task=task, stage_key=stage_key)
    reviews = [
        s.key
        for s in spec_for(task.blueprint).stages
        if isinstance(s, ReviewStage) and set(s.reviews) & set(shown)
    ]
    comments = (
        task.comments.select_related("author", "resolved_by")
        .filter(
            Q(annotation__stage_key__in=shown)
            | Q(annotation=None) & Q(stage_key__in=["", *shown, *reviews])
        )
        .order_by("id")
    )
    hidden = hidden_annotation_ids(task=task, user=user)
    return comments.exclude(annotation__in=hidden) if hidden else comments


def annotation_reviews(*, task: Task, user, stage_key: str = "") -> QuerySet[AnnotationReview]:
    """A task's verdicts (with ``stage_key``: those about the stages its workspace shows),
    oldest first, without those on annotations ``user`` may not see."""
    reviews = task.annotation_reviews.select_related("comment", "reviewer").order_by("id")
    if stage_key:
        reviews = reviews.filter(stage_key__in=shown_stages(task=task, stage_key=stage_key))
    hidden = hidden_annotation_ids(task=task, user=user)
    return reviews.exclude(annotation__in=hidden) if hidden else reviews


def has_reviews(*, task: Task, stage_key: str) -> bool:
    """Whether any verdict concerns the stages ``stage_key``'s workspace shows."""
    shown = shown_stages(task=task, stage_key=stage_key)
    return task.annotation_reviews.filter(stage_key__in=shown).exists()


def reopened_for_others(*, task: Task, run: StageRun | None) -> dict | None:
    """Why ``run`` (in progress again, without feedback) was reopened, when a reject of a review
    of its stage reopened every reviewed stage but concerned others only (their feedback and
    verdicts are there): ``{"review": title, "concerns": [{"key", "title"}]}``, else None.
    The ``stage_reopened`` event names the reject's review and the stages it concerns."""
    if run is None or run.attempt < 2 or run.feedback or run.status != StageRun.Status.IN_PROGRESS:
        return None
    reopened = (
        task.events.filter(kind="stage_reopened", stage_key=run.stage_key).order_by("-id").first()
    )
    if reopened is None:
        return None
    spec = spec_for(task.blueprint)
    review, concerns = reopened.data.get("review"), reopened.data.get("concerns") or []
    if review not in spec.by_key or not concerns or run.stage_key in concerns:
        return None
    return {
        "review": spec.by_key[review].title,
        "concerns": [
            {"key": k, "title": spec.by_key[k].title} for k in concerns if k in spec.by_key
        ],
    }


def batch_stages(*, task: Task, user) -> list[dict]:
    """The stages of ``task`` the user has in progress to annotate (what the Batch
    annotation tab applies to), each with its classes as the tab's script reads them."""
    spec = spec_for(task.blueprint)
    mine = task.runs.filter(
        assignee=user, status="in_progress", kind__in=["annotate", "consensus"]
    ).values_list("stage_key", flat=True)
    stages = []
    for key in dict.fromkeys(mine):
        stage = spec.by_key.get(key)
        if stage is None:
            continue
        classes = {
            c: {
                "name": spec.classes[c].name or c,
                "kind": spec.classes[c].kind,
                "choices": spec.classes[c].choices or [],
                "attributes": [a.model_dump() for a in spec.classes[c].attributes],
            }
            for c in stage.classes
        }
        stages.append({"key": key, "title": stage.title, "classes": classes})
    return stages
