"""Tracks: keyframes sharing a track id, interpolated between them (tasks.tracks), checked
by the annotation services and written frame by frame by every export format."""

import json
from dataclasses import dataclass, field

import h5py
import pytest

from queues import services as export_services
from tasks import services
from tasks.tracks import expand_tracks, interpolate

BOX = {"frame": 0, "camera": "cam_high", "x": 1, "y": 2, "w": 3, "h": 4}


# --- the interpolation, known answers -------------------------------------------------------


def test_a_box_moves_and_resizes_linearly_between_keyframes():
    before = {"frame": 0, "camera": "wrist", "x": 10, "y": 20, "w": 30, "h": 40}
    after = {"frame": 4, "camera": "wrist", "x": 30, "y": 20, "w": 50, "h": 20}
    assert interpolate("box", before, after, 1) == {
        "frame": 1, "camera": "wrist", "x": 15.0, "y": 20.0, "w": 35.0, "h": 35.0,
    }  # fmt: skip
    assert interpolate("box", before, after, 2) == {
        "frame": 2, "camera": "wrist", "x": 20.0, "y": 20.0, "w": 40.0, "h": 30.0,
    }  # fmt: skip
    # Thirds are not exact in binary: the same double as tracks.js computes.
    third = interpolate("box", {**before, "frame": 0}, {**after, "frame": 3}, 1)
    assert third["x"] == 10 + (30 - 10) * (1 / 3)


def test_keypoints_and_polygons_interpolate_and_a_changed_polygon_holds():
    point = interpolate("keypoint", {"frame": 2, "x": 0, "y": 8}, {"frame": 6, "x": 4, "y": 0}, 3)
    assert point == {"frame": 3, "x": 1.0, "y": 6.0}
    square = [[0, 0], [10, 0], [10, 10]]
    moved = [[10, 10], [20, 10], [20, 20]]
    shape = interpolate("polygon", {"frame": 0, "points": square}, {"frame": 2, "points": moved}, 1)
    assert shape["points"] == [[5.0, 5.0], [15.0, 5.0], [15.0, 15.0]]
    four = [*moved, [10, 20]]
    held = interpolate("polygon", {"frame": 0, "points": square}, {"frame": 2, "points": four}, 1)
    assert held["points"] == square
    with pytest.raises(ValueError):
        interpolate("segment", {"frame": 0}, {"frame": 2}, 1)


@dataclass
class Row:
    pk: int | None
    kind: str
    data: dict
    track: str = ""
    stage_key: str = "annotate"
    replica: int = 0
    sample_id: int | None = 1
    invalid: bool = False
    attributes: dict = field(default_factory=dict)


def test_a_track_of_three_keyframes_expands_to_every_frame_between_in_place():
    a = Row(1, "box", {"frame": 0, "x": 0, "y": 0, "w": 10, "h": 10}, "t", attributes={"c": 1})
    b = Row(3, "box", {"frame": 10, "x": 100, "y": 0, "w": 10, "h": 10}, "t")
    c = Row(2, "box", {"frame": 19, "x": 100, "y": 90, "w": 10, "h": 10}, "t")
    loose = Row(4, "box", {"frame": 5, "x": 1, "y": 1, "w": 1, "h": 1})
    segment = Row(5, "segment", {"start": 0, "end": 3}, "t")
    rows = expand_tracks([a, c, b, loose, segment])
    frames = [r.data["frame"] for r in rows if r.track == "t" and r.kind == "box"]
    assert sorted(frames) == list(range(20))  # twenty frames from three keyframes
    assert [r.pk for r in rows[:11]] == [1] + [None] * 9 + [2]  # in place, after a
    assert rows[5].data["x"] == 50.0 and rows[5].attributes == {"c": 1}
    between_b_c = [r for r in rows if r.pk is None and r.data["frame"] > 10]
    assert [r.data["y"] for r in between_b_c] == [10.0 * n for n in range(1, 9)]
    assert loose in rows and segment in rows and len(rows) == 20 + 2
    assert a.data["frame"] == 0 and a.pk == 1  # the keyframes themselves are untouched


