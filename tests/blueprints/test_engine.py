"""The pure engine over the example blueprints: readiness, skipping, routing, reopening."""

from dataclasses import replace

import pytest

from blueprints.engine import (
    COMPLETED,
    IN_PROGRESS,
    READY,
    SKIPPED,
    Annotation,
    Run,
    TaskFacts,
    advance,
    reopen,
    sample_draw,
    task_status,
)
from blueprints.validation import validate
from tests.blueprints.test_validation import example


@pytest.fixture
def pick():
    return validate(example("pick-and-place"))


def statuses(runs):
    return {key: run.status for key, run in runs.items()}


def finish(runs, *keys):
    return {**runs, **{k: replace(runs[k], status=COMPLETED) for k in keys}}


FACTS = TaskFacts(seed="task-1", annotators={"segments": ("bob",), "objects": ("bob",)})


def test_parallel_stages_start_ready_and_the_rest_wait(pick):
    runs = advance(pick, {}, [], FACTS)
    assert statuses(runs) == {
        "segments": READY,
        "objects": READY,
        "tool_detail": "blocked",
        "route": "blocked",
        "full_review": "blocked",
    }
    assert task_status(pick, runs) == "pending_start"


def test_conditional_stage_is_skipped_without_a_tool_and_enabled_with_one(pick):
    runs = finish(advance(pick, {}, [], FACTS), "segments", "objects")
    grasp = Annotation("segments", "gripper_open", attributes={"description": "grasp"})
    cup = Annotation("objects", "object", attributes={"category": "cup"})
    tool = Annotation("objects", "object", attributes={"category": "tool"})
    without = advance(pick, runs, [grasp, cup], FACTS)
    assert without["tool_detail"].status == SKIPPED
    assert without["tool_detail"].reason == "its condition is false"
    assert advance(pick, runs, [grasp, tool], FACTS)["tool_detail"].status == READY
    # Invalid annotations do not count.
    invalid_tool = replace(tool, invalid=True)
    assert advance(pick, runs, [grasp, invalid_tool], FACTS)["tool_detail"].status == SKIPPED


def test_logic_routes_by_the_first_matching_rule(pick):
    runs = finish(advance(pick, {}, [], FACTS), "segments", "objects")
    box = Annotation("objects", "object", attributes={"category": "cup"})
    # An object but no grasp segment: rule 1 sends it to full review.
    routed = advance(pick, runs, [box], FACTS)
    assert (routed["route"].status, routed["route"].routed_to) == (COMPLETED, "full_review")
    assert routed["route"].reason == "rule 1: object & no gripper_open"
    assert routed["full_review"].status == READY
    assert (
        task_status(pick, {**routed, "tool_detail": replace(routed["tool_detail"], status=SKIPPED)})
        == "pending_review"
    )


def test_else_skips_the_review_and_the_task_passes(pick):
    facts = TaskFacts(seed="no-sample", annotators={"segments": "bob"})
    assert sample_draw("no-sample", "route", 1) >= 20  # this seed is not in the 20 %
    runs = finish(advance(pick, {}, [], facts), "segments", "objects")
    grasp = Annotation("segments", "gripper_open", attributes={"description": "g"})
    done = advance(pick, runs, [grasp], facts)
    assert done["route"].routed_to == "done"
    assert done["full_review"].status == SKIPPED
    assert done["full_review"].reason == "route routed to done"
    assert task_status(pick, done) == "review_passed"


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        (TaskFacts(seed="s", annotators={"segments": ("alice",)}), "rule 3: by alice"),
        (TaskFacts(seed="s", active_seconds=3600), "rule 4: time > 1800 s"),
        (TaskFacts(seed="s", batch="night-shift"), "rule 5: batch night-shift"),
    ],
)
def test_annotator_duration_and_batch_rules(pick, facts, reason):
    if sample_draw("s", "route", 1) < 20:
        pytest.skip("seed falls in the random sample")
    runs = finish(advance(pick, {}, [], facts), "segments", "objects")
    grasp = Annotation("segments", "gripper_open")
    assert advance(pick, runs, [grasp], facts)["route"].reason == reason


