"""LeRobot datasets, codebase versions v3.0 and v2.0/v2.1 (FORMATS.md).

``meta/info.json`` describes the features. In v3.0 ``meta/episodes/*/*.parquet``
says where each episode's rows (``data/…parquet``, many episodes per file) and video
segments (``videos/<key>/…mp4``, from/to timestamps in seconds) are. In v2.0/v2.1
``meta/episodes.jsonl`` lists the episodes, each with its own parquet and mp4 per
camera (``data_path``/``video_path`` templates with ``episode_chunk`` and
``episode_index``; timestamps restart at 0 in every file). Both become the same
sample source (data file, ``index`` range, per-camera video file and start time), so
reading frames and series does not depend on the version.

Cameras are features of dtype ``video`` (decoded with PyAV) or ``image`` (PNG bytes
in the data parquet). Numeric features other than the bookkeeping columns become
arrays: vectors as they are, N-D ones (``datasets``' Array2D…Array5D, nested lists per
frame) with their shape kept as ``item_shape``. The first and last frame of every
episode's video segment is decoded at import, so a truncated or unreadable video is
refused then, not when its frames are asked for.
"""

from __future__ import annotations

import io
import json
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image

from .base import (
    DataError,
    DatasetFormatReader,
    Progress,
    SampleSpec,
    inside,
    register,
    restore_rows,
)

SUPPORTED_VERSIONS = ("v3.0", "v2.1", "v2.0")
BOOKKEEPING = {"timestamp", "frame_index", "episode_index", "index", "task_index"}
EPISODE_COLUMNS = [
    "episode_index",
    "tasks",
    "length",
    "data/chunk_index",
    "data/file_index",
    "dataset_from_index",
    "dataset_to_index",
]


