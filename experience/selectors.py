"""Reading experience posts: every member of a project reads its posts."""

from __future__ import annotations

from django.db.models import Count, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from core.access import Action, check_project_access
from projects.models import Project

from .models import Post, PostComment


def post_list(*, project: Project) -> QuerySet[Post]:
    """A project's posts, newest first, with what the list shows (author, pins, the
    guideline it became, its comment count) in one query."""
    return (
        Post.objects.filter(project=project)
        .select_related("author", "task", "sample", "annotation", "promoted_to")
        .annotate(comment_count=Count("comments"))
        .order_by("-created_at", "-id")
    )


def post_get_for_user(*, user, post_id: int, action: Action = Action.VIEW) -> Post:
    """A post of a project the user may see (404 otherwise), 403 when they may not
    ``action`` there."""
    post = get_object_or_404(
        Post.objects.select_related(
            "project", "author", "task", "sample", "annotation", "promoted_to", "promoted_by"
        ),
        pk=post_id,
    )
    check_project_access(user=user, project=post.project, action=action)
    return post


def post_get_in_project(*, user, project: Project, post_id: int) -> Post:
    """A post of ``project`` (a post of another project is not found here)."""
    post = post_get_for_user(user=user, post_id=post_id)
    if post.project_id != project.pk:
        raise Http404("No such post.")
    return post


def post_comment_list(*, post: Post) -> QuerySet[PostComment]:
    return PostComment.objects.filter(post=post).select_related("author").order_by("id")
