"""The manager's view in a browser: the dashboard's project card and the project's Overview
show progress and an ETA from the demo's history (core/demo_progress.py)."""

import re

import pytest
from playwright.sync_api import expect


@pytest.fixture
def progress_demo(settings):
    """The demo with its progress history (off in the suite's settings, as the quality
    history is): three weeks of finished tasks and a backlog, enough for an ETA."""
    settings.STAGECRAFT_DEMO_PROGRESS = True


def test_manager_sees_progress_and_an_eta(progress_demo, login, live_server):
    page = login("manager")
    card = page.get_by_role("article", name="Pick and place")
    expect(card.get_by_role("meter", name="Pick and place: tasks done")).to_be_visible()
    expect(card).to_contain_text(re.compile(r"ETA\s*in \d+(\.\d)? days"))
    expect(card).to_contain_text("2 overdue tasks")

    card.get_by_role("link", name="Pick and place").click()
    expect(page.get_by_role("heading", name="Pick and place", level=1)).to_be_visible()
    eta = page.get_by_role("article", name="Estimated finish")
    expect(eta).to_contain_text(re.compile(r"in \d+(\.\d)? days"))
    expect(eta).to_contain_text("likely between")
    expect(page.get_by_role("article", name="Complete")).to_contain_text("tasks done")
    stages = page.get_by_role("table", name="Stage runs per stage and state")
    expect(stages.get_by_role("row", name=re.compile("^Segments"))).to_be_visible()
    people = page.get_by_role("table", name="Work per annotator")
    expect(people.get_by_role("row", name=re.compile("^annotator2 "))).to_contain_text("min")
    expect(page.get_by_role("img", name=re.compile("Tasks finished per day"))).to_be_visible()

    # The figures come back when the tab is shown again (htmx GET of the partial).
    with page.expect_response(re.compile(r"/projects/pick-and-place/$")) as refreshed:
        page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
    assert refreshed.value.status == 200
    expect(page.get_by_role("article", name="Estimated finish")).to_contain_text("days")

    page.get_by_role("navigation", name="Project").get_by_role("link", name="Tasks").click()
    expect(page).to_have_url(re.compile(r"/tasks/\?project=\d+$"))
