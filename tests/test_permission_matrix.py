"""The role × endpoint matrix (DESIGN.md §8), kept as data in permission_matrix.csv.

Every named URL outside the admin site must have at least one row, so a new
endpoint without a decision about who may call it fails the suite.
"""

import csv
from pathlib import Path

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.conftest import ROLES

MATRIX = Path(__file__).with_name("permission_matrix.csv")
# The admin site (and django-rq's dashboard inside it) guards itself: staff only.
EXEMPT_PREFIXES = ("admin/",)


def _rows() -> list[dict]:
    with MATRIX.open(newline="") as fh:
        return list(csv.DictReader(fh))


CASES = [
    pytest.param(row, role, id=f"{row['method']} {row['name']} as {role}")
    for row in _rows()
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


@pytest.mark.django_db
@pytest.mark.parametrize(("row", "role"), CASES)
def test_matrix(row, role, users, project, request, client):
    user = users[role]
    target = project.memberships.get(user=users["annotator"])
    ids = {
        "slug": project.slug,
        "project_id": project.pk,
        "membership_id": target.pk,
        "user_id": users["annotator"].pk,
        "blueprint_id": project.blueprints.get().pk,
    }
    if "{dataset_id}" in row["path"] or "{sample_id}" in row["path"]:
        dataset = request.getfixturevalue("dataset")
        ids.update(dataset_id=dataset.pk, sample_id=dataset.samples.first().pk)
    if "{task_id}" in row["path"]:
        task = request.getfixturevalue("task")
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

        task = request.getfixturevalue("task")
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
        ids["export_id"] = request.getfixturevalue("finished_export").pk
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
