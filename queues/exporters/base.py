"""What an export works on: the tasks chosen, their episodes (samples) and annotations."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from core.exceptions import ApplicationError
from projects.dataset_files import sample_root
from projects.formats import get_format
from projects.formats.base import item_shape
from tasks.tracks import expand_tracks


class ExportError(ApplicationError):
    pass


@dataclass
class Episode:
    task: Any
    sample: Any
    annotations: list  # valid ones of this sample (cleaning drops invalid)
    runs: list = field(default_factory=list)  # the task's stage runs (RunRow)

    def frames(self, camera: str, indices) -> list[np.ndarray]:
        reader = get_format(self.sample.dataset.format)
        return reader.read_frames(sample_root(self.sample), self.sample, camera, list(indices))

    def frame_windows(self, camera: str, size: int) -> Iterator[tuple[int, np.ndarray]]:
        """The camera's frames in order, ``size`` at a time, as (first index, (k, H, W, 3)
        array): a long episode is never held whole."""
        total = self.sample.num_frames
        for start in range(0, total, size):
            yield start, np.stack(self.frames(camera, range(start, min(start + size, total))))

    def series_windows(self, size: int) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Every array of the sample, ``size`` frames at a time, as (first index, {name:
        (k, *item_shape) array}): each in its source's shape and dtype (``array_shape``,
        ``array_dtype``), read a window at a time (never the whole array, never a float64
        copy of it)."""
        reader = get_format(self.sample.dataset.format)
        root = sample_root(self.sample)
        total = self.sample.num_frames
        arrays = self.sample.arrays or {}
        for start in range(0, total, max(size, 1)):
            stop = min(start + size, total)
            rows = reader.read_series_rows(root, self.sample, start, stop) if arrays else {}
            yield (
                start,
                {
                    name: _as_source(rows[name], spec, stop - start, f"{self.sample.name}: {name}")
                    for name, spec in arrays.items()
                },
            )


# Frames (and rows of arrays) read and written at a time: bounded by bytes, so a window of
# large frames stays small (two 480x640 cameras: 2 x 32 frames x 0.9 MB), and so does a
# window of an episode's arrays (a (T, 84, 84) depth array as much as a (T, 14) state).
WINDOW_BYTES = 32 * 1024 * 1024


