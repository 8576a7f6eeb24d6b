"""Agreement between independent annotators of a consensus stage, in [0, 1].

Classifications: the share of annotator pairs that chose the same value per sample.
Boxes: the mean best IoU of each box with the other annotator's boxes of the same
class, frame and camera. Segments: the same with temporal IoU. Other kinds: the share
of pairs with the same count per class.
"""

from __future__ import annotations

from itertools import combinations


def _iou_box(a: dict, b: dict) -> float:
    a = {k: float(a[k]) for k in ("x", "y", "w", "h")}
    b = {k: float(b[k]) for k in ("x", "y", "w", "h")}
    x1, y1 = max(a["x"], b["x"]), max(a["y"], b["y"])
    x2 = min(a["x"] + a["w"], b["x"] + b["w"])
    y2 = min(a["y"] + a["h"], b["y"] + b["h"])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = a["w"] * a["h"] + b["w"] * b["h"] - inter
    return inter / union if union else 0.0


def _iou_segment(a: dict, b: dict) -> float:
    inter = max(0, min(a["end"], b["end"]) - max(a["start"], b["start"]) + 1)
    union = (a["end"] - a["start"] + 1) + (b["end"] - b["start"] + 1) - inter
    return inter / union if union else 0.0


def _key(a) -> tuple:
    return (a.label, a.sample_id, a.data.get("frame"), a.data.get("camera"))


def _matched(left: list, right: list, iou) -> float:
    """Mean best IoU, both ways, so missing and extra shapes both count."""
    if not left and not right:
        return 1.0
    scores = []
    for mine, theirs in ((left, right), (right, left)):
        for a in mine:
            best = max((iou(a.data, b.data) for b in theirs if _key(b) == _key(a)), default=0.0)
            scores.append(best)
    return sum(scores) / len(scores)


def pair_agreement(left: list, right: list) -> float:
    scores = []
    classes_left = [a for a in left if a.kind == "classification"]
    classes_right = [a for a in right if a.kind == "classification"]
    if classes_left or classes_right:
        chosen_left = {(a.label, a.sample_id): a.data.get("value") for a in classes_left}
        chosen_right = {(a.label, a.sample_id): a.data.get("value") for a in classes_right}
        keys = set(chosen_left) | set(chosen_right)
        scores.append(sum(chosen_left.get(k) == chosen_right.get(k) for k in keys) / len(keys))
    for kind, iou in (("box", _iou_box), ("segment", _iou_segment)):
        lk = [a for a in left if a.kind == kind]
        rk = [a for a in right if a.kind == kind]
        if lk or rk:
            scores.append(_matched(lk, rk, iou))
    others_l = [a for a in left if a.kind in {"polygon", "keypoint"}]
    others_r = [a for a in right if a.kind in {"polygon", "keypoint"}]
    if others_l or others_r:
        count = lambda xs: {k: sum(1 for a in xs if a.label == k) for k in {a.label for a in xs}}  # noqa: E731
        scores.append(1.0 if count(others_l) == count(others_r) else 0.0)
    return sum(scores) / len(scores) if scores else 1.0


def agreement(replicas: list[list]) -> float:
    pairs = list(combinations(replicas, 2))
    if not pairs:
        return 1.0
    return round(sum(pair_agreement(a, b) for a, b in pairs) / len(pairs), 4)
