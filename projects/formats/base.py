from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from core.exceptions import ApplicationError, describe, without_server_paths

Progress = Callable[[int, int, str], None]


# The folders a dataset's files stand in (dataset_files: datasets/<id> or a version of it,
# its .staging-, .resync- and .previous- copies, an unpacked upload's .unzip-<name>, a cached
# copy of a bucket's objects): what follows them is the file's name as the user uploaded or
# named it.
DATASET_FOLDERS = (
    re.compile(r"/datasets/(?:\.staging-|\.resync-|\.previous-)?\d+[^/]*/(?:v-[0-9a-f]{12}/)?"),
    re.compile(r"/\.unzip-[^/]+/"),
    # A copy of a bucket's files in this machine's cache (core/objectstore.LocalCache).
    re.compile(r"/[0-9a-f]{2}/[0-9a-f]{32}/(?:tree/)?"),
)


def _where() -> dict:
    from django.conf import settings

    return {"roots": settings.STAGECRAFT_IMPORT_ROOTS, "anchors": DATASET_FOLDERS}


def public_text(text: str) -> str:
    """A message about dataset files that names each file as the user knows it: relative to
    the upload or the named import folder, never where the server keeps it."""
    return without_server_paths(text, **_where())


def public_error(exc: BaseException) -> str:
    """An unexpected failure while reading dataset files, as the user may read it."""
    return describe(exc, **_where())


class DataError(ApplicationError):
    """A file that cannot be imported or read: says which file and what is wrong.

    Both are cleared of server paths (a library's own message often names the file by its
    full path), so every import error, re-sync error and 4xx answer built from one is fit
    to show."""

    def __init__(self, file: str | Path | None, problem: str) -> None:
        self.file = public_text(str(file)) if file is not None else None
        self.problem = public_text(problem)
        super().__init__(f"{self.file}: {self.problem}" if self.file else self.problem)


@dataclass
class SampleSpec:
    name: str
    num_frames: int
    fps: float
    cameras: list[dict[str, Any]]
    arrays: dict[str, dict[str, Any]]
    source: dict[str, Any]
    kind: str = "episode"
    metadata: dict[str, Any] = field(default_factory=dict)
    checksum: str = ""
    size_bytes: int = 0


def joint_names(prefix: str, width: int) -> list[str]:
    return [f"{prefix}_{i}" for i in range(width)]


ALOHA_JOINTS = [
    f"{side}_{joint}"
    for side in ("left", "right")
    for joint in (
        "waist",
        "shoulder",
        "elbow",
        "forearm_roll",
        "wrist_angle",
        "wrist_rotate",
        "gripper",
    )
]


def names_for(array_name: str, width: int) -> list[str]:
    if width == len(ALOHA_JOINTS) and array_name in {"qpos", "qvel", "effort", "action"}:
        return list(ALOHA_JOINTS)
    return joint_names(array_name.split("/")[-1].split(".")[-1], width)


class DatasetFormatReader:
    """One dataset format. Subclasses set ``key`` and implement the four methods."""

    key: ClassVar[str]
    # File suffixes the format takes from a folder (lower case); None takes every file.
    suffixes: ClassVar[tuple[str, ...] | None] = None

    def accepts(self, relative: Path) -> bool:
        if any(part.startswith(".") for part in relative.parts):
            return False
        return self.suffixes is None or relative.suffix.lower() in self.suffixes

    def inspect(
        self, root: Path, files: list[Path], options: dict[str, Any], progress: Progress
    ) -> list[SampleSpec]:
        raise NotImplementedError

    def sample_files(self, sample) -> list[str]:
        """The paths under the dataset's folder that reading ``sample`` opens (files, or a
        folder for all inside it): what a machine fetches from a bucket to read it."""
        return [sample.source["file"]]

    def read_frame(self, root: Path, sample, camera: str, index: int) -> np.ndarray:
        """One frame as an (H, W, 3) uint8 RGB array."""
        raise NotImplementedError

    def read_series(self, root: Path, sample) -> dict[str, np.ndarray]:
        """Every state/action array of the sample as (T, D) float arrays."""
        raise NotImplementedError

    def read_frames(self, root: Path, sample, camera: str, indices: Iterable[int]) -> list:
        return [self.read_frame(root, sample, camera, i) for i in indices]

    def read_series_rows(self, root: Path, sample, start: int, stop: int) -> dict[str, np.ndarray]:
        """Frames ``start``–``stop`` (``stop`` excluded) of every array of the sample, each in
        the source's own shape and dtype: ``(stop - start, *item_shape(info))``. Readers whose
        files can be sliced read only those rows; this default reads the whole series and
        restores the rows asked for."""
        values = self.read_series(root, sample)
        return {
            name: restore_rows(values[name][start:stop], info)
            for name, info in sample.arrays.items()
        }


