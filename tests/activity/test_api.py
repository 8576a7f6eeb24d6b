"""GET /api/v1/activity/: the same rows and rules as the page, paginated."""

import pytest

pytestmark = pytest.mark.django_db


def test_managers_read_their_projects_rows(api_as, manager, trail):
    response = api_as(manager).get("/api/v1/activity/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {"count", "next", "previous", "results"}
    projects = {row["project"] for row in body["results"]}
    assert projects == {trail["project"].pk}
    row = next(r for r in body["results"] if r["verb"] == "project.updated")
    assert row["actor"] == "maya"
    assert row["target"] == {
        "type": "project",
        "id": str(trail["project"].pk),
        "label": "Pick and place",
    }
    assert (row["before"], row["after"]) == ({"description": ""}, {"description": "Maya's"})


def test_administrators_read_everything_and_filter(api_as, admin_user, trail):
    client = api_as(admin_user)
    everything = client.get("/api/v1/activity/").json()
    assert {"queue.paused", "project.created"} <= {r["verb"] for r in everything["results"]}
    mine = client.get("/api/v1/activity/", {"actor": "mo", "verb": "project"}).json()
    assert {r["verb"] for r in mine["results"]} == {"project.created", "project.updated"}
    assert {r["project"] for r in mine["results"]} == {trail["other"].pk}
    one = client.get("/api/v1/activity/", {"project": trail["project"].pk}).json()
    assert {r["project"] for r in one["results"]} == {trail["project"].pk}


def test_odd_filters_match_nothing(api_as, admin_user, trail):
    client = api_as(admin_user)
    for project in ("abc", "99999999999999999999999", "-1"):
        response = client.get("/api/v1/activity/", {"project": project})
        assert (response.status_code, response.json()["count"]) == (200, 0)
    for key in ("actor", "verb", "project"):
        response = client.get("/api/v1/activity/", {key: "ro\x00ot"})
        assert response.status_code == 400 and "NUL" in response.json()["detail"]


@pytest.mark.parametrize("role", ["annotator", "reviewer", "outsider"])
def test_everyone_else_is_refused(api_as, users, trail, role):
    response = api_as(users[role]).get("/api/v1/activity/")
    assert response.status_code == 403
    assert "detail" in response.json()


def test_it_is_documented(api_as, admin_user):
    schema = api_as(admin_user).get("/api/schema/?format=json").json()
    parameters = {p["name"] for p in schema["paths"]["/api/v1/activity/"]["get"]["parameters"]}
    assert {"project", "actor", "verb", "page"} <= parameters
