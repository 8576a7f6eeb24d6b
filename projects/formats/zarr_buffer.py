"""Zarr replay buffers: the layout of diffusion policy's ``ReplayBuffer`` and UMI (FORMATS.md).

A store (a folder, e.g. ``pusht.zarr``, or a zip, ``*.zarr.zip``; Zarr format 2 or 3)
holds ``data/<key>``: one array per signal, every episode concatenated along axis 0, and
``meta/episode_ends``: the cumulative end index of each episode (episode i is
``[ends[i-1], ends[i])``). Each episode becomes one sample:

* (N, H, W, 3) arrays of uint8 (or float, 0–1 or 0–255) are cameras, named by their key
  (``img``, ``camera0_rgb``). Compressed images need their codec: a store written with
  ``imagecodecs`` codecs (UMI's JPEG XL) is refused naming the codec when it is missing.
* Every other array of ``data/`` is a sample series, stored like robomimic's (see
  projects.formats.robomimic): ``Sample.arrays[key]`` = ``{"role", "path": "data/<key>",
  "shape": [T, D], "dtype", "names", "item_shape"}`` (the source's shape after T);
  ``read_series`` returns (T, D) float64, an N-D array flattened row-major, so
  ``values.reshape([T, *item_shape]).astype(dtype)`` is the source array. Role: ``action``
  for keys containing "action", ``other`` for timestamps and non-float arrays, else
  ``state``.
* The source names the store (``store`` and ``file``, relative to the dataset folder;
  ``.`` for the folder itself) and the episode's rows (``from``, ``to``).
  ``Sample.metadata`` keeps the store's root attributes (``zarr_attrs``) and says when
  the frame rate was assumed.

The frame rate is not part of the format: the ``fps`` option, else a root attribute
``fps``, else 10 Hz (diffusion policy's control rate), marked ``fps_assumed``.
A store whose arrays lack chunks (a partial copy: Zarr would read them as zeros) is
refused, as is one whose arrays disagree with ``episode_ends``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .base import (
    DataError,
    DatasetFormatReader,
    Progress,
    SampleSpec,
    natural_key,
    plain,
    public_error,
    register,
)

DEFAULT_FPS = 10.0
# The metadata files of Zarr format 2 (format 3 writes zarr.json).
ZARR_DOTFILES = {".zgroup", ".zarray", ".zattrs", ".zmetadata"}
GROUP_FILES = (".zgroup", "zarr.json")
OTHER_ROLES = {"timestamp", "timestamps", "time", "episode_index", "frame_index"}


def _label(store: str) -> str:
    return store if store != "." else "the Zarr store"


def _problem(exc: BaseException) -> str:
    """A Zarr/numcodecs failure in words: a missing codec is named."""
    text = str(exc)
    codec = re.search(r"codec '([^']+)'", text)
    if codec and "not available" in text:
        package = " (install imagecodecs)" if codec.group(1).startswith("imagecodecs") else ""
        return (
            f"is compressed with the codec “{codec.group(1)}”, which this server cannot "
            f"decode{package}"
        )
    return f"cannot be read ({public_error(exc)})"


@contextmanager
def open_store(path: Path, label: str) -> Iterator[Any]:
    """The store's root group, read-only (a folder or a zip)."""
    import zarr
    from zarr.storage import LocalStore, ZipStore

    store: Any = None
    try:
        if path.is_file():
            store = ZipStore(path, mode="r")
        else:
            store = LocalStore(path, read_only=True)
        group = zarr.open_group(store, mode="r")
    except Exception as exc:  # zarr, zipfile and JSON raise many types for a bad store
        if store is not None:
            store.close()
        raise DataError(label, f"is not a readable Zarr store ({public_error(exc)})") from None
    try:
        yield group
    finally:
        store.close()


def _member_names(group, label: str) -> list[str]:
    """The names in a group, read from the store's listing: a member whose own metadata is
    damaged is then named when it is opened, instead of failing the whole listing."""
    from zarr.core.sync import sync

    async def listing() -> list[str]:
        return [name async for name in group.store.list_dir(group.path)]

    try:
        names = sync(listing())
    except Exception as exc:
        raise DataError(label, f"{group.path}/ {_problem(exc)}") from None
    return sorted(n for n in names if not n.startswith(".") and n != "zarr.json")


