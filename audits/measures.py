"""Measurements taken once, when the work is done, and stored for the quality figures.

Reading the figures is aggregate SQL over the stored rows (``audits.selectors``); what needs
Python — IoU of boxes and segments, Krippendorff's alpha, required attributes — is measured
here, on one task's annotations, by the services that complete the work:

- ``completeness``: of the samples a run had to annotate, those carrying every annotation
  and required attribute its stage asks for;
- ``agreement_scores``: per pair of annotators of a consensus stage and per measure, box IoU,
  temporal IoU of segments, and Krippendorff's alpha (nominal) of classifications.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import krippendorff
import numpy as np

from blueprints.spec import BlueprintSpec, Stage


def _missing_required(spec: BlueprintSpec, annotation: Any) -> bool:
    cls = spec.classes.get(annotation.label)
    for attribute in cls.attributes if cls else []:
        value = annotation.attributes.get(attribute.key)
        if attribute.required and (value is None or value == ""):
            return True
    return False


def completeness(
    spec: BlueprintSpec, stage: Stage, annotations: Iterable[Any], samples: Sequence[Any]
) -> tuple[int, int]:
    """(samples to annotate, complete samples) for one run.

    ``samples``: those the run had to annotate (its stage's sampling draw, invalid ones
    left out). A sample is complete when it carries at least one valid annotation of the
    stage, a value of every classification class of the stage (on the sample or for the
    whole task), and no annotation on it lacks a required attribute. Task-level annotations
    (no sample) count for every sample."""
    valid = [a for a in annotations if not a.invalid]
    classifications = {key for key in stage.classes if spec.classes[key].kind == "classification"}
    task_level = [a for a in valid if a.sample_id is None]
    by_sample: dict[int, list[Any]] = {}
    for a in valid:
        if a.sample_id is not None:
            by_sample.setdefault(a.sample_id, []).append(a)
    complete = 0
    for sample in samples:
        mine = by_sample.get(sample.pk, []) + task_level
        if not mine or any(_missing_required(spec, a) for a in mine):
            continue
        if classifications - {a.label for a in mine if a.kind == "classification"}:
            continue
        complete += 1
    return len(samples), complete


def _iou_box(a: dict, b: dict) -> float:
    ax, ay, aw, ah = (float(a[k]) for k in ("x", "y", "w", "h"))
    bx, by, bw, bh = (float(b[k]) for k in ("x", "y", "w", "h"))
    inter = max(0.0, min(ax + aw, bx + bw) - max(ax, bx)) * max(
        0.0, min(ay + ah, by + bh) - max(ay, by)
    )
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def _iou_segment(a: dict, b: dict) -> float:
    """Temporal IoU of two inclusive frame ranges."""
    inter = max(0, min(a["end"], b["end"]) - max(a["start"], b["start"]) + 1)
    union = (a["end"] - a["start"] + 1) + (b["end"] - b["start"] + 1) - inter
    return inter / union if union > 0 else 0.0


def _where(a: Any) -> tuple:
    return (a.label, a.sample_id, a.data.get("frame"), a.data.get("camera"))


def matched_iou(left: list[Any], right: list[Any], iou) -> float:
    """Mean best IoU, both ways (each shape against the other side's shapes of the same
    class, sample, frame and camera), so a missing and an extra shape both count as 0."""
    scores = [
        max((iou(a.data, b.data) for b in theirs if _where(b) == _where(a)), default=0.0)
        for mine, theirs in ((left, right), (right, left))
        for a in mine
    ]
    return sum(scores) / len(scores) if scores else 1.0


def class_alpha(replicas: Sequence[list[Any]]) -> float | None:
    """Krippendorff's alpha (nominal) of the classifications of several annotators: units
    are (class, sample); a unit only one annotator labelled is missing data for the others.
    Perfect agreement without variation (alpha undefined) is 1.0; None when no unit has two
    values."""
    units = sorted(
        {(a.label, a.sample_id or 0) for r in replicas for a in r if a.kind == "classification"}
    )
    if not units:
        return None
    values: dict[Any, int] = {}
    matrix = np.full((len(replicas), len(units)), np.nan)
    for row, replica in enumerate(replicas):
        chosen = {
            (a.label, a.sample_id or 0): a.data.get("value")
            for a in replica
            if a.kind == "classification"
        }
        for col, unit in enumerate(units):
            if unit in chosen:
                matrix[row, col] = values.setdefault(repr(chosen[unit]), len(values))
    paired = (~np.isnan(matrix)).sum(axis=0) >= 2
    if not paired.any():
        return None
    if len(values) == 1:
        return 1.0
    alpha = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    return 1.0 if math.isnan(alpha) else float(alpha)


@dataclass(frozen=True)
class Score:
    measure: str  # AgreementScore.Measure values
    a: Any  # the two annotators (users)
    b: Any
    score: float


def agreement_scores(replicas: Sequence[tuple[Any, list[Any]]]) -> list[Score]:
    """Per pair of (annotator, valid annotations) and per measure the pair has data for."""
    scores = []
    for (user_a, left), (user_b, right) in combinations(replicas, 2):
        for kind, measure, iou in (
            ("box", "box_iou", _iou_box),
            ("segment", "segment_iou", _iou_segment),
        ):
            lk = [a for a in left if a.kind == kind]
            rk = [a for a in right if a.kind == kind]
            if lk or rk:
                scores.append(Score(measure, user_a, user_b, round(matched_iou(lk, rk, iou), 4)))
        alpha = class_alpha([left, right])
        if alpha is not None:
            # Below 0 alpha means disagreement beyond chance; as a consistency fraction
            # (0–1, API.md) that is no agreement at all.
            scores.append(Score("class_alpha", user_a, user_b, round(max(alpha, 0.0), 4)))
    return scores
