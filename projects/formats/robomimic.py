"""robomimic / robosuite HDF5: many demos in one file under ``data/demo_N``.

Each demo has ``actions`` (T, A), usually ``states`` (T, S) and optionally
``obs/<key>``: 2-D arrays are proprioception, (T, H, W, 3) uint8 arrays are
camera images. The control rate comes from ``data.attrs["env_args"]`` when
present (robosuite's ``control_freq``), else 20 Hz.
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
    register,
)

DEFAULT_FPS = 20.0


def _fps(data: h5py.Group, options: dict) -> float:
    if options.get("fps"):
        return float(options["fps"])
    return _file_fps(data)


def _file_fps(data: h5py.Group) -> float:
    raw = data.attrs.get("env_args")
    if raw is not None:
        try:
            env_args = json.loads(raw)
            fps = float(env_args.get("env_kwargs", {}).get("control_freq", DEFAULT_FPS))
            return fps if math.isfinite(fps) and fps > 0 else DEFAULT_FPS
        except (ValueError, TypeError, AttributeError):
            pass
    return DEFAULT_FPS


@register
class RobomimicFormat(DatasetFormatReader):
    key = "robomimic"
    suffixes = (".hdf5", ".h5")

    def inspect(
        self, root: Path, files: list[Path], options: dict[str, Any], progress: Progress
    ) -> list[SampleSpec]:
        if not files:
            raise DataError(None, "No .hdf5 files found.")
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
                for n, demo in enumerate(demos):
                    progress(n, len(demos), f"{relative}:{demo}")
                    specs.append(self._inspect_demo(data[demo], relative, demo, fps))
        return specs

    def _inspect_demo(self, group, relative: Path, demo: str, fps: float) -> SampleSpec:
        where = f"{relative} data/{demo}"
        if "actions" not in group:
            raise DataError(where, "missing actions")
        arrays: dict[str, dict] = {}
        cameras: list[dict] = []
        lengths: dict[str, int] = {}

        def add_array(name: str, ds, role: str) -> None:
            if ds.ndim == 1:
                width = 1
            elif ds.ndim == 2:
                width = ds.shape[1]
            else:
                return
            arrays[name] = {
                "role": role,
                "path": ds.name.removeprefix(group.name + "/"),
                "shape": [ds.shape[0], width],
                "dtype": str(ds.dtype),
                "names": names_for(name, width),
            }
            lengths[name] = ds.shape[0]

        add_array("actions", group["actions"], "action")
        if "states" in group:
            add_array("states", group["states"], "state")
        obs = group.get("obs")
        if isinstance(obs, h5py.Group):
            for key in sorted(obs.keys()):
                ds = obs[key]
                if not isinstance(ds, h5py.Dataset):
                    continue
                if ds.ndim == 4 and ds.shape[-1] == 3 and ds.dtype == np.uint8:
                    cameras.append(
                        {
                            "name": key,
                            "height": int(ds.shape[1]),
                            "width": int(ds.shape[2]),
                            "encoding": "raw",
                            "path": f"obs/{key}",
                        }
                    )
                    lengths[f"obs/{key}"] = ds.shape[0]
                else:
                    add_array(f"obs/{key}", ds, "state")
        if len(set(lengths.values())) != 1:
            detail = ", ".join(f"{k} has {v}" for k, v in lengths.items())
            raise DataError(where, f"arrays disagree on the number of frames ({detail})")
        num_frames = lengths["actions"]
        if num_frames == 0:
            raise DataError(where, "the demo has no frames")
        try:  # touch the data so that truncated files fail here, not later
            group["actions"][num_frames - 1]
        except (OSError, ValueError) as exc:
            raise DataError(where, f"actions cannot be read ({exc})") from exc
        return SampleSpec(
            name=f"{relative.stem}/{demo}",
            num_frames=int(num_frames),
            fps=fps,
            cameras=cameras,
            arrays=arrays,
            source={"file": str(relative), "group": f"data/{demo}"},
        )

    def read_frame(self, root: Path, sample, camera: str, index: int) -> np.ndarray:
        with open_hdf5(root / sample.source["file"]) as f:
            return np.asarray(f[sample.source["group"]][f"obs/{camera}"][index])

    def read_frames(self, root: Path, sample, camera: str, indices) -> list[np.ndarray]:
        with open_hdf5(root / sample.source["file"]) as f:
            ds = f[sample.source["group"]][f"obs/{camera}"]
            return [np.asarray(ds[i]) for i in indices]

    def read_series(self, root: Path, sample) -> dict[str, np.ndarray]:
        with open_hdf5(root / sample.source["file"]) as f:
            group = f[sample.source["group"]]
            series = {}
            for name, info in sample.arrays.items():
                values = np.asarray(group[info["path"]][...], dtype=np.float64)
                series[name] = values.reshape(len(values), -1)
            return series
