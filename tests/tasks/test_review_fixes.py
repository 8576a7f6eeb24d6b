"""A reviewer corrects in place (issue 17): a review stage with ``allow_fixes`` lets its
reviewer, their review in progress, update or delete the reviewed stages' annotations,
version-checked, each fix a TaskEvent with before and after; without it, 403 as before."""

import json
import re

import pytest
import yaml
from django.core.exceptions import PermissionDenied

from blueprints import services as blueprint_services
from blueprints.spec import BlueprintInvalid
from blueprints.validation import validate
from core.exceptions import Conflict, InvalidTransition
from tasks import services
from tasks.models import Annotation

pytestmark = pytest.mark.django_db

BLUEPRINT = """
name: fixable-review
taxonomy:
  - {key: object, kind: box}
stages:
  - {key: boxes, kind: annotate, classes: [object]}
  - {key: check, kind: review, depends_on: [boxes], reviews: [boxes], allow_fixes: %s}
"""
MOVED = {"frame": 2, "x": 3, "y": 2, "w": 4, "h": 4}


def reviewed(project, manager, annotator, reviewer, dataset, allow: bool):
    """ana's box in ``boxes`` submitted; ravi's review ``check`` started."""
    source = BLUEPRINT % ("true" if allow else "false")
    blueprint, _ = blueprint_services.blueprint_save(
        actor=manager, project=project, definition=yaml.safe_load(source), source=source
    )
    blueprint_services.blueprint_activate(actor=manager, blueprint=blueprint)
    task = services.task_create(
        actor=manager, project=project, name="t", datasets=[dataset.pk], reviewers=["ravi"]
    )
    services.stage_start(actor=annotator, task=task, stage_key="boxes")
    task.box = services.annotation_create(
        actor=annotator, task=task, stage="boxes", label="object",
        sample=dataset.samples.order_by("index")[0].pk,
        data={"frame": 2, "x": 1, "y": 1, "w": 4, "h": 4},
    )  # fmt: skip
    services.stage_submit(actor=annotator, task=task, stage_key="boxes")
    services.stage_start(actor=reviewer, task=task, stage_key="check")
    return task


@pytest.fixture
def fixable(project, manager, annotator, reviewer, dataset):
    return reviewed(project, manager, annotator, reviewer, dataset, allow=True)


def test_allow_fixes_is_a_review_option_and_a_boolean():
    spec = validate(yaml.safe_load(BLUEPRINT % "true"))
    assert spec.by_key["check"].allow_fixes is True
    assert validate(yaml.safe_load(BLUEPRINT % "false")).by_key[
        "check"
    ].allow_fixes is False  # fmt: skip
    with pytest.raises(BlueprintInvalid) as bad:
        validate(yaml.safe_load(BLUEPRINT % '"yes"'))
    assert [e.path for e in bad.value.errors] == ["stages[1].allow_fixes"]
    document = yaml.safe_load(BLUEPRINT % "true")
    document["stages"][0]["allow_fixes"] = True  # an annotate stage has no such option
    with pytest.raises(BlueprintInvalid):
        validate(document)


def test_the_reviewer_fixes_a_box_recorded_before_and_after(fixable, reviewer):
    t = fixable
    fixed = services.annotation_update(
        actor=reviewer, annotation=t.box, version=t.box.version, data=MOVED, review="check"
    )
    assert fixed.data == MOVED and fixed.version == t.box.version + 1
    event = t.events.get(kind="annotation_fixed_in_review")
    assert (event.actor, event.stage_key) == (reviewer, "boxes")
    assert event.data["review_stage"] == "check" and event.data["action"] == "update"
    assert event.data["before"]["data"]["x"] == 1 and event.data["after"]["data"]["x"] == 3
    assert event.data["after"]["version"] == fixed.version


def test_the_reviewer_deletes_a_box_recorded_with_what_it_was(fixable, reviewer):
    t = fixable
    services.annotation_delete(
        actor=reviewer, annotation=t.box, version=t.box.version, review="check"
    )
    assert not Annotation.objects.filter(pk=t.box.pk).exists()
    event = t.events.get(kind="annotation_fixed_in_review")
    assert event.data["action"] == "delete" and event.data["after"] is None
    assert event.data["before"]["data"]["w"] == 4


