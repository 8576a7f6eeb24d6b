"""Review per annotation (issue 17): verdicts on annotations and missing marks, feedback
shown only in the stages it concerns, a stage reject reopening them flagged, the API."""

import pytest
import yaml
from django.core.exceptions import PermissionDenied

from blueprints import services as blueprint_services
from core.exceptions import ApplicationError
from tasks import review_selectors, services
from tasks.models import AnnotationReview, Comment
from tasks.services.review import annotation_review

pytestmark = pytest.mark.django_db

BLUEPRINT = """
name: boxes-and-grasps
taxonomy:
  - {key: object, kind: box, attributes: [{key: category, type: choice, choices: [cup, block]}]}
  - {key: grasp, kind: segment}
  - {key: outcome, kind: classification, choices: [success, failure]}
stages:
  - {key: boxes, kind: annotate, classes: [object]}
  - {key: grasps, kind: annotate, classes: [grasp, outcome]}
  - {key: check, kind: review, depends_on: [boxes, grasps], reviews: [boxes, grasps]}
"""


@pytest.fixture
def two_stages(project, manager, annotator, reviewer, dataset):
    """Boxes and grasps annotated by ana and submitted; the review ``check`` is ready.
    ``t.box`` is a box (boxes), ``t.grasp`` a segment (grasps), both on sample 0."""
    blueprint, _ = blueprint_services.blueprint_save(
        actor=manager, project=project, definition=yaml.safe_load(BLUEPRINT), source=BLUEPRINT
    )
    blueprint_services.blueprint_activate(actor=manager, blueprint=blueprint)
    task = services.task_create(
        actor=manager, project=project, name="t", datasets=[dataset.pk], reviewers=["ravi"]
    )
    task.samples = list(dataset.samples.order_by("index"))
    sample = task.samples[0]
    for key in ("boxes", "grasps"):
        services.stage_start(actor=annotator, task=task, stage_key=key)
    task.box = services.annotation_create(
        actor=annotator, task=task, stage="boxes", label="object", sample=sample.pk,
        data={"frame": 2, "x": 1, "y": 1, "w": 4, "h": 4},
    )  # fmt: skip
    task.grasp = services.annotation_create(
        actor=annotator, task=task, stage="grasps", label="grasp", sample=sample.pk,
        data={"start": 1, "end": 3},
    )  # fmt: skip
    for key in ("boxes", "grasps"):
        services.stage_submit(actor=annotator, task=task, stage_key=key)
    assert task.runs.get(stage_key="check").status == "ready"
    return task


def verdict(task, reviewer, **kwargs):
    return annotation_review(actor=reviewer, task=task, review_stage="check", **kwargs)


def test_a_rejected_box_sends_back_only_its_stage_feedback(two_stages, annotator, reviewer):
    t = two_stages
    verdict(t, reviewer, verdict="accept", annotation=t.grasp.pk)
    v = verdict(t, reviewer, verdict="reject", annotation=t.box.pk, comment="Too small")
    assert (v.stage_key, v.verdict, v.attempt) == ("boxes", "rejected", 1)
    problem = v.comment
    assert (problem.kind, problem.annotation, problem.stage_key, problem.frame) == (
        "problem", t.box, "boxes", 2,
    )  # fmt: skip
    assert t.runs.get(stage_key="check").status == "in_progress"  # judging starts the review
    services.stage_review(
        actor=reviewer, task=t, stage_key="check", decision="reject", comment="See the box"
    )
    runs = {r.stage_key: r for r in t.runs.all()}
    assert runs["boxes"].feedback == "See the box" and runs["boxes"].attempt == 2
    # The grasps stage reopens (the engine's rule) but without the box's feedback.
    assert runs["grasps"].feedback == ""
    event = t.events.get(kind="review_rejected")
    assert event.data["concerns"] == ["boxes"] and event.data["flagged"] == 1
    assert Comment.objects.get(body="See the box").stage_key == "boxes"
    # The workspace of each stage shows the comments and verdicts that concern it only.
    boxes = review_selectors.stage_comments(task=t, user=annotator, stage_key="boxes")
    grasps = review_selectors.stage_comments(task=t, user=annotator, stage_key="grasps")
    assert {c.body for c in boxes} == {"Too small", "See the box"}
    assert list(grasps) == []
    flags = review_selectors.annotation_reviews(task=t, user=annotator, stage_key="boxes")
    assert [(f.annotation, f.verdict) for f in flags] == [(t.box, "rejected")]
    assert [f.verdict for f in review_selectors.annotation_reviews(
        task=t, user=annotator, stage_key="grasps")] == ["accepted"]  # fmt: skip
    assert t.events.filter(kind="annotation_reviewed").count() == 2


