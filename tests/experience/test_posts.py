"""Experience posts: who may post, comment, edit and promote; pins validated; stale edits
refused; promoting writes (then updates) a guideline; the list's queries are bounded."""

import pytest
from django.core.exceptions import PermissionDenied

from core.exceptions import ApplicationError
from experience import services
from experience.models import Post
from notifications.models import Notification
from projects.models import Guideline

pytestmark = pytest.mark.django_db


@pytest.fixture
def post(project, annotator):
    return services.post_create(
        actor=annotator, project=project, title="Tight boxes", body="Box to the visible edge."
    )


@pytest.fixture
def other_project(manager):
    from projects import services as project_services

    return project_services.project_create(actor=manager, name="Other project")


def test_any_member_posts_and_an_outsider_cannot(client, project, annotator, outsider):
    client.force_login(annotator)
    response = client.post(
        f"/projects/{project.slug}/experience/new/",
        {"title": "Occluded cups", "body": "Mark them occluded when half is hidden."},
    )
    post = Post.objects.get()
    assert response.status_code == 302 and response.url.endswith(f"/experience/{post.pk}/")
    assert post.author == annotator and post.version == 1
    client.force_login(outsider)
    assert client.get(f"/projects/{project.slug}/experience/").status_code == 404
    with pytest.raises(Exception) as refused:
        services.post_create(actor=outsider, project=project, title="x", body="y")
    assert refused.typename == "Http404"


def test_a_post_pinned_to_a_task_and_annotation(project, annotator, task):
    post = services.post_create(
        actor=annotator,
        project=project,
        title="Outcome",
        body="Success means the block stays in the bowl.",
        task=task.pk,
        annotation=task.first_annotation.pk,
    )
    assert post.task == task and post.annotation == task.first_annotation


