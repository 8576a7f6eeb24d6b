"""Auto-assign from the task list: preview in a dialog, apply, and the annotator's My work."""

import re

from playwright.sync_api import expect


def test_auto_assign_preview_then_apply_reaches_my_work(login, live_server):
    page = login("manager")
    page.goto(f"{live_server.url}/tasks/?status=pending_start&sort=name")
    page.get_by_role("checkbox", name="Select Morning episodes 1").check()
    page.get_by_role("checkbox", name="Select Morning episodes 2").check()
    bar = page.get_by_role("region", name="Batch actions")
    bar.get_by_role("button", name="Auto-assign…").click()

    # Two tasks, two ready stages each: annotator2 (fewer open runs) takes three until both
    # hold as many, then annotator comes first by name.
    preview = page.get_by_role("dialog", name="Auto-assign preview")
    expect(preview).to_be_visible()
    expect(preview).to_contain_text("4 go to 2 people")
    rows = preview.get_by_role("table", name="Assignments").get_by_role("row")
    expect(rows.nth(1)).to_have_text(re.compile(r"annotator2\s*\d+\s*10\s*3"))
    expect(rows.nth(2)).to_have_text(re.compile(r"annotator\s*\d+\s*10\s*1"))
    weight = preview.get_by_role("checkbox", name="Weight by quality")
    recomputed = "**/tasks/auto-assign/"
    with page.expect_response(recomputed):  # recomputed in place, in the same dialog
        weight.check()
    expect(preview.get_by_role("checkbox", name="Weight by quality")).to_be_checked()
    with page.expect_response(recomputed):
        preview.get_by_role("checkbox", name="Weight by quality").uncheck()
    expect(preview.get_by_role("checkbox", name="Weight by quality")).not_to_be_checked()
    preview.get_by_role("button", name="Apply: assign 4 runs").click()
    expect(page.get_by_role("status").filter(has_text="assigned")).to_contain_text(
        re.compile(r"4 runs assigned to 2 people\.")
    )

    other = login("annotator2", new_context=True)
    other.get_by_role("navigation", name="Main").get_by_role("link", name="My work").click()
    reserved = (
        other.get_by_role("table", name="My stage runs")
        .get_by_role("row")
        .filter(has_text="assigned to you")
    )
    expect(reserved).to_have_count(3)
    expect(reserved.first).to_contain_text("Morning episodes")
