"""Tracks in the workspace (issue 17): a box tracked across frames by keyframes, drawn
between them as tasks/tracks.py interpolates it for the exports; hide and lock a track."""

import json
import re

from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from queues import services as export_services
from tasks.models import Annotation
from tasks.tracks import interpolate
from tests.e2e.test_workspace import on_screen, open_objects_stage

WRIST = "cam_right_wrist"


def drag(page, start, end):
    page.mouse.move(*on_screen(page, *start))
    page.mouse.down()
    page.mouse.move(*on_screen(page, *end), steps=5)
    page.mouse.up()


def go_to(page, frame):
    page.locator("[data-scrubber]").fill(str(frame))
    expect(page.locator("[data-counter]")).to_contain_text(f"{frame} /")


def exported_boxes(task, manager):
    """The task's JSONL export (the worker's code, run here): its object boxes by frame."""
    started, _ = export_services.export_start(
        actor=manager, project=task.project, format="jsonl", background=False, ids=[task.pk],
        options={"include_unfinished": True},
    )  # fmt: skip
    done = export_services.export_run(export_id=started.pk)
    assert done.status == "finished", done.error
    [line] = (export_services.export_dir(done) / "tasks.jsonl").read_text().splitlines()
    boxes = [a for a in json.loads(line)["annotations"] if a["stage"] == "objects"]
    return {a["data"]["frame"]: a for a in boxes}


def test_a_block_tracked_in_the_wrist_camera_over_twenty_frames_with_three_keyframes(
    login, live_server
):
    page = login("annotator")
    page.set_viewport_size({"width": 1440, "height": 900})
    task_id = open_objects_stage(page, live_server)
    page.get_by_role("group", name="Cameras").get_by_role("button", name=WRIST).click()
    page.wait_for_function(
        "() => document.querySelector('svg.overlay').viewBox.baseVal.width == 64"
    )
    page.get_by_label("category *").select_option("block")
    status = page.get_by_role("status", name="Saved changes")

    # Frame 0: box the block; selected, it offers to start a track.
    drag(page, (10, 12), (30, 32))
    expect(status).to_contain_text("Saved object.")
    first = Annotation.objects.get(task_id=task_id, stage_key="objects")
    page.get_by_role("button", name=re.compile(r"^Select object frame 0")).click()
    tracks = page.get_by_role("list", name="Tracks of this sample")
    expect(tracks).to_contain_text(f"object #{first.pk}: no track yet")

    # Frame 9: a keyframe here (the same box), dragged to where the block is now.
    go_to(page, 9)
    page.get_by_role("button", name=f"Keyframe of object #{first.pk} here").click()
    name = f"object track {first.pk}"
    expect(tracks).to_contain_text(f"{name}: keyframes 0, 9")
    drag(page, (20, 22), (34, 22))
    expect(status).to_contain_text("Moved object")

    # Frame 19: a third keyframe, moved down; the track spans twenty frames.
    go_to(page, 19)
    page.get_by_role("button", name=f"Keyframe of {name} here").click()
    expect(tracks).to_contain_text(f"{name}: keyframes 0, 9, 19")
    page.wait_for_function(
        "() => document.querySelectorAll('.overlay rect.saved.selected').length == 1"
    )
    drag(page, (34, 22), (34, 30))
    expect(status).to_contain_text("Moved object")
    keys = list(Annotation.objects.filter(task_id=task_id, track=str(first.pk)).order_by("id"))
    assert [k.data["frame"] for k in keys] == [0, 9, 19]
    assert {k.data["camera"] for k in keys} == {WRIST}
    assert keys[1].data["x"] > keys[0].data["x"] and keys[2].data["y"] > keys[1].data["y"]
    lanes = page.get_by_role("img", name="Tracks timeline")
    expect(lanes.locator("rect[data-frame]")).to_have_count(3)

    # Frame 5 and frame 14 draw the box between keyframes as the Python function has it.
    drawn = {}
    for frame, (before, after) in ((5, keys[:2]), (14, keys[1:])):
        go_to(page, frame)
        rect = page.locator(".overlay rect.saved.interpolated")
        expect(rect).to_have_count(1)
        drawn[frame] = {k: float(rect.get_attribute(k)) for k in ("x", "y", "width", "height")}
        want = interpolate("box", before.data, after.data, frame)
        assert drawn[frame] == {"x": want["x"], "y": want["y"], "width": want["w"],
                                "height": want["h"]}  # fmt: skip

    # The export has every frame 0–19 of the track, the interpolated ones as drawn.
    manager = get_user_model().objects.get(username="manager")
    exported = exported_boxes(keys[0].task, manager)
    assert sorted(exported) == list(range(20))
    assert {a["track"] for a in exported.values()} == {str(first.pk)}
    assert [f for f, a in sorted(exported.items()) if a["id"] is not None] == [0, 9, 19]
    for frame, box in drawn.items():
        data = exported[frame]["data"]
        assert (data["x"], data["y"], data["w"], data["h"]) == (
            box["x"],
            box["y"],
            box["width"],
            box["height"],
        ), frame

    # Hide: neither the keyframes nor the frames between are drawn; Show brings them back.
    page.get_by_role("button", name=f"Hide {name}").click()
    expect(page.locator(".overlay rect.saved")).to_have_count(0)
    page.get_by_role("button", name=f"Show {name}").click()
    expect(page.locator(".overlay rect.saved.interpolated")).to_have_count(1)

    # Lock: a keyframe is neither moved nor deleted from the page until unlocked.
    page.get_by_role("button", name=f"Lock {name}").click()
    lanes.locator("rect[data-frame='9']").click()
    expect(page.locator("[data-counter]")).to_contain_text("9 /")
    drag(page, (34, 22), (40, 40))
    page.get_by_role("button", name=re.compile(r"^Delete object frame 9")).click()
    expect(page.get_by_role("alert", name="Problems")).to_contain_text("is locked")
    keys[1].refresh_from_db()
    assert keys[1].version == 2 and Annotation.objects.filter(track=str(first.pk)).count() == 3
    page.get_by_role("button", name=f"Unlock {name}").click()
    expect(tracks.get_by_role("button", name=f"Copy {name} to the next frame")).to_be_visible()

    # The page's interpolate is the Python one, double for double, for every tracked kind.
    cases = [
        ("box", {"frame": 0, "camera": WRIST, "x": 1, "y": 2, "w": 3, "h": 4},
         {"frame": 3, "camera": WRIST, "x": 10.5, "y": 0.1, "w": 7, "h": 4.4}, 1),
        ("keypoint", {"frame": 2, "x": 0.3, "y": 8}, {"frame": 9, "x": 4, "y": 0.7}, 5),
        ("polygon", {"frame": 0, "points": [[0, 0], [10, 0.2], [10, 10]]},
         {"frame": 7, "points": [[1, 1], [20, 10], [20, 20.5]]}, 3),
        ("polygon", {"frame": 0, "points": [[0, 0], [10, 0], [10, 10]]},
         {"frame": 2, "points": [[1, 1], [2, 2], [3, 3], [4, 4]]}, 1),
    ]  # fmt: skip
    in_page = page.evaluate(
        """async (cases) => {
            const url = document.querySelector("script[src*='workspace/main.js']").src;
            const { interpolate } = await import(url.replace("main.js", "tracks.js"));
            return cases.map(([kind, a, b, frame]) => interpolate(kind, a, b, frame));
        }""",
        cases,
    )
    assert in_page == [interpolate(*case) for case in cases]
