import pytest

from projects.models import Membership, Project
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_token_auth_round_trip(api_client, manager, project):
    response = api_client.post(
        "/api/v1/auth/token/", {"username": "maya", "password": "pw"}, format="json"
    )
    assert response.status_code == 200
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    listing = api_client.get("/api/v1/projects/").json()
    assert listing["count"] == 1
    assert listing["results"][0] == {
        "id": project.pk,
        "name": "Pick and place",
        "slug": "pick-and-place",
        "description": "",
        "delivery": "task",
        "assignment": "pull",
        "robot_type": "",
        "active_blueprint": {
            "id": project.blueprints.get().pk,
            "name": "default",
            "version": 1,
        },
    }


def test_wrong_password_is_a_clear_400(api_client, manager):
    response = api_client.post(
        "/api/v1/auth/token/", {"username": "maya", "password": "nope"}, format="json"
    )
    assert response.status_code == 400
    assert "Unable to log in" in response.json()["non_field_errors"][0]


def test_create_and_patch_a_project(api_as, manager):
    client = api_as(manager)
    response = client.post(
        "/api/v1/projects/", {"name": "Sorting", "delivery": "stage"}, format="json"
    )
    assert response.status_code == 201, response.content
    project_id = response.json()["id"]
    assert Project.objects.get(pk=project_id).memberships.get().user == manager
    response = client.patch(
        f"/api/v1/projects/{project_id}/", {"description": "Bins"}, format="json"
    )
    assert response.json()["description"] == "Bins"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "x", "delivery": "weekly"}, "delivery"),
        ({"name": "x", "slug": "not a slug!"}, "slug"),
        ({"name": ["not", "a", "string"]}, "name"),
    ],
)
def test_bad_project_payloads_name_the_field(api_as, manager, body, field):
    response = api_as(manager).post("/api/v1/projects/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.parametrize(
    ("content_type", "payload"),
    [
        ("application/json", b"{not json"),
        ("application/json", b"[1, 2, 3]"),
        ("application/json", b"\xff\xfe"),
        ("text/plain", b"hello"),
        ("multipart/form-data; boundary=zzz", b"--zzz\r\nbroken"),
    ],
)
def test_malformed_bodies_never_500(api_as, manager, project, content_type, payload):
    client = api_as(manager)
    for path in ("/api/v1/projects/", f"/api/v1/projects/{project.pk}/members/"):
        response = client.generic("POST", path, payload, content_type=content_type)
        assert 400 <= response.status_code < 500, (path, content_type, response.status_code)
        assert response["Content-Type"].startswith("application/json")


def test_unknown_api_paths_answer_json_404(api_as, manager):
    response = api_as(manager).get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_members_add_update_list_and_remove(api_as, manager, project):
    bo = UserFactory(username="bo")
    client = api_as(manager)
    url = f"/api/v1/projects/{project.pk}/members/"
    response = client.post(
        url, {"username": "bo", "role": "annotator", "skills": ["robotics"]}, format="json"
    )
    assert response.status_code == 201
    assert response.json() == {
        "user_id": bo.pk,
        "username": "bo",
        "role": "annotator",
        "skills": ["robotics"],
        "capacity": 10,
    }
    response = client.post(
        url, {"username": "bo", "role": "annotator", "capacity": 2}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["capacity"] == 2
    client.post(url, {"username": "bo", "role": "reviewer"}, format="json")
    roles = [(m["username"], m["role"]) for m in client.get(url).json()]
    assert ("bo", "annotator") in roles and ("bo", "reviewer") in roles

    response = client.delete(f"{url}{bo.pk}/?role=reviewer")
    assert response.status_code == 204
    assert list(Membership.objects.filter(user=bo).values_list("role", flat=True)) == ["annotator"]
    assert client.delete(f"{url}{bo.pk}/").status_code == 204
    assert client.delete(f"{url}{bo.pk}/").status_code == 404


def test_member_errors_are_field_errors(api_as, manager, project):
    client = api_as(manager)
    url = f"/api/v1/projects/{project.pk}/members/"
    assert client.post(url, {"username": "ghost", "role": "annotator"}, format="json").json() == {
        "username": ["No active user is named “ghost”."]
    }
    response = client.post(url, {"username": "ana", "role": "owner"}, format="json")
    assert "role" in response.json()
    response = client.delete(f"{url}{manager.pk}/")
    assert response.status_code == 400
    assert "at least one manager" in response.json()["role"][0]


def test_api_and_pages_agree_on_visibility(api_as, client, users, project):
    for role in ("outsider", "annotator", "reviewer"):
        user = users[role]
        api_status = (
            api_as(user)
            .patch(f"/api/v1/projects/{project.pk}/", {"name": "x"}, format="json")
            .status_code
        )
        client.force_login(user)
        page_status = client.post(
            f"/projects/{project.slug}/edit/", {"name": "x", "delivery": "task", "version": 1}
        ).status_code
        assert api_status == page_status, role


def test_schema_documents_the_endpoints(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/auth/token/",
        "/api/v1/projects/",
        "/api/v1/projects/{project_id}/",
        "/api/v1/projects/{project_id}/members/",
        "/api/v1/projects/{project_id}/members/{user_id}/",
    ):
        assert path in paths


def test_the_openapi_schema_has_no_warnings():
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")
