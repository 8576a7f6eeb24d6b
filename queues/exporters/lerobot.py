"""LeRobot v3.0 datasets (what the current `lerobot` release loads; ../shared/FORMATS.md).

Frames become one H.264 video per camera (episodes concatenated, frame i of an episode at
``from_timestamp + i / fps``); every array becomes a parquet column in its source's dtype
and per-frame shape, as LeRobot writes non-image features: ``shape`` ``[1]`` (a (T,) or
(T, 1) array) a plain column, ``[D]`` a fixed-size list, an N-D ``[a, b, …]`` (up to 5
dimensions) nested lists (``datasets``' ``Array2D``…``Array5D``); each episode's
language task comes from its annotations (``task_from`` option: ``segments`` — the segment
descriptions in time order —, ``classification:<class>``, or ``task`` — the task's name);
every annotation goes to ``meta/stagecraft_annotations.jsonl`` beside the dataset. Data
and video files are split as lerobot's writer splits them: a new file when one would pass
``data_files_size_in_mb`` (100) / ``video_files_size_in_mb`` (200), ``chunks_size`` (1000)
files per chunk folder, an episode never split.
"""

from __future__ import annotations

import io
import json
import math
from fractions import Fraction
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from tasks.records import annotation_record

from .base import (
    Episode,
    ExportError,
    array_dtype,
    array_shape,
    conventional_names,
    stream_episodes,
    window_size,
    written_samples,
)

BOOKKEEPING = ("timestamp", "frame_index", "episode_index", "index", "task_index")
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
# lerobot's defaults (datasets/utils.py): files of up to about this size, this many per chunk.
CHUNKS_SIZE = 1000
DATA_FILES_SIZE_IN_MB = 100
VIDEO_FILES_SIZE_IN_MB = 200


class _Slot:
    """Where an episode's rows (or one camera's frames) go: (chunk, file). A new file begins
    when the current one would reach the size limit with the coming episode (estimated from
    the file's bytes per frame so far), as lerobot's writer rolls over
    (``update_chunk_file_indices``); an episode never spans two files, so one larger than
    the limit has a file to itself."""

    def __init__(self, limit_mb: float) -> None:
        self.chunk = self.file = self.frames = 0
        self.limit = limit_mb * 1024 * 1024

    def roll(self, size: int, frames: int) -> bool:
        """Place an episode of ``frames`` frames, the current file holding ``size`` bytes;
        True when it starts a new file."""
        if self.frames and size + size / self.frames * frames >= self.limit:
            self.file += 1
            if self.file >= CHUNKS_SIZE:
                self.chunk, self.file = self.chunk + 1, 0
            self.frames = frames
            return True
        self.frames += frames
        return False


def episode_task(episode, option: str) -> str:
    if option.startswith("classification:"):
        key = option.split(":", 1)[1]
        values = [a.data.get("value") for a in episode.annotations if a.label == key]
        if values:
            return str(values[0])
    if option in {"segments", ""} or option.startswith("classification:"):
        segments = sorted(
            (a for a in episode.annotations if a.kind == "segment"), key=lambda a: a.data["start"]
        )
        texts = [
            str(v)
            for a in segments
            for v in a.attributes.values()
            if isinstance(v, str) and v.strip()
        ]
        if texts:
            return "; ".join(dict.fromkeys(texts))
    return episode.task.name


# Conventional LeRobot feature names of the arrays other formats name differently.
ALIASES = {
    "observation.state": ("observation.state", "qpos"),
    "observation.velocity": ("observation.velocity", "qvel"),
    "observation.effort": ("observation.effort", "effort"),
    "action": ("action", "actions"),
}


def feature_keys(arrays: dict[str, dict]) -> dict[str, str]:
    """Where each source array goes (array name → feature key): its conventional name, else
    its own (``observation.<name>`` for state and other arrays, the name for actions,
    ``/`` as ``.``). LeRobot policies read ``observation.state`` and ``action``: when no
    array has those names, the first state and action vectors (not N-D arrays) take them."""
    keys = conventional_names(
        arrays, ALIASES, (("observation.state", "state"), ("action", "action"))
    )
    taken = set(keys.values()) | set(BOOKKEEPING)
    for name, spec in arrays.items():
        if name in keys:
            continue
        flat = name.removeprefix("obs/").replace("/", ".")
        if spec.get("role") == "action" or flat.startswith("observation."):
            key = flat
        else:
            key = f"observation.{flat}"
        while key in taken:
            key += "_"
        keys[name] = key
        taken.add(key)
    return keys


