"""The role × endpoint matrix (DESIGN.md §8), kept as data in permission_matrix.csv.

Every named URL outside the admin site must have at least one row, so a new
endpoint without a decision about who may call it fails the suite.

Speed: the objects a case needs depend only on the placeholders in its path (``_build``), so
the cases are grouped by them and each group's objects are made once, in a transaction
rolled back after the group; each case runs in a savepoint rolled back after it, so every
case starts from the same state as if its objects had been made for it alone (pytest-django's
``db``, set up after ``world``, rolls each case back to its savepoint).
"""

import csv
import re
from contextlib import ExitStack
from pathlib import Path

import pytest
from django.db import transaction
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver

from tests.conftest import (
    ROLES,
    make_dataset,
    make_finished_export,
    make_project,
    make_task,
    make_users,
)

MATRIX = Path(__file__).with_name("permission_matrix.csv")
# The admin site (and django-rq's dashboard inside it) guards itself: staff only.
EXEMPT_PREFIXES = ("admin/",)


def _rows() -> list[dict]:
    with MATRIX.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _placeholders(path: str) -> tuple[str, ...]:
    return tuple(sorted(set(re.findall(r"{(\w+)}", path))))


# Grouped by placeholders (a stable sort: the CSV's order within a group), so that each
# group's objects are made once.
CASES = [
    pytest.param(row, role, id=f"{row['method']} {row['name']} as {role}")
    for row in sorted(_rows(), key=lambda row: _placeholders(row["path"]))
    for role in ROLES
]


