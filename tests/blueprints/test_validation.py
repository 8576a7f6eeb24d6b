"""The blueprint document: examples load, and each rejection names its path and problem."""

import copy
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blueprints.spec import RULE_TYPES, BlueprintInvalid
from blueprints.validation import check, check_text, validate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "blueprints"


def example(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())


@pytest.mark.parametrize("name", ["default", "pick-and-place", "driving-scene"])
def test_examples_are_valid(name):
    spec = validate(example(name))
    assert spec.stages and spec.taxonomy


def test_examples_together_use_every_feature():
    specs = [validate(example(n)) for n in ("default", "pick-and-place", "driving-scene")]
    stages = [s for spec in specs for s in spec.stages]
    assert {s.kind for s in stages} == {"annotate", "review", "logic", "consensus"}
    rules = {r.type_name for s in stages if s.kind == "logic" for r in s.rules}
    assert rules == set(RULE_TYPES)
    assert any(s.when for s in stages)
    assert any(s.checks for s in stages)
    kinds = {c.kind for spec in specs for c in spec.taxonomy}
    assert kinds == {"box", "polygon", "keypoint", "segment", "classification", "text"}


def errors_of(document) -> dict[str, str]:
    spec, errors = check(document)
    assert spec is None
    return {e.path: e.message for e in errors}


def pick():
    return copy.deepcopy(example("pick-and-place"))


def stage(doc, key):
    return next(s for s in doc["stages"] if s["key"] == key)


def test_duplicate_keys():
    doc = pick()
    doc["taxonomy"].append({"key": "object", "kind": "box"})
    doc["stages"].append(copy.deepcopy(doc["stages"][0]))
    errors = errors_of(doc)
    assert errors["taxonomy[3].key"] == "duplicate class key “object” (also taxonomy[1])"
    assert errors["stages[5].key"] == "duplicate stage key “segments” (also stages[0])"


def test_unknown_class_stage_kind_and_rule_type():
    doc = pick()
    stage(doc, "objects")["classes"].append("ghost")
    stage(doc, "tool_detail")["depends_on"] = ["nowhere"]
    doc["stages"].append({"key": "extra", "kind": "transcribe"})
    stage(doc, "route")["rules"].append({"match": "moon_phase", "to": "full_review"})
    doc["taxonomy"][0]["kind"] = "blob"
    errors = errors_of(doc)
    assert errors["stages[1].classes[1]"] == "unknown class “ghost”"
    assert errors["stages[2].depends_on[0]"] == "unknown stage “nowhere”"
    assert errors["stages[5].kind"].startswith("unknown stage kind “transcribe”; known: annotate")
    assert errors["stages[3].rules[5].match"].startswith("unknown rule type “moon_phase”")
    assert errors["taxonomy[0].kind"].startswith("must be one of box, polygon")


def test_cycles_are_named():
    doc = pick()
    stage(doc, "segments")["depends_on"] = ["full_review"]
    errors = errors_of(doc)
    assert "dependency cycle: segments → full_review → route → segments" in errors.values()


def test_self_dependency():
    doc = pick()
    stage(doc, "objects")["depends_on"] = ["objects"]
    assert errors_of(doc)["stages[1].depends_on[0]"] == "a stage cannot depend on itself"


def test_when_must_refer_upstream_with_known_attributes_and_choices():
    doc = pick()
    stage(doc, "tool_detail")["when"] = {
        "all": [
            {"stage": "segments", "class": "gripper_open"},
            {"stage": "objects", "class": "object", "attribute": "colour", "equals": "red"},
            {
                "not": {
                    "stage": "objects",
                    "class": "object",
                    "attribute": "category",
                    "equals": "spoon",
                }
            },
            {"stage": "objects", "class": "object", "attribute": "occluded", "equals": "yes"},
        ]
    }
    errors = errors_of(doc)
    assert errors["stages[2].when.all[0].stage"].startswith(
        "“segments” is not upstream of “tool_detail”"
    )
    assert errors["stages[2].when.all[1].attribute"] == (
        "class “object” has no attribute “colour” (attributes: category, occluded)"
    )
    assert errors["stages[2].when.all[2].not.equals"] == (
        "“spoon” is not one of category's choices (cup, block, tool)"
    )
    assert errors["stages[2].when.all[3].equals"] == "occluded is true or false, not “yes”"


