"""The pipeline engine: a pure function of (spec, run states, annotations, task facts).

``advance()`` returns the next state of every stage run; the services that call it
(the tasks issue) persist the result in one transaction and write TaskEvents.

- A stage becomes ``ready`` when every dependency is ``completed`` or ``skipped``; it is
  ``skipped`` instead when all its dependencies were skipped, when a logic stage it
  depends on routed elsewhere, or when its ``when`` condition is false.
- Logic stages are evaluated the moment they are ready: the first matching rule (else
  ``else``) names the target; the logic run completes with ``routed_to`` set.
- Random sampling is an independent draw per task and rule, reproducible from the
  task's seed: re-running the engine never re-rolls.
- A consensus stage whose annotators disagreed (below its agreement threshold) makes
  every review stage that reviews it ready, whatever logic routing said.
- A review that rejected work reviews its rework again (``Run.rejected``), whatever
  routing or conditions say the second time: rework never finishes unreviewed.
- A logic stage without dependencies routes the moment the task is created (intake
  routing by batch, dataset or random sample).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .spec import (
    DONE,
    AllOf,
    AnnotationTypeRule,
    AnnotatorRule,
    AnyOf,
    BatchRule,
    BlueprintSpec,
    ClassCondition,
    Condition,
    DatasetRule,
    LogicStage,
    Not,
    RandomSampleRule,
    ReviewStage,
    Rule,
    TaskDurationRule,
)

BLOCKED, READY, IN_PROGRESS, SUBMITTED, COMPLETED, SKIPPED = (
    "blocked",
    "ready",
    "in_progress",
    "submitted",
    "completed",
    "skipped",
)
FINISHED = {COMPLETED, SKIPPED}
# A consensus run below its agreement threshold carries this as routed_to.
DISAGREEMENT = "review"
STARTED = {IN_PROGRESS, SUBMITTED, COMPLETED}


@dataclass(frozen=True)
class Run:
    status: str = BLOCKED
    attempt: int = 1
    routed_to: str | None = None
    reason: str = ""
    # A review stage that rejected work: its reviewed stages' rework comes back to it.
    rejected: bool = False


@dataclass(frozen=True)
class Annotation:
    stage: str
    label: str
    value: Any = None  # a classification's choice
    attributes: dict = field(default_factory=dict)
    invalid: bool = False


@dataclass(frozen=True)
class TaskFacts:
    seed: str  # stable per task, e.g. its id
    # annotate/consensus stage key → everyone who annotated in it (every consensus replica)
    annotators: dict[str, tuple[str, ...]] = field(default_factory=dict)
    batch: str = ""
    datasets: tuple[str, ...] = ()  # names and ids, as text
    active_seconds: float = 0.0  # time spent in the task's annotate stages


def topological(spec: BlueprintSpec) -> list[str]:
    return sorted(spec.by_key, key=lambda k: (len(spec.upstream.get(k, ())), spec.columns[k]))


def sample_draw(seed: str, stage: str, rule_index: int) -> float:
    """A number in [0, 100), the same every time for this task, stage and rule."""
    digest = hashlib.sha256(f"{seed}:{stage}:{rule_index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def stage_sample_ids(
    seed: str, stage: str, sample_ids: list[int], percent: float | None
) -> list[int]:
    """The samples a stage with ``sampling: percent`` annotates, in the given order.

    Each sample gets its own draw (``sample_draw`` with the sample id for the rule index) and
    the lowest ⌈percent · n / 100⌉ draws are taken, at least one when there are samples: the
    same task always gets the same sample, and samples added later take their own place
    without re-rolling the others. ``percent`` None means every sample.
    """
    if percent is None or not sample_ids:
        return list(sample_ids)
    count = max(1, math.ceil(len(sample_ids) * percent / 100))
    ranked = sorted(sample_ids, key=lambda pk: (sample_draw(seed, f"{stage}:sample", pk), pk))
    chosen = set(ranked[:count])
    return [pk for pk in sample_ids if pk in chosen]


def _matching(leaf: ClassCondition, annotations: Sequence[Annotation], stages: set[str]) -> int:
    count = 0
    for a in annotations:
        if a.invalid or a.label != leaf.class_ or a.stage not in stages:
            continue
        if leaf.attribute is not None:
            value = a.attributes.get(leaf.attribute)
        else:
            value = a.value
        if leaf.equals is not None and value != leaf.equals:
            continue
        if leaf.in_ is not None and value not in leaf.in_:
            continue
        count += 1
    return count


def holds(condition: Condition, annotations: Sequence[Annotation], stages: set[str]) -> bool:
    if isinstance(condition, AllOf):
        return all(holds(c, annotations, stages) for c in condition.all)
    if isinstance(condition, AnyOf):
        return any(holds(c, annotations, stages) for c in condition.any)
    if isinstance(condition, Not):
        return not holds(condition.not_, annotations, stages)
    scope = {condition.stage} if condition.stage else stages
    count = _matching(condition, annotations, scope)
    return count >= (condition.min_count or 1) if condition.present else count == 0


def rule_matches(
    rule: Rule, index: int, logic: LogicStage, spec, annotations, facts: TaskFacts
) -> bool:
    upstream = spec.upstream[logic.key]
    if isinstance(rule, AnnotationTypeRule):
        return all(holds(c, annotations, upstream) for c in rule.conditions)
    if isinstance(rule, AnnotatorRule):
        return any(user in rule.users for k in upstream for user in facts.annotators.get(k, ()))
    if isinstance(rule, RandomSampleRule):
        return sample_draw(facts.seed, logic.key, index) < rule.percent
    if isinstance(rule, TaskDurationRule):
        longer = rule.longer_than is None or facts.active_seconds > rule.longer_than
        shorter = rule.shorter_than is None or facts.active_seconds < rule.shorter_than
        return longer and shorter
    if isinstance(rule, BatchRule):
        return facts.batch in rule.batches
    if isinstance(rule, DatasetRule):
        wanted = {str(d) for d in rule.datasets}
        return any(str(d) in wanted for d in facts.datasets)
    raise NotImplementedError(f"rule type {rule.type_name}")


def route(logic: LogicStage, spec, annotations, facts) -> tuple[str, str]:
    """(target, why) for a ready logic stage: the first matching rule, else ``else``."""
    for index, rule in enumerate(logic.rules):
        if rule_matches(rule, index, logic, spec, annotations, facts):
            return rule.to, f"rule {index + 1}: {rule.describe()}"
    return logic.else_, "else"


def advance(
    spec: BlueprintSpec,
    runs: dict[str, Run],
    annotations: Sequence[Annotation],
    facts: TaskFacts,
) -> dict[str, Run]:
    """The next state of every run. Runs a user acts on (started, submitted) stay as they are.

    ``annotations`` are looked at only to decide a stage (its ``when``, a logic stage's
    rules): a caller may pass a sequence that reads them when first asked."""
    runs = {key: runs.get(key, Run()) for key in spec.by_key}
    for key in topological(spec):
        run = runs[key]
        if run.status != BLOCKED:
            continue
        stage = spec.by_key[key]
        deps = [runs[d] for d in stage.depends_on]
        if any(d.status not in FINISHED for d in deps):
            continue
        reviews = getattr(stage, "reviews", [])
        disagreed = [k for k in reviews if runs[k].routed_to == DISAGREEMENT]
        if disagreed:  # consensus below its threshold: reviewed whatever the routing says
            runs[key] = replace(run, status=READY, reason=f"annotators disagreed on {disagreed[0]}")
            continue
        reworked = [k for k in reviews if runs[k].status == COMPLETED]
        if run.rejected and reworked:  # the rework of what this review rejected
            runs[key] = replace(run, status=READY, reason=f"rework of {reworked[0]} after a reject")
            continue
        if deps and all(d.status == SKIPPED for d in deps):
            runs[key] = replace(run, status=SKIPPED, reason="every dependency was skipped")
            continue
        routed_away = [
            d
            for d in stage.depends_on
            if isinstance(spec.by_key[d], LogicStage)
            and runs[d].status == COMPLETED
            and runs[d].routed_to != key
        ]
        if routed_away:
            where = runs[routed_away[0]].routed_to
            runs[key] = replace(run, status=SKIPPED, reason=f"{routed_away[0]} routed to {where}")
            continue
        if stage.when is not None and not holds(stage.when, annotations, set()):
            runs[key] = replace(run, status=SKIPPED, reason="its condition is false")
            continue
        if isinstance(stage, LogicStage):
            target, why = route(stage, spec, annotations, facts)
            runs[key] = replace(run, status=COMPLETED, routed_to=target, reason=why)
            continue
        runs[key] = replace(run, status=READY, reason="")
    return runs


def reopen(spec: BlueprintSpec, runs: dict[str, Run], review_key: str) -> dict[str, Run]:
    """A review rejected: its reviewed stages go back to work (attempt + 1) and every run
    downstream of them — the review included — is reset (attempt + 1) to be evaluated
    again. A reviewed stage that lies downstream of another reviewed stage is reset too, so
    its condition and routing are decided anew by the reworked upstream."""
    review = spec.by_key[review_key]
    if not isinstance(review, ReviewStage):
        raise ValueError(f"{review_key} is not a review stage")
    runs = rework(spec, runs, set(review.reviews))
    runs[review_key] = replace(runs[review_key], rejected=True)
    return runs


def rework(spec: BlueprintSpec, runs: dict[str, Run], reviewed: set[str]) -> dict[str, Run]:
    """Send ``reviewed`` stages back to work (attempt + 1) and reset every run downstream of
    them (attempt + 1) to be evaluated again — a review's reject, or a standard audit's."""
    runs = dict(runs)
    reset: set[str] = set()
    for key in reviewed:
        reset |= spec.downstream_of(key)
    for key in reset:
        if runs[key].status != BLOCKED:
            runs[key] = Run(attempt=runs[key].attempt + 1, rejected=runs[key].rejected)
    for key in reviewed - reset:
        if runs[key].status == SKIPPED:
            continue
        runs[key] = replace(runs[key], status=IN_PROGRESS, attempt=runs[key].attempt + 1, reason="")
    return runs


def task_status(spec: BlueprintSpec, runs: dict[str, Run]) -> str:
    """The task status that follows from its runs (data_submitted is set by exports)."""
    work = {k: r for k, r in runs.items() if not isinstance(spec.by_key[k], LogicStage)}
    if all(r.status in FINISHED for r in runs.values()):
        return "review_passed"
    if not any(r.status in STARTED for r in work.values()):
        return "pending_start"
    waiting = [k for k, r in work.items() if r.status not in FINISHED]
    if waiting and all(isinstance(spec.by_key[k], ReviewStage) for k in waiting):
        return "pending_review"
    return "in_progress"


__all__ = [
    "DONE",
    "Annotation",
    "Run",
    "TaskFacts",
    "advance",
    "reopen",
    "stage_sample_ids",
    "task_status",
]