def test_a_general_reject_without_verdicts_still_concerns_every_reviewed_stage(
    two_stages, reviewer
):
    services.stage_review(
        actor=reviewer, task=two_stages, stage_key="check", decision="reject", comment="Redo"
    )
    assert {r.stage_key: r.feedback for r in two_stages.runs.exclude(stage_key="check")} == {
        "boxes": "Redo",
        "grasps": "Redo",
    }


def test_approve_refuses_this_rounds_rejections_and_settles_earlier_ones(
    two_stages, annotator, reviewer
):
    t = two_stages
    verdict(t, reviewer, verdict="reject", annotation=t.box.pk, comment="Too small")
    with pytest.raises(ApplicationError, match="accept them, or reject the stage"):
        services.stage_review(actor=reviewer, task=t, stage_key="check", decision="approve")
    services.stage_review(actor=reviewer, task=t, stage_key="check", decision="reject")
    # Rework: the box is fixed and resubmitted; the old verdict stays shown until decided.
    services.stage_start(actor=annotator, task=t, stage_key="boxes")
    fixed = services.annotation_update(
        actor=annotator, annotation=t.box, version=t.box.version,
        data={"frame": 2, "x": 1, "y": 1, "w": 9, "h": 9},
    )  # fmt: skip
    for key in ("boxes", "grasps"):
        services.stage_start(actor=annotator, task=t, stage_key=key)
        services.stage_submit(actor=annotator, task=t, stage_key=key)
    assert AnnotationReview.objects.get(annotation=fixed).verdict == "rejected"
    services.stage_review(actor=reviewer, task=t, stage_key="check", decision="approve")
    review = AnnotationReview.objects.get(annotation=fixed)
    assert review.verdict == "accepted" and review.comment.resolved


def test_missing_marks_go_to_the_stage_that_draws_the_label(two_stages, annotator, reviewer):
    t = two_stages
    sample = t.samples[1]
    mark = verdict(
        t, reviewer, verdict="missing", label="object", sample=sample.pk, frame=4,
        data={"frame": 4, "x": 2, "y": 2, "w": 5, "h": 5}, comment="The cup is not boxed",
    )  # fmt: skip
    assert (mark.stage_key, mark.annotation, mark.sample, mark.frame) == ("boxes", None, sample, 4)
    assert mark.data["w"] == 5 and mark.comment.kind == "problem"
    assert mark.comment.stage_key == "boxes" and mark.comment.frame == 4
    # Withdrawn: the mark is accepted and its problem resolved.
    again = verdict(t, reviewer, verdict="accept", mark=mark.pk)
    assert again.pk == mark.pk and again.verdict == "accepted"
    assert Comment.objects.get(pk=mark.comment_id).resolved


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"verdict": "reject", "comment": ""}, "comment"),  # a reject says why
        ({"verdict": "maybe"}, "verdict"),
        ({"verdict": "missing", "label": "nothing", "comment": "x"}, "label"),
        ({"verdict": "missing", "label": "object", "comment": "x"}, "sample"),
        ({"verdict": "accept", "annotation": 999999}, "annotation"),
        ({"verdict": "accept"}, "annotation"),
        ({"verdict": "accept", "mark": 999999}, "mark"),
    ],
)
def test_bad_verdicts_are_refused_with_the_field(two_stages, reviewer, kwargs, field):
    if "annotation" not in kwargs and kwargs["verdict"] == "reject":
        kwargs["annotation"] = two_stages.box.pk
    with pytest.raises(ApplicationError) as caught:
        verdict(two_stages, reviewer, **kwargs)
    assert caught.value.field == field
    assert not AnnotationReview.objects.exists() and not Comment.objects.exists()


def test_only_the_reviewer_judges_annotations(two_stages, annotator):
    with pytest.raises(PermissionDenied):
        verdict(two_stages, annotator, verdict="accept", annotation=two_stages.box.pk)


def test_the_api_takes_a_verdict_and_lists_those_of_a_stage(two_stages, api_as, reviewer):
    t = two_stages
    client = api_as(reviewer)
    url = f"/api/v1/tasks/{t.pk}/stages/check/verdicts/"
    answer = client.post(
        url, {"verdict": "reject", "annotation": t.box.pk, "comment": "Loose"}, format="json"
    )
    assert answer.status_code == 201, answer.content
    assert answer.json()["verdict"] == "rejected" and answer.json()["comment"]["body"] == "Loose"
    assert client.post(
        url, {"verdict": "reject", "annotation": t.box.pk}, format="json"
    ).json() == {"comment": ["Say what is wrong or missing."]}
    listed = client.get(f"/api/v1/tasks/{t.pk}/annotation-reviews/?stage=grasps").json()
    assert listed == []
    listed = client.get(f"/api/v1/tasks/{t.pk}/annotation-reviews/?stage=boxes").json()
    assert [r["annotation"] for r in listed] == [t.box.pk]
    comments = client.get(f"/api/v1/tasks/{t.pk}/comments/?stage=grasps").json()
    assert comments == []
