"""Reads for datasets and samples: lists, access checks, frames and series."""

from __future__ import annotations

import io
from html import escape
from pathlib import Path

import numpy as np
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from PIL import Image

from core.access import Action, check_project_access
from core.exceptions import ApplicationError

from .dataset_services import dataset_dir
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
    return dataset_dir(sample.dataset)


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


def sample_series(*, sample: Sample, max_points: int | None = None) -> dict:
    """State/action arrays for plotting: ``{"fps", "num_frames", "series": {name: {...}}}``.

    With ``max_points`` long episodes are thinned to evenly spaced frames (the
    ``frames`` list says which).
    """
    series = _read(sample, "read_series")
    frames = np.arange(sample.num_frames)
    if max_points and sample.num_frames > max_points:
        frames = np.linspace(0, sample.num_frames - 1, max_points).round().astype(int)
    out = {}
    for name, values in series.items():
        info = sample.arrays.get(name, {})
        values = np.nan_to_num(values[frames], nan=0.0, posinf=0.0, neginf=0.0)
        out[name] = {
            "role": info.get("role", "other"),
            "names": info.get("names") or [f"{name}_{i}" for i in range(values.shape[1])],
            "values": np.round(values, 6).tolist(),
        }
    return {
        "sample": sample.pk,
        "fps": sample.fps,
        "num_frames": sample.num_frames,
        "frames": frames.tolist(),
        "series": out,
    }


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
