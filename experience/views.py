"""Experience pages of a project: the posts, one post with its comments, new and edit
forms, and the Promote to guidelines action for reviewers and managers."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from core.access import Action
from core.exceptions import ApplicationError
from core.forms import add_application_error, save_versioned
from projects.selectors import project_get_for_user

from . import selectors, services
from .forms import PostCommentForm, PostForm

PER_PAGE = 20
PIN_FIELDS = ("task", "sample", "frame", "annotation")


@login_required
def post_list(request, slug):
    project = project_get_for_user(user=request.user, slug=slug)
    page = Paginator(selectors.post_list(project=project), PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {
        "project": project,
        "page": page,
        "can_promote": services.may_promote(request.user, project),
    }
    return render(request, "experience/list.html", context)


@login_required
def post_create(request, slug):
    project = project_get_for_user(user=request.user, slug=slug)
    # A link may pre-fill the pins (?task=12&sample=3&frame=40).
    initial = {key: request.GET[key] for key in PIN_FIELDS if request.GET.get(key)}
    form = PostForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k != "version"}
        try:
            post = services.post_create(actor=request.user, project=project, **data)
        except ApplicationError as exc:
            add_application_error(form, exc)
        else:
            messages.success(request, "Posted. The team sees it on the Experience page.")
            return redirect("experience:detail", slug=slug, post_id=post.pk)
    return render(request, "experience/form.html", {"project": project, "form": form})


def _detail_context(request, post, form=None) -> dict:
    return {
        "project": post.project,
        "post": post,
        "comments": selectors.post_comment_list(post=post),
        "form": form or PostCommentForm(),
        "can_edit": services.may_edit(request.user, post),
        "can_promote": services.may_promote(request.user, post.project),
    }


@login_required
def post_detail(request, slug, post_id):
    project = project_get_for_user(user=request.user, slug=slug)
    post = selectors.post_get_in_project(user=request.user, project=project, post_id=post_id)
    return render(request, "experience/detail.html", _detail_context(request, post))


@require_POST
@login_required
def post_comment(request, slug, post_id):
    project = project_get_for_user(user=request.user, slug=slug)
    post = selectors.post_get_in_project(user=request.user, project=project, post_id=post_id)
    form = PostCommentForm(request.POST)
    if form.is_valid():
        try:
            comment = services.comment_create(
                actor=request.user, post=post, body=form.cleaned_data["body"]
            )
        except ApplicationError as exc:
            add_application_error(form, exc)
        else:
            if request.htmx:
                context = _detail_context(request, post)
                return render(request, "experience/detail.html#post-comments", context)
            url = reverse("experience:detail", args=[slug, post.pk])
            return redirect(f"{url}#comment-{comment.pk}")
    context = _detail_context(request, post, form)
    template = "experience/detail.html"
    if request.htmx:
        template += "#post-comments"
    return render(request, template, context, status=400 if request.htmx else 200)


@login_required
def post_edit(request, slug, post_id):
    project = project_get_for_user(user=request.user, slug=slug)
    post = selectors.post_get_in_project(user=request.user, project=project, post_id=post_id)
    if not services.may_edit(request.user, post):
        raise PermissionDenied("Only its author or a manager edits a post.")
    initial = {
        "title": post.title,
        "body": post.body,
        "task": post.task_id or "",
        "sample": post.sample_id,
        "frame": post.frame,
        "annotation": post.annotation_id,
        "version": post.version,
    }
    form = PostForm(request.POST or None, initial=initial)
    current = None
    if request.method == "POST" and form.is_valid():
        saved, current = save_versioned(
            form,
            post,
            lambda: services.post_update(actor=request.user, post=post, **form.cleaned_data),
        )
        if saved:
            messages.success(request, "Post saved.")
            return redirect("experience:detail", slug=slug, post_id=post.pk)
    context = {"project": project, "form": form, "post": post, "current": current}
    return render(request, "experience/form.html", context)


@require_POST
@login_required
def post_delete(request, slug, post_id):
    project = project_get_for_user(user=request.user, slug=slug)
    post = selectors.post_get_in_project(user=request.user, project=project, post_id=post_id)
    services.post_delete(actor=request.user, post=post)
    messages.success(request, f"Deleted “{post.title}”.")
    return redirect("experience:list", slug=slug)


@require_POST
@login_required
def post_promote(request, slug, post_id):
    project = project_get_for_user(user=request.user, slug=slug, action=Action.WRITE_GUIDELINES)
    post = selectors.post_get_in_project(user=request.user, project=project, post_id=post_id)
    again = post.promoted_to_id is not None
    try:
        guideline = services.post_promote(actor=request.user, post=post)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            f"The guideline “{guideline.title}” was updated from this post."
            if again
            else f"Promoted to the guidelines as “{guideline.title}”. Annotators see it in "
            "the workspace.",
        )
    return redirect("experience:detail", slug=slug, post_id=post.pk)