def test_logic_targets_must_depend_on_the_logic_stage():
    doc = pick()
    stage(doc, "route")["rules"][1]["to"] = "tool_detail"
    stage(doc, "route")["else"] = "segments"
    errors = errors_of(doc)
    assert errors["stages[3].rules[1].to"] == (
        "“tool_detail” does not depend on logic stage “route” (add “route” to its depends_on)"
    )
    assert errors["stages[3].else"].startswith("“segments” does not depend on logic stage")


def test_logic_needs_else_and_valid_rule_parameters():
    doc = pick()
    route = stage(doc, "route")
    del route["else"]
    route["rules"][1]["percent"] = 120
    route["rules"][2]["users"] = []
    route["rules"][3] = {"match": "task_duration", "to": "full_review"}
    route["rules"][4]["batches"] = "night-shift"
    errors = errors_of(doc)
    assert errors["stages[3].else"] == "is required"
    assert errors["stages[3].rules[1].percent"] == "must be at most 100"
    assert errors["stages[3].rules[2].users"] == "needs at least 1 item(s)"
    assert (
        errors["stages[3].rules[3]"] == "task_duration needs longer_than or shorter_than (seconds)"
    )
    assert errors["stages[3].rules[4].batches"] == "must be a list"


def test_negative_percent():
    doc = pick()
    stage(doc, "route")["rules"][1]["percent"] = -1
    assert errors_of(doc)["stages[3].rules[1].percent"] == "must be at least 0"


def test_review_must_review_upstream_work():
    doc = pick()
    stage(doc, "full_review")["reviews"] = ["tool_detail", "route", "ghost"]
    errors = errors_of(doc)
    assert errors["stages[4].reviews[0]"] == "“tool_detail” is not upstream of review “full_review”"
    assert errors["stages[4].reviews[1]"].startswith("“route” is a logic stage")
    assert errors["stages[4].reviews[2]"] == "unknown stage “ghost”"


def test_classes_of_the_wrong_kind_for_the_stage():
    doc = copy.deepcopy(example("driving-scene"))
    stage(doc, "weather")["classes"] = ["weather", "scene_note"]
    stage(doc, "audit")["classes"] = ["vehicle"]
    stage(doc, "boxes")["checks"].append({"rule": "no_overlap", "class": "head"})
    errors = errors_of(doc)
    assert errors["stages[1].classes[1]"] == (
        "a consensus stage cannot measure agreement on text class “scene_note”"
    )
    assert errors["stages[4].classes"] == "a review stage adds no classes"
    assert (
        errors["stages[0].checks[4].rule"] == "no_overlap does not apply to keypoint class “head”"
    )


def test_unknown_fields_and_bad_types_are_named():
    doc = pick()
    stage(doc, "segments")["depend_on"] = ["objects"]
    stage(doc, "objects")["params"]["time_limit"] = "soon"
    stage(doc, "full_review")["reviews"] = "segments"
    errors = errors_of(doc)
    assert errors["stages[0].depend_on"] == "is not a known field here"
    assert errors["stages[1].params.time_limit"] == "must be a whole number"
    assert errors["stages[4].reviews"] == "must be a list"


def test_consensus_parameters():
    doc = copy.deepcopy(example("driving-scene"))
    stage(doc, "weather")["annotators"] = 1
    stage(doc, "weather")["agreement"] = 1.5
    errors = errors_of(doc)
    assert errors["stages[1].annotators"] == "must be at least 2"
    assert errors["stages[1].agreement"] == "must be at most 1"


def test_every_error_at_once_with_lines():
    text = (EXAMPLES / "pick-and-place.yaml").read_text()
    text = text.replace("percent: 20", "percent: 200").replace(
        "reviews: [segments, objects]", "reviews: [segments, ghost]"
    )
    _, spec, errors = check_text(text)
    assert spec is None
    found = {e.path: e.line for e in errors}
    lines = text.splitlines()
    assert "percent: 200" in lines[found["stages[3].rules[1].percent"] - 1]
    assert "ghost" in lines[found["stages[4].reviews[1]"] - 1]


def test_yaml_syntax_errors_have_a_line():
    _, spec, errors = check_text("name: x\nstages: [\n  - oops: {\n")
    assert spec is None
    assert errors[0].message.startswith("YAML syntax error")
    assert errors[0].line is not None


