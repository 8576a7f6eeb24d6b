"""Batch annotation (issue 17): one classification, segment or attribute values applied to
many samples at once — the service behind the task page's tab and the workspace's batch."""

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.exceptions import ApplicationError
from tasks import services
from tasks.models import Annotation
from tasks.services.batch_annotation import annotation_apply_many

pytestmark = pytest.mark.django_db


def apply(work, annotator, **kwargs):
    kwargs.setdefault("stage", "annotate")
    kwargs.setdefault("samples", [s.pk for s in work.samples])
    return annotation_apply_many(actor=annotator, task=work, **kwargs)


def test_a_classification_on_every_sample_previewed_then_applied_then_changed(work, annotator):
    preview = apply(work, annotator, label="outcome", data={"value": "success"}, dry_run=True)
    assert (preview["count"], preview["created"], preview["skipped"]) == (2, 2, [])
    assert not Annotation.objects.exists()  # the preview writes nothing
    done = apply(work, annotator, label="outcome", data={"value": "success"})
    assert done["created"] == 2 and len(done["annotations"]) == 2
    assert set(Annotation.objects.values_list("sample", "data__value", "author__username")) == {
        (s.pk, "success", "ana") for s in work.samples
    }
    event = work.events.get(kind="annotations_applied")
    assert (event.stage_key, event.data["label"], event.data["created"]) == (
        "annotate",
        "outcome",
        2,
    )
    # The same value again changes nothing; another value changes each sample's (version 2).
    again = apply(work, annotator, label="outcome", data={"value": "success"})
    assert again["count"] == 0 and [s["reason"] for s in again["skipped"]] == ["already set"] * 2
    changed = apply(work, annotator, label="outcome", data={"value": "failure"})
    assert (changed["created"], changed["changed"]) == (0, 2)
    assert set(Annotation.objects.values_list("data__value", "version")) == {("failure", 2)}


def test_a_segment_skips_invalid_samples_and_those_it_does_not_fit(work, annotator):
    first, second = work.samples[:2]
    services.sample_mark_invalid(
        actor=annotator, task=work, sample=second.pk, stage="annotate", reason="blurred"
    )
    last = first.num_frames - 1
    result = apply(
        work, annotator, label="segment", data={"start": 0, "end": last},
        attributes={"description": "reach"},
    )  # fmt: skip
    assert result["created"] == 1
    assert result["skipped"] == [
        {"sample": second.pk, "name": second.name, "reason": "marked invalid"}
    ]
    past = apply(
        work, annotator, label="segment", data={"start": 0, "end": last + 1}, samples=[first.pk],
        attributes={"description": "reach"},
    )  # fmt: skip
    assert past["count"] == 0 and "past its end" in past["skipped"][0]["reason"]
    assert Annotation.objects.count() == 1


def test_attribute_values_go_onto_the_annotations_the_samples_have(work, annotator):
    first, second = work.samples[:2]
    box = services.annotation_create(
        actor=annotator, task=work, stage="annotate", label="object", sample=first.pk,
        data={"frame": 0, "x": 1, "y": 1, "w": 3, "h": 3},
    )  # fmt: skip
    result = apply(work, annotator, label="object", attributes={"label": "red cube"})
    assert (result["changed"], result["created"]) == (1, 0)
    assert result["skipped"] == [
        {"sample": second.pk, "name": second.name, "reason": "has no object"}
    ]
    before = box.updated_at
    box.refresh_from_db()
    assert (box.attributes, box.version) == ({"label": "red cube"}, 2)
    # Incremental exports pick changed annotations by updated_at: a batch change moves it.
    assert box.updated_at > before


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"label": "object", "data": {"frame": 0, "x": 1, "y": 1, "w": 2, "h": 2}}, "label"),
        ({"label": "outcome", "data": {"value": "maybe"}}, "data.value"),
        ({"label": "outcome", "data": {"value": "success"}, "samples": []}, "samples"),
        ({"label": "outcome", "data": {"value": "success"}, "samples": [999999]}, "samples"),
        ({"label": "outcome", "data": {"value": "success"}, "samples": ["x"]}, "samples"),
        ({"label": "outcome"}, "data"),
        ({"label": "nothing", "data": {"value": "success"}}, "label"),
        ({"label": "outcome", "data": {"value": "success"}, "stage": "nope"}, "stage"),
    ],
)
def test_bad_batches_are_refused_and_save_nothing(work, annotator, kwargs, field):
    with pytest.raises(ApplicationError) as caught:
        apply(work, annotator, **kwargs)
    assert caught.value.field == field
    assert not Annotation.objects.exists()


def test_only_whoever_has_the_stage_in_progress_applies_a_batch(work, reviewer):
    with pytest.raises((PermissionDenied, ApplicationError)):
        apply(work, reviewer, label="outcome", data={"value": "success"})
    assert not Annotation.objects.exists()


def test_the_queries_do_not_grow_with_the_samples(work, annotator):
    counts = []
    for samples in ([work.samples[0].pk], [s.pk for s in work.samples]):
        Annotation.objects.all().delete()
        with CaptureQueriesContext(connection) as queries:
            apply(work, annotator, label="outcome", data={"value": "success"}, samples=samples)
        counts.append(len(queries))
    assert counts[0] == counts[1] <= 12, counts


def test_the_api_previews_with_200_and_applies_with_201(work, annotator, api_as):
    client = api_as(annotator)
    url = f"/api/v1/tasks/{work.pk}/annotations/batch/"
    body = {"stage": "annotate", "label": "outcome", "data": {"value": "success"}}
    body["samples"] = [s.pk for s in work.samples]
    preview = client.post(url, {**body, "dry_run": True}, format="json")
    assert preview.status_code == 200 and preview.json()["count"] == 2
    applied = client.post(url, body, format="json")
    assert applied.status_code == 201 and applied.json()["created"] == 2
    bad = client.post(url, {**body, "samples": [0]}, format="json")
    assert bad.status_code == 400
