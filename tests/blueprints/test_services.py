import threading

import pytest
import yaml
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.http import Http404

from blueprints import services
from blueprints.models import Blueprint
from blueprints.spec import BlueprintInvalid
from tests.blueprints.test_validation import example

pytestmark = pytest.mark.django_db


def test_every_new_project_gets_the_active_default(project):
    (blueprint,) = project.blueprints.all()
    assert (blueprint.name, blueprint.version, blueprint.active) == ("default", 1, True)
    assert [s["key"] for s in blueprint.definition["stages"]] == ["annotate", "review"]


def test_unchanged_documents_make_no_version(project, manager):
    doc = example("pick-and-place")
    first, changed = services.blueprint_save(actor=manager, project=project, definition=doc)
    assert changed and first.version == 1 and not first.active  # default stays active
    again, changed = services.blueprint_save(actor=manager, project=project, definition=doc)
    assert (again.pk, changed) == (first.pk, False)
    assert Blueprint.objects.filter(name="pick-and-place").count() == 1


def test_unused_versions_change_in_place_and_new_version_on_request(project, manager):
    doc = example("pick-and-place")
    first, _ = services.blueprint_save(actor=manager, project=project, definition=doc)
    doc["description"] = "Edited"
    same, changed = services.blueprint_save(actor=manager, project=project, definition=doc)
    assert changed and same.pk == first.pk and same.version == 1
    doc["description"] = "Edited again"
    second, _ = services.blueprint_save(
        actor=manager, project=project, definition=doc, new_version=True
    )
    assert second.version == 2
    first.refresh_from_db()
    assert first.definition["description"] == "Edited"  # the old version is kept as it was


def test_a_new_version_of_the_active_blueprint_takes_over(project, manager):
    default = project.blueprints.get()
    doc = dict(default.definition, description="Changed")
    second, _ = services.blueprint_save(
        actor=manager, project=project, definition=doc, name="default", new_version=True
    )
    default.refresh_from_db()
    assert (default.active, second.active, second.version) == (False, True, 2)


def test_invalid_documents_are_refused_whole(project, manager):
    doc = example("pick-and-place")
    doc["stages"][3]["rules"][1]["percent"] = 101
    with pytest.raises(BlueprintInvalid):
        services.blueprint_save(actor=manager, project=project, definition=doc)
    assert project.blueprints.count() == 1


def test_activation_moves_the_flag(project, manager):
    pick = services.blueprint_create_from_example(
        actor=manager, project=project, example="pick-and-place"
    )
    services.blueprint_activate(actor=manager, blueprint=pick)
    assert list(project.blueprints.filter(active=True)) == [pick]
    services.blueprint_activate_newest(actor=manager, project=project, name="default")
    assert project.blueprints.get(active=True).name == "default"


def test_the_database_refuses_two_active_blueprints(project):
    with pytest.raises(IntegrityError), transaction.atomic():
        Blueprint.objects.create(
            project=project, name="other", definition={}, active=True, version=1
        )


@pytest.mark.django_db(transaction=True)
def test_concurrent_activations_leave_exactly_one_active(manager):
    from projects.services import project_create

    project = project_create(actor=manager, name="Race")
    candidates = [
        services.blueprint_save(
            actor=manager,
            project=project,
            definition=yaml.safe_load(services.example_source(name)),
        )[0]
        for name in ("pick-and-place", "driving-scene")
    ]
    barrier = threading.Barrier(len(candidates) * 3)
    errors = []

    def activate(blueprint):
        try:
            barrier.wait()
            services.blueprint_activate(actor=manager, blueprint=blueprint)
        except Exception as exc:  # noqa: BLE001 — the test reports any failure
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=activate, args=(b,)) for b in candidates for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Blueprint.objects.filter(project=project, active=True).count() == 1


def test_a_version_that_tasks_use_is_never_changed(project, manager):
    from tasks.models import Task

    blueprint = project.blueprints.get()
    task = Task.objects.create(project=project, blueprint=blueprint, name="uses v1")
    doc = dict(blueprint.definition, description="Changed after a task started")
    saved, changed = services.blueprint_save(
        actor=manager, project=project, definition=doc, name="default"
    )
    assert changed and saved.version == 2 and saved.pk != blueprint.pk
    blueprint.refresh_from_db()
    assert blueprint.definition["description"] != "Changed after a task started"
    task.refresh_from_db()
    assert task.blueprint_id == blueprint.pk  # the task keeps the version it was created with
    assert saved.active and not blueprint.active  # new tasks get the new version


NOT_MANAGERS = [
    ("annotator", PermissionDenied),
    ("reviewer", PermissionDenied),
    ("outsider", Http404),
]


@pytest.mark.parametrize(("role", "refusal"), NOT_MANAGERS)
def test_only_managers_save_blueprints(project, users, role, refusal):
    with pytest.raises(refusal):
        services.blueprint_save(
            actor=users[role], project=project, definition=example("pick-and-place")
        )
    with pytest.raises(refusal):
        services.blueprint_create_from_example(
            actor=users[role], project=project, example="pick-and-place"
        )
    assert project.blueprints.count() == 1


@pytest.mark.parametrize(("role", "refusal"), NOT_MANAGERS)
def test_only_managers_activate_blueprints(project, users, manager, role, refusal):
    other, _ = services.blueprint_save(
        actor=manager, project=project, definition=example("pick-and-place")
    )
    with pytest.raises(refusal):
        services.blueprint_activate(actor=users[role], blueprint=other)
    with pytest.raises(refusal):
        services.blueprint_activate_newest(actor=users[role], project=project, name=other.name)
    other.refresh_from_db()
    assert not other.active


def test_a_name_given_beside_the_text_renames_it_keeping_comments(project, manager):
    source = services.example_source("default")  # starts with a comment; names itself default
    saved, _ = services.blueprint_save(
        actor=manager, project=project, definition=yaml.safe_load(source), name="copy",
        source=source,
    )  # fmt: skip
    assert (saved.name, saved.definition["name"]) == ("copy", "copy")
    assert saved.source.startswith("# The blueprint every new project starts with")
    assert yaml.safe_load(saved.source) == saved.definition
