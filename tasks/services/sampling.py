"""A stage's ``sampling``: the share of the task's samples the stage annotates."""

from __future__ import annotations

from blueprints.engine import stage_sample_ids
from blueprints.spec import ReviewStage, Stage
from projects.models import Sample

from ..models import Task
from .base import spec_for, task_seed

WORK_KINDS = {"annotate", "consensus"}


def _drawn(task: Task, stages: list[Stage], every: list[int] | None = None) -> set[int] | None:
    """The union of the stages' draws over all the task's samples (``every``: their ids in
    order, when the caller read them); None when one of them takes every sample. The seed
    is the task's (base.task_seed), as for a logic stage's ``random_sample``."""
    if not stages or any(s.params.sampling is None for s in stages):
        return None
    if every is None:
        every = list(
            Sample.objects.filter(dataset__tasks=task).order_by("pk").values_list("pk", flat=True)
        )
    chosen: set[int] = set()
    for s in stages:
        chosen |= set(stage_sample_ids(task_seed(task), s.key, every, s.params.sampling))
    return chosen


def stage_samples(
    *, task: Task, stage: Stage, samples: list, every: list[int] | None = None
) -> list:
    """Those of ``samples`` that ``stage`` annotates (or reviews): every one, or with the
    stage's ``sampling`` the task's reproducible draw.

    The draw runs over all the task's samples, whatever subset the caller passes (marking a
    sample invalid re-rolls nothing). A review stage without sampling of its own reviews
    what its reviewed stages annotated. ``every``: the ids of all the task's samples in
    order, when the caller read them already."""
    stages = [stage]
    if stage.params.sampling is None and isinstance(stage, ReviewStage):
        spec = spec_for(task.blueprint)
        stages = [spec.by_key[k] for k in stage.reviews if k in spec.by_key]
    chosen = _drawn(task, stages, every)
    return list(samples) if chosen is None else [s for s in samples if s.pk in chosen]


def task_sampled_ids(*, task: Task) -> set[int] | None:
    """The samples some annotate stage of the task annotates; None when that is all."""
    spec = spec_for(task.blueprint)
    return _drawn(task, [s for s in spec.stages if s.kind in WORK_KINDS])
