"""Stage actions through the API: who may start which kind of stage."""

import pytest

from tasks import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def in_review(task, annotator):
    """The fixture task with its annotate stage submitted: the review stage is ready."""
    services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    return task


def _stage(response, key):
    return next(s for s in response.json()["stages"] if s["key"] == key)


def test_it_lets_a_reviewer_start_a_review_stage(api_as, reviewer, in_review):
    response = api_as(reviewer).post(f"/api/v1/tasks/{in_review.pk}/stages/review/start/")
    assert response.status_code == 200, response.content
    review = _stage(response, "review")
    assert (review["status"], review["assignee"]) == ("in_progress", "ravi")


def test_it_refuses_an_annotator_starting_a_review_stage(api_as, annotator, in_review):
    response = api_as(annotator).post(f"/api/v1/tasks/{in_review.pk}/stages/review/start/")
    assert response.status_code == 403


def test_it_refuses_a_reviewer_starting_an_annotate_stage(api_as, reviewer, manager, project):
    task = services.task_create(
        actor=manager, project=project, name="Fresh", annotators=["ana"], reviewers=["ravi"]
    )
    response = api_as(reviewer).post(f"/api/v1/tasks/{task.pk}/stages/annotate/start/")
    assert response.status_code == 403
    assert "annotat" in response.json()["detail"]


def test_it_refuses_a_reviewer_submitting_an_annotate_stage(api_as, reviewer, task):
    response = api_as(reviewer).post(f"/api/v1/tasks/{task.pk}/stages/annotate/submit/")
    assert response.status_code == 403