def window_size(sample) -> int:
    """Frames per window: each camera's window and the window of all the sample's arrays
    within ``WINDOW_BYTES``."""
    largest = max((c["height"] * c["width"] * 3 for c in sample.cameras), default=1)
    row = sum(
        math.prod(array_shape(spec)) * np.dtype(array_dtype(spec)).itemsize
        for spec in (sample.arrays or {}).values()
    )
    return max(1, WINDOW_BYTES // max(largest, row, 1))


KEPT_DTYPES = {
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
}


def array_dtype(spec: dict) -> str:
    """The dtype an array is written in: its source's, when numeric (else float32)."""
    dtype = str(spec.get("dtype") or "float32")
    return dtype if dtype in KEPT_DTYPES else "float32"


def array_shape(spec: dict) -> tuple[int, ...]:
    """An array's shape after T as its source stored it (``()`` for a (T,) array)."""
    return tuple(item_shape(spec))


def write_hdf5_series(group, episode, paths: dict[str, str], frames: int, size: int) -> None:
    """Every array of the episode's sample under ``paths`` (array name → path in ``group``),
    in its source's shape and dtype, written a window of frames at a time."""
    arrays = episode.sample.arrays
    written = {
        name: group.create_dataset(
            path, shape=(frames, *array_shape(arrays[name])), dtype=array_dtype(arrays[name])
        )
        for name, path in paths.items()
    }
    for start, rows in episode.series_windows(size):
        for name, values in rows.items():
            written[name][start : start + len(values)] = values


def write_hdf5_camera(
    group, path: str, episode, camera: dict, frames: int, size: int, convert: Callable | None = None
) -> None:
    """A camera as a (T, H, W, 3) uint8 dataset, one frame a gzip chunk, written a window of
    frames at a time (``convert`` turns a window into what is stored)."""
    shape = (frames, camera["height"], camera["width"], 3)
    images = group.create_dataset(
        path,
        shape=shape,
        dtype=np.uint8,
        chunks=(1, *shape[1:]),
        compression="gzip",
        compression_opts=4,
    )
    for start, window in episode.frame_windows(camera["name"], size):
        images[start : start + len(window)] = convert(window) if convert else window


def conventional_names(
    arrays: dict[str, dict],
    aliases: Mapping[str, Sequence[str]],
    fallbacks: tuple[tuple[str, str], ...],
) -> dict[str, str]:
    """Source array name → its conventional name in a format: the first of each target's
    ``aliases`` present in ``arrays``; then, for each ``(target, role)`` of ``fallbacks``
    still unclaimed, the first array of that role that is a vector (not N-D) — so a
    policy's loader finds its state and action under the names it reads."""
    names: dict[str, str] = {}
    for target, candidates in aliases.items():
        name = next((n for n in candidates if n in arrays), None)
        if name is not None:
            names[name] = target
    for target, role in fallbacks:
        if target in names.values():
            continue
        name = next(
            (n for n, s in arrays.items() if s.get("role") == role and len(array_shape(s)) <= 1),
            None,
        )
        if name is not None and name not in names:
            names[name] = target
    return names


def _as_source(values: np.ndarray, spec: dict, rows: int, label: str) -> np.ndarray:
    values = np.asarray(values)
    shape = (rows, *array_shape(spec))
    if values.shape != shape:
        if values.size != math.prod(shape):
            raise ExportError(
                f"{label}: the source has shape {values.shape[1:]} per frame, not "
                f"{shape[1:]} as imported (re-sync the dataset)"
            )
        values = values.reshape(shape)
    return values.astype(array_dtype(spec), copy=False)


@dataclass
class ExportContext:
    export: Any
    tasks: list
    episodes: list[Episode]
    annotations: dict[int, list]  # task id → exported annotations
    options: dict
    counts: dict = field(default_factory=dict)
    progress: Callable[[float, str], None] = field(default=lambda fraction, detail: None)
    # The task query, its size, and what the stream saw (ids for the manifest, review-passed
    # ids for ``submit``).
    source: Any = None
    total: int = 0
    task_ids: list[int] = field(default_factory=list)
    passed_ids: list[int] = field(default_factory=list)
    # Episode formats: how many tasks the stream has finished (for progress), what was
    # written (sample id and annotation count per episode, in order: validation re-reads
    # the sources by id instead of holding episodes), and the casts a format had to make
    # (feature → "from → to"; the manifest states them).
    done: float = 0
    written: list[tuple[int, int]] = field(default_factory=list)
    casts: dict[str, str] = field(default_factory=dict)

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def fraction(self) -> float:
        return min(self.done / max(self.total, 1), 1.0)


class BlueprintRef(NamedTuple):
    name: str
    version: int


class TaskRow(NamedTuple):
    """What a streaming format reads of a task (duck-types ``Task`` for delivery_payload)."""

    pk: int
    unique_id: str
    name: str
    project_id: int
    blueprint: BlueprintRef
    status: str
    metadata: Any


@dataclass(slots=True)
class AnnotationRow:
    """What ``annotation_record`` reads of an annotation (mutable: cleaning clips ``data``).
    ``pk`` is None on a track's in-between frame (interpolated, not stored)."""

    pk: int | None
    task_id: int
    stage_key: str
    replica: int
    sample_id: int | None
    label: str
    kind: str
    data: Any
    attributes: Any
    version: int
    invalid: bool
    invalid_reason: str
    source: str
    source_detail: str
    track: str


class RunRow(NamedTuple):
    task_id: int
    stage_key: str
    kind: str
    status: str
    attempt: int
    assignee: str | None  # username
    routed_to: str


class TrackFrames(dict):
    """Task id → its annotations with every track frame by frame (its keyframes and the
    frames between, ``tasks.tracks.expand_tracks``), expanded when a task's list is read
    (``[task_id]``): a chunk holds only keyframes, one task's in-between frames at a time."""

    def __getitem__(self, task_id: int) -> list:
        return expand_tracks(super().__getitem__(task_id))


@dataclass
class TaskChunk:
    tasks: list[TaskRow]
    annotations: TrackFrames  # after cleaning; read by ``[task_id]`` (tracks frame by frame)
    runs: dict[int, list[RunRow]]
    datasets: dict[int, list[int]]  # the ids of each task's datasets
    episodes: list[Episode] = field(default_factory=list)  # with ``episodes=True``


CHUNK_SIZE = 2000
TASK_COLUMNS = ("id", "unique_id", "name", "project_id", "blueprint_id", "status", "metadata")
ANNOTATION_COLUMNS = ("id", *tuple(AnnotationRow.__dataclass_fields__)[1:])
RUN_COLUMNS = ("task_id", "stage_key", "kind", "status", "attempt", "assignee__username")


def stream_tasks(
    ctx: ExportContext, chunk_size: int = CHUNK_SIZE, *, episodes: bool = False
) -> Iterator[TaskChunk]:
    """The tasks of ``ctx.source`` in id order, ``chunk_size`` at a time over a server-side
    cursor, each chunk with its annotations and stage runs (one query each): a handful of
    queries per chunk and memory bounded by the chunk, whatever the number of tasks. Only the
    columns a task line needs; the blueprints are read once. Records the ids seen in
    ``ctx.task_ids`` / ``ctx.passed_ids``. ``episodes=True``: each chunk also carries its
    episodes (the samples of its tasks' datasets, one more query; see ``chunk_episodes``)."""
    from blueprints.models import Blueprint
    from tasks.models import Annotation, StageRun, Task, TaskStatus

    clean = ctx.options.get("clean", False)
    blueprints: dict[int, BlueprintRef] = {}
    rows = ctx.source.order_by("pk").values_list(*TASK_COLUMNS).iterator(chunk_size=chunk_size)
    chunk: list[tuple] = []

    def flush() -> TaskChunk:
        missing = {r[4] for r in chunk} - blueprints.keys()
        if missing:
            for pk, name, version in Blueprint.objects.filter(pk__in=missing).values_list(
                "pk", "name", "version"
            ):
                blueprints[pk] = BlueprintRef(name, version)
        tasks = [TaskRow(r[0], r[1], r[2], r[3], blueprints[r[4]], r[5], r[6]) for r in chunk]
        ids = [t.pk for t in tasks]
        annotations: dict[int, list[AnnotationRow]] = {pk: [] for pk in ids}
        for row in (
            Annotation.objects.filter(task_id__in=ids)
            .order_by("task_id", "id")
            .values_list(*ANNOTATION_COLUMNS)
        ):
            annotation = AnnotationRow(*row)
            if clean and annotation.invalid:
                ctx.count("dropped_invalid_annotations")
                continue
            annotations[annotation.task_id].append(annotation)
        runs: dict[int, list[RunRow]] = {pk: [] for pk in ids}
        for row in (
            StageRun.objects.filter(task_id__in=ids)
            .order_by("task_id", "id")
            .values_list(*RUN_COLUMNS, "routed_to")
        ):
            runs[row[0]].append(RunRow._make(row))
        datasets: dict[int, list[int]] = {pk: [] for pk in ids}
        for task_id, dataset_id in (
            Task.datasets.through.objects.filter(task_id__in=ids)
            .order_by("task_id", "dataset_id")
            .values_list("task_id", "dataset_id")
        ):
            datasets[task_id].append(dataset_id)
        found: list[Episode] = []
        if clean or episodes:
            found = chunk_episodes(ctx, tasks, annotations, runs, datasets, keep=episodes)
        ctx.task_ids.extend(ids)
        ctx.passed_ids.extend(t.pk for t in tasks if t.status == TaskStatus.REVIEW_PASSED)
        return TaskChunk(tasks, TrackFrames(annotations), runs, datasets, found)

    for row in rows:
        chunk.append(row)
        if len(chunk) >= chunk_size:
            yield flush()
            chunk = []
    if chunk:
        yield flush()


# Tasks per chunk for the episode formats: each task may bring many samples.
EPISODE_CHUNK_SIZE = 200


def stream_episodes(ctx: ExportContext, chunk_size: int = EPISODE_CHUNK_SIZE) -> Iterator[Episode]:
    """The export's episodes in task order, then (dataset name, sample index): the one
    selector every episode format reads. Tasks come ``chunk_size`` at a time over a
    server-side cursor; each chunk costs the same few queries (tasks, annotations, runs,
    dataset links, samples, and with cleaning the samples marked unusable), so the queries
    grow with chunks, never with tasks or episodes. Sets ``ctx.done`` for progress."""
    for chunk in stream_tasks(ctx, chunk_size, episodes=True):
        position = {task.pk: n for n, task in enumerate(chunk.tasks)}
        per_task: dict[int, int] = {}
        for episode in chunk.episodes:
            per_task[episode.task.pk] = per_task.get(episode.task.pk, 0) + 1
        before = len(ctx.task_ids) - len(chunk.tasks)
        seen: dict[int, int] = {}
        for episode in chunk.episodes:
            pk = episode.task.pk
            seen[pk] = seen.get(pk, 0) + 1
            # A task's share of the progress grows with its episodes (one task may hold
            # a whole dataset).
            ctx.done = before + position[pk] + seen[pk] / per_task[pk]
            # Tracks frame by frame for this episode only: the chunk keeps the keyframes.
            keyframes, episode.annotations = episode.annotations, expand_tracks(episode.annotations)
            yield episode
            episode.annotations = keyframes
        ctx.done = len(ctx.task_ids)


def chunk_episodes(
    ctx: ExportContext,
    tasks: list[TaskRow],
    annotations: dict[int, list],
    runs: dict[int, list[RunRow]],
    datasets: dict[int, list[int]],
    *,
    keep: bool,
) -> list[Episode]:
    """A chunk's episodes, after cleaning as ``collect`` does: count the samples marked
    unusable and the episodes left empty, clip geometry to its camera's frame (in place).
    One query for the samples (with their datasets), one more with cleaning. ``keep=False``
    (a JSONL export cleaning): counts and clips, answers no episodes."""
    from projects.models import Sample
    from tasks.models import InvalidSample

    clean = ctx.options.get("clean", False)
    wanted = {d for ds in datasets.values() for d in ds}
    by_dataset: dict[int, list] = {pk: [] for pk in wanted}
    if wanted:
        rows = Sample.objects.filter(dataset__in=wanted).select_related("dataset")
        if not keep:
            rows = rows.only("pk", "dataset__name", "index", "cameras")
        for row in rows:
            by_dataset[row.dataset_id].append(row)
    unusable: dict[int, set[int]] = {}
    if clean and wanted:
        for task_id, sample_id in InvalidSample.objects.filter(
            task_id__in=[t.pk for t in tasks]
        ).values_list("task_id", "sample_id"):
            unusable.setdefault(task_id, set()).add(sample_id)
    found: list[Episode] = []
    for task in tasks:
        samples = sorted(
            (s for d in datasets.get(task.pk, []) for s in by_dataset[d]),
            key=lambda s: (s.dataset.name, s.index),
        )
        if clean:
            marked = unusable.get(task.pk, set())
            ctx.count("dropped_invalid_samples", sum(s.pk in marked for s in samples))
            samples = [s for s in samples if s.pk not in marked]
        for sample in samples:
            # Task-level annotations (no sample) belong to every episode of the task.
            mine = [a for a in annotations[task.pk] if a.sample_id in (sample.pk, None)]
            if clean and not mine:
                ctx.count("dropped_empty_episodes")
                continue
            if clean:
                for a in mine:
                    if clip(a, sample):
                        ctx.count("clipped_geometry")
            if keep:
                found.append(Episode(task, sample, mine, runs.get(task.pk, [])))
    return found


def written_samples(ctx: ExportContext, chunk_size: int = 500) -> Iterator[tuple[int, Any, int]]:
    """(episode number, source sample, annotation count) of every episode written, read back
    by id a chunk at a time (validation compares the output with its sources)."""
    from projects.models import Sample

    for offset in range(0, len(ctx.written), chunk_size):
        part = ctx.written[offset : offset + chunk_size]
        samples = Sample.objects.select_related("dataset").in_bulk([pk for pk, _ in part])
        for n, (pk, count) in enumerate(part, start=offset):
            yield n, samples[pk], count


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
