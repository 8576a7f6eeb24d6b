"""The top bar's count, the notifications page (open one, mark all read) and the API: each
person sees and marks only their own."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications.models import Notification
from notifications.services import notify

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_for_ana(annotator, manager, task):
    made = [
        notify(
            recipients=[annotator],
            kind="run_assigned",
            message=f"maya assigned you annotate of Episode {i}.",
            url=f"/tasks/{task.pk}/",
            task=task,
        )[0]
        for i in range(3)
    ]
    notify(recipients=[manager], kind="export_finished", message="Export v1 is ready.", url="/")
    return made


def test_the_top_bar_says_how_many_are_unread(client, annotator, three_for_ana):
    client.force_login(annotator)
    page = client.get("/projects/").content.decode()
    assert 'aria-label="Notifications (3 unread)"' in page
    assert '<span class="bell-count" aria-hidden="true">3</span>' in page


def test_the_top_bar_costs_one_query_and_none_when_nothing_shows_it(
    client, annotator, three_for_ana
):
    client.force_login(annotator)
    with CaptureQueriesContext(connection) as queries:
        client.get("/projects/")
    counts = [q for q in queries.captured_queries if "notifications_notification" in q["sql"]]
    assert len(counts) == 1 and "COUNT" in counts[0]["sql"]


def test_an_anonymous_page_counts_nothing(client):
    with CaptureQueriesContext(connection) as queries:
        client.get("/accounts/login/")
    assert not [q for q in queries.captured_queries if "notifications_" in q["sql"]]


def test_no_unread_shows_a_plain_link(client, annotator):
    client.force_login(annotator)
    page = client.get("/projects/").content.decode()
    assert 'aria-label="Notifications"' in page and "bell-count" not in page


def test_the_list_shows_mine_newest_first_with_the_unread_marked(
    client, annotator, three_for_ana, django_assert_max_num_queries
):
    Notification.objects.filter(pk=three_for_ana[0].pk).update(read_at="2026-01-01T00:00Z")
    client.force_login(annotator)
    with django_assert_max_num_queries(12):
        page = client.get("/notifications/").content.decode()
    assert page.index("Episode 2") < page.index("Episode 1") < page.index("Episode 0")
    assert page.count('class="notification unread"') == 2
    assert "Export v1" not in page  # the manager's
    unread = client.get("/notifications/?unread=1").content.decode()
    assert "Episode 0" not in unread and "Episode 2" in unread


def test_opening_one_marks_it_read_and_goes_where_it_points(client, annotator, three_for_ana, task):
    note = three_for_ana[1]
    client.force_login(annotator)
    response = client.get(f"/notifications/{note.pk}/")
    assert response.status_code == 302 and response.url == f"/tasks/{task.pk}/"
    note.refresh_from_db()
    assert note.read_at is not None
    assert Notification.objects.filter(user=annotator, read_at=None).count() == 2


def test_someone_elses_notification_is_not_found(client, manager, admin_user, three_for_ana):
    for user in (manager, admin_user):
        client.force_login(user)
        assert client.get(f"/notifications/{three_for_ana[0].pk}/").status_code == 404
    assert not Notification.objects.filter(read_at__isnull=False).exists()


def test_an_outside_url_is_never_followed(client, annotator):
    [note] = notify(recipients=[annotator], kind="run_assigned", message="x", url="//evil.example/")
    client.force_login(annotator)
    assert client.get(f"/notifications/{note.pk}/").url == "/notifications/"


def test_mark_all_read(client, annotator, manager, three_for_ana):
    client.force_login(annotator)
    response = client.post("/notifications/read/")
    assert response.status_code == 302
    assert not Notification.objects.filter(user=annotator, read_at=None).exists()
    assert Notification.objects.filter(user=manager, read_at=None).count() == 1  # not hers


def test_mark_all_read_with_htmx_answers_the_list_and_the_bell(client, annotator, three_for_ana):
    client.force_login(annotator)
    response = client.post(
        "/notifications/read/", headers={"HX-Request": "true", "HX-Target": "notification-list"}
    )
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert 'id="notification-list"' in body
    assert 'id="notifications-link"' in body and 'hx-swap-oob="true"' in body
    assert 'aria-label="Notifications"' in body  # the bell, now without a count
    assert "Mark all read" not in body


def test_the_api_lists_mine_paginated_and_unread_only(api_as, annotator, three_for_ana, task):
    Notification.objects.filter(pk=three_for_ana[0].pk).update(read_at="2026-01-01T00:00Z")
    body = api_as(annotator).get("/api/v1/notifications/").json()
    assert body["count"] == 3
    first = body["results"][0]
    assert first["message"] == "maya assigned you annotate of Episode 2."
    assert first["unread"] is True and first["task"] == task.pk and first["kind"] == "run_assigned"
    unread = api_as(annotator).get("/api/v1/notifications/?unread=1").json()
    assert unread["count"] == 2


def test_the_api_marks_ids_or_all(api_as, annotator, manager, three_for_ana):
    theirs = Notification.objects.get(user=manager)
    client = api_as(annotator)
    response = client.post(
        "/api/v1/notifications/read/", {"ids": [three_for_ana[0].pk, theirs.pk]}, format="json"
    )
    assert response.json() == {"marked": 1, "unread": 2}
    theirs.refresh_from_db()
    assert theirs.read_at is None  # another person's id is ignored
    response = client.post("/api/v1/notifications/read/", {"all": True}, format="json")
    assert response.json() == {"marked": 2, "unread": 0}


@pytest.mark.parametrize(
    "body", [{}, {"ids": "1"}, {"ids": [0]}, {"ids": ["x"]}, {"all": False}, {"ids": [True]}]
)
def test_the_api_refuses_a_bad_body_with_400(api_as, annotator, body):
    response = api_as(annotator).post("/api/v1/notifications/read/", body, format="json")
    assert response.status_code == 400, response.content
