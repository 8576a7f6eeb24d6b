"""Stage parameters in the workspace: a sampled stage marks its samples; a time limit counts
down, warns at 80 % and keeps the run while the annotator works."""

import re
import tempfile
from datetime import timedelta
from pathlib import Path

from django.utils import timezone
from playwright.sync_api import expect

from blueprints import services as blueprint_services
from projects.models import Dataset, Project
from tasks import services
from tasks.models import StageRun

SHOTS = Path(tempfile.gettempdir()) / "stagecraft-shots"  # screenshots to look at


def sampled_task(*, used_seconds: float):
    """A six-image task whose stage takes half the samples and has a 10-minute limit,
    started by the demo annotator ``used_seconds`` ago."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.in_bulk(["manager", "annotator"], field_name="username")
    project = Project.objects.get(name="Pick and place")
    definition = {
        "name": "spot-check",
        "taxonomy": [{"key": "layout", "kind": "classification", "choices": ["tidy", "messy"]}],
        "stages": [
            {
                "key": "label",
                "kind": "annotate",
                "classes": ["layout"],
                "params": {
                    "instructions": "Say whether the table is tidy.",
                    "sampling": 50,
                    "time_limit": 600,
                },
                "checks": [{"rule": "all_samples_annotated"}],
            }
        ],
    }
    blueprint, _ = blueprint_services.blueprint_save(
        actor=users["manager"], project=project, definition=definition
    )
    blueprint_services.blueprint_activate(actor=users["manager"], blueprint=blueprint)
    images = Dataset.objects.get(project=project, name="Tabletop snapshots")
    task = services.task_create(
        actor=users["manager"], project=project, name="Spot check", datasets=[images.pk],
        annotators=["annotator"],
    )  # fmt: skip
    services.stage_start(actor=users["annotator"], task=task, stage_key="label")
    StageRun.objects.filter(task=task).update(
        started_at=timezone.now() - timedelta(seconds=used_seconds)
    )
    return task


def test_a_sampled_time_limited_stage_in_the_workspace(login, live_server):
    task = sampled_task(used_seconds=500)  # 100 s left: past 80 % of the time
    page = login("annotator")
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/workspace/{task.pk}/label/")
    expect(page.get_by_role("timer", name="Time left")).to_have_text(re.compile(r"^1:[34]\d left"))
    warning = page.get_by_role("status").filter(has_text="Less than a fifth")
    expect(warning).to_be_visible()
    samples = page.get_by_role("complementary", name="Samples")
    expect(samples).to_contain_text("annotates 3 of 6 samples (50 %)")
    entries = samples.locator("li button.sample")
    expect(entries).to_have_count(6)
    expect(samples.locator("li button.sample.outside")).to_have_count(3)
    page.screenshot(path=f"{SHOTS}/sampled-time-limited.png", full_page=True)
    # Opening the page counts as working on it.
    run = StageRun.objects.get(task=task)
    for _ in range(50):
        run.refresh_from_db()
        if run.last_active_at:
            break
        page.wait_for_timeout(100)
    assert run.last_active_at is not None

    # Label the three drawn samples; the others need nothing and the stage submits.
    drawn = [i for i in range(6) if "outside" not in entries.nth(i).get_attribute("class")]
    for i in drawn:
        entries.nth(i).click()
        page.get_by_role("button", name="Set for this sample").click()
        expect(page.get_by_role("status", name="Saved changes")).to_contain_text("Saved layout.")
    expect(page.get_by_role("progressbar", name="Annotated samples")).to_have_attribute(
        "value", "3"
    )
    page.get_by_role("button", name="Submit stage").click()
    expect(page).to_have_url(re.compile(r"/workspace/\?done=submitted$"))


def test_when_the_time_is_up_the_workspace_says_so(login, live_server):
    task = sampled_task(used_seconds=650)
    StageRun.objects.filter(task=task).update(last_active_at=timezone.now())  # still working
    page = login("annotator")
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/workspace/{task.pk}/label/")
    expect(page.get_by_role("timer", name="Time left")).to_have_text("Time is up")
    expect(
        page.get_by_role("status").filter(has_text="stays yours while you keep working")
    ).to_be_visible()
    page.screenshot(path=f"{SHOTS}/time-is-up.png")
    # Away for good: the next look at My work gives the run back to the pool.
    StageRun.objects.filter(task=task).update(last_active_at=timezone.now() - timedelta(minutes=5))
    page.goto(f"{live_server.url}/workspace/")
    run = StageRun.objects.get(task=task)
    assert (run.status, run.assignee) == ("ready", None)
    page.goto(f"{live_server.url}/workspace/{task.pk}/label/")
    expect(page.get_by_role("note").filter(has_text="went back to the pool")).to_be_visible()
    expect(page.get_by_role("timer")).to_have_count(0)
