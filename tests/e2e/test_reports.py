"""The annotator's dashboard: their queue and the feedback waiting for them (the demo's
task sent back for rework), and the way from there to their report and its periods."""

from playwright.sync_api import expect


def test_the_annotators_dashboard_shows_queue_feedback_and_leads_to_the_report(login):
    page = login("annotator")
    queue = page.get_by_role("region", name="My queue")
    expect(queue.get_by_role("button", name="Start next task")).to_be_visible()
    expect(
        queue.get_by_role("list", name="Runs waiting for you").get_by_role("listitem")
    ).to_have_count(5)
    feedback = page.get_by_role("region", name="Feedback for me")
    sent_back = feedback.get_by_role("list", name="Work sent back to you")
    expect(sent_back).to_contain_text("The grasp starts ten frames earlier.")

    page.get_by_role("region", name="My progress").get_by_role("link", name="My report").click()
    expect(page.get_by_role("heading", name="My work", level=1)).to_be_visible()
    expect(page.get_by_role("img", name="Work of annotator per day")).to_be_visible()
    page.get_by_role("link", name="Last 90 days").click()
    expect(page.get_by_role("link", name="Last 90 days")).to_have_attribute("aria-current", "true")
    days = page.get_by_role("table").first.get_by_role("row")
    expect(days).not_to_have_count(1)  # a heading row and at least one day of work