def test_dataset_rule_and_all_skipped_dependencies():
    spec = validate(example("driving-scene"))
    facts = TaskFacts(seed="x", datasets=("night-drive", "7"))
    runs = finish(advance(spec, {}, [], facts), "boxes", "weather")
    runs = advance(spec, runs, [], facts)
    assert runs["truck_detail"].status == SKIPPED
    assert runs["audit_route"].routed_to == "audit"
    assert runs["audit_route"].reason == "rule 1: dataset night-drive"


def test_random_sampling_is_reproducible_and_matches_the_rate(pick):
    draws = [sample_draw(f"task-{i}", "route", 1) for i in range(4000)]
    assert draws == [sample_draw(f"task-{i}", "route", 1) for i in range(4000)]
    share = sum(d < 20 for d in draws)
    # Binomial(4000, 0.2): mean 800, sd ≈ 25.3; ±5 sd never fails by chance in practice.
    assert abs(share - 800) < 5 * 25.3


def test_rerunning_never_rerolls(pick):
    runs = finish(advance(pick, {}, [], FACTS), "segments", "objects")
    grasp = Annotation("segments", "gripper_open")
    first = advance(pick, runs, [grasp], FACTS)
    again = advance(pick, first, [grasp], FACTS)
    assert again == first


def test_reject_reopens_the_reviewed_stages_and_resets_downstream(pick):
    runs = finish(advance(pick, {}, [], FACTS), "segments", "objects")
    box = Annotation("objects", "object", attributes={"category": "cup"})
    runs = advance(pick, runs, [box], FACTS)
    runs = {**runs, "full_review": replace(runs["full_review"], status=IN_PROGRESS)}
    reopened = reopen(pick, runs, "full_review")
    assert (reopened["segments"].status, reopened["segments"].attempt) == (IN_PROGRESS, 2)
    assert (reopened["objects"].status, reopened["objects"].attempt) == (IN_PROGRESS, 2)
    assert reopened["route"] == Run(attempt=2)  # decided anew after the rework
    assert reopened["full_review"].status == "blocked"
    assert reopened["tool_detail"].status == "blocked"
    assert task_status(pick, reopened) == "in_progress"
    with pytest.raises(ValueError, match="not a review stage"):
        reopen(pick, runs, "route")


def test_consensus_disagreement_forces_its_review():
    from blueprints.engine import DISAGREEMENT

    spec = validate(example("driving-scene"))
    facts = TaskFacts(seed="calm", active_seconds=600)
    runs = advance(spec, {}, [], facts)
    runs = {
        **runs,
        "boxes": Run(status=COMPLETED),
        "weather": Run(status=COMPLETED, routed_to=DISAGREEMENT),
    }
    runs = advance(spec, runs, [], facts)
    if runs["audit_route"].routed_to == "audit":
        pytest.skip("this seed is audited at random anyway")
    assert runs["audit"].status == READY
    assert runs["audit"].reason == "annotators disagreed on weather"
    agreed = advance(spec, {**runs, "weather": Run(status=COMPLETED), "audit": Run()}, [], facts)
    assert agreed["audit"].status == SKIPPED


