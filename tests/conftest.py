"""Shared fixtures: one user per role (admin, manager, reviewer, annotator) and an outsider.

Everything talks to the real PostgreSQL and Redis (config/test_settings.py).
"""

import django_rq
import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from projects import services as project_services
from projects.models import Role
from tests.factories import UserFactory

ROLES = ("anonymous", "outsider", "annotator", "reviewer", "manager", "admin")


@pytest.fixture
def admin_user(db):
    return UserFactory(username="root", is_superuser=True, is_staff=True)


@pytest.fixture
def manager(db):
    user = UserFactory(username="maya")
    user.user_permissions.add(
        Permission.objects.get(codename="add_project", content_type__app_label="projects")
    )
    return user


@pytest.fixture
def reviewer(db):
    return UserFactory(username="ravi")


@pytest.fixture
def annotator(db):
    return UserFactory(username="ana")


@pytest.fixture
def outsider(db):
    return UserFactory(username="olga")


@pytest.fixture
def project(manager, reviewer, annotator):
    project = project_services.project_create(actor=manager, name="Pick and place")
    project_services.membership_add(
        actor=manager, project=project, user=reviewer, role=Role.REVIEWER
    )
    project_services.membership_add(
        actor=manager, project=project, user=annotator, role=Role.ANNOTATOR, skills=["robotics"]
    )
    return project


@pytest.fixture
def users(admin_user, manager, reviewer, annotator, outsider):
    return {
        "admin": admin_user,
        "manager": manager,
        "reviewer": reviewer,
        "annotator": annotator,
        "outsider": outsider,
        "anonymous": None,
    }


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def api_as(api_client):
    """``api_as(user)``: an API client authenticated with the user's token."""
    from rest_framework.authtoken.models import Token

    def login(user):
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return login


@pytest.fixture
def redis_conn():
    """The suite's own Redis database, emptied before and after the test."""
    conn = django_rq.get_connection("default")
    conn.flushdb()
    yield conn
    conn.flushdb()


@pytest.fixture(scope="session", autouse=True)
def _media_root_cleanup():
    """The suite's MEDIA_ROOT is a temporary folder (config/test_settings.py); remove it."""
    import shutil

    from django.conf import settings

    yield
    shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)


@pytest.fixture
def run_jobs(redis_conn):
    """``run_jobs("imports")``: a real RQ worker takes every waiting job, then stops."""
    from queues.worker import PausableSimpleWorker

    def run(*queues: str) -> None:
        names = queues or ("default", "exports", "imports", "webhooks")
        worker = PausableSimpleWorker(
            [django_rq.get_queue(name) for name in names], connection=redis_conn
        )
        worker.work(burst=True)

    return run


@pytest.fixture
def dataset(project, manager, tmp_path):
    """A finished dataset of two raw ALOHA episodes in ``project`` (``dataset.source`` data)."""
    from projects.dataset_services import dataset_import_run, dataset_import_start
    from tests.helpers.hdf5 import write_aloha

    folder = tmp_path / "fixture-episodes"
    source = [write_aloha(folder / f"episode_{i}.hdf5", T=12, seed=i) for i in range(2)]
    dataset = dataset_import_start(
        actor=manager,
        project=project,
        name="Fixture episodes",
        format="hdf5",
        source_path=folder,
        background=False,
    )
    dataset = dataset_import_run(dataset_id=dataset.pk)
    assert dataset.status == "finished", dataset.error
    dataset.source = source
    return dataset


@pytest.fixture
def task(project, manager, annotator):
    """A default-blueprint task given to ana (annotate stage started, one annotation)."""
    from tasks import services as task_services

    task = task_services.task_create(
        actor=manager, project=project, name="Fixture task", annotators=["ana"], reviewers=["ravi"]
    )
    task_services.stage_start(actor=annotator, task=task, stage_key="annotate")
    task.first_annotation = task_services.annotation_create(
        actor=annotator, task=task, stage="annotate", label="outcome", data={"value": "success"}
    )
    return task


@pytest.fixture
def finished_export(project, manager, settings, tmp_path):
    """A finished JSONL export of the project (no tasks), in a media folder of its own."""
    from queues import services as export_services

    settings.MEDIA_ROOT = tmp_path / "export-media"
    export, _ = export_services.export_start(
        actor=manager, project=project, format="jsonl", background=False
    )
    export = export_services.export_run(export_id=export.pk)
    assert export.status == "finished", export.error
    return export
