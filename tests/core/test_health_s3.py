"""``/healthz`` on object storage (issue 18): the storage check HEADs the bucket on a real S3
server (moto's, tests/helpers/s3.py); a missing bucket or an endpoint that does not answer is
503 with a short message, within seconds."""

import socket
import time

import pytest

pytestmark = pytest.mark.django_db


def point_at(settings, **options):
    default = settings.STORAGES["default"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {**default, "OPTIONS": {**default["OPTIONS"], **options}},
    }


def test_healthz_is_ok_with_the_bucket(client, s3_storage):
    response = client.get("/healthz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"]["storage"].startswith("ok")


def test_healthz_is_503_when_the_bucket_is_missing(client, s3_storage, settings):
    point_at(settings, bucket_name="stagecraft-no-such-bucket")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["storage"] == (
        "storage: bucket stagecraft-no-such-bucket not found"
    )


def test_healthz_is_503_within_seconds_when_the_endpoint_does_not_answer(
    client, s3_storage, settings
):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    point_at(settings, endpoint_url=f"http://127.0.0.1:{port}")
    started = time.monotonic()
    response = client.get("/healthz")
    assert time.monotonic() - started < 5
    assert response.status_code == 503
    assert response.json()["checks"]["storage"] == "storage: EndpointConnectionError"
    assert response.json()["checks"]["database"].startswith("ok")
