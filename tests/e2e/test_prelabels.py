"""Pre-labels in the workspace (issue 17): shown distinct (dashed, a "pre" badge), accepted
one by one and all at once, recorded."""

import json
import re

from playwright.sync_api import expect

from tasks import services
from tasks.models import Annotation, Task, TaskEvent
from tasks.services.prelabels import prelabels_import


def test_the_annotator_sees_prelabels_distinct_accepts_one_then_all(login, live_server):
    from django.contrib.auth import get_user_model

    users = {u.username: u for u in get_user_model().objects.all()}
    task = Task.objects.get(name="Morning episodes 1")
    objects = services.spec_for(task.blueprint).by_key["objects"]
    every = list(task.datasets.first().samples.order_by("index"))
    first = services.stage_samples(task=task, stage=objects, samples=every)[0]
    boxes = [
        {"label": "object", "stage": "objects", "sample": first.pk,
         "data": {"frame": 0, "camera": "cam_high", "x": x, "y": 10, "w": 20, "h": 20},
         "attributes": {"category": "cup"}}
        for x in (5, 40)
    ]  # fmt: skip
    raw = json.dumps({"task": task.pk, "annotations": boxes}).encode()
    summary = prelabels_import(
        actor=users["manager"], project=task.project, format="jsonl", raw=raw, detail="model v1"
    )
    assert summary["created"] == 2
    services.stage_start(actor=users["annotator"], task=task, stage_key="objects")

    page = login("annotator")
    page.goto(f"{live_server.url}/workspace/{task.pk}/objects/")
    expect(page.locator("body")).to_have_attribute("data-workspace-ready", "true")
    page.get_by_role("button", name=first.name).first.click()
    listing = page.get_by_role("list", name="Annotations of this sample")
    expect(listing.locator("li.annotation.prelabel")).to_have_count(2)
    expect(listing.locator(".prelabel-badge").first).to_have_text("pre")
    expect(page.locator("svg.overlay .saved.prelabel")).to_have_count(2)
    dashes = page.locator("svg.overlay .saved.prelabel").first.evaluate(
        "(el) => getComputedStyle(el).strokeDasharray"
    )
    assert dashes not in {"", "none"}
    bar = page.get_by_role("group", name="Pre-labels")
    expect(bar).to_contain_text("2 pre-labels to check")
    # Unchecked pre-labels do not make a sample done.
    entry = page.locator("[data-samples] button.sample", has_text=first.name)
    expect(entry).to_have_text(re.compile(rf"^○ {first.name}"))

    page.get_by_role("button", name=re.compile(r"^Accept pre-label object frame 0, 5,10")).click()
    expect(page.get_by_role("status", name="Saved changes")).to_contain_text(
        "Accepted 1 pre-label."
    )
    expect(listing.locator("li.annotation.prelabel")).to_have_count(1)
    expect(page.locator("svg.overlay .saved.prelabel")).to_have_count(1)
    expect(entry).to_have_text(re.compile(rf"^✓ {first.name}"))
    accepted = Annotation.objects.get(task=task, data__x=5)
    assert (accepted.source, accepted.author.username) == ("accepted", "annotator")
    assert accepted.source_detail == "model v1"

    page.get_by_role("button", name="Accept all pre-labels (1)").click()
    expect(bar).to_be_hidden()
    expect(page.locator("svg.overlay .saved.prelabel")).to_have_count(0)
    expect(page.locator("svg.overlay .saved")).to_have_count(2)
    assert set(Annotation.objects.filter(task=task).values_list("source", flat=True)) == {
        "accepted"
    }
    assert list(
        TaskEvent.objects.filter(task=task, kind="prelabels_accepted").values_list(
            "actor__username", "data__count"
        )
    ) == [("annotator", 1), ("annotator", 1)]

    # Delete all (after a confirmation): gone from the page and the database, recorded.
    more = [{**boxes[0], "data": {**boxes[0]["data"], "x": 70}}]
    raw = json.dumps({"task": task.pk, "annotations": more}).encode()
    assert (
        prelabels_import(actor=users["manager"], project=task.project, format="jsonl", raw=raw)[
            "created"
        ]
        == 1
    )
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-workspace-ready", "true")
    expect(bar).to_contain_text("1 pre-label to check")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete all pre-labels (1)").click()
    expect(bar).to_be_hidden()
    expect(page.locator("svg.overlay .saved")).to_have_count(2)
    assert not Annotation.objects.filter(task=task, data__x=70).exists()
    assert TaskEvent.objects.filter(task=task, kind="prelabels_deleted").count() == 1