def test_invalid_keyframes_and_other_tracks_do_not_join():
    a = Row(1, "box", {"frame": 0, "x": 0, "y": 0, "w": 1, "h": 1}, "t")
    bad = Row(2, "box", {"frame": 2, "x": 8, "y": 0, "w": 1, "h": 1}, "t", invalid=True)
    b = Row(3, "box", {"frame": 4, "x": 4, "y": 0, "w": 1, "h": 1}, "t")
    other = Row(4, "box", {"frame": 8, "x": 0, "y": 0, "w": 1, "h": 1}, "t", replica=1)
    rows = expand_tracks([a, bad, b, other])
    assert [r.data["x"] for r in rows if r.pk is None] == [1.0, 2.0, 3.0]


# --- the services: a track is one object ----------------------------------------------------


def _post(client, task, sample, data, track, label="object"):
    body = {"stage": "annotate", "label": label, "sample": sample, "data": data, "track": track}
    return client.post(f"/api/v1/tasks/{task.pk}/annotations/", body, format="json")


def test_keyframes_of_one_track_share_the_object(api_as, annotator, work):
    client = api_as(annotator)
    first = _post(client, work, work.sample.pk, BOX, "7")
    assert first.status_code == 201, first.content
    assert first.json()["track"] == "7"
    second = _post(client, work, work.sample.pk, {**BOX, "frame": 4, "x": 9}, "7")
    assert second.status_code == 201, second.content
    refusals = [
        (work.sample.pk, {**BOX, "frame": 4}, "7", "already has a keyframe on frame 4"),
        (work.sample.pk, {**BOX, "frame": 2, "camera": "cam_low"}, "7", "another camera"),
        (work.samples[1].pk, {**BOX, "frame": 2}, "7", "another object"),
        (work.sample.pk, BOX, "no spaces", "up to 40 letters"),
    ]
    for sample, data, track, message in refusals:
        response = _post(client, work, sample, data, track)
        assert response.status_code == 400, (track, data)
        assert message in response.json()["track"][0]
    segment = {"start": 0, "end": 3}
    body = {"stage": "annotate", "label": "segment", "sample": work.sample.pk, "data": segment,
            "attributes": {"description": "reach"}, "track": "7"}  # fmt: skip
    response = client.post(f"/api/v1/tasks/{work.pk}/annotations/", body, format="json")
    assert response.status_code == 400 and "not tracked" in response.json()["track"][0]
    assert work.annotations.count() == 2


def test_an_edit_keeps_one_keyframe_per_frame_and_can_leave_the_track(api_as, annotator, work):
    client = api_as(annotator)
    _post(client, work, work.sample.pk, BOX, "t1")
    second = _post(client, work, work.sample.pk, {**BOX, "frame": 3}, "t1").json()
    url = f"/api/v1/tasks/{work.pk}/annotations/{second['id']}/"
    onto_first = client.patch(url, {"version": 1, "data": BOX}, format="json")
    assert onto_first.status_code == 400 and "frame 0" in onto_first.json()["track"][0]
    left = client.patch(url, {"version": 1, "track": ""}, format="json")
    assert left.status_code == 200 and left.json()["track"] is None
    joined = client.patch(url, {"version": 2, "track": "t1"}, format="json")
    assert joined.status_code == 200 and joined.json()["track"] == "t1"


def test_the_api_lists_a_track_frame_by_frame_on_request(api_as, annotator, work):
    client = api_as(annotator)
    _post(client, work, work.sample.pk, BOX, "t1")
    _post(client, work, work.sample.pk, {**BOX, "frame": 4, "x": 5}, "t1")
    url = f"/api/v1/tasks/{work.pk}/annotations/"
    assert len(client.get(url).json()) == 2
    rows = client.get(url, {"frames": "all"}).json()
    assert [(r["id"] is None, r["data"]["frame"], r["data"]["x"]) for r in rows] == [
        (False, 0, 1), (True, 1, 2.0), (True, 2, 3.0), (True, 3, 4.0), (False, 4, 5),
    ]  # fmt: skip
    assert {r["track"] for r in rows} == {"t1"}


