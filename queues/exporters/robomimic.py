"""robomimic HDF5: every episode a demo of one file, as robomimic's ``SequenceDataset`` reads
it and robosuite replays it.

``dataset.hdf5``:

* ``data/demo_<n>`` (n from 0, in export order): ``actions`` (T, A), ``states`` (T, S) when
  the source has them (robosuite's simulator states: replayed with ``model_file``),
  ``obs/<key>`` for every observation and camera, ``rewards`` and ``dones``, and every other
  array of the source under its own path (``next_obs/…``, ``joint_torques``…), each in its
  source's shape and dtype; attributes ``num_samples`` (T) and the source demo's
  ``model_file`` and other attributes;
* ``data.attrs["env_args"]``: the source file's exact JSON text, or, for a file straight from
  robosuite's ``collect_human_demonstrations``, the one robomimic's ``convert_robosuite.py``
  builds from ``env``, ``env_info`` and ``repository_version``; ``data.attrs["total"]``;
* one environment and one set of observations per file: episodes whose environment differs
  (a source naming none counts as one) or whose ``obs/`` keys, ``actions`` or their shapes
  differ from the first demo's are refused (``SequenceDataset`` reads the same obs keys from
  every demo, and ``env_args`` is the whole file's);
* ``mask/<key>``: the filter keys, as byte strings of demo names (``split_train_val.py``'s
  layout). The sources' keys are kept for the demos that had them; ``train``/``valid`` are
  the sources' when they cover every demo, else a fixed 90/10 split of all demos;
* ``annotations/demo_<n>``: the demo's annotations as JSON records (outside ``data``, where
  robomimic looks at nothing).

A source without rewards or dones gets zeros and a ``done`` on its last frame (what
robomimic's ``dataset_states_to_obs.py`` writes with ``done_mode=2``); the manifest says so.
Cameras that robosuite stored upside down and the import turned right side up
(``flip_cameras``) are written back as robosuite renders them, so a policy sees what the
environment gives it. Episodes, arrays and frames stream a window of frames at a time.
"""

from __future__ import annotations

import json
from typing import Any

import h5py
import numpy as np

from tasks.records import annotation_record

from .base import (
    Episode,
    ExportContext,
    ExportError,
    array_dtype,
    array_shape,
    conventional_names,
    stream_episodes,
    window_size,
    write_hdf5_camera,
    write_hdf5_series,
    written_samples,
)

FILE = "dataset.hdf5"
# robomimic's EnvType.ROBOSUITE_TYPE (robomimic/envs/env_base.py).
ROBOSUITE_TYPE = 1
VALID_RATIO = 0.1
SPLIT_SEED = 0
# What the manifest's ``casts`` say of a key the source did not have.
FILLED = {
    "rewards": "absent in the source → zeros",
    "dones": "absent in the source → 0, 1 on the last frame",
}
ALIASES = {
    "actions": ("actions", "action"),
    "states": ("states",),
    "rewards": ("rewards", "reward", "next.reward"),
    "dones": ("dones", "done", "next.done"),
}


def _demo(n: int) -> str:
    return f"demo_{n}"


def array_paths(sample) -> dict[str, str]:
    """Where each source array goes in its demo group: robomimic's names (``actions``,
    ``states``, ``rewards``, ``dones``), a robomimic source's own path, else ``obs/<name>``
    for state arrays and ``<name>`` for the rest. The first action vector takes ``actions``
    when no array has that name."""
    arrays = sample.arrays or {}
    paths = conventional_names(arrays, ALIASES, (("actions", "action"),))
    taken = set(paths.values()) | {camera_path(c) for c in sample.cameras}
    for name, spec in arrays.items():
        if name in paths:
            continue
        own = str(spec.get("path") or "").strip("/") if sample.dataset.format == "robomimic" else ""
        if own and own not in taken:
            path = own
        else:
            flat = name.replace("/", "_")
            path = f"obs/{flat}" if spec.get("role") == "state" else flat
        while path in taken:
            path += "_"
        paths[name] = path
        taken.add(path)
    return paths


def camera_path(camera: dict) -> str:
    """``obs/<camera>``: robomimic's image observations end in ``_image``."""
    name = camera["name"].replace("/", "_")
    return f"obs/{name if name.endswith('_image') else name + '_image'}"


def env_args(metadata: dict) -> str | None:
    """The source's ``env_args`` text, or the one ``convert_robosuite.py`` builds from a raw
    robosuite file's attributes; None when the source names no environment."""
    if metadata.get("env_args"):
        return str(metadata["env_args"])
    attrs = metadata.get("data_attrs") or {}
    if attrs.get("env") and attrs.get("env_info"):
        try:
            kwargs = json.loads(attrs["env_info"])
        except (TypeError, ValueError):
            return None
        meta = {
            "type": ROBOSUITE_TYPE,
            "env_name": attrs["env"],
            "env_version": attrs.get("repository_version"),
            "env_kwargs": kwargs,
        }
        return json.dumps(meta, indent=4)
    return None