def test_a_stale_version_is_still_a_conflict(fixable, reviewer, annotator):
    t = fixable
    services.annotation_update(
        actor=reviewer, annotation=t.box, version=t.box.version, data=MOVED, review="check"
    )
    with pytest.raises(Conflict) as stale:  # the version the annotator (or another tab) saw
        services.annotation_update(
            actor=reviewer, annotation=t.box, version=t.box.version, data={**MOVED, "x": 9},
            review="check",
        )  # fmt: skip
    assert stale.value.status_code == 409
    t.box.refresh_from_db()
    assert t.box.data == MOVED
    assert t.events.filter(kind="annotation_fixed_in_review").count() == 1


def test_no_fixes_without_the_option(project, manager, annotator, reviewer, dataset):
    t = reviewed(project, manager, annotator, reviewer, dataset, allow=False)
    with pytest.raises(PermissionDenied, match="does not allow fixes"):
        services.annotation_update(
            actor=reviewer, annotation=t.box, version=t.box.version, data=MOVED, review="check"
        )
    with pytest.raises(InvalidTransition):  # as before without naming it: stage completed
        services.annotation_update(
            actor=reviewer, annotation=t.box, version=t.box.version, data=MOVED
        )
    t.box.refresh_from_db()
    assert t.box.data["x"] == 1 and not t.events.filter(kind="annotation_fixed_in_review")


def test_only_the_reviewer_with_the_review_in_progress_fixes(fixable, annotator, reviewer):
    t = fixable
    with pytest.raises(PermissionDenied):  # the annotator is not the review's reviewer
        services.annotation_update(
            actor=annotator, annotation=t.box, version=t.box.version, data=MOVED, review="check"
        )
    services.stage_review(actor=reviewer, task=t, stage_key="check", decision="approve")
    with pytest.raises(PermissionDenied, match="in progress"):
        services.annotation_update(
            actor=reviewer, annotation=t.box, version=t.box.version, data=MOVED, review="check"
        )


def test_the_api_fixes_and_refuses_with_403(fixable, api_as, reviewer, annotator):
    t = fixable
    client = api_as(reviewer)
    url = f"/api/v1/tasks/{t.pk}/annotations/{t.box.pk}/"
    answer = client.patch(
        url, {"version": t.box.version, "data": MOVED, "review": "check"}, format="json"
    )
    assert answer.status_code == 200, answer.json()
    assert answer.json()["data"]["x"] == 3
    stale = client.patch(
        url, {"version": t.box.version, "data": MOVED, "review": "check"}, format="json"
    )
    assert stale.status_code == 409
    refused = api_as(annotator).delete(f"{url}?version={t.box.version + 1}&review=check")
    assert refused.status_code == 403
    gone = client.delete(f"{url}?version={t.box.version + 1}&review=check")
    assert gone.status_code == 204
    assert [
        e.data["action"] for e in t.events.filter(kind="annotation_fixed_in_review").order_by("pk")
    ] == ["update", "delete"]


def workspace_data(client, user, task):
    client.force_login(user)
    html = client.get(f"/workspace/{task.pk}/check/").content.decode()
    found = re.search(r'<script id="workspace-data"[^>]*>(.*?)</script>', html, re.S)
    return json.loads(found.group(1))


def test_the_workspace_makes_the_reviewed_stage_editable_only_where_fixes_are_allowed(
    project, manager, annotator, reviewer, dataset, client
):
    t = reviewed(project, manager, annotator, reviewer, dataset, allow=True)
    data = workspace_data(client, reviewer, t)
    assert (data["fixes"], data["editable"], data["review"]) == (["boxes"], False, True)
    services.stage_review(actor=reviewer, task=t, stage_key="check", decision="approve")
    assert workspace_data(client, reviewer, t)["fixes"] == []  # no longer in progress
    t = reviewed(project, manager, annotator, reviewer, dataset, allow=False)
    assert workspace_data(client, reviewer, t)["fixes"] == []
