"""``/healthz/workers``: 503 while some queue has no living worker, 200 once a real worker
listens on every queue, and 503 again within the lost-worker window after it is killed."""

import time

import pytest

pytestmark = pytest.mark.django_db(transaction=True)
QUEUES = ("default", "exports", "imports", "webhooks")


def test_workers_health_follows_real_workers(client, settings, worker_process):
    settings.STAGECRAFT_WORKER_LOST_SECONDS = 3
    response = client.get("/healthz/workers", HTTP_HOST="10.1.2.3")
    assert response.status_code == 503
    assert response.json() == {"status": "no worker", "queues": dict.fromkeys(QUEUES, 0)}

    worker = worker_process(*QUEUES, env={"STAGECRAFT_WORKER_LOST_SECONDS": "3"})
    response = client.get("/healthz/workers")
    assert response.status_code == 200
    assert response.json()["queues"] == dict.fromkeys(QUEUES, 1)

    worker.kill()  # no clean exit: its heartbeat key expires
    deadline = time.monotonic() + 10
    while client.get("/healthz/workers").status_code == 200:
        assert time.monotonic() < deadline, "a killed worker still counted after 10 s"
        time.sleep(0.25)
