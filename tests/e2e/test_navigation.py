import re

import pytest
from playwright.sync_api import expect

NAV_LINKS = ["Dashboard", "Projects", "Tasks", "Reports", "New project", "Queues", "Admin site"]
SEES = {
    "admin": {"Dashboard", "Projects", "Tasks", "Reports", "New project", "Queues", "Admin site"},
    "manager": {"Dashboard", "Projects", "Tasks", "Reports", "New project"},
    "reviewer": {"Dashboard", "Projects", "Tasks", "Reports"},
    "annotator": {"Dashboard", "Projects", "Tasks", "Reports"},
    "annotator2": {"Dashboard", "Projects", "Tasks", "Reports"},
}
BADGE = {
    "admin": "admin",
    "manager": "manager",
    "reviewer": "reviewer",
    "annotator": "annotator",
    "annotator2": "annotator",
}


@pytest.mark.parametrize("username", list(SEES))
def test_each_demo_role_sees_its_navigation(login, live_server, username):
    page = login(username)
    nav = page.get_by_role("navigation", name="Main")
    for name in NAV_LINKS:
        link = nav.get_by_role("link", name=name, exact=True)
        if name in SEES[username]:
            expect(link).to_be_visible()
        else:
            expect(link).to_have_count(0)
    expect(page.locator(".account")).to_contain_text(BADGE[username])
    expect(page.get_by_role("link", name="Pick and place")).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in to Stagecraft")).to_be_visible()


def test_a_wrong_password_is_explained(page, live_server, demo):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("manager")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Please enter a correct username")


def test_manager_creates_a_project_and_manages_its_members(login, live_server):
    page = login("manager")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New project").click()
    page.get_by_label("Name").fill("Drawer opening")
    page.get_by_label("Description").fill("Open and close kitchen drawers.")
    page.get_by_label("Delivery").select_option("stage")
    page.get_by_role("button", name="Create project").click()

    expect(page).to_have_url(re.compile(r"/projects/drawer-opening/members/$"))
    expect(page.get_by_role("status")).to_contain_text("Project “Drawer opening” created")

    # Add two members without a page reload (htmx swaps the member section).
    page.evaluate("window.__marker = 'same page'")
    for username, role in (("annotator", "annotator"), ("reviewer", "reviewer")):
        page.get_by_label("Username").fill(username)
        page.get_by_label("Role", exact=True).select_option(role)
        page.get_by_role("button", name="Add member").click()
        expect(page.get_by_role("status")).to_contain_text(f"{username} added as {role}.")
    page.get_by_label("Username").fill("nobody")
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_role("alert")).to_contain_text("No active user is named “nobody”.")
    assert page.evaluate("window.__marker") == "same page"

    members = page.get_by_role("table", name="Members")
    expect(members.get_by_role("row")).to_have_count(4)  # header + 3 members

    # Promote the annotator to manager, then remove the reviewer.
    page.get_by_label("Role of annotator (annotator)").select_option("manager")
    page.get_by_role("button", name="Save annotator (annotator)").click()
    expect(page.get_by_role("status")).to_contain_text("annotator's membership saved.")
    expect(page.get_by_label("Role of annotator (manager)")).to_have_value("manager")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Remove reviewer (reviewer)").click()
    expect(page.get_by_role("status")).to_contain_text("reviewer is no longer a reviewer here.")
    expect(members.get_by_role("row")).to_have_count(3)

    # The project is on the list for the manager, and the removed reviewer no longer sees it.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Projects").click()
    expect(page.get_by_role("link", name="Drawer opening")).to_be_visible()


def test_annotator_is_told_no_when_editing(login, live_server):
    page = login("annotator")
    page.get_by_role("link", name="Pick and place").click()
    expect(page.get_by_role("link", name="Edit project")).to_have_count(0)
    page.goto(f"{live_server.url}/projects/pick-and-place/edit/")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