class Layout:
    """What every episode of one LeRobot dataset must share (from the first episode)."""

    def __init__(self, sample, video_option: bool) -> None:
        self.fps = sample.fps
        self.cameras = {c["name"]: c for c in sample.cameras}
        self.keys = feature_keys(sample.arrays)
        if "observation.state" not in self.keys.values() or "action" not in self.keys.values():
            raise ExportError(f"{sample.name}: LeRobot needs a state and an action array")
        self.shapes = {name: feature_shape(sample, name) for name in self.keys}
        self.dtypes = {name: array_dtype(sample.arrays[name]) for name in self.keys}
        self.video = video_option and all(
            c["width"] % 2 == 0 and c["height"] % 2 == 0 for c in self.cameras.values()
        )
        self.first = sample

    def check(self, sample) -> None:
        cameras = [c["name"] for c in sample.cameras]
        if sample.fps != self.fps or cameras != list(self.cameras):
            raise ExportError(
                f"{sample.name}: a LeRobot dataset needs one frame rate and one camera set "
                f"({self.fps} fps, {', '.join(self.cameras)}); export these episodes separately"
            )
        if feature_keys(sample.arrays) != self.keys or any(
            feature_shape(sample, name) != shape for name, shape in self.shapes.items()
        ):
            raise ExportError(
                f"{sample.name}: its arrays ({', '.join(sample.arrays)}) or their shapes differ "
                f"from the first episode's ({self.first.name}); export these episodes separately"
            )

    def features(self) -> dict:
        features: dict[str, dict[str, Any]] = {}
        for name, key in self.keys.items():
            shape = self.shapes[name]
            names = self.first.arrays[name].get("names")
            features[key] = {
                "dtype": self.dtypes[name],
                "shape": shape,
                # Names a vector's values; an N-D array has none (LeRobot's own N-D features).
                "names": names if len(shape) == 1 and len(names or []) == shape[0] else None,
            }
        for name, camera in self.cameras.items():
            feature: dict[str, Any] = {
                "dtype": "video" if self.video else "image",
                "shape": [camera["height"], camera["width"], 3],
                "names": ["height", "width", "channels"],
            }
            if self.video:
                feature["info"] = {
                    "video.height": camera["height"],
                    "video.width": camera["width"],
                    "video.codec": "h264",
                    "video.pix_fmt": "yuv420p",
                    "video.is_depth_map": False,
                    "video.fps": self.fps,
                    "video.channels": 3,
                    "has_audio": False,
                }
            features[f"observation.images.{name}"] = feature
        for key in BOOKKEEPING:
            features[key] = {
                "dtype": "float32" if key == "timestamp" else "int64",
                "shape": [1],
                "names": None,
            }
        return features


# The most dimensions after T a LeRobot feature has (``datasets.Array5D``).
MAX_FEATURE_DIMS = 5


def feature_shape(sample, name: str) -> list[int]:
    """The LeRobot feature shape of an array: its source's shape after T, ``[1]`` for a (T,)
    array (LeRobot keeps a scalar per frame as shape ``[1]``)."""
    shape = list(array_shape(sample.arrays[name])) or [1]
    if len(shape) > MAX_FEATURE_DIMS:
        raise ExportError(
            f"{sample.name}: {name} has {len(shape)} dimensions per frame {tuple(shape)}; a "
            f"LeRobot feature has at most {MAX_FEATURE_DIMS} (export it as HDF5)"
        )
    return shape


