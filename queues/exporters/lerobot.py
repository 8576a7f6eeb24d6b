"""LeRobot v3.0 datasets (what the current `lerobot` release loads; ../shared/FORMATS.md).

Frames become one H.264 video per camera (episodes concatenated, frame i of an episode at
``from_timestamp + i / fps``); states and actions become parquet columns; each episode's
language task comes from its annotations (``task_from`` option: ``segments`` — the segment
descriptions in time order —, ``classification:<class>``, or ``task`` — the task's name);
every annotation goes to ``meta/stagecraft_annotations.jsonl`` beside the dataset.
"""

from __future__ import annotations

import io
import json
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from tasks.records import annotation_record

from .base import ExportError

BOOKKEEPING = ("timestamp", "frame_index", "episode_index", "index", "task_index")
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"


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


def _layout(ctx):
    first = ctx.episodes[0].sample
    fps = first.fps
    state = next((k for k, v in first.arrays.items() if v.get("role") == "state"), None)
    action = next((k for k, v in first.arrays.items() if v.get("role") == "action"), None)
    cameras = [c["name"] for c in first.cameras]
    for episode in ctx.episodes:
        sample = episode.sample
        if sample.fps != fps or [c["name"] for c in sample.cameras] != cameras:
            raise ExportError(
                f"{sample.name}: a LeRobot dataset needs one frame rate and one camera set "
                f"({fps} fps, {', '.join(cameras)}); export these episodes separately"
            )
    if state is None or action is None:
        raise ExportError(f"{first.name}: LeRobot needs a state and an action array")
    return fps, state, action, {c["name"]: c for c in first.cameras}


