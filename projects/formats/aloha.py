"""ALOHA / ACT HDF5: one episode per file (FORMATS.md).

``/observations/qpos``, ``/observations/qvel``, optional ``/observations/effort``,
``/action``, optional ``/base_action``; cameras under ``/observations/images/<cam>``
as raw (T, H, W, 3) uint8 or JPEG-compressed (T, max_len) uint8 with
``/compress_len`` (n_cams, T). ACT writes its JPEGs with OpenCV, so compressed
frames are B/R-swapped by default; the ``swap_rb`` option overrides that.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from PIL import Image

from .base import (
    DataError,
    DatasetFormatReader,
    Progress,
    SampleSpec,
    check_hdf5_links,
    names_for,
    natural_key,
    plain,
    register,
)

DEFAULT_FPS = 50.0
STATE_ARRAYS = {
    "qpos": "/observations/qpos",
    "qvel": "/observations/qvel",
    "effort": "/observations/effort",
}
ACTION_ARRAYS = {"action": "/action", "base_action": "/base_action"}


def open_hdf5(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        reason = str(exc).split("(")[0].strip() or "unreadable"
        raise DataError(
            path.name, f"not a readable HDF5 file (truncated or corrupt: {reason})"
        ) from None


def decode_jpeg(data: bytes, swap_rb: bool) -> np.ndarray:
    try:
        image = Image.open(io.BytesIO(data))
        array = np.asarray(image.convert("RGB"))
    except Exception as exc:  # Pillow raises many types (and names a BytesIO) for bad bytes
        raise DataError(None, "a compressed frame is not a readable JPEG") from exc
    return array[..., ::-1].copy() if swap_rb else array


@register
class AlohaFormat(DatasetFormatReader):
    key = "hdf5"
    suffixes = (".hdf5", ".h5")

    def inspect(
        self, root: Path, files: list[Path], options: dict[str, Any], progress: Progress
    ) -> list[SampleSpec]:
        if not files:
            raise DataError(None, "No .hdf5 files found.")
        specs = []
        for n, relative in enumerate(sorted(files, key=natural_key)):
            progress(n, len(files), str(relative))
            specs.append(self._inspect_file(root / relative, relative, options))
        return specs

    def _inspect_file(self, path: Path, relative: Path, options: dict) -> SampleSpec:
        with open_hdf5(path) as f:
            check_hdf5_links(f, relative)
            arrays: dict[str, dict] = {}
            lengths: dict[str, int] = {}
            for role, table in (("state", STATE_ARRAYS), ("action", ACTION_ARRAYS)):
                for name, h5path in table.items():
                    if h5path not in f:
                        continue
                    ds = f[h5path]
                    if not isinstance(ds, h5py.Dataset) or ds.ndim != 2:
                        raise DataError(relative, f"{h5path} must be a 2-D array (T, D)")
                    arrays[name] = {
                        "role": role,
                        "path": h5path,
                        "shape": list(ds.shape),
                        "dtype": str(ds.dtype),
                        "names": names_for(name, ds.shape[1]),
                    }
                    lengths[h5path] = ds.shape[0]
            for required in ("qpos", "action"):
                if required not in arrays:
                    raise DataError(
                        relative,
                        f"missing {STATE_ARRAYS.get(required) or ACTION_ARRAYS[required]} "
                        "(not an ALOHA/ACT episode file)",
                    )
            cameras = self._cameras(f, relative, options, lengths)
            frame_counts = set(lengths.values())
            if len(frame_counts) != 1:
                detail = ", ".join(f"{k} has {v}" for k, v in lengths.items())
                raise DataError(relative, f"arrays disagree on the number of frames ({detail})")
            num_frames = frame_counts.pop()
            if num_frames == 0:
                raise DataError(relative, "the episode has no frames")
            try:
                fps = float(f.attrs.get("fps", options.get("fps") or DEFAULT_FPS))
            except (TypeError, ValueError):
                raise DataError(relative, "the fps attribute is not a number") from None
            sample = SampleSpec(
                name=relative.stem,
                num_frames=num_frames,
                fps=fps,
                cameras=cameras,
                arrays=arrays,
                source={"file": str(relative)},
                metadata={
                    k: plain(v) for k, v in f.attrs.items() if k in {"sim", "compress", "task"}
                },
            )
            # Decode the first and last frame of every camera: truncated data shows here.
            for camera in cameras:
                for index in (0, num_frames - 1):
                    self._frame(f, sample_source(sample), camera["name"], index, relative)
        return sample

    def _cameras(self, f: h5py.File, relative: Path, options: dict, lengths: dict) -> list[dict]:
        group = f.get("/observations/images")
        if group is None:
            return []
        compressed = "/compress_len" in f
        swap = options.get("swap_rb")
        cameras = []
        for index, name in enumerate(sorted(group.keys())):
            ds = group[name]
            h5path = f"/observations/images/{name}"
            if compressed and ds.ndim == 2 and ds.dtype == np.uint8:
                try:
                    first = decode_jpeg(bytes(ds[0, : int(f["/compress_len"][index, 0])]), False)
                except DataError as exc:
                    raise DataError(relative, f"{name} frame 0: {exc.problem}") from exc
                height, width = first.shape[:2]
                encoding = "jpeg"
            elif ds.ndim == 4 and ds.shape[-1] == 3 and ds.dtype == np.uint8:
                height, width = ds.shape[1:3]
                encoding = "raw"
            else:
                raise DataError(
                    relative,
                    f"{h5path} has shape {ds.shape} {ds.dtype}; expected (T, H, W, 3) uint8 "
                    "or JPEG bytes with /compress_len",
                )
            lengths[h5path] = ds.shape[0]
            cameras.append(
                {
                    "name": name,
                    "height": int(height),
                    "width": int(width),
                    "encoding": encoding,
                    "index": index,
                    "swap_rb": bool(swap if swap is not None else encoding == "jpeg"),
                }
            )
        return cameras

    def _frame(self, f: h5py.File, source: dict, camera: str, index: int, label) -> np.ndarray:
        cameras = {c["name"]: c for c in source["cameras"]}
        info = cameras[camera]
        ds = f[f"/observations/images/{camera}"]
        try:
            if info["encoding"] == "jpeg":
                length = int(f["/compress_len"][info["index"], index])
                return decode_jpeg(bytes(ds[index, :length]), info["swap_rb"])
            frame = np.asarray(ds[index])
        except DataError as exc:
            raise DataError(label, f"{camera} frame {index}: {exc.problem}") from exc
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(label, f"{camera} frame {index} cannot be read ({exc})") from exc
        return frame[..., ::-1].copy() if info["swap_rb"] else frame

    def read_frame(self, root: Path, sample, camera: str, index: int) -> np.ndarray:
        relative = Path(sample.source["file"])
        with open_hdf5(root / relative) as f:
            return self._frame(f, sample_source(sample), camera, index, relative)

    def read_frames(self, root: Path, sample, camera: str, indices) -> list[np.ndarray]:
        relative = Path(sample.source["file"])
        with open_hdf5(root / relative) as f:
            return [self._frame(f, sample_source(sample), camera, i, relative) for i in indices]

    def read_jpeg_rows(self, root: Path, sample, camera: str, start: int, stop: int):
        """The stored JPEG bytes of frames ``start``..``stop`` when the camera is in ACT's
        compressed layout with OpenCV's channel order (``swap_rb``, what ACT's loader
        expects), else None: an HDF5 export in that layout copies them rather than encoding
        the decoded frames again (no second loss)."""
        info = next((c for c in sample.cameras if c["name"] == camera), None)
        if not info or info.get("encoding") != "jpeg" or not info.get("swap_rb"):
            return None
        with open_hdf5(root / sample.source["file"]) as f:
            lengths = f["/compress_len"][info["index"], start:stop]
            rows = f[f"/observations/images/{camera}"][start:stop]
            return [bytes(row[: int(n)]) for row, n in zip(rows, lengths, strict=True)]

    def read_series(self, root: Path, sample) -> dict[str, np.ndarray]:
        relative = Path(sample.source["file"])
        with open_hdf5(root / relative) as f:
            return {
                name: np.asarray(f[info["path"]][...], dtype=np.float64)
                for name, info in sample.arrays.items()
            }

    def read_series_rows(self, root: Path, sample, start: int, stop: int) -> dict[str, np.ndarray]:
        relative = Path(sample.source["file"])
        with open_hdf5(root / relative) as f:
            return {
                name: np.asarray(f[info["path"]][start:stop])
                for name, info in sample.arrays.items()
            }


def sample_source(sample) -> dict:
    """What frame reading needs, from a SampleSpec or a Sample row alike."""
    return {"cameras": sample.cameras, **sample.source}
