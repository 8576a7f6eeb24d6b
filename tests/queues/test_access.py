"""Who may start, cancel and download exports and control the queues (services level)."""

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from activity.models import Activity
from core.access import SYSTEM
from queues import control, services
from queues.models import Export

pytestmark = pytest.mark.django_db

NOT_MANAGERS = [
    ("annotator", PermissionDenied),
    ("reviewer", PermissionDenied),
    ("outsider", Http404),
]


@pytest.mark.parametrize(("role", "refusal"), NOT_MANAGERS)
def test_only_managers_start_exports(project, users, role, refusal):
    with pytest.raises(refusal):
        services.export_start(actor=users[role], project=project, format="jsonl", background=False)
    assert not Export.objects.exists()


@pytest.mark.parametrize(("role", "refusal"), NOT_MANAGERS)
def test_only_managers_cancel_and_download_exports(finished_export, users, role, refusal):
    with pytest.raises(refusal):
        services.export_cancel(actor=users[role], export=finished_export)
    with pytest.raises(refusal):
        services.export_archive(actor=users[role], export=finished_export)
    finished_export.refresh_from_db()
    assert finished_export.status == "finished"


@pytest.mark.parametrize("role", ["outsider", "annotator", "reviewer", "manager"])
def test_only_administrators_control_the_queues(users, role, redis_conn):
    with pytest.raises(PermissionDenied):
        control.queue_action(actor=users[role], name="default", action="pause")
    assert not redis_conn.smembers("stagecraft:paused-queues")
    assert not Activity.objects.filter(target_type="queue").exists()


@pytest.mark.parametrize("role", ["manager", "outsider"])
def test_only_administrators_and_the_system_clean_expired_exports(users, role):
    with pytest.raises(PermissionDenied):
        services.export_clean_expired(actor=users[role])
    assert services.export_clean_expired(actor=SYSTEM) == 0
    assert services.export_clean_expired(actor=users["admin"]) == 0
