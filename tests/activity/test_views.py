"""The /activity/ page: managers read their projects' rows, administrators all rows."""

import pytest

from activity.models import Activity
from activity.services import activity_record

pytestmark = pytest.mark.django_db


def page(client, user, query=""):
    client.force_login(user)
    return client.get(f"/activity/{query}")


def results(client, user, query="") -> str:
    """The rows region of the page (the filter form above it lists every verb)."""
    body = page(client, user, query).content.decode()
    return body[body.index('id="activity-results"') :]


def test_it_shows_a_manager_only_the_rows_of_projects_they_manage(client, manager, trail):
    assert page(client, manager).status_code == 200
    body = results(client, manager)
    assert "Maya&#x27;s" in body and "project updated" in body
    assert "Not maya" not in body and "Other lab" not in body
    assert "queue paused" not in body


def test_it_shows_an_administrator_every_row(client, admin_user, trail):
    body = results(client, admin_user)
    assert "Other lab" in body and "Maya&#x27;s" in body and "queue paused" in body


@pytest.mark.parametrize("role", ["annotator", "reviewer", "outsider"])
def test_it_refuses_everyone_else(client, users, trail, role):
    assert page(client, users[role]).status_code == 403


def test_anonymous_visitors_are_sent_to_log_in(client, trail):
    response = client.get("/activity/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_it_filters_by_project_actor_and_verb(client, admin_user, trail):
    other = trail["other"]
    body = results(client, admin_user, f"?project={other.pk}")
    assert "Not maya" in body and "Maya&#x27;s" not in body and "queue paused" not in body
    body = results(client, admin_user, "?actor=root")
    assert "queue paused" in body and "project updated" not in body
    body = results(client, admin_user, "?verb=queue")
    assert "queue paused" in body and "project created" not in body
    body = results(client, admin_user, "?verb=project.created")
    assert "project created" in body and "project updated" not in body
    for odd in ("?project=nonsense", "?project=99999999999999999999"):
        assert "Nothing recorded that matches" in results(client, admin_user, odd)
    assert page(client, admin_user, "?actor=ro%00ot").status_code == 400


def test_a_manager_cannot_read_another_project_by_filtering_for_it(client, manager, trail):
    body = results(client, manager, f"?project={trail['other'].pk}")
    assert "Not maya" not in body and "Nothing recorded that matches" in body


def test_the_newest_rows_come_first_and_pages_hold_fifty(client, admin_user, project):
    for n in range(60):
        activity_record(
            actor=admin_user, verb="project.updated", target=project, after={"n": f"row-{n:02d}"}
        )
    body = page(client, admin_user, "?verb=project.updated").content.decode()
    assert body.index("row-59") < body.index("row-58")
    assert "row-09" not in body and "Page 1 of 2" in body
    body = page(client, admin_user, "?verb=project.updated&page=2").content.decode()
    assert "row-09" in body and "row-10" not in body


@pytest.mark.parametrize("role", ["admin", "manager"])
def test_the_page_reads_a_bounded_number_of_queries(
    client, users, project, role, django_assert_max_num_queries
):
    client.force_login(users[role])
    for n in range(50):
        activity_record(
            actor=users[role],
            verb="project.updated",
            target=project,
            project=project,
            after={"n": n},
        )
    with django_assert_max_num_queries(12):
        response = client.get("/activity/")
    assert response.status_code == 200
    assert response.content.decode().count('<td class="activity-verb">project updated</td>') == 50
    assert Activity.objects.count() > 50


def test_htmx_gets_the_results_fragment(client, manager, trail):
    client.force_login(manager)
    response = client.get("/activity/?verb=project", headers={"HX-Request": "true"})
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="activity-results"')
    assert "<html" not in body and "project updated" in body


def test_the_project_page_and_the_nav_link_to_it(client, manager, project, users):
    client.force_login(manager)
    body = client.get(f"/projects/{project.slug}/").content.decode()
    assert f'href="/activity/?project={project.pk}"' in body
    assert '<a href="/activity/"' in body
    client.force_login(users["annotator"])
    body = client.get(f"/projects/{project.slug}/").content.decode()
    assert "/activity/" not in body


def test_each_changed_field_reads_as_one_line_old_to_new(client, manager, project):
    membership = project.memberships.get(user__username="ana")
    activity_record(
        actor=manager,
        verb="membership.changed",
        target=membership,
        project=project,
        before={"capacity": 10, "skills": ["robotics", "video"], "active": True},
        after={"capacity": 4, "skills": [], "active": False},
    )
    body = results(client, manager, "?verb=membership.changed")
    assert '<span class="change-field">capacity:</span>' in body
    assert '<span class="change-old">10</span> → <span class="change-new">4</span>' in body
    assert (
        '<span class="change-old">robotics, video</span> → <span class="change-new">—</span>'
        in body
    )
    assert '<span class="change-old">yes</span> → <span class="change-new">no</span>' in body
    assert "membership changed" in body and "[&#x27;robotics" not in body and "True" not in body


def test_a_creation_shows_only_new_values_and_a_deletion_only_old_ones(client, manager, project):
    activity_record(
        actor=manager,
        verb="dataset.import_started",
        target=project,
        project=project,
        after={"name": "Snapshots"},
    )
    activity_record(
        actor=manager,
        verb="dataset.deleted",
        target=project,
        project=project,
        before={"name": "Old set"},
    )
    body = results(client, manager, "?verb=dataset")
    assert "dataset import started" in body and "dataset deleted" in body
    assert '<span class="change-field">name:</span>\n' in body
    assert '<span class="change-new">Snapshots</span></li>' in body
    assert '<span class="change-old">Old set</span></li>' in body
    assert "→" not in body


def test_it_says_when_a_filter_from_the_url_is_not_among_the_choices(client, manager, trail):
    body = results(client, manager, f"?project={trail['other'].pk}")
    assert f"No project “{trail['other'].pk}” among yours — showing nothing." in body
    body = page(client, manager, "?verb=bogus").content.decode()
    assert "No kind of action called “bogus” — showing nothing." in body
    assert '<option value="bogus" selected>bogus (unknown)</option>' in body
    body = results(client, manager, f"?project={trail['project'].pk}&verb=project")
    assert "showing nothing" not in body


def test_the_pager_keeps_the_filters_and_scrolls_to_the_list_top(client, admin_user, project):
    for n in range(51):
        activity_record(actor=admin_user, verb="project.updated", target=project, after={"n": n})
    body = results(client, admin_user)
    assert 'href="?page=2"' in body and "?&amp;page" not in body
    assert 'hx-swap="outerHTML show:#activity-results:top"' in body
    body = results(client, admin_user, "?verb=project.updated")
    assert 'href="?verb=project.updated&amp;page=2"' in body
