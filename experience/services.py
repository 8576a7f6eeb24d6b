"""Experience sharing (DESIGN.md §8): any project member posts tips and worked examples and
comments on them; authors edit and delete their own posts (managers any); reviewers and
managers promote a post into the project's guidelines.

Promoting a post twice updates the guideline it became with the post's current text (the
post stays linked to it), so a corrected tip can be promoted again; if that guideline was
deleted meanwhile, a new one is written."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.urls import reverse

from core.access import Action, actor_user, project_allows, require
from core.exceptions import ApplicationError, Conflict
from core.parsers import whole_number
from notifications.models import Notification
from notifications.services import notify
from projects.models import Guideline, Project, Sample
from projects.services import guideline_create, guideline_update
from tasks.models import Task
from tasks.services.base import as_id
from tasks.services.comments import pin_target

from .models import Post, PostComment

TITLE_LENGTH = 200
BODY_LENGTH = 20_000
COMMENT_LENGTH = 5_000


def _text(value: Any, field: str, limit: int, missing: str) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ApplicationError(f"{field} must be text.", field=field)
    value = value.replace("\x00", "").strip()
    if not value:
        raise ApplicationError(missing, field=field)
    if len(value) > limit:
        raise ApplicationError(f"Keep the {field} under {limit:,} characters.", field=field)
    return value


def post_pins(
    *, actor, project: Project, task: Any = None, sample: Any = None, frame: Any = None,
    annotation: Any = None,
) -> dict:  # fmt: skip
    """What a post points at, checked: a task of this project the actor sees (another
    project's task, or one hidden from them, is refused as not found), a sample of it (or of
    the project's data when no task is given) and a frame within the sample, an annotation
    of the task. An annotation or a frame needs what it belongs to."""
    from tasks.selectors import task_visibility

    pins: dict = {"task": None, "sample": None, "frame": None, "annotation": None}
    task_id = as_id(task, "task")
    if task_id is None:
        if annotation not in (None, ""):
            raise ApplicationError("An annotation is pinned together with its task.", field="task")
        sample_id = as_id(sample, "sample")
        if sample_id is not None:
            found = Sample.objects.filter(pk=sample_id, dataset__project=project).first()
            if found is None:
                raise ApplicationError("That sample is not in this project's data.", field="sample")
            pins["sample"] = found
        if frame not in (None, ""):
            if pins["sample"] is None:
                raise ApplicationError("A frame is pinned together with its sample.", field="frame")
            pins["frame"] = _frame(frame, pins["sample"])
        return pins
    found_task = (
        Task.objects.filter(task_visibility(actor), pk=task_id, project=project)
        .select_related("project")
        .first()
    )
    if found_task is None:
        raise ApplicationError("That task is not one of this project's.", field="task")
    pins.update(pin_target(found_task, sample, frame, annotation, actor))
    pins["task"] = found_task
    return pins


def _frame(value: Any, sample: Sample) -> int:
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        number = whole_number(value)
    if number is None or number < 0:
        raise ApplicationError("frame must be a whole number.", field="frame")
    if number >= sample.num_frames:
        raise ApplicationError(
            f"{sample.name} has frames 0–{sample.num_frames - 1}.", field="frame"
        )
    return number


@transaction.atomic
def post_create(
    *,
    actor,
    project: Project,
    title: Any,
    body: Any,
    task: Any = None,
    sample: Any = None,
    frame: Any = None,
    annotation: Any = None,
) -> Post:
    """Any member of the project posts."""
    require(actor, project, Action.VIEW)
    title = _text(title, "title", TITLE_LENGTH, "A post needs a title.")
    body = _text(body, "body", BODY_LENGTH, "Write the post.")
    pins = post_pins(
        actor=actor, project=project, task=task, sample=sample, frame=frame, annotation=annotation
    )
    return Post.objects.create(
        project=project, author=actor_user(actor), title=title, body=body, **pins
    )


def may_edit(actor, post: Post) -> bool:
    """Its author (while still a member), or a manager of the project (admins too)."""
    if project_allows(actor, post.project, Action.CHANGE):
        return True
    return bool(
        actor_user(actor) is not None
        and post.author_id == actor.pk
        and project_allows(actor, post.project, Action.VIEW)
    )


def may_promote(actor, project: Project) -> bool:
    return project_allows(actor, project, Action.WRITE_GUIDELINES)


def _require_edit(actor, post: Post) -> None:
    require(actor, post.project, Action.VIEW)
    if not may_edit(actor, post):
        raise PermissionDenied("Only its author or a manager changes a post.")


_UNSET: Any = object()


@transaction.atomic
def post_update(
    *,
    actor,
    post: Post,
    version: Any = None,
    title: Any = _UNSET,
    body: Any = _UNSET,
    task: Any = _UNSET,
    sample: Any = _UNSET,
    frame: Any = _UNSET,
    annotation: Any = _UNSET,
) -> Post:
    """Edit a post; ``version`` (the one the editor read) refuses a stale edit with 409.
    Fields not given stay as they are; the pins are checked again as a whole."""
    locked = Post.objects.select_for_update().select_related("project").get(pk=post.pk)
    _require_edit(actor, locked)
    if version is not None and as_id(version, "version") != locked.version:
        raise Conflict(
            "Someone else changed this post since you opened it. "
            "Read the current text and save again.",
            extra={"version": locked.version},
        )
    changed = []
    if title is not _UNSET:
        locked.title = _text(title, "title", TITLE_LENGTH, "A post needs a title.")
        changed.append("title")
    if body is not _UNSET:
        locked.body = _text(body, "body", BODY_LENGTH, "Write the post.")
        changed.append("body")
    given = {"task": task, "sample": sample, "frame": frame, "annotation": annotation}
    if any(v is not _UNSET for v in given.values()):
        current = {
            "task": locked.task_id,
            "sample": locked.sample_id,
            "frame": locked.frame,
            "annotation": locked.annotation_id,
        }
        merged = {k: (current[k] if v is _UNSET else v) for k, v in given.items()}
        if given["task"] is not _UNSET and given["task"] in (None, ""):
            merged["annotation"] = None if given["annotation"] is _UNSET else merged["annotation"]
        pins = post_pins(actor=actor, project=locked.project, **merged)
        for key, value in pins.items():
            setattr(locked, key, value)
        changed += ["task", "sample", "frame", "annotation"]
    if changed:
        locked.version += 1
        locked.save(update_fields=[*changed, "version", "updated_at"])
    return locked


@transaction.atomic
def post_delete(*, actor, post: Post) -> None:
    """Delete a post and its comments (a guideline it became stays)."""
    locked = Post.objects.select_for_update().select_related("project").get(pk=post.pk)
    _require_edit(actor, locked)
    locked.delete()


@transaction.atomic
def comment_create(*, actor, post: Post, body: Any) -> PostComment:
    """Any member comments; the post's author hears of it (not of their own comments)."""
    require(actor, post.project, Action.VIEW)
    body = _text(body, "body", COMMENT_LENGTH, "Write something.")
    comment = PostComment.objects.create(post=post, author=actor_user(actor), body=body)
    if post.author_id:
        who = actor.get_username() if actor_user(actor) else "Someone"
        snippet = " ".join(body.split())
        snippet = snippet if len(snippet) <= 120 else snippet[:119] + "…"
        notify(
            recipients=[post.author_id],
            kind=Notification.Kind.POST_COMMENTED,
            message=f"{who} commented on your post “{post.title}”: {snippet}",
            url=reverse("experience:detail", args=[post.project.slug, post.pk])
            + f"#comment-{comment.pk}",
            project=post.project,
            actor=actor,
        )
    return comment


def guideline_text(post: Post) -> str:
    """The guideline a post becomes: its text, then where it came from."""
    author = post.author.get_username() if post.author else "a former member"
    source = f"Shared by {author} (experience post #{post.pk}"
    if post.task_id and post.task:
        source += f", task “{post.task.name}”"
    if post.sample_id and post.sample:
        source += f", {post.sample.name}"
        if post.frame is not None:
            source += f" frame {post.frame}"
    return f"{post.body}\n\n— {source})."


@transaction.atomic
def post_promote(*, actor, post: Post) -> Guideline:
    """Reviewers and managers turn a post into a guideline (written through the guideline
    service, by them). Promoting again updates that guideline with the post's current text."""
    locked = (
        Post.objects.select_for_update(of=("self",))
        .select_related("project", "author", "task", "sample", "promoted_to")
        .get(pk=post.pk)
    )
    require(
        actor, locked.project, Action.WRITE_GUIDELINES, "Only reviewers and managers promote posts."
    )
    body = guideline_text(locked)
    if locked.promoted_to is not None:
        guideline = guideline_update(
            actor=actor, guideline=locked.promoted_to, title=locked.title, body=body
        )
    else:
        guideline = guideline_create(
            actor=actor, project=locked.project, title=locked.title, body=body
        )
    locked.promoted_to, locked.promoted_by = guideline, actor_user(actor)
    locked.save(update_fields=["promoted_to", "promoted_by"])
    return guideline
