"""Editing polygons and keypoints, drawing by keyboard only, two cameras side by side and
folding panels (issue 17): what is saved is checked in the database, in image pixels."""

import tempfile
from pathlib import Path

from playwright.sync_api import expect

from blueprints import services as blueprint_services
from projects.models import Dataset, Project
from tasks import services
from tasks.models import Annotation

SHOTS = Path(tempfile.gettempdir()) / "stagecraft-shots"  # screenshots to look at


def shapes_task():
    """A task on the demo's two-camera episodes (cam_high 96×96, cam_right_wrist 64×64) whose
    one stage draws boxes, polygons and keypoints, started by the demo annotator."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.in_bulk(["manager", "annotator"], field_name="username")
    project = Project.objects.get(name="Pick and place")
    definition = {
        "name": "shapes",
        "taxonomy": [
            {"key": "object", "kind": "box"},
            {"key": "region", "kind": "polygon"},
            {"key": "tip", "kind": "keypoint"},
        ],
        "stages": [{"key": "draw", "kind": "annotate", "classes": ["object", "region", "tip"]}],
    }
    blueprint_services.blueprint_save(
        actor=users["manager"], project=project, definition=definition
    )
    episodes = Dataset.objects.get(project=project, name="Tabletop session 1")
    task = services.task_create(
        actor=users["manager"], project=project, name="Shapes", blueprint="shapes",
        datasets=[episodes.pk], annotators=["annotator"],
    )  # fmt: skip
    services.stage_start(actor=users["annotator"], task=task, stage_key="draw")
    return task, users["annotator"]


def open_task(page, live_server, task):
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/workspace/{task.pk}/draw/")
    expect(page.locator("body")).to_have_attribute("data-workspace-ready", "true")
    page.wait_for_function(
        "() => [...document.querySelectorAll('svg.overlay')].every((s) => s.viewBox.baseVal.width)"
    )


def on_screen(page, x, y, camera="cam_high"):
    """The screen position of image pixel (x, y) of ``camera``'s frame box."""
    image = page.locator(f'.frame-box img[data-camera="{camera}"]')
    box = image.bounding_box()
    scale = box["width"] / image.evaluate("(i) => i.naturalWidth")
    return box["x"] + x * scale, box["y"] + y * scale


def drag(page, start, end):
    page.mouse.move(*on_screen(page, *start))
    page.mouse.down()
    page.mouse.move(*on_screen(page, *end), steps=5)
    page.mouse.up()


def close(points, expected):
    """Within a screen pixel (about 0.2 image pixels here): a drag's ends sit on whole pixels."""
    return len(points) == len(expected) and all(
        abs(p[0] - e[0]) <= 0.25 and abs(p[1] - e[1]) <= 0.25
        for p, e in zip(points, expected, strict=True)
    )