def _hf_metadata(features) -> bytes:
    hf: dict[str, dict[str, Any]] = {}
    for key, f in features.items():
        if f["dtype"] == "video":
            continue
        if f["dtype"] == "image":
            hf[key] = {"_type": "Image"}
        elif f["shape"] == [1]:
            hf[key] = {"dtype": f["dtype"], "_type": "Value"}
        elif len(f["shape"]) > 1:
            hf[key] = {
                "shape": f["shape"],
                "dtype": f["dtype"],
                "_type": f"Array{len(f['shape'])}D",
            }
        else:
            hf[key] = {
                "feature": {"dtype": f["dtype"], "_type": "Value"},
                "length": f["shape"][0],
                "_type": "List",
            }
    return json.dumps({"info": {"features": hf}}).encode()


# Values (as float64, 16 MB) a statistic works on at a time, and about the most a feature
# keeps for its quantiles (twice that before it thins them): a wide or N-D feature keeps
# fewer rows, at least ten.
STATS_VALUES = 2_000_000


class RunningStats:
    """LeRobot's per-feature statistics without holding the feature: min, max, mean and std
    exact over every row; the quantiles from an evenly thinned sample of at most ``keep``
    rows (every row while the data is smaller). ``shape``: each statistic in the feature's
    shape (an N-D feature's as N-D, as LeRobot keeps them), else flat."""

    def __init__(self, keep: int = 200_000, shape: list[int] | None = None) -> None:
        self.shape = shape
        self.keep, self.stride, self.seen = keep, 1, 0
        self.count = 0
        # Per-value sums and extremes (numpy arrays) once a row has come.
        self.total: Any = None
        self.squares: Any = None
        self.low: Any = None
        self.high: Any = None
        self.kept: list[np.ndarray] = []
        self.kept_rows = 0

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values)
        values = values.reshape(len(values), -1)
        # A window of a wide uint8 array is 8x larger as float64: a slice of it at a time.
        step = max(1, STATS_VALUES // max(1, values.shape[1]))
        for first in range(0, len(values), step):
            self._add(values[first : first + step].astype(np.float64))

    def _add(self, values: np.ndarray) -> None:
        if not len(values):
            return
        if self.total is None:
            self.total, self.squares = values.sum(0), (values**2).sum(0)
            self.low, self.high = values.min(0), values.max(0)
        else:
            self.total = self.total + values.sum(0)
            self.squares = self.squares + (values**2).sum(0)
            self.low = np.minimum(self.low, values.min(0))
            self.high = np.maximum(self.high, values.max(0))
        self.count += len(values)
        # Rows seen ≡ 0 mod stride are kept; the stride doubles when too many are.
        first = (-self.seen) % self.stride
        picked = values[first :: self.stride]
        if self.stride > 1:  # a view would keep the whole window alive
            picked = picked.copy()
        self.seen += len(values)
        self.kept.append(picked)
        self.kept_rows += len(picked)
        if self.kept_rows > self.keep:
            joined = np.concatenate(self.kept)[::2]
            self.kept, self.kept_rows, self.stride = [joined], len(joined), self.stride * 2

    def result(self) -> dict:
        if self.total is None:
            return {}
        mean = self.total / self.count
        std = np.sqrt(np.maximum(self.squares / self.count - mean**2, 0))
        kept = np.concatenate(self.kept)
        quantiles = {
            f"q{int(q * 100):02d}": np.quantile(kept, q, axis=0).tolist()
            for q in (0.01, 0.1, 0.5, 0.9, 0.99)
        }
        stats = {
            "min": self.low.tolist(),
            "max": self.high.tolist(),
            "mean": mean.tolist(),
            "std": std.tolist(),
            **quantiles,
        }
        if self.shape is not None:
            stats = {k: np.reshape(v, self.shape).tolist() for k, v in stats.items()}
        return {**stats, "count": [int(self.count)]}


class ImageStats:
    """Per-channel image statistics in [0, 1] from about ten frames per episode (pixels
    thinned 4×4), shaped (3, 1, 1) as LeRobot keeps them."""

    def __init__(self) -> None:
        self.pixels = RunningStats()
        self.frames = 0

    def add(self, frame: np.ndarray) -> None:
        self.pixels.add(frame[::4, ::4].reshape(-1, 3) / 255.0)
        self.frames += 1

    def result(self) -> dict:
        stats = self.pixels.result()
        return {
            k: [[[v]] for v in vals] if k != "count" else [self.frames] for k, vals in stats.items()
        }


class _Video:
    def __init__(self, path, width, height, fps):
        import av

        path.parent.mkdir(parents=True, exist_ok=True)
        # faststart: the index (moov) at the start of the file, as lerobot's writer does, so
        # a player or loader reading over the network needs no seek to the end.
        self.container = av.open(str(path), "w", options={"movflags": "faststart"})
        rate = Fraction(fps).limit_denominator(1000)
        self.stream = self.container.add_stream("libx264", rate=rate)
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"crf": "18", "g": "2", "bf": "0"}
        self.stream.time_base = Fraction(1, 1) / rate
        self.frames = 0
        self.bytes = 0  # encoded so far (the file on disk lags behind by FFmpeg's buffer)
        self.av = av

    def add(self, frame: np.ndarray) -> None:
        vf = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        vf.pts = self.frames
        for packet in self.stream.encode(vf):
            self.bytes += packet.size
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


