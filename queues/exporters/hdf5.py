"""One HDF5 file per episode in the ALOHA layout, plus an ``/annotations`` group."""

import json

import h5py
import numpy as np

from tasks.records import annotation_record

from .base import ExportError

STATE = {"qpos": "observations/qpos", "qvel": "observations/qvel", "effort": "observations/effort"}


def _name(n: int) -> str:
    return f"episode_{n}.hdf5"


def write(ctx, out) -> None:
    for n, episode in enumerate(ctx.episodes):
        series = episode.series()
        state = [k for k, v in episode.sample.arrays.items() if v.get("role") == "state"]
        action = [k for k, v in episode.sample.arrays.items() if v.get("role") == "action"]
        with h5py.File(out / _name(n), "w") as f:
            f.attrs.update(
                task_id=episode.task.pk,
                task=episode.task.name,
                sample=episode.sample.name,
                dataset=episode.sample.dataset.name,
                blueprint=f"{episode.task.blueprint.name} v{episode.task.blueprint.version}",
                stages=json.dumps([r.stage_key for r in episode.task.runs.all()]),
                export_version=ctx.export.version,
                fps=episode.sample.fps,
                sim=False,
            )
            qpos = series[state[0]] if state else np.zeros((episode.sample.num_frames, 0))
            f.create_dataset("observations/qpos", data=qpos.astype(np.float32))
            for key in state[1:]:
                f.create_dataset(
                    f"observations/{key.replace('/', '_')}", data=series[key].astype(np.float32)
                )
            act = series[action[0]] if action else np.zeros((episode.sample.num_frames, 0))
            f.create_dataset("action", data=act.astype(np.float32))
            for camera in episode.sample.cameras:
                frames = np.stack(episode.frames(camera["name"], range(episode.sample.num_frames)))
                f.create_dataset(
                    f"observations/images/{camera['name']}",
                    data=frames,
                    chunks=(1, *frames.shape[1:]),
                    compression="gzip",
                    compression_opts=4,
                )
            _annotations(f.create_group("annotations"), episode.annotations)
        ctx.count("episodes")
        ctx.count("frames", episode.sample.num_frames)
        ctx.count("annotations", len(episode.annotations))
        ctx.progress((n + 1) / max(len(ctx.episodes), 1), episode.sample.name)


def _annotations(group, annotations) -> None:
    segments = [a for a in annotations if a.kind == "segment"]
    boxes = [a for a in annotations if a.kind == "box"]
    text = h5py.string_dtype()
    group.create_dataset(
        "segments",
        data=np.array([[a.data["start"], a.data["end"]] for a in segments], dtype=np.int64).reshape(
            -1, 2
        ),
    )
    group.create_dataset("segment_labels", data=[a.label for a in segments], dtype=text)
    group.create_dataset(
        "boxes",
        data=np.array(
            [
                [a.data.get("frame", 0), a.data["x"], a.data["y"], a.data["w"], a.data["h"]]
                for a in boxes
            ],
            dtype=np.float64,
        ).reshape(-1, 5),
    )
    group.create_dataset("box_labels", data=[a.label for a in boxes], dtype=text)
    group.create_dataset(
        "box_cameras", data=[a.data.get("camera") or "" for a in boxes], dtype=text
    )
    # Every annotation, with classes, attributes and invalid flags, as JSON records.
    records = [json.dumps(annotation_record(a)) for a in annotations]
    group.create_dataset("records", data=records, dtype=text)
    group.attrs["count"] = len(annotations)


def validate(ctx, out) -> None:
    for n, episode in enumerate(ctx.episodes):
        path = out / _name(n)
        with h5py.File(path, "r") as f:
            frames = episode.sample.num_frames
            for key in ("observations/qpos", "action"):
                if f[key].shape[0] != frames:
                    raise ExportError(
                        f"{path.name}: {key} has {f[key].shape[0]} frames, not {frames}"
                    )
            for camera in episode.sample.cameras:
                images = f[f"observations/images/{camera['name']}"]
                if images.shape[0] != frames:
                    raise ExportError(f"{path.name}: camera {camera['name']} frame count differs")
                source = episode.frames(camera["name"], [frames - 1])[0]
                if not np.array_equal(images[frames - 1], source):
                    raise ExportError(
                        f"{path.name}: camera {camera['name']} frames differ from the source"
                    )
            if int(f["annotations"].attrs["count"]) != len(episode.annotations):
                raise ExportError(f"{path.name}: annotation count differs")
