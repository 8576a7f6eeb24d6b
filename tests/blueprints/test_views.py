import io

import pytest
import yaml
from django.urls import reverse

from blueprints import services
from blueprints.models import Blueprint

pytestmark = pytest.mark.django_db

CYCLE = """name: loop
taxonomy:
  - {key: thing, kind: box}
stages:
  - key: first
    kind: annotate
    classes: [thing]
    depends_on: [second]
  - key: second
    kind: annotate
    classes: [thing]
    depends_on: [first]
"""


@pytest.mark.parametrize("name", ["default", "pick-and-place", "driving-scene"])
def test_the_graph_renders_for_every_example(client, manager, project, name):
    blueprint = services.blueprint_create_from_example(actor=manager, project=project, example=name)
    client.force_login(manager)
    body = client.get(
        reverse("blueprints:detail", args=[project.slug, blueprint.pk])
    ).content.decode()
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="pipeline"' in body
    for stage in blueprint.definition["stages"]:
        assert f'data-stage="{stage["key"]}"' in body
    if name == "pick-and-place":
        assert 'stroke-dasharray="6 4"' in body  # the conditional tool_detail stage
        assert "20% sample" in body and ">else<" in body


def test_upload_with_a_cycle_shows_it_next_to_the_line(client, manager, project):
    client.force_login(manager)
    upload = io.BytesIO(CYCLE.encode())
    upload.name = "loop.yaml"
    response = client.post(reverse("blueprints:upload", args=[project.slug]), {"file": upload})
    body = response.content.decode()
    assert response.status_code == 200
    assert "dependency cycle: first → second → first" in body
    assert '<div class="line bad" id="line-8">' in body  # `depends_on: [second]` of first
    assert not Blueprint.objects.filter(name="loop").exists()


def test_live_validation_partial(client, manager, project):
    client.force_login(manager)
    url = reverse("blueprints:validate", args=[project.slug])
    bad = client.post(url, {"source": CYCLE}, HTTP_HX_REQUEST="true").content.decode()
    assert bad.lstrip().startswith('<section id="validation"')
    assert "1 problem" in bad
    good = client.post(
        url, {"source": CYCLE.replace("    depends_on: [second]\n", "")}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "Valid" in good and 'class="pipeline"' in good


def test_editor_saves_and_activating_shows_the_graph(client, manager, project):
    client.force_login(manager)
    fixed = CYCLE.replace("    depends_on: [second]\n", "")
    response = client.post(
        reverse("blueprints:create", args=[project.slug]), {"name": "", "source": fixed}
    )
    blueprint = Blueprint.objects.get(name="loop")
    assert response["Location"] == reverse("blueprints:detail", args=[project.slug, blueprint.pk])
    assert blueprint.source == fixed  # the author's text, comments and all, is kept
    client.post(reverse("blueprints:activate", args=[project.slug, blueprint.pk]))
    blueprint.refresh_from_db()
    assert blueprint.active
    body = client.get(
        reverse("blueprints:detail", args=[project.slug, blueprint.pk])
    ).content.decode()
    assert 'badge-ok">active' in body


def test_download_and_compare(client, manager, project):
    client.force_login(manager)
    default = project.blueprints.get()
    doc = dict(default.definition, description="A second take")
    second, _ = services.blueprint_save(
        actor=manager, project=project, definition=doc, name="default", new_version=True
    )
    response = client.get(reverse("blueprints:download", args=[project.slug, second.pk]))
    assert response["Content-Disposition"] == 'attachment; filename="default-v2.yaml"'
    assert yaml.safe_load(response.content) == doc
    as_json = client.get(
        reverse("blueprints:download", args=[project.slug, second.pk]) + "?format=json"
    )
    assert as_json.json() == doc
    url = reverse("blueprints:compare", args=[project.slug])
    body = client.get(f"{url}?a={default.pk}&b={second.pk}").content.decode()
    assert '<div class="line add"><code>+description: A second take</code>' in body


def test_blueprint_list_and_subnav(client, annotator, project):
    client.force_login(annotator)
    body = client.get(reverse("blueprints:list", args=[project.slug])).content.decode()
    assert "default" in body and "new tasks use it" in body
    assert "New blueprint" not in body and "Upload a blueprint" not in body


def test_api_accepts_json_and_yaml_and_answers_paths(api_as, manager, project):
    client = api_as(manager)
    url = f"/api/v1/projects/{project.pk}/blueprints/"
    doc = yaml.safe_load(services.example_source("driving-scene"))
    response = client.post(url, {"definition": doc}, format="json")
    assert response.status_code == 201
    assert response.json()["name"] == "driving-scene" and response.json()["version"] == 1
    assert client.post(url, {"definition": doc}, format="json").status_code == 200

    body = yaml.safe_dump({"name": "loop", "definition": yaml.safe_load(CYCLE)})
    response = client.generic("POST", url, body, content_type="application/yaml")
    assert response.status_code == 400
    assert response.json() == {
        "definition": {"stages[0].depends_on": ["dependency cycle: first → second → first"]}
    }
    response = client.generic("POST", url, "name: [unclosed", content_type="application/yaml")
    assert response.status_code == 400 and "YAML parse error" in response.json()["detail"]
    response = client.post(url, [1, 2], format="json")
    assert response.status_code == 400

    response = client.post(f"/api/v1/projects/{project.pk}/blueprints/driving-scene/activate/")
    assert response.json()["active"] is True
    assert client.get(f"/api/v1/projects/{project.pk}/").json()["active_blueprint"]["name"] == (
        "driving-scene"
    )
    missing = client.post(f"/api/v1/projects/{project.pk}/blueprints/nope/activate/")
    assert missing.status_code == 400
    listing = client.get(url).json()
    assert [(b["name"], b["version"], b["active"]) for b in listing] == [
        ("default", 1, False),
        ("driving-scene", 1, True),
    ]