def _read_json(path: Path, label: str) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(label, "missing (not a LeRobot dataset folder)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(label, f"is not valid JSON ({exc})") from exc


def _read_jsonl(path: Path, label: str) -> list[dict]:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise DataError(
            label, "missing (a LeRobot v2.x dataset lists its episodes there)"
        ) from None
    except UnicodeDecodeError as exc:
        raise DataError(label, f"is not text ({exc})") from exc
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise DataError(label, f"line {number} is not valid JSON ({exc})") from exc
        if not isinstance(row, dict):
            raise DataError(label, f"line {number} is not a JSON object")
        rows.append(row)
    if not rows:
        raise DataError(label, "lists no episodes")
    return rows


def _read_parquet(path: Path, label, columns=None, filters=None) -> pa.Table:
    try:
        return pq.read_table(path, columns=columns, filters=filters)
    except FileNotFoundError:
        raise DataError(label, "missing") from None
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(label, f"is not a readable Parquet file ({exc})") from exc


@register
class LeRobotFormat(DatasetFormatReader):
    key = "lerobot"
    suffixes = None  # the whole folder: meta/, data/, videos/

    def inspect(
        self, root: Path, files: list[Path], options: dict[str, Any], progress: Progress
    ) -> list[SampleSpec]:
        info = _read_json(root / "meta" / "info.json", "meta/info.json")
        version = info.get("codebase_version")
        if version not in SUPPORTED_VERSIONS:
            raise DataError(
                "meta/info.json",
                f"codebase_version is {version!r}; LeRobot datasets of versions "
                f"{', '.join(SUPPORTED_VERSIONS)} can be imported",
            )
        features = info.get("features")
        fps = info.get("fps")
        if not isinstance(features, dict) or not isinstance(fps, int | float) or fps <= 0:
            raise DataError("meta/info.json", "needs “features” and a positive “fps”")
        cameras, arrays = self._features(features)
        if version in {"v2.0", "v2.1"}:
            specs = self._inspect_v2(root, info, cameras, arrays, float(fps), progress)
        else:
            specs = self._inspect_v3(root, info, cameras, arrays, float(fps), progress)
        if info.get("total_episodes") not in (None, len(specs)):
            where = "meta/episodes.jsonl" if version != "v3.0" else "meta/episodes"
            raise DataError(
                "meta/info.json",
                f"says {info['total_episodes']} episodes but {where} lists {len(specs)}",
            )
        for n, spec in enumerate(specs):
            progress(n, len(specs), f"checking the videos of {spec.name}")
            self._check_videos(root, spec)
        return specs

    def _inspect_v3(self, root, info, cameras, arrays, fps, progress) -> list[SampleSpec]:
        episode_files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        if not episode_files:
            raise DataError(
                "meta/episodes", "no episode files (meta/episodes/chunk-*/file-*.parquet)"
            )
        specs: list[SampleSpec] = []
        indexes: dict[str, pa.Table] = {}
        for episodes_path in episode_files:
            label = episodes_path.relative_to(root)
            schema_names = set(pq.read_schema(episodes_path).names)
            video_columns = [
                f"videos/{c['feature']}/{field}"
                for c in cameras
                if c["encoding"] == "video"
                for field in ("chunk_index", "file_index", "from_timestamp")
            ]
            wanted = [c for c in EPISODE_COLUMNS + video_columns if c in schema_names]
            missing = [c for c in EPISODE_COLUMNS + video_columns if c not in schema_names]
            if missing:
                raise DataError(label, f"lacks columns {', '.join(missing)}")
            for row in _read_parquet(episodes_path, label, wanted).to_pylist():
                progress(
                    len(specs),
                    int(info.get("total_episodes") or 0),
                    f"episode {row['episode_index']}",
                )
                specs.append(self._episode(root, info, row, cameras, arrays, fps, indexes))
        return specs

    def _inspect_v2(self, root, info, cameras, arrays, fps, progress) -> list[SampleSpec]:
        """v2.0/v2.1: one parquet (and one mp4 per camera) per episode."""
        label = "meta/episodes.jsonl"
        rows = _read_jsonl(root / "meta" / "episodes.jsonl", label)
        chunks_size = info.get("chunks_size") or 1000
        if not isinstance(chunks_size, int) or chunks_size <= 0:
            raise DataError("meta/info.json", "“chunks_size” must be a positive integer")
        specs: list[SampleSpec] = []
        seen: set[int] = set()
        for line, row in enumerate(rows, start=1):
            index, length = row.get("episode_index"), row.get("length")
            if not isinstance(index, int) or not isinstance(length, int) or length < 0:
                raise DataError(label, f"line {line} needs an integer “episode_index” and “length”")
            if index in seen:
                raise DataError(label, f"episode {index} is listed twice")
            seen.add(index)
            progress(len(specs), len(rows), f"episode {index}")
            chunk = index // chunks_size
            data_file = _format_path(
                info.get("data_path"), "data_path", episode_chunk=chunk, episode_index=index
            )
            if not inside(root, data_file, "meta/info.json").exists():
                raise DataError(data_file, f"missing (episode {index})")
            table = _read_parquet(root / data_file, data_file, ["index"])
            if table.num_rows != length:
                raise DataError(
                    data_file, f"episode {index} has {table.num_rows} rows, not {length}"
                )
            first = int(pc.min(table["index"]).as_py() or 0) if length else 0
            if length and int(pc.max(table["index"]).as_py()) - first + 1 != length:
                raise DataError(data_file, f"episode {index}: the “index” column has gaps")
            videos = {}
            for camera in cameras:
                if camera["encoding"] != "video":
                    continue
                video_file = _format_path(
                    info.get("video_path"),
                    "video_path",
                    episode_chunk=chunk,
                    episode_index=index,
                    video_key=camera["feature"],
                )
                if not inside(root, video_file, "meta/info.json").exists():
                    raise DataError(
                        video_file, f"missing (episode {index}, camera {camera['feature']})"
                    )
                videos[camera["name"]] = {"file": video_file, "from_timestamp": 0.0}
            tasks = row.get("tasks") or []
            specs.append(
                SampleSpec(
                    name=f"episode_{index:06d}",
                    num_frames=length,
                    fps=fps,
                    cameras=[dict(c) for c in cameras],
                    arrays={
                        name: {**spec, "shape": [length, spec["shape"][1]]}
                        for name, spec in arrays.items()
                    },
                    source={
                        "file": data_file,
                        "episode_index": index,
                        "from": first,
                        "to": first + length,
                        "videos": videos,
                    },
                    metadata={
                        "tasks": [str(t) for t in tasks] if isinstance(tasks, list) else [],
                        "robot_type": info.get("robot_type"),
                        "codebase_version": info.get("codebase_version"),
                    },
                )
            )
        return sorted(specs, key=lambda s: s.source["episode_index"])

    def _check_videos(self, root: Path, spec: SampleSpec) -> None:
        """Decode the first and last frame of the episode in every camera's video: a
        truncated or corrupt file is refused at import, naming the file."""
        if not spec.num_frames:
            return
        for camera in spec.cameras:
            video = spec.source["videos"].get(camera["name"])
            if video is None:
                continue
            try:
                frames = decode_video_frames(
                    root / video["file"],
                    video["from_timestamp"],
                    spec.fps,
                    sorted({0, spec.num_frames - 1}),
                )
            except DataError as exc:
                raise DataError(video["file"], f"{exc.problem} ({spec.name})") from exc
            height, width = frames[0].shape[:2]
            if (height, width) != (camera["height"], camera["width"]):
                raise DataError(
                    video["file"],
                    f"frames are {width}×{height}, but meta/info.json says "
                    f"{camera['width']}×{camera['height']}",
                )

    def _features(self, features: dict) -> tuple[list[dict], dict[str, dict]]:
        cameras, arrays = [], {}
        for key, feature in features.items():
            dtype, shape = feature.get("dtype"), feature.get("shape") or []
            if dtype in {"video", "image"}:
                if len(shape) != 3:
                    raise DataError("meta/info.json", f"camera {key} needs shape [H, W, C]")
                names = feature.get("names") or ["height", "width", "channels"]
                dims = dict(zip(names, shape, strict=False))
                cameras.append(
                    {
                        "name": key.removeprefix("observation.images."),
                        "feature": key,
                        "height": int(dims.get("height", shape[0])),
                        "width": int(dims.get("width", shape[1])),
                        "encoding": dtype,
                    }
                )
            elif (
                key not in BOOKKEEPING
                and shape
                and all(isinstance(n, int) and n > 0 for n in shape)
                and dtype not in {"string"}
            ):
                role = "action" if key == "action" else "state" if "state" in key else "other"
                width = math.prod(shape)
                names = feature.get("names")
                if isinstance(names, dict):  # older style: {"motors": [...]}
                    names = next(iter(names.values()), None)
                if len(shape) > 1 or not isinstance(names, list) or len(names) != width:
                    names = [f"{key}_{i}" for i in range(width)]
                arrays[key] = {"role": role, "shape": [0, width], "dtype": dtype, "names": names}
                if len(shape) > 1:
                    # An N-D feature (datasets' Array2D…Array5D: nested lists per frame) is
                    # kept: read_series flattens it to D = a·b·…, item_shape gives it back.
                    arrays[key]["item_shape"] = [int(n) for n in shape]
        return cameras, arrays

    def _episode(self, root, info, row, cameras, arrays, fps, indexes: dict) -> SampleSpec:
        index = int(row["episode_index"])
        data_file = _format_path(
            info.get("data_path"),
            "data_path",
            chunk_index=row["data/chunk_index"],
            file_index=row["data/file_index"],
        )
        if not inside(root, data_file, "meta/info.json").exists():
            raise DataError(data_file, f"missing (episode {index})")
        length = int(row["length"])
        if row["dataset_to_index"] - row["dataset_from_index"] != length:
            raise DataError(
                f"episode {index}", "length disagrees with dataset_from_index/dataset_to_index"
            )
        videos = {}
        for camera in cameras:
            if camera["encoding"] != "video":
                continue
            key = camera["feature"]
            video_file = _format_path(
                info.get("video_path"),
                "video_path",
                video_key=key,
                chunk_index=row[f"videos/{key}/chunk_index"],
                file_index=row[f"videos/{key}/file_index"],
            )
            if not inside(root, video_file, "meta/info.json").exists():
                raise DataError(video_file, f"missing (episode {index}, camera {key})")
            videos[camera["name"]] = {
                "file": video_file,
                "from_timestamp": float(row[f"videos/{key}/from_timestamp"]),
            }
        rows = self._count_rows(
            root, data_file, row["dataset_from_index"], row["dataset_to_index"], indexes
        )
        if rows != length:
            raise DataError(data_file, f"episode {index} has {rows} rows, not {length}")
        episode_arrays = {
            name: {**spec, "shape": [length, spec["shape"][1]]} for name, spec in arrays.items()
        }
        return SampleSpec(
            name=f"episode_{index:06d}",
            num_frames=length,
            fps=fps,
            cameras=[{k: v for k, v in c.items()} for c in cameras],
            arrays=episode_arrays,
            source={
                "file": data_file,
                "episode_index": index,
                "from": int(row["dataset_from_index"]),
                "to": int(row["dataset_to_index"]),
                "videos": videos,
            },
            metadata={"tasks": list(row.get("tasks") or []), "robot_type": info.get("robot_type")},
        )

    def _count_rows(self, root: Path, data_file: str, start: int, stop: int, indexes: dict) -> int:
        """Rows of ``data_file`` with ``start <= index < stop``; ``indexes`` keeps each file's
        index column read once (many episodes share a file)."""
        if data_file not in indexes:
            indexes.clear()  # episodes are listed file by file: keep one column in memory
            indexes[data_file] = _read_parquet(root / data_file, data_file, ["index"])
        table = indexes[data_file]
        mask = pc.and_(pc.greater_equal(table["index"], start), pc.less(table["index"], stop))
        return int(pc.sum(mask.cast(pa.int64())).as_py() or 0)

    # --- reading ------------------------------------------------------------------------

    def sample_files(self, sample) -> list[str]:
        videos = (sample.source.get("videos") or {}).values()
        return [sample.source["file"], *sorted({v["file"] for v in videos})]

    def _rows(
        self, root: Path, sample, columns: list[str], start: int | None = None, stop: int = 0
    ) -> pa.Table:
        """The sample's rows (``start``/``stop``: only those of its frames, read from the row
        groups that hold them)."""
        first, last = sample.source["from"], sample.source["to"]
        filters = None
        if start is not None:
            first, last = first + start, min(first + stop, last)
            filters = [("index", ">=", first), ("index", "<", last)]
        table = _read_parquet(
            root / sample.source["file"], sample.source["file"], columns + ["index"], filters
        )
        mask = pc.and_(pc.greater_equal(table["index"], first), pc.less(table["index"], last))
        return table.filter(mask).sort_by("index")

    def read_series(self, root: Path, sample) -> dict[str, np.ndarray]:
        if not sample.arrays:
            return {}
        table = self._rows(root, sample, list(sample.arrays))
        return {
            name: np.asarray(table[name].to_pylist(), dtype=np.float64).reshape(table.num_rows, -1)
            for name in sample.arrays
        }

    def read_series_rows(self, root: Path, sample, start: int, stop: int) -> dict[str, np.ndarray]:
        if not sample.arrays:
            return {}
        table = self._rows(root, sample, list(sample.arrays), start, stop)
        return {
            name: restore_rows(np.asarray(table[name].to_pylist(), dtype=np.float64), info)
            for name, info in sample.arrays.items()
        }

    def read_frame(self, root: Path, sample, camera: str, index: int) -> np.ndarray:
        return self.read_frames(root, sample, camera, [index])[0]

    def read_frames(self, root: Path, sample, camera: str, indices) -> list[np.ndarray]:
        info = sample.camera(camera) if hasattr(sample, "camera") else None
        info = info or next(c for c in sample.cameras if c["name"] == camera)
        indices = list(indices)
        if info["encoding"] == "image":
            table = self._rows(root, sample, [info["feature"]])
            column = table[info["feature"]]
            return [
                np.asarray(Image.open(io.BytesIO(column[i].as_py()["bytes"])).convert("RGB"))
                for i in indices
            ]
        video = sample.source["videos"][camera]
        return decode_video_frames(
            root / video["file"], video["from_timestamp"], sample.fps, indices
        )


def _format_path(template, name: str, **values) -> str:
    if not isinstance(template, str):
        raise DataError("meta/info.json", f"“{name}” must be a path template")
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise DataError("meta/info.json", f"“{name}” is not a usable template ({exc})") from exc


SEEK_GAP_SECONDS = 2.0


def decode_video_frames(
    path: Path, start: float, fps: float, indices: list[int]
) -> list[np.ndarray]:
    """Frames ``indices`` of an episode that starts ``start`` seconds into ``path``."""
    import av

    wanted = {i: start + i / fps for i in indices}
    found: dict[int, np.ndarray] = {}
    tolerance = 0.5 / fps
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            time_base = stream.time_base
            if time_base is None:
                raise DataError(path.name, "the video stream has no time base")
            decoder, last = None, None  # last: (time, frame) most recently decoded
            for i in sorted(wanted):
                target = wanted[i]
                if last is not None and last[0] >= target - tolerance:
                    # The frame decoded last already answers this index (a dropped frame
                    # upstream): the old per-index seek returned the same one.
                    found[i] = last[1].to_ndarray(format="rgb24")
                    continue
                # Frames close ahead are decoded on from where the decoder is; only a jump
                # (or the first frame) seeks back to a keyframe. A whole episode is one pass.
                if decoder is None or last is None or target - last[0] > SEEK_GAP_SECONDS:
                    container.seek(int(target / time_base), stream=stream, backward=True)
                    decoder = container.decode(stream)
                for frame in decoder:
                    t = float(frame.pts * Fraction(time_base)) if frame.pts is not None else 0
                    last = (t, frame)
                    if t < target - tolerance:
                        continue
                    found[i] = frame.to_ndarray(format="rgb24")
                    break
    except (av.error.FFmpegError, OSError) as exc:
        raise DataError(
            path.name, f"video cannot be decoded (truncated or corrupt: {exc})"
        ) from exc
    missing = [i for i in indices if i not in found]
    if missing:
        raise DataError(
            path.name,
            f"frames {missing[:5]} are past the end of the video (truncated, or shorter "
            "than the episode)",
        )
    return [found[i] for i in indices]
