"""``/healthz``: what a proxy or an orchestrator probes before sending traffic — 200 when the
database, Redis and the media storage answer, 503 naming the failing one; answered to any
Host (probes come by IP address) and without a login."""

import pytest

pytestmark = pytest.mark.django_db


def test_healthz_answers_ok_to_a_probe_by_ip_address_without_a_login(client):
    response = client.get("/healthz", HTTP_HOST="10.1.2.3")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis", "storage"}
    assert all(value.startswith("ok") for value in body["checks"].values())
    assert "no-cache" in response["Cache-Control"]


def test_healthz_is_503_naming_redis_when_redis_is_unreachable(client, monkeypatch):
    import django_rq.settings

    monkeypatch.setitem(django_rq.settings.QUEUES, "default", {"URL": "redis://127.0.0.1:1/0"})
    response = client.get("/healthz/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing"
    assert body["checks"]["redis"].startswith("redis: ")
    assert body["checks"]["database"].startswith("ok")


def test_healthz_is_503_when_the_media_folder_cannot_be_written(client, settings, tmp_path):
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    settings.MEDIA_ROOT = blocked / "media"  # under a file: cannot be created
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["storage"].startswith("storage: ")


def test_healthz_takes_only_get(client):
    response = client.post("/healthz")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


def test_healthz_answers_under_a_path_prefix(client, settings):
    """Served under a prefix (SCRIPT_NAME, FORCE_SCRIPT_NAME): the prefix is not the path."""
    settings.FORCE_SCRIPT_NAME = "/stagecraft"
    response = client.get("/healthz", SCRIPT_NAME="/stagecraft")
    assert response.status_code == 200 and response.json()["status"] == "ok"
