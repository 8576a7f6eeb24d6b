"""Reads for datasets and samples: lists, access checks, frames and series."""

from __future__ import annotations

import copy
import io
import json
from html import escape
from pathlib import Path

import numpy as np
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from PIL import Image

from core.access import Action, check_project_access
from core.exceptions import ApplicationError

from .dataset_files import sample_root
from .formats import DataError, get_format
from .models import Dataset, ImportStatus, Project, Sample

ENCODINGS = {"jpeg": ("JPEG", "image/jpeg"), "png": ("PNG", "image/png")}


def dataset_list(*, project: Project) -> QuerySet[Dataset]:
    return Dataset.objects.filter(project=project).select_related("created_by")


def dataset_thumbnails(datasets) -> dict[int, Sample]:
    """The first sample of each finished dataset, for thumbnails, in one query."""
    ids = [d.pk for d in datasets if d.status == ImportStatus.FINISHED]
    samples = Sample.objects.filter(dataset__in=ids, index=0).only(
        "id", "dataset_id", "cameras", "num_frames", "name"
    )
    return {s.dataset_id: s for s in samples}


def dataset_get_for_user(*, user, dataset_id: int, action: Action = Action.VIEW) -> Dataset:
    dataset = get_object_or_404(Dataset.objects.select_related("project"), pk=dataset_id)
    check_project_access(user=user, project=dataset.project, action=action)
    return dataset


def sample_get_for_user(*, user, sample_id: int) -> Sample:
    sample = get_object_or_404(
        Sample.objects.select_related("dataset", "dataset__project"), pk=sample_id
    )
    check_project_access(user=user, project=sample.dataset.project, action=Action.VIEW)
    return sample


def sample_list(*, dataset: Dataset) -> QuerySet[Sample]:
    return Sample.objects.filter(dataset=dataset).order_by("index")


def _root(sample: Sample) -> Path:
    """The real folder the sample's files are read in (a cached copy with a bucket)."""
    return sample_root(sample)


def _read(sample: Sample, method: str, *args):
    """Call the format's reader; any failure of the stored files becomes a DataError."""
    reader = getattr(get_format(sample.dataset.format), method)
    try:
        return reader(_root(sample), sample, *args)
    except DataError:
        raise
    except Exception as exc:  # files are outside input: h5py, pyarrow, PyAV, Pillow errors
        raise DataError(sample.name, f"cannot be read ({exc.__class__.__name__}: {exc})") from exc


def _check_frame(sample: Sample, camera: str, index: int) -> None:
    if sample.camera(camera) is None:
        names = ", ".join(c["name"] for c in sample.cameras) or "none"
        raise ApplicationError(f"No camera “{camera}” (cameras: {names}).", field="camera")
    if not 0 <= index < sample.num_frames:
        raise ApplicationError(
            f"Frame {index} is outside 0–{sample.num_frames - 1}.", field="frame"
        )


