"""The navigation of every page (core.context_processors.Nav): the user's roles and whether
they may create projects, from one query, read once per request and not at all by
fragments."""

import re

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NEW_PROJECT = 'href="/projects/new/"'


def nav_queries(client, path: str) -> tuple[str, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        page = client.get(path).content.decode()
    sqls = [q["sql"] for q in captured.captured_queries]
    # The navigation's read (projects.selectors.user_roles_and_creation): the roles UNION the
    # '+add_project' probe (the task list's own read of memberships and grants is another).
    return page, [s for s in sqls if "projects_membership" in s and "+add_project" in s]


def test_roles_and_project_creation_in_one_query(client, project, manager, reviewer):
    client.force_login(manager)  # add_project given to the user
    page, nav = nav_queries(client, "/projects/")
    assert NEW_PROJECT in page and 'badge-manager">manager<' in page
    assert len(nav) == 1
    client.force_login(reviewer)  # no grant: no link
    page, nav = nav_queries(client, "/projects/")
    assert NEW_PROJECT not in page and 'badge-reviewer">reviewer<' in page
    assert len(nav) == 1
    creators = Group.objects.create(name="creators")  # a grant through a group counts too
    creators.permissions.add(
        Permission.objects.get(codename="add_project", content_type__app_label="projects")
    )
    reviewer.groups.add(creators)
    page, _ = nav_queries(client, "/projects/")
    assert NEW_PROJECT in page


def nav_of(page: str) -> str:
    """The top bar, whichever of its links is the current page's (and its CSRF token)."""
    bar = page[page.index('<header class="topbar">') : page.index("</header>")]
    bar = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", bar)
    return re.sub(r'\s*aria-current="page"\s*', " ", bar).replace(" >", ">")


@pytest.mark.parametrize("who", ["manager", "reviewer", "annotator", "creator"])
def test_the_task_list_answers_the_navigation_with_its_own_query(client, project, users, who):
    # /tasks/ reads the user's memberships and grants in one query that also probes
    # add_project: the navigation it shows is the one every page shows, read no second time.
    user = users[who] if who != "creator" else users["reviewer"]
    if who == "creator":  # a grant through a group
        creators = Group.objects.create(name="creators")
        creators.permissions.add(
            Permission.objects.get(codename="add_project", content_type__app_label="projects")
        )
        user.groups.add(creators)
    client.force_login(user)
    elsewhere, _ = nav_queries(client, "/projects/")
    page, nav = nav_queries(client, "/tasks/")
    assert nav == []
    assert nav_of(page) == nav_of(elsewhere)
    assert (NEW_PROJECT in page) == (who in ("manager", "creator"))


def test_admins_see_their_links_and_fragments_read_no_navigation(client, project):
    admin = UserFactory(username="root", is_superuser=True, is_staff=True)
    client.force_login(admin)
    page, _ = nav_queries(client, "/tasks/")
    assert NEW_PROJECT in page and 'href="/queues/"' in page and "badge-admin" in page
    with CaptureQueriesContext(connection) as captured:
        client.get("/tasks/", headers={"HX-Request": "true"})  # the results fragment
    assert not [q for q in captured.captured_queries if "auth_permission" in q["sql"]]
