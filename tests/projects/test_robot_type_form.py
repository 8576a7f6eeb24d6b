"""The project's robot type (what LeRobot exports write as info.json's robot_type) is on the
project's edit page, beside the API's PATCH."""

import pytest
from django.urls import reverse

from projects import selectors

pytestmark = pytest.mark.django_db


def robot_type(project) -> str:
    project.refresh_from_db()
    return selectors.robot_type(project)


def edit(client, project, **extra):
    project.refresh_from_db()
    data = {"name": project.name, "description": "", "delivery": "task",
            "version": project.version, **extra}  # fmt: skip
    return client.post(reverse("projects:edit", args=[project.slug]), data)


def test_the_edit_page_sets_shows_and_clears_the_robot_type(client, manager, project, api_as):
    client.force_login(manager)
    page = client.get(reverse("projects:edit", args=[project.slug])).content.decode()
    assert 'name="robot_type"' in page and "Robot type" in page
    assert edit(client, project, robot_type="aloha").status_code == 302
    assert robot_type(project) == "aloha"
    assert api_as(manager).get(f"/api/v1/projects/{project.pk}/").json()["robot_type"] == "aloha"
    page = client.get(reverse("projects:edit", args=[project.slug])).content.decode()
    assert 'value="aloha"' in page
    # A form without the field (an older page) leaves it; an empty one unsets it.
    assert edit(client, project).status_code == 302
    assert robot_type(project) == "aloha"
    assert edit(client, project, robot_type="").status_code == 302
    assert robot_type(project) == ""


def test_a_bad_robot_type_is_a_form_error_and_nothing_changes(client, manager, project):
    client.force_login(manager)
    response = edit(client, project, robot_type="two words!")
    assert response.status_code == 200
    assert "robot_type is up to 100 letters" in response.content.decode()
    assert 'value="two words!"' in response.content.decode()  # the input is kept
    assert robot_type(project) == ""
