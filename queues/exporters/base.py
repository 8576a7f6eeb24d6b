"""What an export works on: the tasks chosen, their episodes (samples) and annotations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.exceptions import ApplicationError
from projects.dataset_services import dataset_dir
from projects.formats import get_format


class ExportError(ApplicationError):
    pass


@dataclass
class Episode:
    task: Any
    sample: Any
    annotations: list  # valid ones of this sample (cleaning drops invalid)

    def frames(self, camera: str, indices) -> list[np.ndarray]:
        reader = get_format(self.sample.dataset.format)
        return reader.read_frames(
            dataset_dir(self.sample.dataset), self.sample, camera, list(indices)
        )

    def series(self) -> dict[str, np.ndarray]:
        reader = get_format(self.sample.dataset.format)
        return reader.read_series(dataset_dir(self.sample.dataset), self.sample)


@dataclass
class ExportContext:
    export: Any
    tasks: list
    episodes: list[Episode]
    annotations: dict[int, list]  # task id → exported annotations
    options: dict
    counts: dict = field(default_factory=dict)
    progress: Callable[[float, str], None] = lambda fraction, detail="": None

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


def collect(export, tasks: list, progress) -> ExportContext:
    """Episodes and annotations of the tasks, after cleaning (counted in ``counts``)."""
    from projects.models import Sample

    clean = export.options.get("clean", False)
    ctx = ExportContext(export, tasks, [], {}, export.options, progress=progress)
    by_task = {}
    for task in tasks:
        annotations = list(task.annotations.all())
        if clean:
            dropped = [a for a in annotations if a.invalid]
            ctx.count("dropped_invalid_annotations", len(dropped))
            annotations = [a for a in annotations if not a.invalid]
        by_task[task.pk] = annotations
    ctx.annotations = by_task
    for task in tasks:
        samples = Sample.objects.filter(dataset__in=task.datasets.all()).select_related("dataset")
        if clean:  # samples an annotator marked unusable for this task
            unusable = samples.filter(pk__in=task.invalid_samples.values("sample"))
            ctx.count("dropped_invalid_samples", unusable.count())
            samples = samples.exclude(pk__in=task.invalid_samples.values("sample"))
        for sample in samples.order_by("dataset__name", "index"):
            # Task-level annotations (no sample) belong to every episode of the task.
            mine = [a for a in by_task[task.pk] if a.sample_id in (sample.pk, None)]
            if clean and not mine:
                ctx.count("dropped_empty_episodes")
                continue
            if clean:
                for a in mine:
                    if clip(a, sample):
                        ctx.count("clipped_geometry")
            ctx.episodes.append(Episode(task, sample, mine))
    return ctx


def clip(annotation, sample) -> bool:
    """Clip a box, polygon or keypoint to its camera's frame (in place). True if it moved."""
    camera = next(
        (c for c in sample.cameras if c["name"] == annotation.data.get("camera")),
        sample.cameras[0] if sample.cameras else None,
    )
    if camera is None or annotation.kind not in {"box", "polygon", "keypoint"}:
        return False
    width, height = camera["width"], camera["height"]
    data = dict(annotation.data)
    if annotation.kind == "box":
        x1, y1 = max(0, data["x"]), max(0, data["y"])
        x2, y2 = min(width, data["x"] + data["w"]), min(height, data["y"] + data["h"])
        data.update(x=x1, y=y1, w=max(0, x2 - x1), h=max(0, y2 - y1))
    elif annotation.kind == "polygon":
        data["points"] = [
            [min(max(x, 0), width), min(max(y, 0), height)] for x, y in data["points"]
        ]
    else:
        data.update(x=min(max(data["x"], 0), width), y=min(max(data["y"], 0), height))
    moved = data != annotation.data
    annotation.data = data
    return moved
