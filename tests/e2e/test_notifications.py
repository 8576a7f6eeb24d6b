import re

from playwright.sync_api import expect

from notifications.models import Notification
from tasks.models import Task


def test_a_rejected_review_reaches_the_annotator_through_the_top_bar(login, live_server):
    """A reviewer rejects; the annotator's top bar counts it, the list shows it, opening it
    goes to the work and reads it; Mark all read empties the count without a reload."""
    task = Task.objects.get(name="Night shift review")
    unread = Notification.objects.filter(user__username="annotator", read_at=None).count()
    reviewer = login("reviewer")
    reviewer.goto(f"{live_server.url}/workspace/{task.pk}/full_review/")
    expect(reviewer.locator("[data-counter]")).to_have_text(re.compile(r"^0 / [1-9]"))
    reviewer.get_by_label("Comment", exact=True).fill("Boxes too loose.")
    reviewer.get_by_role("button", name="Reject").click()
    expect(reviewer).to_have_url(f"{live_server.url}/workspace/?done=rejected")

    page = login("annotator", new_context=True)
    unread += 2  # segments and objects went back to her
    bell = page.get_by_role("link", name=f"Notifications ({unread} unread)")
    expect(bell).to_be_visible()
    bell.click()
    sent_back = page.get_by_role(
        "link", name="Unread: reviewer sent back segments of Night shift review: Boxes too loose."
    )
    expect(sent_back).to_be_visible()
    sent_back.click()
    expect(page).to_have_url(f"{live_server.url}/workspace/{task.pk}/segments/")
    expect(page.get_by_role("link", name=f"Notifications ({unread - 1} unread)")).to_be_visible()

    page.get_by_role("link", name=re.compile(r"^Notifications")).click()
    read = "reviewer sent back segments of Night shift review: Boxes too loose."
    expect(page.get_by_role("link", name=read, exact=True)).to_be_visible()  # no "Unread:"
    page.get_by_role("button", name="Mark all read").click()
    expect(page.get_by_role("link", name="Notifications", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Mark all read")).to_have_count(0)
    assert not Notification.objects.filter(user__username="annotator", read_at=None).exists()