def _member(group, key: str, label: str):
    path = f"{group.path}/{key}".lstrip("/")
    try:
        return group[key]
    except KeyError:
        raise DataError(label, f"has no {path}") from None
    except Exception as exc:
        raise DataError(label, f"{path} {_problem(exc)}") from None


def _is_camera(array) -> bool:
    return (
        len(array.shape) == 4
        and array.shape[-1] == 3
        and (array.dtype == np.uint8 or array.dtype.kind == "f")
    )


def _role(key: str, dtype) -> str:
    if "action" in key:
        return "action"
    if key in OTHER_ROLES or dtype.kind != "f":
        return "other"
    return "state"


def _scale(camera: dict[str, object]) -> float:
    scale = camera.get("scale", 1.0)
    return float(scale) if isinstance(scale, int | float) else 1.0


def _frame(array, row: int, scale: float) -> np.ndarray:
    frame = np.asarray(array[row])
    if frame.dtype != np.uint8:
        frame = np.clip(np.nan_to_num(frame * scale), 0, 255).astype(np.uint8)
    return frame


@register
class ZarrReplayBufferFormat(DatasetFormatReader):
    key = "zarr"
    suffixes = None  # a store is a folder of chunk files (or a zip)

    def accepts(self, relative: Path) -> bool:
        # Zarr format 2 keeps its metadata in dot files; other hidden files stay out.
        *folders, name = relative.parts
        if any(part.startswith(".") for part in folders):
            return False
        return not name.startswith(".") or name in ZARR_DOTFILES

    def inspect(
        self, root: Path, files: list[Path], options: dict[str, Any], progress: Progress
    ) -> list[SampleSpec]:
        stores = self._stores(root, files)
        if not stores:
            raise DataError(
                None,
                "No Zarr store found (a folder with data/ and meta/episode_ends, or a .zarr.zip).",
            )
        specs: list[SampleSpec] = []
        for store in stores:
            specs.extend(self._inspect_store(root, store, options, progress))
        return specs

    def _stores(self, root: Path, files: list[Path]) -> list[str]:
        found = set()
        for relative in files:
            if relative.name in GROUP_FILES and (root / relative.parent / "meta").is_dir():
                found.add(relative.parent.as_posix() or ".")
            elif relative.name.lower().endswith(".zip"):
                found.add(relative.as_posix())
        return sorted(found, key=natural_key)

    def _inspect_store(
        self, root: Path, store: str, options: dict, progress: Progress
    ) -> list[SampleSpec]:
        label = _label(store)
        with open_store(root / store, label) as group:
            ends_array = _member(group, "meta/episode_ends", label)
            try:
                ends = np.asarray(ends_array[...])
            except Exception as exc:
                raise DataError(label, f"meta/episode_ends {_problem(exc)}") from None
            if ends.ndim != 1 or ends.dtype.kind not in "iu" or not len(ends):
                raise DataError(label, "meta/episode_ends must be a non-empty list of integers")
            starts = np.concatenate([[0], ends[:-1]])
            if (ends <= starts).any():
                first = int(np.argmax(ends <= starts))
                raise DataError(
                    label,
                    f"meta/episode_ends must increase (episode {first} ends at {ends[first]})",
                )
            total = int(ends[-1])
            data = _member(group, "data", label)
            keys = _member_names(data, label)
            if not keys:
                raise DataError(label, "data/ holds no arrays")
            cameras, arrays = [], {}
            for key in keys:
                where = f"data/{key}"
                array = _member(data, key, label)
                if not hasattr(array, "dtype"):
                    continue  # a subgroup
                if len(array.shape) == 0 or array.dtype.kind not in "biuf":
                    continue
                if array.shape[0] != total:
                    raise DataError(
                        label,
                        f"{where} has {array.shape[0]} rows but meta/episode_ends ends at {total}",
                    )
                self._check_chunks(array, label, where)
                if _is_camera(array):
                    scale = 1.0
                    if array.dtype.kind == "f":
                        scale = 255.0 if float(np.nanmax(np.asarray(array[0]))) <= 1.0 else 1.0
                    cameras.append(
                        {
                            "name": key,
                            "height": int(array.shape[1]),
                            "width": int(array.shape[2]),
                            "encoding": "raw",
                            "path": where,
                            "scale": scale,
                        }
                    )
                    continue
                item_shape = [int(n) for n in array.shape[1:]]
                width = int(math.prod(item_shape)) if item_shape else 1
                arrays[key] = {
                    "role": _role(key, array.dtype),
                    "path": where,
                    "dtype": str(array.dtype),
                    "names": [f"{key}_{i}" for i in range(width)],
                    "width": width,
                }
                arrays[key]["item_shape"] = item_shape
            fps, assumed = self._fps(group, options)
            attrs = {k: plain(v) for k, v in dict(group.attrs).items()}
            prefix = "" if store == "." else re.sub(r"(\.zarr)?(\.zip)?$", "", store) + "/"
            specs = []
            for index, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
                progress(index, len(ends), f"{store} episode {index}")
                for camera in cameras:  # first and last frame: codecs and data show here
                    for row in (start, end - 1):
                        try:
                            _frame(data[camera["name"]], row, _scale(camera))
                        except Exception as exc:
                            raise DataError(
                                label, f"{camera['path']} frame {row} {_problem(exc)}"
                            ) from None
                length = end - start
                metadata: dict[str, Any] = {}
                if attrs:
                    metadata["zarr_attrs"] = attrs
                if assumed:
                    metadata["fps_assumed"] = True
                specs.append(
                    SampleSpec(
                        name=f"{prefix}episode_{index:06d}",
                        num_frames=length,
                        fps=fps,
                        cameras=[dict(c) for c in cameras],
                        arrays={
                            key: {
                                **{k: v for k, v in info.items() if k != "width"},
                                "shape": [length, info["width"]],
                            }
                            for key, info in arrays.items()
                        },
                        source={
                            "file": store,
                            "store": store,
                            "episode_index": index,
                            "from": start,
                            "to": end,
                        },
                        metadata=metadata,
                    )
                )
            return specs

    def _check_chunks(self, array, label: str, where: str) -> None:
        try:
            stored, needed = array.nchunks_initialized, array.nchunks
        except Exception as exc:
            raise DataError(label, f"{where} {_problem(exc)}") from None
        if stored < needed:
            raise DataError(
                label,
                f"{where} lacks {needed - stored} of its {needed} chunks (a partial copy?)",
            )

    def _fps(self, group, options: dict) -> tuple[float, bool]:
        if options.get("fps"):
            return float(options["fps"]), False
        value = group.attrs.get("fps")
        if isinstance(value, int | float) and math.isfinite(value) and value > 0:
            return float(value), False
        return DEFAULT_FPS, True

    # --- reading ------------------------------------------------------------------------

    def sample_files(self, sample) -> list[str]:
        return [sample.source["store"]]  # a folder of chunk files, "." or a zip

    def read_frame(self, root: Path, sample, camera: str, index: int) -> np.ndarray:
        return self.read_frames(root, sample, camera, [index])[0]

    def read_frames(self, root: Path, sample, camera: str, indices) -> list[np.ndarray]:
        info = next(c for c in sample.cameras if c["name"] == camera)
        store, start = sample.source["store"], sample.source["from"]
        with open_store(root / store, _label(store)) as group:
            array = _member(group, info["path"], _label(store))
            try:
                return [_frame(array, start + i, info.get("scale", 1.0)) for i in indices]
            except Exception as exc:
                raise DataError(_label(store), f"{info['path']} {_problem(exc)}") from None

    def read_series(self, root: Path, sample) -> dict[str, np.ndarray]:
        store, start, stop = sample.source["store"], sample.source["from"], sample.source["to"]
        series = {}
        with open_store(root / store, _label(store)) as group:
            for name, info in sample.arrays.items():
                array = _member(group, info["path"], _label(store))
                try:
                    values = np.asarray(array[start:stop], dtype=np.float64)
                except Exception as exc:
                    raise DataError(_label(store), f"{info['path']} {_problem(exc)}") from None
                series[name] = values.reshape(len(values), -1)
        return series

    def read_series_rows(self, root: Path, sample, start: int, stop: int) -> dict[str, np.ndarray]:
        store, first = sample.source["store"], sample.source["from"]
        rows = {}
        with open_store(root / store, _label(store)) as group:
            for name, info in sample.arrays.items():
                array = _member(group, info["path"], _label(store))
                try:
                    rows[name] = np.asarray(array[first + start : first + stop])
                except Exception as exc:
                    raise DataError(_label(store), f"{info['path']} {_problem(exc)}") from None
        return rows
