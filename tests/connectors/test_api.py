"""The connections API: the secret is write-only, bad input is a 400 naming the field."""

import pytest

from connectors.models import BucketConnection
from tests.helpers.s3 import ACCESS_KEY, REGION

SECRET = "api-secret-never-answered-7"


@pytest.fixture
def body(s3_server, customer_bucket):
    return {
        "name": "Lab bucket",
        "direction": "source",
        "bucket": customer_bucket.name,
        "prefix": "robots/",
        "endpoint_url": s3_server.endpoint,
        "region": REGION,
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET,
    }


def _create(api_as, manager, project, body):
    client = api_as(manager)
    response = client.post(f"/api/v1/projects/{project.pk}/connections/", body, format="json")
    assert response.status_code == 201, response.content
    return client, response.json()


def test_it_creates_and_never_answers_the_secret(api_as, manager, project, body):
    client, created = _create(api_as, manager, project, body)
    assert created["has_secret"] is True and "secret_access_key" not in created
    assert created["prefix"] == "robots" and created["location"].endswith("/robots/")
    pk = created["id"]
    answers = [
        client.get(f"/api/v1/projects/{project.pk}/connections/"),
        client.get(f"/api/v1/connections/{pk}/"),
        client.patch(
            f"/api/v1/connections/{pk}/", {"secret_access_key": "x" + SECRET}, format="json"
        ),  # fmt: skip
        client.post(f"/api/v1/connections/{pk}/test/"),
        client.get(f"/api/v1/connections/{pk}/episodes/"),
        client.get("/api/schema/"),
    ]
    for response in answers:
        assert response.status_code == 200, response.content
        assert SECRET.encode() not in response.content
        assert BucketConnection.objects.get(pk=pk).secret_encrypted.encode() not in response.content
    assert answers[3].json()["ok"] is True


def test_the_list_reads_a_fixed_number_of_queries(
    api_as, manager, project, body, django_assert_max_num_queries
):
    client, _ = _create(api_as, manager, project, body)
    for n in range(5):
        _create(api_as, manager, project, {**body, "name": f"Bucket {n}"})
    with django_assert_max_num_queries(6):
        response = client.get(f"/api/v1/projects/{project.pk}/connections/")
    assert len(response.json()) == 6


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"bucket": "A"}, "bucket"),
        ({"direction": "up"}, "direction"),
        ({"endpoint_url": "file:///etc/passwd"}, "endpoint_url"),
        ({"kind": "ftp"}, "kind"),
        ({"secret_access_key": ""}, "secret_access_key"),
        ({"prefix": "../x"}, "prefix"),
        ({"name": ["a"]}, "name"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api_as, manager, project, body, changes, field):
    response = api_as(manager).post(
        f"/api/v1/projects/{project.pk}/connections/", {**body, **changes}, format="json"
    )
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_a_duplicate_name_is_a_409_and_bad_json_a_400(api_as, manager, project, body):
    client, created = _create(api_as, manager, project, body)
    response = client.post(f"/api/v1/projects/{project.pk}/connections/", body, format="json")
    assert response.status_code == 409
    response = client.post(
        f"/api/v1/projects/{project.pk}/connections/", "{nope", content_type="application/json"
    )
    assert response.status_code == 400
    detail = f"/api/v1/connections/{created['id']}/"
    response = client.patch(detail, {"sync_status": "finished"}, format="json")
    assert response.status_code == 400 and "sync_status" in response.json()
    response = client.post(f"{detail}sync/", {"keys": []}, format="json")
    assert response.status_code == 400 and "keys" in response.json()


def test_sync_is_accepted_once_at_a_time(api_as, manager, project, body):
    client, created = _create(api_as, manager, project, body)
    response = client.post(f"/api/v1/connections/{created['id']}/sync/", {}, format="json")
    assert response.status_code == 202
    assert response.json()["connection"]["sync_status"] == "queued"
    response = client.post(f"/api/v1/connections/{created['id']}/sync/", {}, format="json")
    assert response.status_code == 409


def test_a_bad_connection_answers_what_is_wrong(api_as, manager, project, body):
    client, created = _create(api_as, manager, project, {**body, "bucket": "not-there-at-all"})
    response = client.post(f"/api/v1/connections/{created['id']}/test/")
    assert response.status_code == 200
    assert response.json()["ok"] is False and "does not exist" in response.json()["message"]
    response = client.get(f"/api/v1/connections/{created['id']}/episodes/")
    assert response.status_code == 400 and "does not exist" in response.json()["detail"]


def test_annotators_and_outsiders_are_refused(api_as, manager, annotator, outsider, project, body):
    _, created = _create(api_as, manager, project, body)
    for user, status in ((annotator, 403), (outsider, 404)):
        client = api_as(user)
        assert client.get(f"/api/v1/connections/{created['id']}/").status_code == status
        assert client.post(f"/api/v1/connections/{created['id']}/sync/").status_code == status
        response = client.post(f"/api/v1/projects/{project.pk}/connections/", body, format="json")
        assert response.status_code == status
    assert BucketConnection.objects.count() == 1
