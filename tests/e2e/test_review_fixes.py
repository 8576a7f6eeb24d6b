"""A reviewer fixes a box in place (issue 17): in a review stage with ``allow_fixes`` the
reviewed stage's shapes are editable; a drag moves the box and the fix is recorded with its
before and after."""

from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from blueprints import services as blueprint_services
from projects.models import Dataset, Project
from tasks import services
from tasks.models import TaskEvent

from .test_workspace_shapes import on_screen


def test_a_reviewer_drags_a_box_in_a_review_that_allows_fixes(login, live_server):
    users = get_user_model().objects.in_bulk(
        ["manager", "annotator", "reviewer"], field_name="username"
    )
    project = Project.objects.get(name="Pick and place")
    definition = {
        "name": "fixable",
        "taxonomy": [{"key": "object", "kind": "box"}],
        "stages": [
            {"key": "draw", "kind": "annotate", "classes": ["object"]},
            {"key": "check", "kind": "review", "depends_on": ["draw"], "reviews": ["draw"],
             "allow_fixes": True},
        ],
    }  # fmt: skip
    blueprint_services.blueprint_save(
        actor=users["manager"], project=project, definition=definition
    )
    episodes = Dataset.objects.get(project=project, name="Tabletop session 1")
    task = services.task_create(
        actor=users["manager"], project=project, name="Fixable", blueprint="fixable",
        datasets=[episodes.pk], annotators=["annotator"], reviewers=["reviewer"],
    )  # fmt: skip
    sample = episodes.samples.order_by("index").first()
    services.stage_start(actor=users["annotator"], task=task, stage_key="draw")
    box = services.annotation_create(
        actor=users["annotator"], task=task, stage="draw", label="object", sample=sample.pk,
        data={"frame": 0, "camera": "cam_high", "x": 10, "y": 10, "w": 20, "h": 20},
    )  # fmt: skip
    services.stage_submit(actor=users["annotator"], task=task, stage_key="draw")
    services.stage_start(actor=users["reviewer"], task=task, stage_key="check")

    page = login("reviewer")
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/workspace/{task.pk}/check/")
    expect(page.locator("body")).to_have_attribute("data-workspace-ready", "true")
    expect(page.locator(f'svg.overlay rect.saved[data-id="{box.pk}"]')).to_have_count(1)
    page.wait_for_function("() => document.querySelector('svg.overlay').viewBox.baseVal.width")
    page.mouse.move(*on_screen(page, 20, 20))
    page.mouse.down()
    page.mouse.move(*on_screen(page, 25, 28), steps=5)
    page.mouse.up()
    expect(page.get_by_role("status", name="Saved changes")).to_contain_text("Moved object")
    box.refresh_from_db()
    assert abs(box.data["x"] - 15) <= 0.3 and abs(box.data["y"] - 18) <= 0.3, box.data
    assert box.version == 2
    fix = TaskEvent.objects.get(task=task, kind="annotation_fixed_in_review")
    assert fix.actor == users["reviewer"] and fix.data["review_stage"] == "check"
    assert (fix.data["before"]["data"]["x"], fix.data["after"]["data"]["x"]) == (10, box.data["x"])