def test_blueprint_invalid_body_is_keyed_by_path():
    doc = pick()
    stage(doc, "route")["rules"][1]["percent"] = 120
    with pytest.raises(BlueprintInvalid) as info:
        validate(doc)
    assert info.value.body() == {
        "definition": {"stages[3].rules[1].percent": ["must be at most 100"]}
    }


# --- random documents never crash the validator ------------------------------------------

leaf = (
    st.none()
    | st.booleans()
    | st.integers(-5, 200)
    | st.floats(allow_nan=True)
    | st.text(max_size=8)
)
keys = st.sampled_from(
    ["key", "kind", "classes", "depends_on", "when", "rules", "else", "reviews", "match", "to",
     "percent", "class", "stage", "attribute", "equals", "in", "all", "any", "not", "checks",
     "rule", "count", "annotators", "agreement", "params", "choices", "attributes", "type",
     "name", "taxonomy", "stages", "segments", "objects", "route", "object", "box", "logic",
     "annotate", "review", "consensus", "random_sample", "annotation_type", "done"]
)  # fmt: skip
documents = st.recursive(
    leaf | keys,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_random_documents_never_crash(document):
    spec, errors = check(document)
    assert (spec is None) == bool(errors)
    for error in errors:
        assert isinstance(error.path, str) and error.message


def mutate(doc, path, value):
    target = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(
        [("stages", 3, "rules", 0, "conditions"), ("stages", 2, "when"), ("stages", 4, "reviews"),
         ("taxonomy", 1, "attributes"), ("stages", 0, "checks"), ("stages", 3, "else"),
         ("stages", 1), ("taxonomy", 0), ("stages", 2, "depends_on")]
    ),
    documents,
)  # fmt: skip
def test_mutated_examples_never_crash(path, value):
    doc = pick()
    mutate(doc, path, value)
    spec, errors = check(doc)
    assert (spec is None) == bool(errors)


def test_a_logic_stage_at_the_root_is_valid_and_its_error_never_makes_it_unknown():
    doc = pick()
    route = stage(doc, "route")
    del route["depends_on"]
    route["rules"] = [{"match": "batch", "batches": ["night-shift"], "to": "full_review"}]
    stage(doc, "full_review")["depends_on"] = ["route", "segments", "objects"]
    assert validate(doc).by_key["route"].depends_on == []

    route["surprise"] = 1  # the stage itself is broken …
    errors = errors_of(doc)
    assert errors == {"stages[3].surprise": "is not a known field here"}, errors
    # … and what refers to it is not called unknown because of that.


def test_every_error_of_an_item_is_reported():
    doc = pick()
    rule = stage(doc, "route")["rules"][1]
    rule["percent"], rule["to"] = 140, "nowhere"
    errors = errors_of(doc)
    assert errors["stages[3].rules[1].percent"] == "must be at most 100"
    assert errors["stages[3].rules[1].to"] == "unknown stage “nowhere” (or “done”)"


def test_a_broken_stage_still_has_its_references_checked():
    doc = pick()
    objects = stage(doc, "objects")
    objects["annotators"] = 3  # not a field of an annotate stage
    objects["classes"] = ["object", "ghost"]
    objects["depends_on"] = ["phantom"]
    errors = errors_of(doc)
    assert errors["stages[1].classes[1]"] == "unknown class “ghost”"
    assert errors["stages[1].depends_on[0]"] == "unknown stage “phantom”"
    # Stages that depend on, review or read "objects" do not call it unknown.
    assert not [p for p, m in errors.items() if "“objects”" in m], errors


def test_rules_that_need_work_upstream_are_refused_at_the_root():
    doc = pick()
    route = stage(doc, "route")
    del route["depends_on"]
    errors = errors_of(doc)
    assert errors["stages[3].rules[2].match"] == (
        "match “annotator” needs annotate or consensus work upstream of “route” "
        "(add it to depends_on)"
    )
    assert errors["stages[3].rules[3].match"].startswith("match “task_duration” needs")
    assert errors["stages[3].rules[0].conditions[0].class"].startswith("class “object” is not")


def test_a_stage_whose_key_is_a_list_is_an_error_not_a_crash():
    """Found by the mutation test above: a stage keyed by a list next to a broken stage."""

    doc = {
        "name": "x",
        "taxonomy": [{"key": "a", "kind": "box"}],
        "stages": [
            {"key": "broken", "kind": "annotate"},
            {"key": ["broken"], "kind": "annotate", "classes": ["a"]},
        ],
    }
    spec, errors = check(doc)
    assert errors