# --- exports: every format writes the frames between keyframes with their track id --------


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Each test its own media folder (datasets and exports)."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def tracked(work, annotator):
    """A track of the object: keyframes on frames 2 and 6 of the first episode."""
    for frame, x in ((2, 10), (6, 30)):
        services.annotation_create(
            actor=annotator, task=work, stage="annotate", label="object", sample=work.sample.pk,
            data={**BOX, "frame": frame, "x": x}, track="obj-1",
        )  # fmt: skip
    return work


def _export(task, manager, fmt):
    started, _ = export_services.export_start(
        actor=manager,
        project=task.project,
        format=fmt,
        background=False,
        ids=[task.pk],
        options={"include_unfinished": True},
    )
    done = export_services.export_run(export_id=started.pk)
    assert done.status == "finished", done.error
    return export_services.export_dir(done)


WANT = [(2, 10, True), (3, 15.0, False), (4, 20.0, False), (5, 25.0, False), (6, 30, True)]


def test_jsonl_and_lerobot_write_each_frame_with_its_track(tracked, manager):
    [line] = (_export(tracked, manager, "jsonl") / "tasks.jsonl").read_text().splitlines()
    boxes = [a for a in json.loads(line)["annotations"] if a["track"] == "obj-1"]
    assert [(a["data"]["frame"], a["data"]["x"], a["id"] is not None) for a in boxes] == WANT
    folder = _export(tracked, manager, "lerobot")
    rows = [json.loads(x) for x in (folder / "meta" / "stagecraft_annotations.jsonl").open()]
    boxes = [a for a in rows if a["track"] == "obj-1"]
    assert [(a["data"]["frame"], a["data"]["x"], a["id"] is not None) for a in boxes] == WANT
    assert {a["sample_name"] for a in boxes} == {tracked.sample.name}


def test_hdf5_and_coco_write_each_frame_with_its_track(tracked, manager):
    folder = _export(tracked, manager, "hdf5")
    with h5py.File(folder / "episode_0.hdf5") as f:
        records = [json.loads(r) for r in f["annotations/records"][()]]
        boxes = f["annotations/boxes"][()]
    assert [(r["data"]["frame"], r["track"]) for r in records][:5] == [
        (n, "obj-1") for n in range(2, 7)
    ]
    assert [tuple(b[:2]) for b in boxes] == [(f, x) for f, x, _ in WANT]
    document = json.loads((_export(tracked, manager, "coco") / "annotations.json").read_text())
    frames = {i["id"]: i["frame"] for i in document["images"]}
    got = [
        (frames[a["image_id"]], a["bbox"][0], a["attributes"]["keyframe"])
        for a in document["annotations"]
    ]
    assert got == WANT
    assert {a["attributes"]["track_id"] for a in document["annotations"]} == {"obj-1"}


def test_the_delivery_carries_the_track_frame_by_frame_like_the_jsonl_export(
    tracked, annotator, reviewer, manager
):
    services.stage_submit(actor=annotator, task=tracked, stage_key="annotate")
    services.stage_review(actor=reviewer, task=tracked, stage_key="review", decision="approve")
    (delivery,) = tracked.deliveries.all()
    boxes = [a for a in delivery.payload["annotations"] if a["track"] == "obj-1"]
    assert [(a["data"]["frame"], a["data"]["x"], a["id"] is not None) for a in boxes] == WANT
    [line] = (_export(tracked, manager, "jsonl") / "tasks.jsonl").read_text().splitlines()
    assert json.loads(line)["annotations"] == delivery.payload["annotations"]
