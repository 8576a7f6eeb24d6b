"""The administrator's dashboard: queue health (failed jobs, paused queues) above the cards."""

import django_rq
import pytest
from django.urls import reverse

from queues import control
from tests.queues.helpers import fail

pytestmark = pytest.mark.django_db


def test_the_admin_sees_failed_jobs_and_paused_queues(
    client, admin_user, manager, project, redis_conn, run_jobs
):
    client.force_login(admin_user)
    body = client.get(reverse("dashboard")).content.decode()
    assert "Queue health:" in body
    assert "no failed jobs" in body and "every queue running" in body

    django_rq.get_queue("default", commit_mode="auto").enqueue(fail)
    run_jobs("default")
    control.queue_action(actor=admin_user, name="exports", action="pause")
    body = client.get(reverse("dashboard")).content.decode()
    assert "1 failed job" in body and "paused: exports" in body
    assert project.name in body  # the project's card is there too

    # A manager sees the cards, never the queues.
    client.force_login(manager)
    body = client.get(reverse("dashboard")).content.decode()
    assert project.name in body and "Queue health:" not in body
