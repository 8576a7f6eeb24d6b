"""Browser tests for what issue 17's walkthrough on the demo found in the workspace: the save
message in the way of the buttons, a reopened stage that did not say why, a rejected box that
looked like any other, the camera and zoom forgotten on reopening."""

import re

from playwright.sync_api import expect

from tasks.models import Annotation, StageRun, Task

from .test_review_per_annotation import open_sample
from .test_workspace import draw_box

# The buttons on screen whose middle or right end is not where a click lands on them.
BLOCKED = """() => [...document.querySelectorAll("button")].flatMap((b) => {
  const r = b.getBoundingClientRect(), y = r.top + r.height / 2;
  if (!r.width || r.bottom > innerHeight || r.right > innerWidth || r.top < 0) return [];
  return [r.left + r.width / 2, r.right - 3].map((x) => document.elementFromPoint(x, y))
    .filter((hit) => hit && !b.contains(hit))
    .map((hit) => `${b.textContent.trim()} under ${hit.outerHTML.slice(0, 60)}`);
})"""


def open_stage(page, live_server, stage_key, width, height):
    run = StageRun.objects.filter(
        task__name="Reach and grasp", stage_key=stage_key, assignee__username="annotator"
    ).first()
    page.set_viewport_size({"width": width, "height": height})
    page.goto(f"{live_server.url}/workspace/{run.task_id}/{stage_key}/")
    expect(page.locator("body")).to_have_attribute("data-workspace-ready", "true")
    return run


def test_the_save_message_never_covers_a_button_and_fades(login, live_server):
    page = login("annotator")
    open_stage(page, live_server, "segments", 1280, 720)
    page.get_by_label("description *").fill("reach")
    page.get_by_label("Segment start").fill("2")
    page.get_by_label("Segment end").fill("9")
    page.get_by_role("button", name="Add segment").click()
    message = page.get_by_role("status", name="Saved changes")
    expect(message).to_contain_text("Saved")
    mark = page.get_by_role("button", name="Mark this sample invalid")
    box = mark.bounding_box()
    hit = page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y).closest('button')?.textContent",
        [box["x"] + box["width"] - 3, box["y"] + box["height"] / 2],
    )
    assert hit == "Mark this sample invalid"
    assert page.evaluate(BLOCKED) == []
    # It fades after a few seconds, its text kept (read by tests and screen readers).
    page.wait_for_function(
        "() => getComputedStyle(document.getElementById('ws-messages')).opacity === '0'",
        timeout=8000,
    )
    expect(message).to_contain_text("Saved")

    # 1440×900, the objects stage with a box and its track buttons.
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/workspace/")
    page.get_by_role("button", name="Start next task").click()
    expect(page).to_have_url(re.compile(r"/workspace/\d+/objects/$"))
    expect(page.locator("body")).to_have_attribute("data-workspace-ready", "true")
    page.get_by_label("category *").select_option("block")
    draw_box(page, 40, 40, 120, 110)
    expect(message).to_contain_text("Saved object.")
    expect(page.get_by_role("list", name="Tracks of this sample")).to_be_attached()
    assert page.evaluate(BLOCKED) == []


def test_a_rejected_box_is_drawn_red_and_a_stage_reopened_for_another_says_why(
    login, live_server, browser
):
    task = Task.objects.get(name="Night shift review")
    box = Annotation.objects.filter(task=task, stage_key="objects").order_by("id").first()
    page = login("reviewer")
    page.goto(f"{live_server.url}/workspace/{task.pk}/full_review/")
    expect(page.locator("body")).to_have_attribute("data-workspace-ready", "true")
    open_sample(page, box.sample.name)
    page.get_by_label("Comment", exact=True).fill("The box cuts the block's left edge.")
    annotations = page.get_by_role("list", name="Annotations of this sample")
    annotations.get_by_role("button", name=f"Needs fix: object #{box.pk}").click()
    expect(page.get_by_role("status", name="Saved changes")).to_contain_text("object: rejected")
    item = annotations.locator(f"li[data-annotation='{box.pk}']")
    expect(item).to_contain_text("Rejected by reviewer")  # the verdicts are loaded again
    page.get_by_role("button", name="Reject", exact=True).click()
    expect(page).to_have_url(f"{live_server.url}/workspace/?done=rejected")
    runs = {r.stage_key: r for r in StageRun.objects.filter(task=task)}
    assert runs["segments"].status == "in_progress" and runs["segments"].feedback == ""

    annotator = login("annotator", new_context=True)
    annotator.goto(f"{live_server.url}/workspace/{task.pk}/objects/")
    expect(annotator.locator("body")).to_have_attribute("data-workspace-ready", "true")
    open_sample(annotator, box.sample.name)
    annotator.locator("[data-scrubber]").fill(str(box.data["frame"]))
    drawn = annotator.locator(f"svg.overlay .saved[data-id='{box.pk}']")
    expect(drawn).to_have_class(re.compile(r"\brejected\b"))
    assert drawn.evaluate("(r) => getComputedStyle(r).strokeDasharray") != "none"
    expect(annotator.get_by_role("note").filter(has_text="Reopened")).to_have_count(0)

    # The segments stage reopened by the same reject, which was not about it: it says so.
    annotator.goto(f"{live_server.url}/workspace/{task.pk}/segments/")
    expect(annotator.locator("body")).to_have_attribute("data-workspace-ready", "true")
    note = annotator.get_by_role("note").filter(has_text="Reopened")
    expect(note).to_have_text(
        re.compile(
            r"Reopened because the review of this stage \(full review\) was rejected; "
            r"the reviewer's notes are on objects\.$"
        )
    )
    expect(note.get_by_role("link", name="objects")).to_have_attribute(
        "href", f"/workspace/{task.pk}/objects/"
    )


def test_the_camera_and_zoom_chosen_are_kept_when_the_stage_is_reopened(login, live_server):
    page = login("annotator")
    run = open_stage(page, live_server, "segments", 1440, 900)
    strip = page.get_by_role("group", name="Cameras")
    second = strip.get_by_role("button").nth(1)
    name = second.get_attribute("aria-label")
    second.click()
    expect(second).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="Zoom in").click()
    page.get_by_role("button", name="Zoom in").click()
    level = page.get_by_label("Zoom level").text_content()
    image = page.locator(".frame-box img")
    page.wait_for_function("() => document.querySelector('.frame-box img').naturalWidth")
    where = image.bounding_box()

    page.goto(f"{live_server.url}/workspace/{run.task_id}/segments/")
    expect(page.locator("body")).to_have_attribute("data-workspace-ready", "true")
    expect(strip.get_by_role("button", name=name)).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_label("Zoom level")).to_have_text(level)
    page.wait_for_function("() => document.querySelector('.frame-box img').naturalWidth")
    again = image.bounding_box()
    assert all(abs(again[k] - where[k]) < 1 for k in ("x", "y", "width"))
    # Another stage of the task keeps its own view: it opens on its first camera, fitted.
    page.goto(f"{live_server.url}/workspace/{run.task_id}/objects/")
    expect(page.locator("body")).to_have_attribute("data-workspace-ready", "true")
    expect(strip.get_by_role("button").nth(0)).to_have_attribute("aria-pressed", "true")