def test_a_task_of_another_project_is_refused_with_a_clear_400(
    api_as, project, other_project, manager
):
    from tasks import services as task_services

    elsewhere = task_services.task_create(actor=manager, project=other_project, name="Elsewhere")
    response = api_as(manager).post(
        f"/api/v1/projects/{project.pk}/posts/",
        {"title": "Tip", "body": "Text", "task": elsewhere.pk},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {"task": ["That task is not one of this project's."]}
    assert not Post.objects.exists()


@pytest.mark.parametrize(
    ("pins", "field"),
    [
        ({"annotation": 1}, "task"),
        ({"frame": 3}, "frame"),
        ({"sample": 999999}, "sample"),
        ({"task": "abc"}, "task"),
    ],
)
def test_bad_pins_name_their_field(project, manager, pins, field):
    with pytest.raises(ApplicationError) as refused:
        services.post_create(actor=manager, project=project, title="T", body="B", **pins)
    assert refused.value.field == field


def test_a_frame_outside_the_sample_is_refused(project, manager, dataset):
    sample = dataset.samples.first()
    post = services.post_create(
        actor=manager, project=project, title="T", body="B", sample=sample.pk, frame=2
    )
    assert post.sample == sample and post.frame == 2
    with pytest.raises(ApplicationError, match=r"has frames 0–11"):
        services.post_create(
            actor=manager, project=project, title="T", body="B", sample=sample.pk, frame=12
        )


def test_an_annotator_cannot_pin_a_task_hidden_from_them(project, manager, annotator):
    from tasks import services as task_services

    theirs = task_services.task_create(
        actor=manager, project=project, name="Noah's", annotators=["maya"]
    )
    with pytest.raises(ApplicationError, match="not one of this project's"):
        services.post_create(actor=annotator, project=project, title="T", body="B", task=theirs.pk)


def test_the_author_and_managers_edit_others_may_not(post, annotator, reviewer, manager):
    services.post_update(actor=annotator, post=post, version=1, body="Box to the edge, v2.")
    services.post_update(actor=manager, post=post, version=2, title="Tight boxes (edited)")
    post.refresh_from_db()
    assert (post.version, post.title, post.body) == (
        3,
        "Tight boxes (edited)",
        "Box to the edge, v2.",
    )
    with pytest.raises(PermissionDenied):
        services.post_update(actor=reviewer, post=post, body="Mine now")
    with pytest.raises(PermissionDenied):
        services.post_delete(actor=reviewer, post=post)


def test_a_stale_edit_is_refused(api_as, post, annotator, manager):
    services.post_update(actor=manager, post=post, version=1, body="The manager's words.")
    response = api_as(annotator).patch(
        f"/api/v1/posts/{post.pk}/", {"version": 1, "body": "Mine"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["version"] == 2
    post.refresh_from_db()
    assert post.body == "The manager's words."


def test_a_stale_edit_in_the_page_shows_the_saved_text(client, post, annotator, manager):
    services.post_update(actor=manager, post=post, version=1, body="The manager's words.")
    client.force_login(annotator)
    response = client.post(
        f"/projects/{post.project.slug}/experience/{post.pk}/edit/",
        {"title": "Tight boxes", "body": "Mine", "version": 1},
    )
    page = response.content.decode()
    assert response.status_code == 200 and "Someone else changed this post" in page
    assert "The manager&#x27;s words." in page


def test_the_api_refuses_read_only_fields(api_as, post, annotator):
    response = api_as(annotator).patch(
        f"/api/v1/posts/{post.pk}/", {"promoted_to": 1}, format="json"
    )
    assert response.status_code == 400 and "promoted_to" in response.json()


def test_promote_creates_the_guideline_and_again_updates_it(api_as, post, reviewer, annotator):
    response = api_as(reviewer).post(f"/api/v1/posts/{post.pk}/promote/")
    assert response.status_code == 200
    guideline = Guideline.objects.get()
    assert guideline.title == "Tight boxes" and guideline.author == reviewer
    assert guideline.body.startswith("Box to the visible edge.")
    assert "Shared by ana (experience post" in guideline.body
    assert response.json()["post"]["promoted_to"] == guideline.pk
    services.post_update(actor=annotator, post=post, body="Box to the visible edge, no margin.")
    again = api_as(reviewer).post(f"/api/v1/posts/{post.pk}/promote/").json()
    assert Guideline.objects.count() == 1  # updated, not duplicated
    guideline.refresh_from_db()
    assert guideline.body.startswith("Box to the visible edge, no margin.")
    assert again["guideline"] == {"id": guideline.pk, "title": "Tight boxes", "version": 2}


def test_an_annotator_may_not_promote(api_as, client, post, annotator):
    assert api_as(annotator).post(f"/api/v1/posts/{post.pk}/promote/").status_code == 403
    client.force_login(annotator)
    page = client.get(f"/projects/{post.project.slug}/experience/{post.pk}/").content.decode()
    assert "Promote to guidelines" not in page
    assert not Guideline.objects.exists()


def test_the_promoted_post_shows_in_the_guidelines_page(client, post, reviewer, annotator):
    client.force_login(reviewer)
    page = client.get(f"/projects/{post.project.slug}/experience/{post.pk}/").content.decode()
    assert "Promote to guidelines" in page
    response = client.post(f"/projects/{post.project.slug}/experience/{post.pk}/promote/")
    assert response.status_code == 302
    client.force_login(annotator)
    guidelines = client.get(f"/projects/{post.project.slug}/guidelines/").content.decode()
    assert "Tight boxes" in guidelines and "Shared by ana" in guidelines


def test_a_comment_shows_and_tells_the_author(client, post, reviewer, annotator):
    client.force_login(reviewer)
    response = client.post(
        f"/projects/{post.project.slug}/experience/{post.pk}/comments/",
        {"body": "Also for the bowl?"},
        headers={"HX-Request": "true", "HX-Target": "post-comments"},
    )
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert "Also for the bowl?" in body and 'id="post-comments"' in body
    [note] = Notification.objects.filter(user=annotator)
    assert note.kind == "post_commented"
    assert note.message == "ravi commented on your post “Tight boxes”: Also for the bowl?"
    # Her own comment on her post tells nobody.
    services.comment_create(actor=annotator, post=post, body="Yes")
    assert Notification.objects.count() == 1


def test_an_empty_comment_is_refused_with_the_field(api_as, client, post, reviewer):
    response = api_as(reviewer).post(
        f"/api/v1/posts/{post.pk}/comments/", {"body": "  "}, format="json"
    )
    assert response.status_code == 400 and "body" in response.json()
    client.force_login(reviewer)
    page = client.post(
        f"/projects/{post.project.slug}/experience/{post.pk}/comments/", {"body": ""}
    ).content.decode()
    assert "This field is required" in page


def test_the_list_is_newest_first_with_bounded_queries(
    client, project, annotator, reviewer, task, django_assert_max_num_queries
):
    for i in range(12):
        p = services.post_create(
            actor=annotator, project=project, title=f"Tip {i}", body="…", task=task.pk
        )
        services.comment_create(actor=reviewer, post=p, body="Thanks")
    services.post_promote(actor=reviewer, post=p)
    client.force_login(annotator)
    with django_assert_max_num_queries(14):
        page = client.get(f"/projects/{project.slug}/experience/").content.decode()
    assert page.index("Tip 11") < page.index("Tip 10") < page.index("Tip 0")
    assert "1 comment" in page and "In the guidelines" in page
    assert f'Pinned to\n<a href="/tasks/{task.pk}/">task “Fixture task”</a>' in page


def test_the_api_lists_and_reads_posts(api_as, post, reviewer, outsider):
    services.comment_create(actor=reviewer, post=post, body="Good one")
    body = api_as(reviewer).get(f"/api/v1/projects/{post.project_id}/posts/").json()
    assert body["count"] == 1
    assert body["results"][0]["author"] == "ana" and body["results"][0]["comment_count"] == 1
    comments = api_as(reviewer).get(f"/api/v1/posts/{post.pk}/comments/").json()
    assert [c["body"] for c in comments] == ["Good one"]
    assert api_as(outsider).get(f"/api/v1/posts/{post.pk}/").status_code == 404


def test_the_author_deletes_their_post(client, post, annotator):
    client.force_login(annotator)
    response = client.post(f"/projects/{post.project.slug}/experience/{post.pk}/delete/")
    assert response.status_code == 302
    assert not Post.objects.exists()


def test_a_post_of_another_project_is_not_found_under_this_one(
    client, post, other_project, manager
):
    client.force_login(manager)
    response = client.get(f"/projects/{other_project.slug}/experience/{post.pk}/")
    assert response.status_code == 404