def item_shape(info: dict) -> list[int]:
    """An array's shape after T as its source stored it: ``item_shape`` where the importer
    recorded it (robomimic, Zarr), else ``shape[1:]`` (a (T, D) array)."""
    if "item_shape" in info:
        return [int(n) for n in info["item_shape"]]
    return [int(n) for n in (info.get("shape") or [0, 1])[1:]]


def restore_rows(values: np.ndarray, info: dict) -> np.ndarray:
    """(k, D) float rows from ``read_series`` back in the source's shape and (numeric) dtype."""
    values = np.asarray(values)
    rows = values.reshape(len(values), *item_shape(info))
    try:
        dtype = np.dtype(str(info.get("dtype") or "float64"))
    except TypeError:
        return rows
    return rows.astype(dtype, copy=False) if dtype.kind in "biuf" else rows


_REGISTRY: dict[str, DatasetFormatReader] = {}


def register(cls: type[DatasetFormatReader]) -> type[DatasetFormatReader]:
    _REGISTRY[cls.key] = cls()
    return cls


def get_format(key: str) -> DatasetFormatReader:
    # Import the format modules so that they register themselves.
    from . import aloha, images, lerobot, robomimic, zarr_buffer  # noqa: F401

    try:
        return _REGISTRY[key]
    except KeyError:
        raise DataError(None, f"Unknown dataset format “{key}”.") from None


CAMERA_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,100}")
MAX_FRAME_PIXELS = 50_000_000


def check_spec(spec: SampleSpec) -> None:
    """What every importer's output must satisfy, whatever the file said."""
    label = spec.source.get("file") or spec.name
    if not (math.isfinite(spec.fps) and 0 <= spec.fps <= 100_000):
        raise DataError(label, f"frame rate {spec.fps!r} is not a usable number")
    if spec.kind == "episode" and spec.fps <= 0:
        raise DataError(label, "an episode needs a positive frame rate (give one with --fps)")
    for camera in spec.cameras:
        if not CAMERA_NAME.fullmatch(str(camera["name"])):
            raise DataError(label, f"camera name {camera['name']!r} is not usable")
        if camera["height"] * camera["width"] > MAX_FRAME_PIXELS:
            raise DataError(label, f"camera {camera['name']} frames are too large")


def check_hdf5_links(group, label) -> None:
    """Refuse HDF5 content that reads bytes from elsewhere (external/soft links,
    external storage, virtual datasets): an import must only expose its own files."""
    import h5py

    for name in group:
        link = group.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink | h5py.SoftLink):
            raise DataError(label, f"{group.name.rstrip('/')}/{name} is a link (not allowed)")
        item = group[name]
        if isinstance(item, h5py.Group):
            check_hdf5_links(item, label)
        elif isinstance(item, h5py.Dataset) and (item.external or item.is_virtual):
            raise DataError(label, f"{item.name} keeps its data outside the file (not allowed)")


def inside(root: Path, relative: str, label) -> Path:
    """``root / relative``, refusing paths that leave ``root``."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise DataError(label, f"path {relative!r} points outside the dataset")
    return path


def natural_key(path: Path | str) -> list:
    """Sort episode_2 before episode_10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def plain(value: Any) -> Any:
    """An HDF5 (or Zarr) attribute as a JSON-friendly value: numbers, text, lists, dicts;
    bytes as text, non-finite floats and anything else as their text."""
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return str(value)
