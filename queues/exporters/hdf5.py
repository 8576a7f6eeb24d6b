"""One HDF5 file per episode in the ALOHA layout, plus an ``/annotations`` group.

Every array of the source is kept, in its source's shape and dtype (an N-D observation
stays N-D, a (T,) reward (T,)), under its conventional ALOHA name (``/observations/qpos``,
``/observations/qvel``, ``/observations/effort``, ``/action``, ``/base_action``; other arrays
where the source kept them, or under ``/observations/``); the root attribute ``sim`` says
what the source said. Cameras are raw (T, H, W, 3) frames (lossless, the default) or, with
the ``compress: "jpeg"`` option, ALOHA's compressed layout (padded JPEG rows and
``/compress_len``, as mobile ALOHA's recorder writes them). Episodes stream from the
database a chunk of tasks at a time; frames and arrays are copied a window of frames at a
time (``window_size``): memory stays bounded whatever the number or length of the episodes.
"""

from __future__ import annotations

import io
import json

import h5py
import numpy as np
from PIL import Image

from tasks.records import annotation_record

from .base import (
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

# Conventional ALOHA paths of the arrays other formats name differently (LeRobot, robomimic).
ALIASES = {
    "observations/qpos": ("qpos", "observation.state"),
    "observations/qvel": ("qvel", "observation.velocity"),
    "observations/effort": ("effort", "observation.effort"),
    "action": ("action", "actions"),
    "base_action": ("base_action",),
}


def _name(n: int) -> str:
    return f"episode_{n}.hdf5"


def array_paths(arrays: dict[str, dict]) -> dict[str, str]:
    """Where each source array goes (array name → HDF5 path): its conventional name, the
    source's own path for an ALOHA file, else ``observations/<name>`` (state and other
    arrays) or ``<name>`` (actions). ACT needs ``qpos`` and ``action``: when no array has
    those names, the first state and action vectors (not N-D arrays) take them."""
    paths = conventional_names(
        arrays, ALIASES, (("observations/qpos", "state"), ("action", "action"))
    )
    taken = set(paths.values())
    for name, spec in arrays.items():
        if name in paths:
            continue
        own = str(spec.get("path") or "").strip("/")
        if own and own not in taken and not own.startswith("observations/images"):
            path = own
        else:
            flat = name.replace("/", "_")
            path = flat if spec.get("role") == "action" else f"observations/{flat}"
        while path in taken:
            path += "_"
        paths[name] = path
        taken.add(path)
    return paths


def write(ctx, out) -> None:
    n = 0
    for episode in stream_episodes(ctx):
        sample = episode.sample
        frames = sample.num_frames
        with h5py.File(out / _name(n), "w") as f:
            f.attrs.update(
                task_id=episode.task.pk,
                task=episode.task.name,
                sample=sample.name,
                dataset=sample.dataset.name,
                blueprint=f"{episode.task.blueprint.name} v{episode.task.blueprint.version}",
                stages=json.dumps([r.stage_key for r in episode.runs]),
                export_version=ctx.export.version,
                fps=sample.fps,
                # ACT's loader aligns actions by it: the source's word, False when silent.
                sim=bool((sample.metadata or {}).get("sim", False)),
            )
            # Every array in its source's shape and dtype, written a window of frames at a
            # time (a (T, 84, 84, 1) depth array stays (T, 84, 84, 1), a (T,) reward (T,)).
            paths = array_paths(sample.arrays)
            size = window_size(sample)
            write_hdf5_series(f, episode, paths, frames, size)
            if "observations/qpos" not in paths.values():
                f.create_dataset("observations/qpos", data=np.zeros((frames, 0), np.float32))
            if "action" not in paths.values():
                f.create_dataset("action", data=np.zeros((frames, 0), np.float32))
            f.attrs["arrays"] = json.dumps(paths)
            if ctx.options.get("compress") == "jpeg":
                f.attrs["compress"] = True
                _jpeg_cameras(f, episode, size)
            else:
                for camera in sample.cameras:
                    path = f"observations/images/{camera['name']}"
                    write_hdf5_camera(f, path, episode, camera, frames, size)
            _annotations(f.create_group("annotations"), episode.annotations)
        ctx.written.append((sample.pk, len(episode.annotations)))
        ctx.count("episodes")
        ctx.count("frames", frames)
        ctx.count("annotations", len(episode.annotations))
        ctx.progress(ctx.fraction(), sample.name)
        n += 1


# mobile ALOHA's record_episodes.py encodes at quality 50 ("tried as low as 20, seems fine").
JPEG_QUALITY = 50
# An HDF5 chunk of padded JPEG rows: this much wider than the first window's longest JPEG.
JPEG_CHUNK_SLACK = 1.25


def encode_jpeg(frame: np.ndarray) -> bytes:
    """A frame as ACT's recorder stores it: ``cv2.imencode('.jpg', rgb)`` takes the RGB array
    for BGR, so the JPEG holds red and blue swapped and ``cv2.imdecode`` gives the RGB array
    back (Pillow, which reads a JPEG as RGB, is given the array reversed to write the same)."""
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame[..., ::-1])).save(
        out, format="JPEG", quality=JPEG_QUALITY
    )
    return out.getvalue()


