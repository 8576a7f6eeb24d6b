"""Stage checks (the blueprint's ``checks``), run when a stage is submitted.

Each returns readable failures; an empty list means the stage may be submitted.
"""

from __future__ import annotations

from blueprints.spec import (
    AllSamplesAnnotated,
    BlueprintSpec,
    Check,
    InsideFrame,
    MaxCount,
    MinCount,
    NoOverlap,
    RequiredAttributes,
    Stage,
)


def _inside(annotation, cameras: dict) -> bool:
    data = annotation.data
    camera = cameras.get(data.get("camera")) or (next(iter(cameras.values())) if cameras else None)
    if camera is None:
        return True
    width, height = camera["width"], camera["height"]
    if annotation.kind == "box":
        return (
            data["x"] >= 0
            and data["y"] >= 0
            and data["x"] + data["w"] <= width
            and data["y"] + data["h"] <= height
        )
    if annotation.kind == "polygon":
        return all(0 <= x <= width and 0 <= y <= height for x, y in data["points"])
    if annotation.kind == "keypoint":
        return 0 <= data["x"] <= width and 0 <= data["y"] <= height
    return True


def _overlaps(a, b) -> bool:
    if a.kind == "segment":
        return a.data["start"] <= b.data["end"] and b.data["start"] <= a.data["end"]
    if a.kind == "box":
        if a.data.get("frame") != b.data.get("frame") or a.data.get("camera") != b.data.get(
            "camera"
        ):
            return False
        return (
            a.data["x"] < b.data["x"] + b.data["w"]
            and b.data["x"] < a.data["x"] + a.data["w"]
            and a.data["y"] < b.data["y"] + b.data["h"]
            and b.data["y"] < a.data["y"] + a.data["h"]
        )
    return False


class Failure(str):
    """A check's message, knowing the samples it concerns (the workspace shows it there) and
    its check's ``severity``: ``error`` blocks submit, ``warn`` only flags the work."""

    samples: tuple = ()
    note: str = ""  # what to say beside each sample (the text itself when empty)
    severity: str = "error"

    def __new__(cls, text: str, samples=(), note: str = "", severity: str = "error") -> Failure:
        failure = super().__new__(cls, text)
        failure.samples = tuple(s for s in samples if s is not None)
        failure.note = note
        failure.severity = severity
        return failure


def _where(annotation) -> str:
    sample = annotation.sample.name if annotation.sample_id and annotation.sample else "the task"
    return f"{annotation.label} #{annotation.pk} in {sample}"


def _counted(stage: Stage, annotations, samples) -> list:
    """The annotations a counting check counts: with ``sampling``, only those on the stage's
    sample (``samples``) or on the whole task."""
    if stage.params.sampling is None:
        return annotations
    drawn = {s.pk for s in samples}
    return [a for a in annotations if a.sample_id is None or a.sample_id in drawn]


def run_check(check: Check, spec: BlueprintSpec, stage: Stage, annotations, samples) -> list[str]:
    """``samples``: those the stage must annotate (its sample, less the invalid ones)."""
    valid = [a for a in annotations if not a.invalid]
    of_class = [a for a in valid if check.class_ is None or a.label == check.class_]
    counted = _counted(stage, of_class, samples)
    if isinstance(check, MinCount):
        if len(counted) < check.count:
            return [f"At least {check.count} {check.class_} needed; there are {len(counted)}."]
    elif isinstance(check, MaxCount):
        if len(counted) > check.count:
            return [f"At most {check.count} {check.class_} allowed; there are {len(counted)}."]
    elif isinstance(check, RequiredAttributes):
        failures = []
        for a in of_class:
            cls = spec.classes.get(a.label)
            for attribute in cls.attributes if cls else []:
                value = a.attributes.get(attribute.key)
                if attribute.required and (value is None or value == ""):
                    failures.append(
                        Failure(f"{_where(a)} lacks the required {attribute.key}.", [a.sample_id])
                    )
        return failures
    elif isinstance(check, InsideFrame):
        failures = []
        for a in of_class:
            cameras = {c["name"]: c for c in (a.sample.cameras if a.sample_id else [])}
            if not _inside(a, cameras):
                failures.append(Failure(f"{_where(a)} lies outside the frame.", [a.sample_id]))
        return failures
    elif isinstance(check, NoOverlap):
        failures = []
        by_sample: dict = {}
        for a in of_class:
            by_sample.setdefault(a.sample_id, []).append(a)
        for group in by_sample.values():
            group.sort(key=lambda a: a.pk)
            for i, a in enumerate(group):
                for b in group[i + 1 :]:
                    if _overlaps(a, b):
                        failures.append(Failure(f"{_where(a)} overlaps #{b.pk}.", [a.sample_id]))
        return failures
    elif isinstance(check, AllSamplesAnnotated):
        done = {a.sample_id for a in of_class}
        missing = [s for s in samples if s.pk not in done]
        if missing:
            names = [s.name for s in missing]
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            return [
                Failure(
                    f"{len(missing)} sample(s) have no annotation yet: {shown}.",
                    [s.pk for s in missing],
                    note="No annotation yet.",
                )
            ]
    return []


def run_checks(spec: BlueprintSpec, stage: Stage, annotations, samples) -> list[Failure]:
    """Every failure of the stage's checks, each carrying its check's ``severity``."""
    failures: list[Failure] = []
    checks = list(stage.checks)
    if not any(isinstance(c, RequiredAttributes) for c in checks):
        # Required attributes hold whether or not the blueprint lists the check.
        checks.append(RequiredAttributes(rule="required_attributes"))
    for check in checks:
        failures += [
            Failure(
                found,
                getattr(found, "samples", ()),
                note=getattr(found, "note", ""),
                severity=check.severity,
            )
            for found in run_check(check, spec, stage, annotations, samples)
        ]
    return failures