def test_a_reviewed_stage_downstream_of_another_is_decided_again(pick):
    import yaml

    doc = yaml.safe_load(
        """
name: chain
taxonomy:
  - {key: flag, kind: classification, choices: ["yes", "no"]}
  - {key: detail, kind: text}
stages:
  - {key: a, kind: annotate, classes: [flag]}
  - key: b
    kind: annotate
    depends_on: [a]
    classes: [detail]
    when: {stage: a, class: flag, equals: "yes"}
  - {key: r, kind: review, depends_on: [b], reviews: [a, b]}
"""
    )
    spec = validate(doc)
    facts = TaskFacts(seed="x")
    runs = finish(advance(spec, {}, [], facts), "a")
    runs = advance(spec, runs, [Annotation("a", "flag", value="no")], facts)
    assert runs["b"].status == SKIPPED
    runs = {**runs, "r": replace(runs["r"], status=IN_PROGRESS)}
    reopened = reopen(spec, runs, "r")
    assert reopened["a"].status == IN_PROGRESS and reopened["b"].status == "blocked"
    redone = advance(spec, finish(reopened, "a"), [Annotation("a", "flag", value="yes")], facts)
    assert redone["b"].status == READY


def test_rework_after_a_reject_is_reviewed_again_even_when_routing_now_skips_the_review():
    from blueprints.engine import DISAGREEMENT

    spec = validate(example("driving-scene"))
    facts = TaskFacts(seed="calm", active_seconds=600)
    runs = {
        **advance(spec, {}, [], facts),
        "boxes": Run(status=COMPLETED),
        "weather": Run(status=COMPLETED, routed_to=DISAGREEMENT),
    }
    runs = advance(spec, runs, [], facts)
    if runs["audit_route"].routed_to == "audit":
        pytest.skip("this seed is audited at random anyway")
    assert runs["audit"].status == READY  # the disagreement is reviewed
    runs = {**runs, "audit": replace(runs["audit"], status=IN_PROGRESS)}
    reopened = reopen(spec, runs, "audit")
    assert reopened["audit"].rejected
    # The annotators fix it and now agree: routing alone would skip the review.
    fixed = {**reopened, "boxes": Run(status=COMPLETED, attempt=2)}
    fixed["weather"] = Run(status=COMPLETED, attempt=2)
    fixed = advance(spec, fixed, [], facts)
    assert fixed["audit_route"].routed_to == "done"
    assert fixed["audit"].status == READY
    assert fixed["audit"].reason == "rework of boxes after a reject"
    assert task_status(spec, fixed) == "pending_review"


def test_the_annotator_rule_sees_every_consensus_annotator():
    import yaml

    spec = validate(
        yaml.safe_load(
            """
name: who
taxonomy: [{key: weather, kind: classification, choices: [clear, rain]}]
stages:
  - {key: vote, kind: consensus, classes: [weather], annotators: 3}
  - key: route
    kind: logic
    depends_on: [vote]
    rules: [{match: annotator, users: [carol], to: check}]
    else: done
  - {key: check, kind: review, depends_on: [route], reviews: [vote]}
"""
        )
    )
    runs = finish(advance(spec, {}, [], TaskFacts(seed="s")), "vote")
    third = TaskFacts(seed="s", annotators={"vote": ("alice", "bob", "carol")})
    assert advance(spec, runs, [], third)["route"].routed_to == "check"
    others = TaskFacts(seed="s", annotators={"vote": ("alice", "bob", "dave")})
    assert advance(spec, runs, [], others)["route"].routed_to == "done"


def test_a_logic_stage_without_dependencies_routes_at_intake():
    import yaml

    spec = validate(
        yaml.safe_load(
            """
name: intake
taxonomy: [{key: object, kind: box}]
stages:
  - key: intake
    kind: logic
    rules: [{match: batch, batches: [night], to: careful}]
    else: quick
  - {key: careful, kind: annotate, depends_on: [intake], classes: [object]}
  - {key: quick, kind: annotate, depends_on: [intake], classes: [object]}
"""
        )
    )
    night = advance(spec, {}, [], TaskFacts(seed="s", batch="night"))
    assert night["intake"] == Run(
        status=COMPLETED, routed_to="careful", reason="rule 1: batch night"
    )
    assert (night["careful"].status, night["quick"].status) == (READY, SKIPPED)
    day = advance(spec, {}, [], TaskFacts(seed="s", batch="day"))
    assert (day["careful"].status, day["quick"].status) == (SKIPPED, READY)