def _encode(array: np.ndarray, encoding: str, max_size: int | None) -> bytes:
    image = Image.fromarray(np.ascontiguousarray(array[..., :3]).astype(np.uint8))
    if max_size:
        image.thumbnail((max_size, max_size), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    pil_format, _ = ENCODINGS[encoding]
    image.save(buffer, pil_format, **({"quality": 88} if pil_format == "JPEG" else {}))
    return buffer.getvalue()


def frame_etag(sample: Sample, *parts) -> str:
    return '"' + "-".join([sample.checksum[:16] or str(sample.pk), *map(str, parts)]) + '"'


def sample_frame(
    *, sample: Sample, camera: str, index: int, encoding: str = "jpeg", max_size: int | None = None
) -> bytes:
    """One frame of one camera, encoded as JPEG or PNG (optionally shrunk to ``max_size``)."""
    if encoding not in ENCODINGS:
        raise ApplicationError("Encoding must be jpeg or png.", field="encoding")
    _check_frame(sample, camera, index)
    array = _read(sample, "read_frame", camera, index)
    return _encode(array, encoding, max_size)


def sample_strip(*, sample: Sample, camera: str, count: int = 8, height: int = 64) -> bytes:
    """``count`` evenly spaced frames side by side, as one JPEG."""
    _check_frame(sample, camera, 0)
    count = max(1, min(count, 16, sample.num_frames))
    indices = np.linspace(0, sample.num_frames - 1, count).round().astype(int).tolist()
    frames = _read(sample, "read_frames", camera, indices)
    tiles = []
    for frame in frames:
        image = Image.fromarray(np.ascontiguousarray(frame[..., :3]).astype(np.uint8))
        width = max(1, round(image.width * height / image.height))
        tiles.append(image.resize((width, height), Image.Resampling.BILINEAR))
    strip = Image.new("RGB", (sum(t.width for t in tiles) + 2 * (len(tiles) - 1), height), "white")
    x = 0
    for tile in tiles:
        strip.paste(tile, (x, 0))
        x += tile.width + 2
    buffer = io.BytesIO()
    strip.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


# A series is plotted (and sent by default) when a frame holds one value or a small vector;
# an N-D array per frame (depth images…) or a wide vector is only described unless asked for.
SERIES_PLOT_WIDTH = 64
# The most values (frames × values per frame) of asked-for N-D series one answer carries.
SERIES_MAX_VALUES = 250_000


def series_item_shape(info: dict) -> list[int]:
    """The array's shape after T (``item_shape``; from ``shape`` for older imports)."""
    if "item_shape" in info:
        return [int(n) for n in info["item_shape"]]
    shape = info.get("shape") or []
    width = int(shape[1]) if len(shape) > 1 else 1
    return [] if width == 1 else [width]


def series_width(info: dict) -> int:
    """Values per frame: the product of ``item_shape``."""
    return int(np.prod(series_item_shape(info), dtype=np.int64))


def series_is_plottable(info: dict) -> bool:
    """One value or a vector of at most ``SERIES_PLOT_WIDTH`` values per frame."""
    return len(series_item_shape(info)) <= 1 and series_width(info) <= SERIES_PLOT_WIDTH


def _series_description(info: dict) -> dict:
    return {
        "role": info.get("role", "other"),
        "shape": info.get("shape"),
        "item_shape": series_item_shape(info),
        "dtype": info.get("dtype"),
    }


def sample_series(
    *,
    sample: Sample,
    max_points: int | None = None,
    keys: list[str] | None = None,
    start: int | None = None,
    end: int | None = None,
) -> dict:
    """Arrays for plotting: ``{"sample", "fps", "num_frames", "frames", "series", "omitted"}``.

    ``series`` maps a name to ``{"role", "names", "values", "item_shape", "dtype"}``,
    ``values`` one row of numbers per frame (an N-D array flattened row-major: reshape
    with ``item_shape``). Without ``keys`` it holds the plottable series (one value or at
    most ``SERIES_PLOT_WIDTH`` values per frame) and ``omitted`` describes the others
    (``{"role", "shape", "item_shape", "dtype"}``, no values); with ``keys`` exactly those
    series are sent, N-D ones included. ``start``/``end`` (inclusive frame numbers) limit
    the frames and ``max_points`` thins them evenly (``frames`` says which). Asked-for N-D
    series carrying more than ``SERIES_MAX_VALUES`` values are refused (ApplicationError,
    400) naming how to ask for less; an unknown key too. Only the arrays sent are read.
    """
    arrays = sample.arrays or {}
    if keys:
        unknown = [k for k in keys if k not in arrays]
        if unknown:
            names = ", ".join(arrays) or "none"
            raise ApplicationError(
                f"No series “{unknown[0]}” in this sample (series: {names}).", field="key"
            )
        wanted = list(dict.fromkeys(keys))
    else:
        wanted = [name for name, info in arrays.items() if series_is_plottable(info)]
    last = sample.num_frames - 1
    first, final = (0 if start is None else start), (last if end is None else end)
    if sample.num_frames and not 0 <= first <= final <= last:
        raise ApplicationError(
            f"Frames {first}–{final} are not inside 0–{last} (start ≤ end).", field="start"
        )
    frames = np.arange(first, final + 1) if sample.num_frames else np.arange(0)
    if max_points and len(frames) > max_points:
        frames = frames[np.linspace(0, len(frames) - 1, max_points).round().astype(int)]
    large = [n for n in wanted if not series_is_plottable(arrays[n])]
    count = sum(len(frames) * series_width(arrays[n]) for n in large)
    if count > SERIES_MAX_VALUES:
        per_frame = sum(series_width(arrays[n]) for n in large)
        fit = max(1, SERIES_MAX_VALUES // max(1, per_frame))
        raise ApplicationError(
            f"{', '.join(large)}: {len(frames)} frames × {per_frame} values is more than "
            f"{SERIES_MAX_VALUES:,} values; ask for at most {fit} frames "
            "(start/end, or max_points).",
            field="key",
        )
    out = {}
    if wanted:
        subset = copy.copy(sample)  # the reader reads the arrays it is given, no others
        subset.arrays = {name: arrays[name] for name in wanted}
        series = _read(subset, "read_series")
        for name in wanted:
            info = arrays[name]
            values = np.nan_to_num(series[name][frames], nan=0.0, posinf=0.0, neginf=0.0)
            out[name] = {
                "role": info.get("role", "other"),
                "names": info.get("names") or [f"{name}_{i}" for i in range(values.shape[1])],
                "values": np.round(values, 6).tolist(),
                "item_shape": series_item_shape(info),
                "dtype": info.get("dtype"),
            }
    omitted = {
        name: _series_description(info)
        for name, info in arrays.items()
        if name not in out and not series_is_plottable(info)
    }
    return {
        "sample": sample.pk,
        "fps": sample.fps,
        "num_frames": sample.num_frames,
        "frames": frames.tolist(),
        "series": out,
        "omitted": omitted,
    }


# In a list of samples, a metadata value longer than this (a robosuite demo's MJCF
# model_file, ~38 KB) is replaced by a marker; the sample's detail carries it whole.
LIST_VALUE_MAX_BYTES = 1024


def compact_value(value, *, limit: int = LIST_VALUE_MAX_BYTES):
    """``value`` with every part longer than ``limit`` bytes (UTF-8 for a string, else its
    JSON) replaced by ``{"omitted": True, "bytes": n}``; objects are compacted key by key."""
    if isinstance(value, dict):
        return {key: compact_value(item, limit=limit) for key, item in value.items()}
    if isinstance(value, str):
        size = len(value.encode())
    elif isinstance(value, list):
        size = len(json.dumps(value, ensure_ascii=False, default=str).encode())
    else:
        return value
    return {"omitted": True, "bytes": size} if size > limit else value


PLOT_COLOURS = [
    "#2f6fde", "#e4572e", "#17bebb", "#ffc914", "#76b041", "#9b5de5", "#f15bb5",
    "#00bbf9", "#8d6a9f", "#c17c74", "#4d5382", "#3bb273", "#e15554", "#7768ae",
]  # fmt: skip


def sample_plot_svg(*, sample: Sample, width: int = 320, height: int = 90) -> str:
    """A small line plot of the sample's state arrays (or actions), as SVG markup."""
    try:
        data = sample_series(sample=sample, max_points=width // 2)
    except DataError:
        data = {"series": {}, "frames": []}
    series = data["series"]
    chosen = next((s for s in series.values() if s["role"] == "state"), None) or next(
        iter(series.values()), None
    )
    title = escape(f"Joint trajectories of {sample.name}")
    if chosen is None or not chosen["values"]:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'role="img" aria-label="{escape("No joint data for " + sample.name)}">'
            '<text x="8" y="20" font-size="12" fill="#616e7c">no joint data</text></svg>'
        )
    values = np.asarray(chosen["values"], dtype=float)
    low, high = float(values.min()), float(values.max())
    span = high - low or 1.0
    xs = np.linspace(2, width - 2, len(values))
    lines = []
    for j in range(values.shape[1]):
        ys = height - 2 - (values[:, j] - low) / span * (height - 4)
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
        colour = PLOT_COLOURS[j % len(PLOT_COLOURS)]
        lines.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.2" points="{points}"/>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{title}">'
        f"<title>{title}</title>"
        f'<rect width="{width}" height="{height}" fill="#fbfcfe" stroke="#d9e2ec"/>'
        + "".join(lines)
        + "</svg>"
    )