def jpeg_rows(episode, camera: str, start: int, stop: int) -> list[bytes]:
    """Frames ``start``..``stop`` of a camera as JPEGs in ACT's layout: the source's own
    bytes when it stores them so (an ALOHA file's compressed cameras), else encoded."""
    from projects.dataset_files import sample_root
    from projects.formats import get_format

    sample = episode.sample
    reader = get_format(sample.dataset.format)
    copy = getattr(reader, "read_jpeg_rows", None)
    stored = copy(sample_root(sample), sample, camera, start, stop) if copy else None
    if stored is not None:
        return stored
    return [encode_jpeg(frame) for frame in episode.frames(camera, range(start, stop))]


def _jpeg_cameras(f: h5py.File, episode, size: int) -> None:
    """ALOHA's compressed layout (``record_episodes.py``): each camera a (T, padded) uint8
    array of zero-padded JPEG bytes, ``/compress_len`` (n_cams, T) their lengths (float32,
    h5py's default there), cameras in name order. Streamed: a camera's rows widen when a
    longer frame comes (new bytes are HDF5's fill value, 0), then every camera is padded to
    the longest frame of the episode as the recorder does."""
    sample = episode.sample
    frames = sample.num_frames
    cameras = sorted(sample.cameras, key=lambda c: c["name"])
    lengths = np.zeros((len(cameras), frames), np.float32)
    written = []
    for c, camera in enumerate(cameras):
        images = None
        for start in range(0, frames, size):
            encoded = jpeg_rows(episode, camera["name"], start, min(start + size, frames))
            widest = max(len(e) for e in encoded)
            if images is None:
                # A row is one chunk (as the recorder's chunks=(1, padded)) unless a later
                # frame is much longer than the first window's: a chunk is stored whole, so
                # one far wider than the JPEGs would be mostly zeros on disk.
                chunk = -(-int(widest * JPEG_CHUNK_SLACK) // 1024) * 1024
                images = f.create_dataset(
                    f"observations/images/{camera['name']}",
                    shape=(frames, 0),
                    maxshape=(frames, None),
                    dtype=np.uint8,
                    chunks=(1, chunk),
                    fillvalue=0,
                )
            if widest > images.shape[1]:
                images.resize(widest, axis=1)
            rows = np.zeros((len(encoded), images.shape[1]), np.uint8)
            for i, data in enumerate(encoded):
                rows[i, : len(data)] = np.frombuffer(data, np.uint8)
                lengths[c, start + i] = len(data)
            images[start : start + len(encoded)] = rows
        if images is not None:
            written.append(images)
    padded = max((ds.shape[1] for ds in written), default=0)
    for images in written:
        images.resize(padded, axis=1)
    f.create_dataset("compress_len", data=lengths)


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
    """Each file against its source: frame counts, every array under its path, the last
    frame of every camera, the annotation count."""
    from .base import Episode

    for n, sample, count in written_samples(ctx):
        path = out / _name(n)
        episode = Episode(None, sample, [])
        with h5py.File(path, "r") as f:
            frames = sample.num_frames
            for key in ("observations/qpos", "action"):
                if f[key].shape[0] != frames:
                    raise ExportError(
                        f"{path.name}: {key} has {f[key].shape[0]} frames, not {frames}"
                    )
            paths = array_paths(sample.arrays)
            for name, where in paths.items():
                spec = sample.arrays[name]
                kept = f[where]
                shape, dtype = (frames, *array_shape(spec)), np.dtype(array_dtype(spec))
                if kept.shape != shape or kept.dtype != dtype:
                    raise ExportError(
                        f"{path.name}: {where} is {kept.shape} {kept.dtype}, the source's "
                        f"{name} {shape} {dtype}"
                    )
            for start, rows in episode.series_windows(window_size(sample)):
                for name, want in rows.items():
                    kept = f[paths[name]][start : start + len(want)]
                    if not np.array_equal(kept, want, equal_nan=want.dtype.kind == "f"):
                        raise ExportError(
                            f"{path.name}: {paths[name]} differs from the source's {name}"
                        )
            compressed = "compress_len" in f
            for c, camera in enumerate(sorted(sample.cameras, key=lambda c: c["name"])):
                images = f[f"observations/images/{camera['name']}"]
                if images.shape[0] != frames:
                    raise ExportError(f"{path.name}: camera {camera['name']} frame count differs")
                if compressed:
                    size = int(f["compress_len"][c, frames - 1])
                    stored = images[frames - 1, :size].tobytes()
                    wanted = jpeg_rows(episode, camera["name"], frames - 1, frames)[0]
                    if stored != wanted or images[frames - 1, size:].any():
                        raise ExportError(
                            f"{path.name}: camera {camera['name']}'s JPEG bytes differ from "
                            "the source frame's"
                        )
                elif not np.array_equal(
                    images[frames - 1], episode.frames(camera["name"], [frames - 1])[0]
                ):
                    raise ExportError(
                        f"{path.name}: camera {camera['name']} frames differ from the source"
                    )
            if int(f["annotations"].attrs["count"]) != count:
                raise ExportError(f"{path.name}: annotation count differs")