def _features(ctx, state_dim, action_dim, state_names, action_names, cameras, fps, video):
    features = {
        "observation.state": {"dtype": "float32", "shape": [state_dim], "names": state_names},
        "action": {"dtype": "float32", "shape": [action_dim], "names": action_names},
    }
    for name, camera in cameras.items():
        feature = {
            "dtype": "video" if video else "image",
            "shape": [camera["height"], camera["width"], 3],
            "names": ["height", "width", "channels"],
        }
        if video:
            feature["info"] = {
                "video.height": camera["height"],
                "video.width": camera["width"],
                "video.codec": "h264",
                "video.pix_fmt": "yuv420p",
                "video.is_depth_map": False,
                "video.fps": fps,
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


def _hf_metadata(features) -> bytes:
    hf = {}
    for key, f in features.items():
        if f["dtype"] == "video":
            continue
        if f["dtype"] == "image":
            hf[key] = {"_type": "Image"}
        elif f["shape"] == [1]:
            hf[key] = {"dtype": f["dtype"], "_type": "Value"}
        else:
            hf[key] = {
                "feature": {"dtype": f["dtype"], "_type": "Value"},
                "length": f["shape"][0],
                "_type": "List",
            }
    return json.dumps({"info": {"features": hf}}).encode()


def _stats(values: np.ndarray) -> dict:
    values = values.astype(np.float64)
    quantiles = {
        f"q{int(q * 100):02d}": np.quantile(values, q, axis=0).tolist()
        for q in (0.01, 0.1, 0.5, 0.9, 0.99)
    }
    return {
        "min": values.min(axis=0).tolist(),
        "max": values.max(axis=0).tolist(),
        "mean": values.mean(axis=0).tolist(),
        "std": values.std(axis=0).tolist(),
        "count": [int(values.shape[0])],
        **quantiles,
    }


def _image_stats(frames: list[np.ndarray]) -> dict:
    pixels = np.concatenate([f.reshape(-1, 3) for f in frames]).astype(np.float64) / 255.0
    s = _stats(pixels)
    shaped = {k: [[[v]] for v in vals] if k != "count" else [len(frames)] for k, vals in s.items()}
    return shaped


class _Video:
    def __init__(self, path, width, height, fps):
        import av

        path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(path), "w")
        rate = Fraction(fps).limit_denominator(1000)
        self.stream = self.container.add_stream("libx264", rate=rate)
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"crf": "18", "g": "2", "bf": "0"}
        self.stream.time_base = Fraction(1, 1) / rate
        self.frames = 0
        self.av = av

    def add(self, frame: np.ndarray) -> None:
        vf = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        vf.pts = self.frames
        for packet in self.stream.encode(vf):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def write(ctx, out) -> None:
    if not ctx.episodes:
        raise ExportError("No episodes to export (the tasks have no datasets with episodes).")
    fps, state_key, action_key, cameras = _layout(ctx)
    video = ctx.options.get("video", True) and all(
        c["width"] % 2 == 0 and c["height"] % 2 == 0 for c in cameras.values()
    )
    first = ctx.episodes[0].sample
    state_dim, action_dim = (
        first.arrays[state_key]["shape"][1],
        first.arrays[action_key]["shape"][1],
    )
    features = _features(
        ctx,
        state_dim,
        action_dim,
        first.arrays[state_key].get("names"),
        first.arrays[action_key].get("names"),
        cameras,
        fps,
        video,
    )
    task_option = ctx.options.get("task_from", "segments")
    tasks: dict[str, int] = {}
    episode_rows, writer = [], None
    videos = {name: None for name in cameras}
    states, actions, image_samples = [], [], {name: [] for name in cameras}
    sidecar = []
    start = 0
    data_path = out / DATA_PATH.format(chunk_index=0, file_index=0)
    data_path.parent.mkdir(parents=True)
    for n, episode in enumerate(ctx.episodes):
        sample = episode.sample
        T = sample.num_frames
        series = episode.series()
        state, action = series[state_key], series[action_key]
        if state.shape[1] != state_dim or action.shape[1] != action_dim:
            raise ExportError(f"{sample.name}: state/action widths differ from the first episode's")
        text = episode_task(episode, task_option)
        task_index = tasks.setdefault(text, len(tasks))
        columns = {
            "observation.state": pa.FixedSizeListArray.from_arrays(
                pa.array(state.astype(np.float32).ravel()), state_dim
            ),
            "action": pa.FixedSizeListArray.from_arrays(
                pa.array(action.astype(np.float32).ravel()), action_dim
            ),
        }
        row = {
            "episode_index": n,
            "tasks": [text],
            "length": T,
            "data/chunk_index": 0,
            "data/file_index": 0,
            "dataset_from_index": start,
            "dataset_to_index": start + T,
        }
        for name, camera in cameras.items():
            frames = episode.frames(name, range(T))
            image_samples[name] += frames[:: max(1, T // 10)]
            key = f"observation.images.{name}"
            if video:
                if videos[name] is None:
                    videos[name] = _Video(
                        out / VIDEO_PATH.format(video_key=key, chunk_index=0, file_index=0),
                        camera["width"],
                        camera["height"],
                        fps,
                    )
                offset = videos[name].frames
                for frame in frames:
                    videos[name].add(frame)
                row.update(
                    {
                        f"videos/{key}/chunk_index": 0,
                        f"videos/{key}/file_index": 0,
                        f"videos/{key}/from_timestamp": offset / fps,
                        f"videos/{key}/to_timestamp": (offset + T) / fps,
                    }
                )
            else:
                columns[key] = pa.array(
                    [
                        {"bytes": _png(f), "path": f"frame_{i:06d}.png"}
                        for i, f in enumerate(frames)
                    ],
                    type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
                )
        columns.update(
            {
                "timestamp": pa.array((np.arange(T) / fps).astype(np.float32)),
                "frame_index": pa.array(np.arange(T, dtype=np.int64)),
                "episode_index": pa.array(np.full(T, n, dtype=np.int64)),
                "index": pa.array(np.arange(start, start + T, dtype=np.int64)),
                "task_index": pa.array(np.full(T, task_index, dtype=np.int64)),
            }
        )
        table = pa.table(columns)
        if writer is None:
            schema = table.schema.with_metadata({b"huggingface": _hf_metadata(features)})
            writer = pq.ParquetWriter(data_path, schema)
        writer.write_table(table.cast(writer.schema))
        episode_rows.append(row)
        states.append(state)
        actions.append(action)
        sidecar += [
            {
                "episode_index": n,
                "task": episode.task.pk,
                **annotation_record(a),
                "sample_name": sample.name,
            }
            for a in episode.annotations
        ]
        start += T
        ctx.count("episodes")
        ctx.count("frames", T)
        ctx.count("annotations", len(episode.annotations))
        ctx.progress((n + 1) / len(ctx.episodes), sample.name)
    writer.close()
    for v in videos.values():
        if v is not None:
            v.close()

    meta = out / "meta"
    (meta / "episodes" / "chunk-000").mkdir(parents=True)
    pq.write_table(
        pa.Table.from_pylist(episode_rows), meta / "episodes" / "chunk-000" / "file-000.parquet"
    )
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
    all_states, all_actions = np.concatenate(states), np.concatenate(actions)
    stats = {"observation.state": _stats(all_states), "action": _stats(all_actions)}
    for name, frames in image_samples.items():
        stats[f"observation.images.{name}"] = _image_stats(frames)
    (meta / "stats.json").write_text(json.dumps(stats))
    info = {
        "codebase_version": "v3.0",
        "robot_type": ctx.options.get("robot_type", "unknown"),
        "fps": fps,
        "total_episodes": len(ctx.episodes),
        "total_frames": start,
        "total_tasks": len(tasks),
        "chunks_size": 1000,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 200,
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if video else None,
        "features": features,
        "splits": {"train": f"0:{len(ctx.episodes)}"},
    }
    (meta / "info.json").write_text(json.dumps(info, indent=2))
    with (meta / "stagecraft_annotations.jsonl").open("w") as fh:
        for record in sidecar:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
    ctx.count("tasks_in_dataset", len(tasks))


def _png(frame: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, "PNG")
    return buffer.getvalue()


def validate(ctx, out) -> None:
    """Re-read strictly: schema, contiguous indices, timestamps on the frame grid, task
    indices, and decoded frames compared with the source (first and last of each episode)."""
    from projects.formats.lerobot import LeRobotFormat

    info = json.loads((out / "meta" / "info.json").read_text())
    table = pq.read_table(out / DATA_PATH.format(chunk_index=0, file_index=0))
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
    reader = LeRobotFormat()
    specs = reader.inspect(out, [], {}, lambda *a: None)
    if len(specs) != len(ctx.episodes):
        raise ExportError(f"{len(specs)} episodes read back for {len(ctx.episodes)} written")
    for spec, episode in zip(specs, ctx.episodes, strict=True):
        last = episode.sample.num_frames - 1
        row = _Row(spec)
        for camera in spec.cameras:
            got = reader.read_frames(out, row, camera["name"], [0, last])
            want = episode.frames(camera["name"], [0, last])
            for g, w in zip(got, want, strict=True):
                if np.abs(g.astype(int) - w.astype(int)).mean() > 6:
                    raise ExportError(
                        f"{episode.sample.name}: decoded {camera['name']} frames "
                        "differ from the source"
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
