"""Annotations on a sample must name one of its cameras and frames (create and edit)."""

import pytest

from projects.models import Sample
from tasks import services

pytestmark = pytest.mark.django_db

BOX = {"frame": 0, "camera": "cam_high", "x": 1, "y": 2, "w": 3, "h": 4}


def _post(client, task, sample, data, label="object"):
    body = {"stage": "annotate", "label": label, "sample": sample, "data": data}
    return client.post(f"/api/v1/tasks/{task.pk}/annotations/", body, format="json")


def test_it_accepts_a_box_on_a_camera_and_frame_of_the_sample(api_as, annotator, work):
    response = _post(api_as(annotator), work, work.sample.pk, BOX)
    assert response.status_code == 201, response.content
    assert response.json()["data"]["camera"] == "cam_high"


def test_it_refuses_a_camera_the_sample_does_not_have(api_as, annotator, work):
    response = _post(api_as(annotator), work, work.sample.pk, {**BOX, "camera": "nope"})
    assert response.status_code == 400
    message = response.json()["data.camera"][0]
    assert "nope" in message and "cam_high" in message
    assert not work.annotations.exists()


def test_it_refuses_a_box_on_a_sample_without_cameras(api_as, annotator, work):
    Sample.objects.filter(pk=work.sample.pk).update(cameras=[])  # a state-only episode
    response = _post(api_as(annotator), work, work.sample.pk, BOX)
    assert response.status_code == 400
    assert "no camera" in response.json()["data.camera"][0]
    without_camera = {k: v for k, v in BOX.items() if k != "camera"}
    response = _post(api_as(annotator), work, work.sample.pk, without_camera)
    assert response.status_code == 400
    assert "data.camera" in response.json()


@pytest.mark.parametrize("data, field", [
    ({**BOX, "frame": 12}, "data.frame"),  # the episodes have frames 0–11
    ({"start": 3, "end": 12}, "data.end"),
])  # fmt: skip
def test_it_refuses_a_frame_past_the_sample_end(api_as, annotator, work, data, field):
    label = "object" if "camera" in data else "segment"
    body = {"stage": "annotate", "label": label, "sample": work.sample.pk, "data": data}
    if label == "segment":
        body["attributes"] = {"description": "reach"}
    response = api_as(annotator).post(f"/api/v1/tasks/{work.pk}/annotations/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_it_checks_an_edit_against_the_sample(api_as, annotator, work):
    box = services.annotation_create(
        actor=annotator, task=work, stage="annotate", label="object", sample=work.sample.pk,
        data=BOX,
    )  # fmt: skip
    url = f"/api/v1/tasks/{work.pk}/annotations/{box.pk}/"
    client = api_as(annotator)
    response = client.patch(url, {"version": 1, "data": {**BOX, "camera": "nope"}}, format="json")
    assert response.status_code == 400
    assert "data.camera" in response.json()
    response = client.patch(url, {"version": 1, "data": {**BOX, "frame": 99}}, format="json")
    assert response.status_code == 400
    assert "data.frame" in response.json()
    response = client.patch(
        url, {"version": 1, "data": {**BOX, "camera": "cam_low"}}, format="json"
    )
    assert response.status_code == 200, response.content
    box.refresh_from_db()
    assert box.data["camera"] == "cam_low"


def test_it_keeps_task_level_annotations_free_of_a_sample(api_as, annotator, work):
    response = _post(api_as(annotator), work, None, {**BOX, "camera": "anything"})
    assert response.status_code == 201, response.content
    response = _post(api_as(annotator), work, None, {"value": "success"}, label="outcome")
    assert response.status_code == 201, response.content
