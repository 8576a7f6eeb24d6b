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