def _attr(value: Any) -> Any:
    """A JSON-friendly value as an HDF5 attribute (mappings and mixed lists as JSON text)."""
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, list) and not all(isinstance(v, (int, float, str)) for v in value):
        return json.dumps(value)
    if value is None:
        return "null"
    return value


def _frames(window: np.ndarray, camera: dict) -> np.ndarray:
    # The import turned robosuite's upside-down renders right side up: write them back.
    return np.ascontiguousarray(window[:, ::-1]) if camera.get("flip") else window


def observation_layout(sample) -> dict[str, tuple]:
    """What robomimic's ``SequenceDataset`` reads of every demo alike: the ``obs/`` keys
    (arrays and cameras) and ``actions``, with their per-frame shapes and dtypes."""
    arrays = sample.arrays or {}
    layout = {
        path: (array_shape(arrays[name]), array_dtype(arrays[name]))
        for name, path in array_paths(sample).items()
        if path == "actions" or path.startswith("obs/")
    }
    for camera in sample.cameras:
        layout[camera_path(camera)] = ((camera["height"], camera["width"], 3), "uint8")
    return layout


def _mixed(sample, first, what: str) -> ExportError:
    return ExportError(
        f"{sample.name}: its {what} differ from the earlier demos' ({first.name}); a "
        "robomimic file holds one environment with one set of observations — export each "
        "source's tasks separately"
    )


def write(ctx: ExportContext, out) -> None:
    env: str | None = None
    envs_seen: set[str | None] = set()
    first: Any = None
    layout: dict[str, tuple] = {}
    masks: dict[str, list[str]] = {}
    data_attrs: dict[str, Any] = {}
    total = 0
    filled: set[str] = set()
    with h5py.File(out / FILE, "w") as f:
        data = f.create_group("data")
        notes = f.create_group("annotations")
        for n, episode in enumerate(stream_episodes(ctx)):
            sample = episode.sample
            metadata = sample.metadata or {}
            here = env_args(metadata)
            envs_seen.add(here)  # a source naming no environment counts as one
            if len(envs_seen) > 1:
                raise ExportError(
                    f"{sample.name}: its environment (env_args) differs from the earlier "
                    f"demos'{' (one of them names none)' if None in envs_seen else ''}; a "
                    "robomimic file holds one environment — export each environment's tasks "
                    "separately"
                )
            if first is None:
                first, layout = sample, observation_layout(sample)
            elif observation_layout(sample) != layout:
                raise _mixed(sample, first, "observations (obs/ keys, actions or their shapes)")
            if here is not None:
                env = here
                data_attrs = {
                    k: v
                    for k, v in (metadata.get("data_attrs") or {}).items()
                    if k not in {"total", "env_args"}
                }
            demo = data.create_group(_demo(n))
            filled |= _write_demo(demo, episode)
            for key in metadata.get("mask") or []:
                masks.setdefault(str(key), []).append(_demo(n))
            _annotations(notes, _demo(n), episode.annotations)
            total += sample.num_frames
            ctx.written.append((sample.pk, len(episode.annotations)))
            ctx.count("episodes")
            ctx.count("frames", sample.num_frames)
            ctx.count("annotations", len(episode.annotations))
            ctx.progress(ctx.fraction(), sample.name)
        if not ctx.written:
            raise ExportError("No episodes to export (the tasks have no datasets with episodes).")
        for key, value in data_attrs.items():
            data.attrs[key] = _attr(value)
        if env is not None:
            data.attrs["env_args"] = env
        data.attrs["total"] = total
        demos = [_demo(n) for n in range(len(ctx.written))]
        _masks(f, demos, masks)
    for key in sorted(filled):
        ctx.casts[key] = FILLED[key]


def _write_demo(demo: h5py.Group, episode: Episode) -> set[str]:
    """One demo's arrays, frames and attributes; answers the keys it had to fill."""
    sample = episode.sample
    frames = sample.num_frames
    metadata = sample.metadata or {}
    demo.attrs["num_samples"] = frames
    if metadata.get("model_file") is not None:
        demo.attrs["model_file"] = str(metadata["model_file"])
    for key, value in (metadata.get("demo_attrs") or {}).items():
        if key not in {"num_samples", "model_file"}:
            demo.attrs[key] = _attr(value)
    demo.attrs["stagecraft"] = json.dumps(
        {
            "task_id": episode.task.pk,
            "task": episode.task.name,
            "sample": sample.name,
            "dataset": sample.dataset.name,
            "blueprint": f"{episode.task.blueprint.name} v{episode.task.blueprint.version}",
        }
    )
    paths = array_paths(sample)
    size = window_size(sample)
    write_hdf5_series(demo, episode, paths, frames, size)
    filled = set()
    if "actions" not in paths.values():
        raise ExportError(f"{sample.name}: no action array (robomimic needs actions)")
    if "rewards" not in paths.values():
        demo.create_dataset("rewards", data=np.zeros(frames, np.float64))
        filled.add("rewards")
    if "dones" not in paths.values():
        dones = np.zeros(frames, np.int64)
        dones[-1] = 1
        demo.create_dataset("dones", data=dones)
        filled.add("dones")
    for camera in sample.cameras:
        write_hdf5_camera(
            demo, camera_path(camera), episode, camera, frames, size,
            convert=lambda window, camera=camera: _frames(window, camera),
        )  # fmt: skip
    return filled


