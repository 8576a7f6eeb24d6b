"""``severity`` on stage checks: ``error`` (the default) blocks submit, ``warn`` flags."""

import copy
from pathlib import Path

import pytest
import yaml
from django.urls import reverse

from blueprints.validation import check, check_text, validate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "blueprints"


def default_with_checks(*checks: dict) -> dict:
    doc = yaml.safe_load((EXAMPLES / "default.yaml").read_text())
    doc = copy.deepcopy(doc)
    doc["stages"][0]["checks"] = list(checks)
    return doc


def test_a_check_is_an_error_unless_it_says_warn():
    spec = validate(
        default_with_checks(
            {"rule": "min_count", "class": "object", "count": 1},
            {"rule": "max_count", "class": "object", "count": 50, "severity": "warn"},
            {"rule": "required_attributes", "severity": "error"},
        )
    )
    assert [c.severity for c in spec.stages[0].checks] == ["error", "warn", "error"]


def test_an_unknown_severity_is_refused_at_its_path_with_the_choices():
    _, errors = check(
        default_with_checks(
            {"rule": "min_count", "class": "object", "count": 1, "severity": "warn"},
            {"rule": "min_count", "class": "object", "count": 1, "severity": "info"},
        )
    )
    assert [(e.path, e.message) for e in errors] == [
        ("stages[0].checks[1].severity", "must be one of error or warn")
    ]


def test_the_editor_points_at_the_line_of_a_bad_severity():
    text = (
        (EXAMPLES / "default.yaml")
        .read_text()
        .replace(
            "      instructions: Label what the task asks for in every sample.\n",
            "      instructions: Label what the task asks for in every sample.\n"
            "    checks:\n"
            "      - {rule: min_count, class: object, count: 1, severity: fatal}\n",
        )
    )
    _, spec, errors = check_text(text)
    assert spec is None
    line = text.splitlines().index(
        "      - {rule: min_count, class: object, count: 1, severity: fatal}"
    )
    assert [(e.path, e.line) for e in errors] == [("stages[0].checks[0].severity", line + 1)]


def test_an_example_shows_a_warn_check():
    spec = validate(yaml.safe_load((EXAMPLES / "driving-scene.yaml").read_text()))
    assert any(c.severity == "warn" for s in spec.stages for c in s.checks)


@pytest.mark.django_db
def test_the_blueprint_page_marks_warn_checks(client, manager, project):
    from blueprints.services import blueprint_save

    doc = default_with_checks(
        {"rule": "min_count", "class": "object", "count": 1},
        {"rule": "max_count", "class": "object", "count": 9, "severity": "warn"},
    )
    blueprint, _ = blueprint_save(actor=manager, project=project, definition=doc)
    client.force_login(manager)

    body = client.get(reverse("blueprints:detail", args=[project.slug, blueprint.pk])).content
    text = body.decode()
    assert "check: min_count of object (1)</div>" in text
    assert "check: max_count of object (9) · warn only (flags, does not block)</div>" in text