def _named_patterns(resolver=None, prefix="", namespace=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            ns = namespace
            if entry.namespace:
                ns = f"{namespace}{entry.namespace}:"
            yield from _named_patterns(entry, route, ns)
        elif isinstance(entry, URLPattern) and entry.name:
            yield route, namespace + entry.name


def _build(row: dict, stack: ExitStack, tmp_path_factory) -> dict:
    """The users, project and objects a path with these placeholders needs, and their ids.

    ``row["path"]`` is only read for its placeholders. Settings changed for the objects
    stay changed while the group's cases run (``stack``)."""
    users = make_users()
    project = make_project(users["manager"], users["reviewer"], users["annotator"])
    made: dict = {}

    def need(name: str):
        """The conftest fixture of that name, made once for the group."""
        if name not in made:
            if name == "dataset":
                folder = tmp_path_factory.mktemp("matrix") / "fixture-episodes"
                made[name] = make_dataset(project, users["manager"], folder)
            elif name == "task":
                made[name] = make_task(project, users["manager"], users["annotator"])
            elif name == "finished_export":
                media = tmp_path_factory.mktemp("matrix") / "export-media"
                stack.enter_context(override_settings(MEDIA_ROOT=media))
                made[name] = make_finished_export(project, users["manager"])
            else:
                raise LookupError(name)
        return made[name]

    target = project.memberships.get(user=users["annotator"])
    ids = {
        "slug": project.slug,
        "project_id": project.pk,
        "membership_id": target.pk,
        "user_id": users["annotator"].pk,
        "blueprint_id": project.blueprints.get().pk,
    }
    if "{dataset_id}" in row["path"] or "{sample_id}" in row["path"]:
        dataset = need("dataset")
        ids.update(dataset_id=dataset.pk, sample_id=dataset.samples.first().pk)
    if "{task_id}" in row["path"]:
        task = need("task")
        ids.update(task_id=task.pk, annotation_id=task.first_annotation.pk)
        if "{comment_id}" in row["path"]:
            from tasks.services import comment_create

            problem = comment_create(
                actor=users["reviewer"], task=task, body="Box too loose", kind="problem"
            )
            ids["comment_id"] = problem.pk
    if "{guideline_id}" in row["path"]:
        from projects.models import Guideline

        ids["guideline_id"] = Guideline.objects.create(project=project, title="Grasps", body="…").pk
    if "{audit_id}" in row["path"]:
        # ana's task, delivered, audited by maya (a manager) with one error finding.
        from audits import services as audit_services
        from tasks.services import stage_review, stage_submit

        task = need("task")
        stage_submit(actor=users["annotator"], task=task, stage_key="annotate")
        stage_review(actor=users["reviewer"], task=task, stage_key="review", decision="approve")
        audit = audit_services.audit_create(actor=users["manager"], task=task, kind="fixless")
        finding = audit_services.finding_add(
            actor=users["manager"], audit=audit, type="error", annotation=task.first_annotation.pk
        )
        ids.update(audit_id=audit.pk, finding_id=finding.pk)
    if "{post_id}" in row["path"]:  # ana's experience post
        from experience.models import Post

        ids["post_id"] = Post.objects.create(
            project=project, author=users["annotator"], title="Tight boxes", body="…"
        ).pk
    if "{notification_id}" in row["path"]:  # ana's own notification
        from notifications.models import Notification

        ids["notification_id"] = Notification.objects.create(
            user=users["annotator"], kind="run_assigned", message="…", url="/"
        ).pk
    if "{export_id}" in row["path"]:
        ids["export_id"] = need("finished_export").pk
    if "{connection_id}" in row["path"]:  # a source bucket whose endpoint answers no one
        from connectors.crypto import encrypt
        from connectors.models import BucketConnection

        ids["connection_id"] = BucketConnection.objects.create(
            project=project,
            name="Lab bucket",
            direction="source",
            bucket="lab-bucket",
            endpoint_url="http://127.0.0.1:9",
            access_key_id="AKIAEXAMPLE",
            secret_encrypted=encrypt("example-secret"),
        ).pk
    return {"users": users, "ids": ids}


class _Worlds:
    """The current group's objects, inside a transaction of their own (rolled back when the
    next group starts, and at the end of the module)."""

    def __init__(self, tmp_path_factory):
        self.tmp_path_factory = tmp_path_factory
        self.key: tuple | None = None
        self.stack: ExitStack | None = None
        self.world: dict = {}

    def enter(self, row: dict) -> dict:
        key = _placeholders(row["path"])
        if key != self.key:
            self.close()
            self.stack = ExitStack()
            self.stack.enter_context(transaction.atomic())
            self.stack.callback(transaction.set_rollback, True)  # before the atomic exits
            self.world = _build(row, self.stack, self.tmp_path_factory)
            self.key = key
        return self.world

    def close(self) -> None:
        if self.stack is not None:
            stack, self.stack, self.key = self.stack, None, None
            stack.close()


@pytest.fixture(scope="module")
def worlds(django_db_setup, django_db_blocker, tmp_path_factory):
    worlds = _Worlds(tmp_path_factory)
    try:
        yield worlds
    finally:
        with django_db_blocker.unblock():
            worlds.close()


@pytest.fixture
def world(worlds, row, django_db_blocker):
    """The case's group's objects. The test asks for ``db`` after this: pytest-django then
    runs the case in a savepoint inside the group's transaction, rolled back after it."""
    from django.db import connection

    with django_db_blocker.unblock():
        state = worlds.enter(row)
        # Only the group's transaction is open: ``db`` has not started the case's yet.
        assert len(connection.atomic_blocks) == 1, "world must be set up before db"
    return state


@pytest.mark.parametrize(("row", "role"), CASES)
def test_matrix(row, role, world, db, client):
    users, ids = world["users"], world["ids"]
    user = users[role]
    path = row["path"].format(**ids)
    if user is not None:
        client.force_login(user)
    method = row["method"].lower()
    if path.startswith("/api/v1/") and method in {"post", "patch", "delete"}:
        response = getattr(client, method)(path, data={}, content_type="application/json")
    else:
        response = getattr(client, method)(path)
    assert response.status_code == int(row[role]), (
        f"{row['method']} {path} as {role}: {response.status_code}, expected {row[role]}"
    )


def test_every_url_has_a_row():
    named = {name for route, name in _named_patterns() if not route.startswith(EXEMPT_PREFIXES)}
    covered = {row["name"] for row in _rows()}
    missing = sorted(named - covered)
    assert not missing, f"URL patterns without a row in {MATRIX.name}: {missing}"
    stale = sorted(covered - named)
    assert not stale, f"Rows in {MATRIX.name} for URLs that no longer exist: {stale}"
