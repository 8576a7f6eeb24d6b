"""robomimic / robosuite HDF5: many demos in one file under ``data/demo_N``.

Each demo has ``actions`` (T, A), usually ``states`` (T, S) and optionally
``obs/<key>`` and ``next_obs/<key>``. (T, H, W, 3) uint8 arrays under ``obs/`` are
camera images; robosuite renders them upside down (OpenGL's origin is bottom left), so
the ``flip_cameras`` option turns them right side up when frames are read. The control
rate comes from ``data.attrs["env_args"]`` when present (robosuite's ``control_freq``),
else 20 Hz.

What makes a demo replayable is kept (issue 16):

* ``Sample.metadata["model_file"]``: the demo's MuJoCo XML (robosuite resets the
  simulator from it before replaying ``states``), as the file's string;
* ``Sample.metadata["env_args"]``: ``data.attrs["env_args"]``, the exact JSON text (the
  same for every demo of a file); other attributes of ``data`` and of the demo group
  go to ``metadata["data_attrs"]`` and ``metadata["demo_attrs"]`` (JSON-friendly values);
  ``metadata["mask"]`` lists the filter keys (``mask/train``, ``mask/valid``…) naming
  the demo.
  A file straight from robosuite's ``collect_human_demonstrations`` has no ``env_args``
  but ``data_attrs["env_info"]`` (JSON text of the env's kwargs) and ``data_attrs["env"]``,
  from which robomimic's ``convert_robosuite.py`` builds ``env_args``;
* every other array of the demo as a sample series. ``Sample.arrays`` maps a name to
  ``{"role", "path", "shape", "dtype", "names", "item_shape"}``:

  - the name is the array's path inside the demo group: ``actions``, ``states``,
    ``rewards``, ``dones``, ``obs/robot0_eef_pos``, ``next_obs/…``, ``action_dict/…``,
    extra arrays such as ``torques`` or ``interventions``;
  - ``path`` is where it is in the HDF5 demo group; ``dtype`` is the stored dtype
    (``float64`` for robosuite's states, ``bool``/``int64`` for flags);
  - ``shape`` is ``[T, D]`` and ``item_shape`` the source's shape after T: ``read_series``
    returns every array as a (T, D) float64 array, a (T,) array as D = 1 with
    ``item_shape`` ``[]``, a (T, a, b, …) array flattened row-major to D = a·b·… with
    ``item_shape`` ``[a, b, …]``. An exporter gets the source array back with
    ``values.reshape([T, *item_shape]).astype(dtype)`` (exact for every float32,
    float64, bool and integer below 2**53 value);
  - ``role`` is ``action`` (``actions``, ``action_dict/…``), ``state`` (``states``,
    ``obs/…``) or ``other``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .aloha import open_hdf5
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

DEFAULT_FPS = 20.0


def _fps(data: h5py.Group, options: dict) -> float:
    if options.get("fps"):
        return float(options["fps"])
    return _file_fps(data)


def _file_fps(data: h5py.Group) -> float:
    """robomimic's ``env_args["env_kwargs"]["control_freq"]``, or robosuite's own
    ``env_info["control_freq"]`` (a file straight from collect_human_demonstrations)."""
    for attr, path in (
        ("env_args", ("env_kwargs", "control_freq")),
        ("env_info", ("control_freq",)),
    ):
        raw = data.attrs.get(attr)
        if raw is None:
            continue
        try:
            value: Any = json.loads(raw)
            for key in path:
                value = value.get(key)
            if value is None:
                continue
            fps = float(value)
            return fps if math.isfinite(fps) and fps > 0 else DEFAULT_FPS
        except (ValueError, TypeError, AttributeError):
            continue
    return DEFAULT_FPS


def _masks(f: h5py.File, relative: Path) -> dict[str, set[str]]:
    """robomimic's filter keys: ``mask/<name>`` lists the demos of a split (``train``,
    ``valid``, ``20_percent``…)."""
    group = f.get("mask")
    if not isinstance(group, h5py.Group):
        return {}
    masks = {}
    for name, ds in group.items():
        if not isinstance(ds, h5py.Dataset) or ds.ndim != 1:
            continue
        try:
            masks[name] = {plain(v) for v in ds[...]}
        except (OSError, ValueError) as exc:
            raise DataError(relative, f"mask/{name} cannot be read ({exc})") from exc
    return masks


def _is_image(ds: h5py.Dataset) -> bool:
    return ds.ndim == 4 and ds.shape[-1] == 3 and ds.dtype == np.uint8


FIRST_ARRAYS = ("actions", "states")


def _array_order(name: str) -> tuple:
    """actions, states, then obs/…, then the rest, each alphabetically."""
    if name in FIRST_ARRAYS:
        return (FIRST_ARRAYS.index(name), name)
    return (2 if name.startswith("obs/") else 3, name)


@register
class RobomimicFormat(DatasetFormatReader):
    key = "robomimic"
    suffixes = (".hdf5", ".h5")

    def inspect(
        self, root: Path, files: list[Path], options: dict[str, Any], progress: Progress
    ) -> list[SampleSpec]:
        if not files:
            raise DataError(None, "No .hdf5 files found.")
        flip = bool(options.get("flip_cameras"))
        specs: list[SampleSpec] = []
        for relative in sorted(files, key=natural_key):
            with open_hdf5(root / relative) as f:
                check_hdf5_links(f, relative)
                data = f.get("data")
                if not isinstance(data, h5py.Group):
                    raise DataError(relative, "no /data group (not a robomimic/robosuite file)")
                demos = sorted((k for k in data.keys() if k.startswith("demo")), key=natural_key)
                if not demos:
                    raise DataError(relative, "/data holds no demo_N groups")
                fps = _fps(data, options)
                masks = _masks(f, relative)
                env_args = data.attrs.get("env_args")
                data_attrs = {k: plain(v) for k, v in data.attrs.items() if k not in {"env_args"}}
                for n, demo in enumerate(demos):
                    progress(n, len(demos), f"{relative}:{demo}")
                    spec = self._inspect_demo(data[demo], relative, demo, fps, flip)
                    if env_args is not None:
                        spec.metadata["env_args"] = plain(env_args)
                    if data_attrs:
                        spec.metadata["data_attrs"] = data_attrs
                    in_masks = sorted(name for name, members in masks.items() if demo in members)
                    if in_masks:
                        spec.metadata["mask"] = in_masks
                    specs.append(spec)
        return specs

    def _inspect_demo(self, group, relative: Path, demo: str, fps: float, flip: bool) -> SampleSpec:
        where = f"{relative} data/{demo}"
        if not isinstance(group.get("actions"), h5py.Dataset):
            raise DataError(where, "missing actions")
        arrays: dict[str, dict] = {}
        cameras: list[dict] = []
        lengths: dict[str, int] = {}

        def add_array(name: str, ds) -> None:
            if ds.ndim == 0 or ds.dtype.kind not in "biuf":
                return  # scalars and strings are not series
            item_shape = [int(n) for n in ds.shape[1:]]
            width = int(np.prod(item_shape)) if item_shape else 1
            if name == "actions" or name.startswith("action_dict/"):
                role = "action"
            elif name == "states" or name.startswith("obs/"):
                role = "state"
            else:
                role = "other"
            arrays[name] = {
                "role": role,
                "path": name,
                "shape": [ds.shape[0], width],
                "dtype": str(ds.dtype),
                "names": names_for(name, width),
            }
            arrays[name]["item_shape"] = item_shape
            lengths[name] = ds.shape[0]

        def visit(name: str, ds) -> None:
            if not isinstance(ds, h5py.Dataset):
                return
            if name.startswith("obs/") and _is_image(ds):
                cameras.append(
                    {
                        "name": name.removeprefix("obs/"),
                        "height": int(ds.shape[1]),
                        "width": int(ds.shape[2]),
                        "encoding": "raw",
                        "path": name,
                        "flip": flip,
                    }
                )
                lengths[name] = ds.shape[0]
            elif name.startswith("next_obs/") and _is_image(ds):
                skipped.append(name)  # the next frame's image: the same pictures, shifted
            else:
                add_array(name, ds)

        skipped: list[str] = []
        add_array("actions", group["actions"])
        group.visititems(lambda name, item: None if name == "actions" else visit(name, item))
        arrays = {name: arrays[name] for name in sorted(arrays, key=_array_order)}
        if len(set(lengths.values())) != 1:
            detail = ", ".join(f"{k} has {v}" for k, v in lengths.items())
            raise DataError(where, f"arrays disagree on the number of frames ({detail})")
        num_frames = lengths["actions"]
        if num_frames == 0:
            raise DataError(where, "the demo has no frames")
        # Touch the data so that truncated files fail here, not later: the last action and
        # the first and last frame of every camera.
        for path, index in [("actions", -1)] + [
            (c["path"], i) for c in cameras for i in (0, num_frames - 1)
        ]:
            try:
                group[path][index]
            except (OSError, ValueError, KeyError) as exc:
                raise DataError(where, f"{path} cannot be read ({exc})") from exc
        return SampleSpec(
            name=f"{relative.stem}/{demo}",
            num_frames=int(num_frames),
            fps=fps,
            cameras=cameras,
            arrays=arrays,
            source={"file": str(relative), "group": f"data/{demo}"},
            metadata=self._demo_metadata(group, skipped),
        )

    def _demo_metadata(self, group, skipped: list[str]) -> dict:
        metadata: dict[str, Any] = {}
        attrs = {k: plain(v) for k, v in group.attrs.items()}
        if "model_file" in attrs:
            metadata["model_file"] = attrs.pop("model_file")
        if attrs:
            metadata["demo_attrs"] = attrs
        if skipped:
            metadata["not_kept"] = skipped
        return metadata

    def read_frame(self, root: Path, sample, camera: str, index: int) -> np.ndarray:
        return self.read_frames(root, sample, camera, [index])[0]

    def read_frames(self, root: Path, sample, camera: str, indices) -> list[np.ndarray]:
        info: dict = next((c for c in sample.cameras if c["name"] == camera), {})
        with open_hdf5(root / sample.source["file"]) as f:
            ds = f[sample.source["group"]][f"obs/{camera}"]
            frames = [np.asarray(ds[i]) for i in indices]
        if info.get("flip"):
            return [np.ascontiguousarray(frame[::-1]) for frame in frames]
        return frames

    def read_series(self, root: Path, sample) -> dict[str, np.ndarray]:
        with open_hdf5(root / sample.source["file"]) as f:
            group = f[sample.source["group"]]
            series = {}
            for name, info in sample.arrays.items():
                values = np.asarray(group[info["path"]][...], dtype=np.float64)
                series[name] = values.reshape(len(values), -1)
            return series

    def read_series_rows(self, root: Path, sample, start: int, stop: int) -> dict[str, np.ndarray]:
        with open_hdf5(root / sample.source["file"]) as f:
            group = f[sample.source["group"]]
            return {
                name: np.asarray(group[info["path"]][start:stop])
                for name, info in sample.arrays.items()
            }
