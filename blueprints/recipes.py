"""Ready-made edits of a blueprint document (pure functions: a document in, a new one out).

The caller saves the result through ``blueprints.services.blueprint_save``, which validates
it as a whole like any other document.
"""

from __future__ import annotations

import copy
from typing import Any

from core.exceptions import ApplicationError

from .spec import DONE

WORK_KINDS = ("annotate", "consensus")


def _unique_key(stages: list[dict], wanted: str) -> str:
    taken = {s.get("key") for s in stages if isinstance(s, dict)} | {DONE}
    key, n = wanted, 2
    while key in taken:
        key, n = f"{wanted}_{n}", n + 1
    return key


def _routes_to(logic: dict, key: str) -> bool:
    rules = logic.get("rules") or []
    return logic.get("else") == key or any(
        isinstance(r, dict) and r.get("to") == key for r in rules
    )


def review_gates(stages: list[dict], review: dict) -> list[str]:
    """The logic stages that decide whether ``review`` runs (its dependencies routing to it)."""
    by_key = {s.get("key"): s for s in stages if isinstance(s, dict)}
    return [
        dep
        for dep in review.get("depends_on") or []
        if by_key.get(dep, {}).get("kind") == "logic" and _routes_to(by_key[dep], review["key"])
    ]


def add_random_sample_review(
    definition: dict, *, percent: float, review: str | None = None
) -> tuple[dict, str]:
    """The document with a logic stage whose ``random_sample`` rule sends ``percent`` % of
    tasks (drawn reproducibly per task) to a review stage and the rest to ``done``.

    The logic stage goes in front of ``review`` (the first review stage when not named): it
    takes over the review's dependencies and the review depends on it alone. Without any
    review stage a new one is added, reviewing every annotate and consensus stage.
    Returns (new document, the logic stage's key).
    """
    document = copy.deepcopy(definition)
    stages = document.get("stages")
    if not isinstance(stages, list):
        raise ApplicationError("The blueprint has no stages.", field="review_stage")
    work = [s["key"] for s in stages if isinstance(s, dict) and s.get("kind") in WORK_KINDS]
    reviews = [s for s in stages if isinstance(s, dict) and s.get("kind") == "review"]
    if review is not None:
        reviews = [s for s in reviews if s.get("key") == review]
        if not reviews:
            raise ApplicationError(
                f"The blueprint has no review stage “{review}”.", field="review_stage"
            )
    if not reviews and not work:
        raise ApplicationError(
            "The blueprint has no annotate or consensus stage whose work could be reviewed.",
            field="review_stage",
        )
    logic_key = _unique_key(stages, "random_sample")
    logic: dict[str, Any] = {
        "key": logic_key,
        "name": "Random sample for review",
        "kind": "logic",
        "depends_on": [],
        "rules": [{"match": "random_sample", "percent": percent, "to": ""}],
        "else": DONE,
    }
    if reviews:
        target = reviews[0]
        gates = review_gates(stages, target)
        if gates:
            raise ApplicationError(
                f"Review stage “{target['key']}” is already routed by logic stage "
                f"“{gates[0]}”: add a random_sample rule there in the blueprint editor.",
                field="review_stage",
            )
        logic["depends_on"] = list(target.get("depends_on") or [])
        target["depends_on"] = [logic_key]
        stages.insert(stages.index(target), logic)
    else:
        target = {
            "key": _unique_key(stages, "review"),
            "kind": "review",
            "depends_on": [logic_key],
            "reviews": work,
        }
        logic["depends_on"] = work
        stages += [logic, target]
    logic["rules"][0]["to"] = target["key"]
    return document, logic_key
