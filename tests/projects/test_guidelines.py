"""Guidelines: written by reviewers and managers, read by every member."""

import pytest

from projects import services
from projects.models import Guideline

pytestmark = pytest.mark.django_db


def test_a_reviewer_writes_a_guideline_and_an_annotator_reads_it(
    client, project, reviewer, annotator
):
    client.force_login(reviewer)
    response = client.post(
        f"/projects/{project.slug}/guidelines/",
        {"title": "Grasp segments", "body": "Start when the fingers close.\n\nEnd on release."},
    )
    assert response.status_code == 302
    client.force_login(annotator)
    page = client.get(f"/projects/{project.slug}/guidelines/").content.decode()
    assert "Grasp segments" in page and "<p>End on release.</p>" in page
    assert "New guideline" not in page  # annotators read, they do not write


def test_an_empty_guideline_is_refused_with_the_field(client, project, manager):
    client.force_login(manager)
    response = client.post(f"/projects/{project.slug}/guidelines/", {"title": "x", "body": " "})
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert not Guideline.objects.exists()


def test_a_stale_edit_shows_the_saved_text_and_overwrites_nothing(
    client, project, manager, reviewer
):
    g = services.guideline_create(actor=reviewer, project=project, title="Boxes", body="Tight.")
    services.guideline_update(actor=reviewer, guideline=g, title="Boxes", body="Tight, v2.")
    client.force_login(manager)
    response = client.post(
        f"/projects/{project.slug}/guidelines/{g.pk}/edit/",
        {"title": "Boxes", "body": "Mine", "version": 1},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Someone else changed this guideline" in page and "Tight, v2." in page
    g.refresh_from_db()
    assert (g.body, g.version) == ("Tight, v2.", 2)


def test_guidelines_of_another_project_are_not_found(client, project, manager, admin_user):
    other = services.project_create(actor=admin_user, name="Other")
    g = services.guideline_create(actor=admin_user, project=other, title="Secret", body="x")
    client.force_login(manager)
    response = client.get(f"/projects/{project.slug}/guidelines/{g.pk}/edit/")
    assert response.status_code == 404


def test_the_list_reads_in_bounded_queries(
    client, project, reviewer, django_assert_max_num_queries
):
    for n in range(30):
        services.guideline_create(actor=reviewer, project=project, title=f"G{n}", body="x")
    client.force_login(reviewer)
    with django_assert_max_num_queries(12):
        assert client.get(f"/projects/{project.slug}/guidelines/").status_code == 200
