"""Batch annotation: one classification, segment or set of attribute values applied to many
samples of a task at once (repeats of one demonstration) — the workspace's "Apply to
selected samples" and the task page's Batch annotation tab, previewed then applied.

In one transaction, with a query count that does not grow with the number of samples, and
one TaskEvent."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from core.access import actor_user
from core.exceptions import ApplicationError
from projects.models import Sample

from ..models import Annotation, InvalidSample, Task, TaskEvent
from ..records import annotation_record
from ..validation import clean_attributes, clean_data
from .access import annotating_run
from .base import as_id, lock_task, spec_for
from .sampling import stage_samples

MAX_SAMPLES = 10_000
APPLIED_KINDS = {"classification", "segment"}


def _sample_ids(samples: Any) -> list[int]:
    if not isinstance(samples, list) or not samples:
        raise ApplicationError("Select at least one sample.", field="samples")
    if len(samples) > MAX_SAMPLES:
        raise ApplicationError(f"Select at most {MAX_SAMPLES} samples.", field="samples")
    ids = [as_id(s, "samples") for s in samples]
    return list(dict.fromkeys(i for i in ids if i is not None))


@transaction.atomic
def annotation_apply_many(
    *,
    actor,
    task: Task,
    stage: str,
    label: str,
    samples: Any,
    data: Any = None,
    attributes: Any = None,
    dry_run: bool = False,
) -> dict:
    """Apply ``label`` to every sample in ``samples`` in the actor's run of ``stage``:

    - with ``data`` (a classification's value or a segment's frames): one annotation each;
      a sample whose classification of this label already has that value is skipped, one
      with another value has it changed (version + 1);
    - without ``data``: ``attributes`` are set on the sample's existing ``label``
      annotations of the run (the other attributes kept).

    Samples the stage does not annotate (its ``sampling`` draw), marked invalid, or too
    short for the segment are skipped, each with its reason. ``dry_run`` counts without
    writing (the preview). Answers the counts, the skipped samples and the annotations."""
    task = lock_task(task.pk, actor)
    spec = spec_for(task.blueprint)
    if stage not in spec.by_key:
        raise ApplicationError(f"The task has no stage “{stage}”.", field="stage")
    run = annotating_run(task, stage, actor)
    stage_obj = spec.by_key[stage]
    if label not in stage_obj.classes:
        raise ApplicationError(
            f"Stage “{stage}” adds only {', '.join(stage_obj.classes)}, not “{label}”.",
            field="label",
        )
    cls = spec.classes[label]
    setting = data is not None
    if setting and cls.kind not in APPLIED_KINDS:
        raise ApplicationError(
            f"{label} is a {cls.kind}: batches apply classifications and segments "
            "(or attribute values, without data).",
            field="label",
        )
    if not setting and not attributes:
        raise ApplicationError(
            "Give the value, the frames or the attributes to apply.", field="data"
        )
    ids = _sample_ids(samples)
    found = {
        s.pk: s
        for s in Sample.objects.filter(pk__in=ids, dataset__tasks=task).only(
            "pk", "name", "num_frames", "cameras", "dataset_id"
        )
    }
    unknown = [i for i in ids if i not in found]
    if unknown:
        raise ApplicationError(
            f"Not samples of this task: {', '.join(map(str, unknown[:10]))}.", field="samples"
        )
    chosen = [found[i] for i in ids]
    in_stage = {s.pk for s in stage_samples(task=task, stage=stage_obj, samples=chosen)}
    invalid = set(
        InvalidSample.objects.filter(task=task, sample_id__in=ids).values_list(
            "sample_id", flat=True
        )
    )
    cleaned_attributes = clean_attributes(cls, attributes) if setting else None
    skipped: list[dict] = []
    targets: list[tuple[Sample, dict | None]] = []
    for s in chosen:
        reason = ""
        value = None
        if s.pk not in in_stage:
            reason = f"not among the samples “{stage}” annotates"
        elif s.pk in invalid:
            reason = "marked invalid"
        elif setting:
            try:
                value = clean_data(cls, data, s)
            except ApplicationError as exc:
                if exc.field in {"data.start", "data.end", "data.frame"}:
                    reason = exc.message
                else:
                    raise
        if reason:
            skipped.append({"sample": s.pk, "name": s.name, "reason": reason})
        else:
            targets.append((s, value))
    existing = list(
        Annotation.objects.filter(
            task=task,
            stage_key=stage,
            replica=run.replica,
            label=label,
            sample_id__in=[s.pk for s, _ in targets],
        ).order_by("id")
    )
    by_sample: dict[int, list[Annotation]] = {}
    for a in existing:
        if a.sample_id is not None:
            by_sample.setdefault(a.sample_id, []).append(a)
    create: list[Annotation] = []
    change: list[Annotation] = []
    author = actor_user(actor)
    now = timezone.now()
    for s, value in targets:
        mine = by_sample.get(s.pk, [])
        if not setting:  # attribute values on the existing annotations
            if not mine:
                skipped.append({"sample": s.pk, "name": s.name, "reason": f"has no {label}"})
            for a in mine:
                merged = clean_attributes(cls, {**a.attributes, **attributes})
                if merged != a.attributes:
                    a.attributes, a.version, a.updated_at = merged, a.version + 1, now
                    change.append(a)
            continue
        same = [a for a in mine if a.data == value] if cls.kind == "classification" else []
        if cls.kind == "classification" and mine:
            if same:
                skipped.append({"sample": s.pk, "name": s.name, "reason": "already set"})
                continue
            a = mine[0]
            a.data, a.attributes, a.version = value, cleaned_attributes, a.version + 1
            a.updated_at = now  # bulk_update skips auto_now; incremental exports read it
            change.append(a)
            continue
        create.append(
            Annotation(
                task=task,
                stage_key=stage,
                replica=run.replica,
                sample=s,
                label=label,
                kind=cls.kind,
                data=value,
                attributes=cleaned_attributes,
                author=author,
            )
        )
    result = {
        "dry_run": dry_run,
        "count": len(create) + len(change),
        "created": len(create),
        "changed": len(change),
        "skipped": skipped,
        "annotations": [],
    }
    if dry_run or not result["count"]:
        return result
    made = Annotation.objects.bulk_create(create)
    if change:
        Annotation.objects.bulk_update(change, ["data", "attributes", "version", "updated_at"])
    TaskEvent.objects.create(
        task=task,
        kind="annotations_applied",
        actor=author,
        stage_key=stage,
        data={
            "label": label,
            "created": len(create),
            "changed": len(change),
            "skipped": len(skipped),
        },
    )
    result["annotations"] = [annotation_record(a) for a in [*made, *change]]
    return result