def test_edit_a_polygons_corners_and_move_a_keypoint(login, live_server):
    page = login("annotator")
    task, annotator = shapes_task()
    sample = task.datasets.get().samples.order_by("index").first()
    region = services.annotation_create(
        actor=annotator, task=task, stage="draw", label="region", sample=sample.pk,
        data={"frame": 0, "camera": "cam_high", "points": [[10, 10], [40, 10], [40, 30], [10, 30]]},
    )  # fmt: skip
    tip = services.annotation_create(
        actor=annotator, task=task, stage="draw", label="tip", sample=sample.pk,
        data={"frame": 0, "camera": "cam_high", "x": 60, "y": 60},
    )  # fmt: skip
    open_task(page, live_server, task)
    saved = page.get_by_role("status", name="Saved changes")
    polygon = page.locator(f'svg.overlay polygon.saved[data-id="{region.pk}"]')
    expect(polygon).to_have_count(1)
    expect(page.locator(f'svg.overlay circle.saved[data-id="{tip.pk}"]')).to_have_count(1)

    # A press inside selects it: a handle on each corner and each edge's middle, white with
    # a dark outline.
    page.mouse.click(*on_screen(page, 25, 20))
    handles = page.locator("svg.overlay rect.handle")
    expect(handles).to_have_count(8)
    colours = handles.first.evaluate(
        "(h) => [getComputedStyle(h).fill, getComputedStyle(h).stroke]"
    )
    assert colours == ["rgb(255, 255, 255)", "rgb(31, 41, 51)"], colours
    # Their outline stays 1.5 screen pixels at this zoom (the frame is scaled ~5×).
    outline = handles.first.evaluate(
        "(h) => parseFloat(getComputedStyle(h).strokeWidth) * h.ownerSVGElement.scale"
    )
    assert abs(outline - 1.5) < 0.01, outline
    page.screenshot(path=f"{SHOTS}/polygon-selected-1440x900.png")

    # Drag a corner: it moves, the others stay.
    drag(page, (40, 10), (50, 5))
    expect(saved).to_contain_text("Moved a corner of region: frame 0, 4 points.")
    region.refresh_from_db()
    assert close(region.data["points"], [[10, 10], [50, 5], [40, 30], [10, 30]]), region.data
    assert region.version == 2

    # Drag the middle of the bottom edge: a new corner there.
    drag(page, (25, 30), (25, 40))
    expect(saved).to_contain_text("Added a corner to region: frame 0, 5 points.")
    region.refresh_from_db()
    assert close(region.data["points"], [[10, 10], [50, 5], [40, 30], [25, 40], [10, 30]])

    # Alt+click deletes a corner.
    page.keyboard.down("Alt")
    page.mouse.click(*on_screen(page, 10, 10))
    page.keyboard.up("Alt")
    expect(saved).to_contain_text("Deleted a corner of region: frame 0, 4 points.")
    region.refresh_from_db()
    assert close(region.data["points"], [[50, 5], [40, 30], [25, 40], [10, 30]])

    # By keyboard: ] chooses the first corner, the arrows move it (one save), Delete deletes it.
    page.keyboard.press("Escape")  # the corner chosen by the click
    page.keyboard.press("]")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Shift+ArrowDown")
    expect(saved).to_contain_text("Moved a corner of region")
    region.refresh_from_db()
    assert close(region.data["points"], [[49, 15], [40, 30], [25, 40], [10, 30]])
    page.keyboard.press("Delete")
    expect(saved).to_contain_text("Deleted a corner of region: frame 0, 3 points.")
    page.keyboard.press("Delete")  # three corners are the least
    expect(page.get_by_role("alert", name="Problems")).to_have_text(
        "A polygon keeps at least three corners."
    )
    region.refresh_from_db()
    assert close(region.data["points"], [[40, 30], [25, 40], [10, 30]]), region.data
    assert Annotation.objects.filter(pk=region.pk).exists()

    # A keypoint is dragged by itself; Ctrl+Z puts it back.
    drag(page, (60, 60), (70, 65))
    expect(saved).to_contain_text("Moved tip: frame 0, point 70,65.")
    tip.refresh_from_db()
    assert abs(tip.data["x"] - 70) <= 0.25 and abs(tip.data["y"] - 65) <= 0.25
    page.keyboard.press("Control+z")
    expect(saved).to_have_text("Undone: changed tip.")
    tip.refresh_from_db()
    assert (tip.data["x"], tip.data["y"]) == (60, 60)


def test_draw_a_box_a_polygon_and_a_keypoint_by_keyboard_only(login, live_server):
    page = login("annotator")
    task, _ = shapes_task()
    open_task(page, live_server, task)
    saved = page.get_by_role("status", name="Saved changes")
    area = page.get_by_label("Drawing area on cam_high")
    size = page.locator(".frame-box img").evaluate("(i) => [i.naturalWidth, i.naturalHeight]")
    cx, cy = round(size[0] / 2), round(size[1] / 2)  # the cross-hair starts mid-screen

    # A box: the first arrow shows the cross-hair, Enter sets a corner, Enter the other one.
    area.focus()
    page.keyboard.press("ArrowRight")
    expect(area).to_have_attribute("aria-description", f"Cross-hair at {cx},{cy}")
    page.keyboard.press("Shift+ArrowLeft")  # 10 pixels
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")
    expect(saved).to_contain_text(f"Box corner at {cx - 10},{cy - 1}")
    for key in ["Shift+ArrowRight"] * 3 + ["Shift+ArrowDown", "ArrowDown", "ArrowDown"]:
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    expect(saved).to_have_text("Saved object.")
    box = Annotation.objects.get(task=task, label="object")
    assert box.data == {
        "frame": 0,
        "camera": "cam_high",
        "x": cx - 10,
        "y": cy - 1,
        "w": 30,
        "h": 12,
    }

    # A polygon: Enter at each corner, Enter again on the last one closes it.
    page.get_by_label("Class").select_option("region")
    area.focus()
    for key in ["Shift+ArrowLeft", "Enter", "Shift+ArrowUp", "Enter", "Shift+ArrowLeft", "Enter"]:
        page.keyboard.press(key)
    expect(saved).to_contain_text("Polygon: 3 point(s)")
    page.keyboard.press("Enter")
    expect(saved).to_have_text("Saved region.")
    polygon = Annotation.objects.get(task=task, label="region")
    x, y = cx + 20, cy + 11  # where the box drawing left the cross-hair
    assert polygon.data["points"] == [[x - 10, y], [x - 10, y - 10], [x - 20, y - 10]]

    # A keypoint: Enter places it.
    page.get_by_label("Class").select_option("tip")
    area.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(saved).to_have_text("Saved tip.")
    tip = Annotation.objects.get(task=task, label="tip")
    assert (tip.data["x"], tip.data["y"]) == (x - 20, y - 9)


