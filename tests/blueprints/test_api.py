"""Blueprints through the API: the envelope's name names the blueprint."""

import pytest
import yaml

from blueprints.services import example_source

pytestmark = pytest.mark.django_db


@pytest.fixture
def document():
    """The default example without its own name."""
    doc = yaml.safe_load(example_source("default"))
    doc.pop("name")
    return doc


def test_it_takes_the_name_from_the_envelope(api_as, manager, project, document):
    response = api_as(manager).post(
        f"/api/v1/projects/{project.pk}/blueprints/",
        {"name": "two-step", "definition": document},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["version"], body["definition"]["name"]) == (
        "two-step",
        1,
        "two-step",
    )


def test_the_envelope_name_wins_over_the_documents(api_as, manager, project, document):
    response = api_as(manager).post(
        f"/api/v1/projects/{project.pk}/blueprints/",
        {"name": "two-step", "definition": {**document, "name": "other"}},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert (response.json()["name"], response.json()["definition"]["name"]) == (
        "two-step",
        "two-step",
    )
    names = [
        b["name"] for b in api_as(manager).get(f"/api/v1/projects/{project.pk}/blueprints/").json()
    ]
    assert "other" not in names


def test_it_still_needs_a_name_somewhere(api_as, manager, project, document):
    response = api_as(manager).post(
        f"/api/v1/projects/{project.pk}/blueprints/", {"definition": document}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"definition": {"name": ["is required"]}}