class _Rows:
    """A parquet file written a batch of rows at a time (the schema from the first batch)."""

    def __init__(self, path, batch: int = 1000) -> None:
        self.path, self.batch = path, batch
        self.rows: list[dict] = []
        self.writer: pq.ParquetWriter | None = None

    def add(self, row: dict) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        table = pa.Table.from_pylist(self.rows)
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.path, table.schema)
        self.writer.write_table(table.cast(self.writer.schema))
        self.rows = []

    def close(self) -> None:
        self.flush()
        if self.writer is not None:
            self.writer.close()


def _column(values: np.ndarray, shape: list[int], dtype: str) -> pa.Array:
    """A window of an array as LeRobot stores the feature: a plain column for shape ``[1]``,
    a fixed-size list for ``[D]``, nested lists (one per dimension, the storage of
    ``datasets``' ``ArrayND``) for N-D."""
    values = np.ascontiguousarray(values, dtype=dtype)
    column: pa.Array = pa.array(values.reshape(-1))
    if shape == [1]:
        return column
    if len(shape) == 1:
        return pa.FixedSizeListArray.from_arrays(column, shape[0])
    for depth in reversed(range(len(shape))):
        lists = len(values) * math.prod(shape[:depth])
        offsets = pa.array(np.arange(lists + 1, dtype=np.int64) * shape[depth], pa.int32())
        column = pa.ListArray.from_arrays(offsets, column)
    return column


def robot_type(ctx, sample) -> str:
    """The export's option, else the project's setting, else what the source said."""
    from projects.selectors import robot_type as project_robot_type

    chosen = ctx.options.get("robot_type") or project_robot_type(ctx.export.project)
    return str(chosen or (sample.metadata or {}).get("robot_type") or "unknown")


