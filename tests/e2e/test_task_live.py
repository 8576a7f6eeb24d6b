"""The task page follows work done elsewhere when its browser tab becomes visible again."""

import re

from playwright.sync_api import expect

from tasks.models import Task


def test_task_page_refreshes_badge_and_stage_strip_when_the_tab_becomes_visible(login, live_server):
    from django.contrib.auth import get_user_model

    from tasks import services

    task = Task.objects.get(name="Morning episodes 1")
    page = login("manager")
    page.goto(f"{live_server.url}/tasks/{task.pk}/")
    badge = page.locator("#task-badge")
    strip = page.get_by_role("list", name="Stage strip")
    expect(badge).to_have_text("Pending start")
    objects = strip.get_by_role("listitem").filter(has_text="objects")
    expect(objects).not_to_contain_text("annotator2")
    # The open tab is kept: switch to Invalid annotations before the work happens elsewhere.
    page.get_by_role("tab", name="Invalid annotations").click()
    expect(page.get_by_role("tab", name="Invalid annotations")).to_have_attribute(
        "aria-selected", "true"
    )
    noah = get_user_model().objects.get(username="annotator2")
    services.stage_start(actor=noah, task=task, stage_key="objects")
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(objects).to_contain_text("In Progress · annotator2")
    expect(badge).to_have_text("In progress")
    expect(page.locator("#task-stats")).to_contain_text("Annotations")
    expect(page.get_by_role("tab", name="Invalid annotations")).to_have_attribute(
        "aria-selected", "true"
    )
    assert re.search(rf"/tasks/{task.pk}/invalid/$", page.url)  # no reload


def test_annotator_hands_over_a_run_and_the_history_says_so(login, live_server):
    task = Task.objects.get(name="Reach and grasp")
    page = login("annotator")
    page.goto(f"{live_server.url}/tasks/{task.pk}/")
    form = page.get_by_role("form", name="Hand over segments")
    form.get_by_label("Hand over to").select_option("annotator2")
    form.get_by_label("Reason").fill("going on leave")
    form.get_by_role("button", name="Hand over").click()
    expect(page.get_by_role("status")).to_contain_text("segments is now annotator2's.")
    strip = page.get_by_role("list", name="Stage strip")
    expect(strip.get_by_role("listitem").filter(has_text="segments")).to_contain_text(
        "In Progress · annotator2"
    )
    expect(page.locator(".history")).to_contain_text(
        "annotator handed segments to annotator2: going on leave"
    )
    assert task.runs.get(stage_key="segments").assignee.username == "annotator2"