def _masks(f: h5py.File, demos: list[str], kept: dict[str, list[str]]) -> None:
    """The sources' filter keys, and ``train``/``valid`` over every demo: the sources' when
    they cover them all, else a fixed split (``split_train_val.py``'s 10 % by default, with
    a fixed seed so two exports split alike)."""
    masks = dict(kept)
    covered = set(masks.get("train", [])) | set(masks.get("valid", []))
    if demos and covered != set(demos):
        order = np.random.default_rng(SPLIT_SEED).permutation(len(demos))
        valid = {demos[i] for i in order[: int(VALID_RATIO * len(demos))]}
        masks["train"] = [d for d in demos if d not in valid]
        masks["valid"] = [d for d in demos if d in valid]
    for key, members in sorted(masks.items()):
        f.create_dataset(f"mask/{key}", data=np.array(members, dtype="S"))


def _annotations(group: h5py.Group, demo: str, annotations) -> None:
    records = [json.dumps(annotation_record(a)) for a in annotations]
    ds = group.create_dataset(demo, data=records, dtype=h5py.string_dtype())
    ds.attrs["count"] = len(annotations)


def validate(ctx: ExportContext, out) -> None:
    """The file against its sources, the way ``SequenceDataset`` reads it: every demo named
    ``demo_<n>`` with ``num_samples``, every array of the source bit-exact under its path,
    the last frame of every camera, ``model_file`` and ``env_args`` kept, ``mask/train`` and
    ``mask/valid`` covering every demo, the annotation count."""
    path = out / FILE
    with h5py.File(path, "r") as f:
        data = f["data"]
        demos = sorted(data.keys(), key=lambda k: int(k[5:]))
        if len(demos) != len(ctx.written):
            raise ExportError(f"{FILE}: {len(demos)} demos, not {len(ctx.written)}")
        split = {m.decode() for key in ("train", "valid") for m in f[f"mask/{key}"][...]}
        if demos and split != set(demos):
            raise ExportError(f"{FILE}: mask/train and mask/valid do not cover every demo")
        for n, sample, count in written_samples(ctx):
            demo = data[_demo(n)]
            where = f"{FILE} data/{_demo(n)}"
            frames = sample.num_frames
            metadata = sample.metadata or {}
            if int(demo.attrs["num_samples"]) != frames or demo["actions"].shape[0] != frames:
                raise ExportError(f"{where}: num_samples or actions differ from {frames} frames")
            if metadata.get("model_file") is not None and demo.attrs.get("model_file") != str(
                metadata["model_file"]
            ):
                raise ExportError(f"{where}: model_file differs from the source's")
            env = env_args(metadata)
            if env is not None and data.attrs.get("env_args") != env:
                raise ExportError(f"{FILE}: env_args differs from {sample.name}'s")
            episode = Episode(None, sample, [])
            paths = array_paths(sample)
            for start, rows in episode.series_windows(window_size(sample)):
                for name, want in rows.items():
                    kept = demo[paths[name]]
                    if kept.dtype != want.dtype or kept.shape[1:] != want.shape[1:]:
                        raise ExportError(
                            f"{where}: {paths[name]} is {kept.shape} {kept.dtype}, the "
                            f"source's {name} {want.shape[1:]} {want.dtype}"
                        )
                    if not np.array_equal(
                        kept[start : start + len(want)], want, equal_nan=want.dtype.kind == "f"
                    ):
                        raise ExportError(f"{where}: {paths[name]} differs from the source's")
            for camera in sample.cameras:
                images = demo[camera_path(camera)]
                source = episode.frames(camera["name"], [frames - 1])[0]
                if images.shape[0] != frames or not np.array_equal(
                    _frames(images[frames - 1 : frames], camera)[0], source
                ):
                    raise ExportError(f"{where}: camera {camera['name']} differs from the source")
            if int(f[f"annotations/{_demo(n)}"].attrs["count"]) != count:
                raise ExportError(f"{where}: annotation count differs")
