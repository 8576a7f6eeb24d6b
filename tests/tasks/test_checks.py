"""run_checks: every failure carries the severity of the check that found it."""

from pathlib import Path
from types import SimpleNamespace

import yaml

from blueprints.validation import validate
from tasks.checks import run_checks

DEFAULT = Path(__file__).resolve().parents[2] / "examples" / "blueprints" / "default.yaml"


def annotation(pk: int, label: str, kind: str, **attributes):
    sample = SimpleNamespace(pk=10, name="episode_0", cameras=[])
    return SimpleNamespace(
        pk=pk,
        label=label,
        kind=kind,
        data={},
        attributes=attributes,
        invalid=False,
        sample_id=sample.pk,
        sample=sample,
    )


def test_failures_carry_their_checks_severity():
    doc = yaml.safe_load(DEFAULT.read_text())
    doc["stages"][0]["checks"] = [
        {"rule": "min_count", "class": "object", "count": 2, "severity": "warn"},
        {"rule": "max_count", "class": "object", "count": 0},
    ]
    spec = validate(doc)
    stage = spec.by_key["annotate"]
    # The segment lacks its required description: the implicit required_attributes check.
    annotations = [annotation(1, "object", "box"), annotation(2, "segment", "segment")]

    failures = run_checks(spec, stage, annotations, samples=[])

    assert [(str(f), f.severity) for f in failures] == [
        ("At least 2 object needed; there are 1.", "warn"),
        ("At most 0 object allowed; there are 1.", "error"),
        ("segment #2 in episode_0 lacks the required description.", "error"),
    ]
    assert failures[2].samples == (10,)  # what a failure knew is kept


def test_a_warn_required_attributes_check_only_warns():
    doc = yaml.safe_load(DEFAULT.read_text())
    doc["stages"][0]["checks"] = [{"rule": "required_attributes", "severity": "warn"}]
    spec = validate(doc)

    failures = run_checks(
        spec, spec.by_key["annotate"], [annotation(2, "segment", "segment")], samples=[]
    )

    assert [f.severity for f in failures] == ["warn"]
