"""The connection pages: managers add, edit, test and sync; the secret is never rendered."""

from connectors.models import BucketConnection
from tests.helpers.s3 import ACCESS_KEY, REGION

SECRET = "page-secret-never-shown-9"


def _form(s3_server, customer_bucket, **changes):
    data = {
        "name": "Lab bucket",
        "direction": "source",
        "bucket": customer_bucket.name,
        "prefix": "robots",
        "endpoint_url": s3_server.endpoint,
        "region": REGION,
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET,
        "format": "",
    }
    data.update(changes)
    return data


def test_it_adds_a_connection_and_never_shows_the_secret(
    client, manager, project, s3_server, customer_bucket
):
    client.force_login(manager)
    url = f"/projects/{project.slug}/data/connections/"
    response = client.post(url, _form(s3_server, customer_bucket))
    connection = BucketConnection.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{url}{connection.pk}/"
    pages = [
        client.get(url),
        client.get(f"{url}{connection.pk}/"),
        client.get(f"{url}{connection.pk}/episodes/"),
        client.post(f"{url}{connection.pk}/test/", headers={"HX-Request": "true"}),
    ]
    for page in pages:
        assert page.status_code == 200
        assert SECRET.encode() not in page.content
        assert connection.secret_encrypted.encode() not in page.content
    assert b"A secret is stored (encrypted)" in pages[1].content
    assert b"Connected to" in pages[3].content and b"<html" not in pages[3].content


def test_bad_input_shows_the_form_again_with_the_reason(
    client, manager, project, s3_server, customer_bucket
):
    client.force_login(manager)
    url = f"/projects/{project.slug}/data/connections/"
    response = client.post(url, _form(s3_server, customer_bucket, endpoint_url="gopher://x"))
    assert response.status_code == 200
    assert b"The endpoint must be an http(s) URL" in response.content
    assert SECRET.encode() not in response.content  # not even to refill the field
    assert not BucketConnection.objects.exists()


def test_edit_keeps_the_secret_and_sync_queues(
    client, manager, project, s3_server, customer_bucket
):
    client.force_login(manager)
    url = f"/projects/{project.slug}/data/connections/"
    client.post(url, _form(s3_server, customer_bucket))
    connection = BucketConnection.objects.get()
    token = connection.secret_encrypted
    response = client.post(
        f"{url}{connection.pk}/",
        _form(s3_server, customer_bucket, name="Renamed", secret_access_key=""),
    )
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.name == "Renamed" and connection.secret_encrypted == token
    response = client.post(f"{url}{connection.pk}/sync/", {"keys": ["robots/ep.hdf5"]})
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.sync_status == "queued"
    response = client.post(f"{url}{connection.pk}/delete/", follow=True)
    assert b"Wait until the running sync ends." in response.content  # not while queued
    BucketConnection.objects.update(sync_status="finished")
    response = client.post(f"{url}{connection.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == url
    assert not BucketConnection.objects.exists()


def test_the_data_page_links_managers_to_the_connections(client, manager, annotator, project):
    link = f"/projects/{project.slug}/data/connections/".encode()
    client.force_login(manager)
    assert link in client.get(f"/projects/{project.slug}/data/").content
    client.force_login(annotator)
    assert link not in client.get(f"/projects/{project.slug}/data/").content
    assert client.get(link.decode()).status_code == 403


def test_another_projects_connection_is_not_found_under_this_slug(
    client, manager, project, s3_server, customer_bucket
):
    from projects import services as project_services

    other = project_services.project_create(actor=manager, name="Other")
    client.force_login(manager)
    client.post(f"/projects/{project.slug}/data/connections/", _form(s3_server, customer_bucket))
    connection = BucketConnection.objects.get()
    assert (
        client.get(f"/projects/{other.slug}/data/connections/{connection.pk}/").status_code == 404
    )


def test_the_episodes_fragment_lists_new_and_imported_episodes(
    client, manager, project, s3_server, customer_bucket, django_assert_max_num_queries
):
    customer_bucket.aloha("robots/ep_0.hdf5")
    customer_bucket.put("robots/readme.md", b"#")
    client.force_login(manager)
    url = f"/projects/{project.slug}/data/connections/"
    client.post(url, _form(s3_server, customer_bucket))
    connection = BucketConnection.objects.get()
    with django_assert_max_num_queries(8):
        response = client.get(f"{url}{connection.pk}/episodes/", headers={"HX-Request": "true"})
    assert response.status_code == 200 and b"<html" not in response.content
    assert b'value="robots/ep_0.hdf5"' in response.content  # a checkbox to pick it
    assert b"1 new; 1 other object(s) no importer takes." in response.content
    with django_assert_max_num_queries(8):
        assert client.get(url).status_code == 200


def test_the_status_polls_while_a_sync_is_queued_and_stops_after(
    client, manager, project, s3_server, customer_bucket
):
    client.force_login(manager)
    url = f"/projects/{project.slug}/data/connections/"
    client.post(url, _form(s3_server, customer_bucket))
    connection = BucketConnection.objects.get()
    client.post(f"{url}{connection.pk}/sync/")
    detail = f"{url}{connection.pk}/"
    fragment = client.get(detail, headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and b"<html" not in fragment.content
    assert b'id="sync-status"' in fragment.content and b'hx-trigger="every 3s"' in fragment.content
    assert b"waiting for a worker" in fragment.content
    BucketConnection.objects.update(
        sync_status="finished", sync_counts={"imported": 3, "failed": 0, "unchanged": 1}
    )
    fragment = client.get(detail, headers={"HX-Request": "true"})
    assert b"every 3s" not in fragment.content
    assert b"3 imported, 1 unchanged" in fragment.content
