"""Every kind of action writes one audit row, in the transaction of the change."""

import pytest
from django.db import transaction

from activity.models import Activity
from blueprints import services as blueprint_services
from core.access import SYSTEM
from core.exceptions import ApplicationError
from projects import dataset_services
from projects import services as project_services
from projects.models import Dataset, Project, Role
from queues import control
from queues import services as export_services
from tests.blueprints.test_validation import example

pytestmark = pytest.mark.django_db


def rows(verb: str) -> list[Activity]:
    return list(Activity.objects.filter(verb=verb))


def only(verb: str) -> Activity:
    (row,) = rows(verb)
    return row


def test_project_created_updated_and_deleted(manager):
    project = project_services.project_create(actor=manager, name="Drawers", delivery="stage")
    created = only("project.created")
    assert (created.actor, created.project, created.target_type) == (manager, project, "project")
    assert (created.target_id, created.target_label) == (str(project.pk), "Drawers")
    assert created.after == {"name": "Drawers", "slug": "drawers", "delivery": "stage"}

    project_services.project_update(
        actor=manager, project=project, name="Drawers", description="Open and close"
    )
    updated = only("project.updated")
    assert (updated.before, updated.after) == (
        {"description": ""},
        {"description": "Open and close"},
    )

    project_services.project_update(actor=manager, project=project, name="Drawers")
    assert len(rows("project.updated")) == 1  # nothing changed, nothing recorded

    project_services.project_delete(actor=manager, project=project)
    assert not Project.objects.filter(pk=project.pk).exists()
    deleted = only("project.deleted")
    assert (deleted.project, deleted.project_name) == (None, "Drawers")  # kept after the delete
    assert deleted.before == {"name": "Drawers", "slug": "drawers"}


def test_a_project_with_work_is_not_deleted_and_nothing_is_recorded(project, manager, dataset):
    with pytest.raises(ApplicationError, match="1 dataset"):
        project_services.project_delete(actor=manager, project=project)
    assert Project.objects.filter(pk=project.pk).exists()
    assert not rows("project.deleted")


def test_membership_added_changed_and_removed(project, manager, users):
    Activity.objects.all().delete()  # the fixture's own members
    olga = users["outsider"]
    membership, _ = project_services.membership_add(
        actor=manager, project=project, user=olga, role=Role.ANNOTATOR, skills=["Robotics"]
    )
    added = only("membership.added")
    assert (added.target_type, added.target_label, added.project) == (
        "membership",
        "olga as annotator",
        project,
    )
    assert added.after == {
        "user": "olga",
        "role": "annotator",
        "skills": ["robotics"],
        "capacity": 10,
    }

    project_services.membership_add(
        actor=manager, project=project, user=olga, role=Role.ANNOTATOR, capacity=3
    )
    project_services.membership_update(actor=manager, membership=membership, role=Role.REVIEWER)
    first, second = reversed(rows("membership.changed"))
    assert (first.before, first.after) == ({"capacity": 10}, {"capacity": 3})
    assert (second.before, second.after) == ({"role": "annotator"}, {"role": "reviewer"})

    project_services.membership_remove(actor=manager, membership=membership)
    removed = only("membership.removed")
    assert removed.before["role"] == "reviewer" and removed.after is None


def test_blueprint_saved_and_activated(project, manager):
    doc = example("pick-and-place")
    blueprint, _ = blueprint_services.blueprint_save(actor=manager, project=project, definition=doc)
    saved = rows("blueprint.saved")[0]
    assert (saved.target_label, saved.project, saved.actor) == (
        "pick-and-place v1",
        project,
        manager,
    )
    assert saved.after == {"name": "pick-and-place", "version": 1, "active": False}

    blueprint_services.blueprint_save(actor=manager, project=project, definition=doc)
    assert len(rows("blueprint.saved")) == 2  # the project's default, then this one: no new row

    blueprint_services.blueprint_activate(actor=manager, blueprint=blueprint)
    activated = only("blueprint.activated")
    assert (activated.before, activated.after) == (
        {"active": "default v1"},
        {"active": "pick-and-place v1"},
    )


def test_dataset_import_resync_and_delete(project, manager, dataset):
    started = only("dataset.import_started")
    assert (started.actor, started.target_id, started.project) == (
        manager,
        str(dataset.pk),
        project,
    )
    assert started.after["name"] == "Fixture episodes" and started.after["format"] == "hdf5"

    dataset_services.dataset_resync_start(actor=manager, dataset=dataset)
    assert only("dataset.resync_started").after == {"source": dataset.source_path}

    dataset_services.dataset_delete(actor=manager, dataset=dataset)
    assert not Dataset.objects.filter(pk=dataset.pk).exists()
    deleted = only("dataset.deleted")
    assert deleted.before == {"name": "Fixture episodes", "format": "hdf5", "samples": 2}


def test_a_dataset_tasks_use_is_not_deleted(project, manager, dataset):
    from tasks import services as task_services

    task_services.task_create(actor=manager, project=project, name="t", datasets=[dataset.pk])
    with pytest.raises(ApplicationError, match="1 task"):
        dataset_services.dataset_delete(actor=manager, dataset=dataset)
    assert not rows("dataset.deleted")


def test_the_command_line_is_recorded_as_the_system(project, tmp_path):
    dataset_services.dataset_import_start(
        actor=SYSTEM,
        project=project,
        name="Shell",
        format="hdf5",
        source_path=tmp_path,
        background=False,
    )
    row = only("dataset.import_started")
    assert (row.actor, row.actor_name) == (None, "")


def test_export_started_cancelled_and_downloaded(project, manager, finished_export):
    assert only("export.started").after["format"] == "jsonl"
    export_services.export_archive(actor=manager, export=finished_export)
    assert only("export.downloaded").target_id == str(finished_export.pk)

    queued, created = export_services.export_start(
        actor=manager, project=project, format="coco", background=False
    )
    again, created_again = export_services.export_start(
        actor=manager, project=project, format="coco", background=False
    )
    assert created and not created_again and again.pk == queued.pk
    assert len(rows("export.started")) == 2  # the answered duplicate adds none

    export_services.export_cancel(actor=manager, export=queued)
    cancelled = only("export.cancelled")
    assert (cancelled.before, cancelled.after) == ({"status": "queued"}, {"status": "cancelled"})


@pytest.mark.parametrize(
    ("action", "verb"),
    [
        ("pause", "queue.paused"),
        ("resume", "queue.resumed"),
        ("empty", "queue.emptied"),
        ("clean", "queue.cleaned"),
        ("retry-failed", "queue.retried_failed"),
    ],
)
def test_queue_actions(admin_user, redis_conn, action, verb):
    control.queue_action(actor=admin_user, name="exports", action=action)
    row = only(verb)
    assert (row.actor, row.project, row.target_type, row.target_id) == (
        admin_user,
        None,
        "queue",
        "exports",
    )
    assert row.after["count"] == 0
    assert Activity.objects.count() == 1


def test_a_rolled_back_change_leaves_no_row(project, manager):
    with pytest.raises(RuntimeError), transaction.atomic():
        project_services.project_update(actor=manager, project=project, name="Renamed")
        assert only("project.updated").after == {"name": "Renamed"}
        raise RuntimeError("a later step of the same request failed")
    project.refresh_from_db()
    assert project.name == "Pick and place"
    assert not rows("project.updated")


def test_a_refused_change_leaves_no_row(project, manager):
    membership = project.memberships.get(user=manager)
    with pytest.raises(ApplicationError, match="at least one manager"):
        project_services.membership_remove(actor=manager, membership=membership)
    assert not rows("membership.removed")