def test_two_cameras_side_by_side_and_a_folded_panel_stay_after_reload(login, live_server):
    page = login("annotator")
    task, _ = shapes_task()
    open_task(page, live_server, task)
    stage = page.locator("[data-stage]").bounding_box()

    page.get_by_role("button", name="Side by side").click()
    high = page.get_by_label("Drawing area on cam_high")
    wrist = page.get_by_label("Drawing area on cam_right_wrist")
    expect(wrist).to_be_visible()
    page.wait_for_function(
        "() => [...document.querySelectorAll('svg.overlay')].every((s) => s.viewBox.baseVal.width)"
    )
    page.wait_for_timeout(100)
    left, right = high.bounding_box(), wrist.bounding_box()
    assert left["x"] + left["width"] <= right["x"] + 1  # side by side, not overlapping
    for b in (left, right):
        assert b["x"] >= stage["x"] - 1 and b["x"] + b["width"] <= stage["x"] + stage["width"] + 1
        assert b["width"] > stage["width"] * 0.4  # each fills its half
    # A box drawn on the second camera is saved on it, in its image pixels.
    page.mouse.move(*on_screen(page, 10, 12, "cam_right_wrist"))
    page.mouse.down()
    page.mouse.move(*on_screen(page, 30, 40, "cam_right_wrist"), steps=5)
    page.mouse.up()
    expect(page.get_by_role("status", name="Saved changes")).to_have_text("Saved object.")
    box = Annotation.objects.get(task=task, label="object").data
    assert box["camera"] == "cam_right_wrist"
    for key, value in {"x": 10, "y": 12, "w": 20, "h": 28}.items():
        assert abs(box[key] - value) <= 0.25, box

    page.screenshot(path=f"{SHOTS}/side-by-side-1440x900.png")
    page.keyboard.press("+")  # both stay fitted, and the page says why nothing zooms
    expect(page.get_by_role("status", name="Saved changes")).to_have_text(
        "Side by side, both cameras stay fitted: turn it off to zoom."
    )
    assert wrist.bounding_box() == right

    # Fold the samples panel: the viewer takes its room.
    fold = page.get_by_role("button", name="Samples panel")
    expect(fold).to_have_attribute("aria-expanded", "true")
    fold.click()
    expect(fold).to_have_attribute("aria-expanded", "false")
    expect(page.locator("[data-samples]")).to_be_hidden()
    assert page.locator("[data-stage]").bounding_box()["width"] > stage["width"] + 100

    page.reload()  # both choices are remembered
    expect(page.locator("body")).to_have_attribute("data-workspace-ready", "true")
    fold = page.get_by_role("button", name="Samples panel")
    expect(fold).to_have_attribute("aria-expanded", "false")
    expect(page.locator("[data-samples]")).to_be_hidden()
    expect(page.get_by_label("Drawing area on cam_right_wrist")).to_be_visible()
    expect(page.get_by_role("button", name="Side by side")).to_have_attribute(
        "aria-pressed", "true"
    )
    page.set_viewport_size({"width": 1280, "height": 720})
    page.wait_for_timeout(200)
    page.screenshot(path=f"{SHOTS}/side-by-side-folded-1280x720.png")
    fold.click()
    expect(page.locator("[data-samples]")).to_be_visible()
    expect(page.get_by_role("button", name="Tools panel")).to_have_attribute(
        "aria-expanded", "true"
    )