def write(ctx, out) -> None:
    task_option = ctx.options.get("task_from", "segments")
    tasks: dict[str, int] = {}
    layout: Layout | None = None
    data_path = out / DATA_PATH.format(chunk_index=0, file_index=0)
    data_path.parent.mkdir(parents=True)
    writer = schema = None
    data_slot = _Slot(DATA_FILES_SIZE_IN_MB)
    video_slots: dict[str, _Slot] = {}
    videos: dict[str, _Video] = {}
    stats: dict[str, RunningStats] = {}
    image_stats: dict[str, ImageStats] = {}
    meta = out / "meta"
    meta.mkdir()
    episode_rows = _Rows(meta / "episodes" / "chunk-000" / "file-000.parquet")
    sidecar = (meta / "stagecraft_annotations.jsonl").open("w")
    start = n = 0
    try:
        for episode in stream_episodes(ctx):
            sample = episode.sample
            if layout is None:
                layout = Layout(sample, bool(ctx.options.get("video", True)))
                features = layout.features()
                stats = {
                    key: RunningStats(
                        keep=max(10, min(200_000, STATS_VALUES // max(1, _size(layout, name)))),
                        shape=layout.shapes[name],
                    )
                    for name, key in layout.keys.items()
                }
                image_stats = {name: ImageStats() for name in layout.cameras}
                info_robot = robot_type(ctx, sample)
            layout.check(sample)
            T = sample.num_frames
            text = episode_task(episode, task_option)
            task_index = tasks.setdefault(text, len(tasks))
            if data_slot.roll(data_path.stat().st_size if writer else 0, T):
                if writer is not None:
                    writer.close()
                writer = None
                data_path = out / DATA_PATH.format(
                    chunk_index=data_slot.chunk, file_index=data_slot.file
                )
                data_path.parent.mkdir(parents=True, exist_ok=True)
            row = {
                "episode_index": n,
                "tasks": [text],
                "length": T,
                "data/chunk_index": data_slot.chunk,
                "data/file_index": data_slot.file,
                "dataset_from_index": start,
                "dataset_to_index": start + T,
            }
            sampled = set(range(0, T, max(1, T // 10)))
            # The episode's rows a window of frames at a time, arrays and frames alike: video
            # frames are encoded and embedded images packed as they come, and every array is
            # read in its source's shape and dtype a window at a time, never whole.
            size = window_size(sample)
            windows = {name: episode.frame_windows(name, size) for name in layout.cameras}
            for name, camera in layout.cameras.items():
                key = f"observation.images.{name}"
                if layout.video:
                    slot = video_slots.setdefault(name, _Slot(VIDEO_FILES_SIZE_IN_MB))
                    current = videos.get(name)
                    rolled = slot.roll(current.bytes if current else 0, T)
                    if current is None or rolled:
                        if current is not None:
                            current.close()
                        videos[name] = _Video(
                            out
                            / VIDEO_PATH.format(
                                video_key=key, chunk_index=slot.chunk, file_index=slot.file
                            ),
                            camera["width"],
                            camera["height"],
                            layout.fps,
                        )
                    offset = videos[name].frames
                    row.update(
                        {
                            f"videos/{key}/chunk_index": slot.chunk,
                            f"videos/{key}/file_index": slot.file,
                            f"videos/{key}/from_timestamp": offset / layout.fps,
                            f"videos/{key}/to_timestamp": (offset + T) / layout.fps,
                        }
                    )
            for first, arrays in episode.series_windows(size):
                last = min(first + size, T)
                columns: dict[str, pa.Array] = {}
                for name, key in layout.keys.items():
                    values = arrays[name]
                    if values.dtype != np.dtype(layout.dtypes[name]):
                        ctx.casts[key] = f"{values.dtype} → {layout.dtypes[name]}"
                    stats[key].add(values)
                    columns[key] = _column(values, layout.shapes[name], layout.dtypes[name])
                for name in layout.cameras:
                    _, window = next(windows[name])
                    for i, frame in enumerate(window, start=first):
                        if i in sampled:
                            image_stats[name].add(frame)
                    key = f"observation.images.{name}"
                    if layout.video:
                        for frame in window:
                            videos[name].add(frame)
                    else:
                        columns[key] = pa.array(
                            [
                                {"bytes": _png(f), "path": f"frame_{i:06d}.png"}
                                for i, f in enumerate(window, start=first)
                            ],
                            type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
                        )
                frames = np.arange(first, last)
                columns.update(
                    {
                        "timestamp": pa.array((frames / layout.fps).astype(np.float32)),
                        "frame_index": pa.array(frames.astype(np.int64)),
                        "episode_index": pa.array(np.full(last - first, n, dtype=np.int64)),
                        "index": pa.array((start + frames).astype(np.int64)),
                        "task_index": pa.array(np.full(last - first, task_index, dtype=np.int64)),
                    }
                )
                table = pa.table(columns)
                if schema is None:
                    schema = table.schema.with_metadata({b"huggingface": _hf_metadata(features)})
                if writer is None:
                    writer = pq.ParquetWriter(data_path, schema)
                writer.write_table(table.cast(writer.schema))
            episode_rows.add(row)
            for a in episode.annotations:
                record = {
                    "episode_index": n,
                    "task": episode.task.pk,
                    **annotation_record(a),
                    "sample_name": sample.name,
                }
                sidecar.write(json.dumps(record, sort_keys=True) + "\n")
            ctx.written.append((sample.pk, len(episode.annotations)))
            start += T
            n += 1
            ctx.count("episodes")
            ctx.count("frames", T)
            ctx.count("annotations", len(episode.annotations))
            ctx.progress(ctx.fraction(), sample.name)
    finally:
        sidecar.close()
        if writer is not None:
            writer.close()
        for v in videos.values():
            v.close()
        episode_rows.close()
    if layout is None:
        raise ExportError("No episodes to export (the tasks have no datasets with episodes).")

    task_table = pa.table({"task_index": list(tasks.values()), "task": list(tasks)})
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": "task",
                "field_name": "task",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.3.3",
    }
    pq.write_table(
        task_table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()}),
        meta / "tasks.parquet",
    )
    everything = {key: s.result() for key, s in stats.items()}
    for name, s in image_stats.items():
        everything[f"observation.images.{name}"] = s.result()
    (meta / "stats.json").write_text(json.dumps(everything))
    info = {
        "codebase_version": "v3.0",
        "robot_type": info_robot,
        "fps": layout.fps,
        "total_episodes": n,
        "total_frames": start,
        "total_tasks": len(tasks),
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": DATA_FILES_SIZE_IN_MB,
        "video_files_size_in_mb": VIDEO_FILES_SIZE_IN_MB,
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if layout.video else None,
        "features": features,
        "splits": {"train": f"0:{n}"},
    }
    (meta / "info.json").write_text(json.dumps(info, indent=2))
    ctx.count("tasks_in_dataset", len(tasks))


def _size(layout: Layout, name: str) -> int:
    return math.prod(layout.shapes[name])


def _png(frame: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, "PNG")
    return buffer.getvalue()


def validate(ctx, out) -> None:
    """Re-read strictly: schema, contiguous indices, timestamps on the frame grid, task
    indices, and decoded frames compared with the source (first and last of each episode).
    Reads only the bookkeeping columns, and the sources a chunk at a time by id."""
    from projects.formats.lerobot import LeRobotFormat

    info = json.loads((out / "meta" / "info.json").read_text())
    # Every data file in (chunk, file) order: together one contiguous index.
    table = pa.concat_tables(
        pq.read_table(path, columns=["index", "timestamp", "frame_index", "task_index"])
        for path in sorted((out / "data").glob("chunk-*/file-*.parquet"))
    )
    index = table["index"].to_numpy()
    if not np.array_equal(index, np.arange(len(index))):
        raise ExportError("index is not contiguous from 0")
    fps = info["fps"]
    timestamps = table["timestamp"].to_numpy()
    frames = table["frame_index"].to_numpy()
    if np.abs(timestamps - frames / fps).max(initial=0) > 1e-4:
        raise ExportError("timestamps are off the frame grid")
    tasks = pq.read_table(out / "meta" / "tasks.parquet")
    if set(table["task_index"].to_numpy()) - set(tasks["task_index"].to_pylist()):
        raise ExportError("a frame names a task index that meta/tasks.parquet lacks")
    del table, index, timestamps, frames
    reader = LeRobotFormat()
    specs = reader.inspect(out, [], {}, lambda *a: None)
    if len(specs) != len(ctx.written):
        raise ExportError(f"{len(specs)} episodes read back for {len(ctx.written)} written")
    for n, sample, _ in written_samples(ctx):
        spec = specs[n]
        episode = Episode(None, sample, [])
        last = sample.num_frames - 1
        row = _Row(spec)
        for camera in spec.cameras:
            got = reader.read_frames(out, row, camera["name"], [0, last])
            want = episode.frames(camera["name"], [0, last])
            for g, w in zip(got, want, strict=True):
                if np.abs(g.astype(int) - w.astype(int)).mean() > 6:
                    raise ExportError(
                        f"{sample.name}: decoded {camera['name']} frames differ from the source"
                    )


class _Row:
    """What the LeRobot reader needs of a sample, from an inspected spec."""

    def __init__(self, spec):
        self.cameras, self.source, self.fps, self.arrays = (
            spec.cameras,
            spec.source,
            spec.fps,
            spec.arrays,
        )

    def camera(self, name):
        return next(c for c in self.cameras if c["name"] == name)
