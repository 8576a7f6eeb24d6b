"""A small LeRobot v3.0 writer for tests (the layout of ../shared/FORMATS.md)."""

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image


def _png(frame: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, "PNG")
    return buffer.getvalue()


def write_lerobot(root: Path, episodes: list[dict], *, fps: int = 10, video: bool = False) -> Path:
    """``episodes``: dicts with ``frames`` (T,H,W,3) uint8, ``state``/``action`` (T,D), ``task``."""
    root = Path(root)
    cam = "observation.images.cam_high"
    height, width = episodes[0]["frames"].shape[1:3]
    dim = episodes[0]["state"].shape[1]
    tasks = sorted({e["task"] for e in episodes})
    features = {
        "observation.state": {
            "dtype": "float32",
            "shape": [dim],
            "names": [f"j{i}" for i in range(dim)],
        },
        "action": {"dtype": "float32", "shape": [dim], "names": [f"j{i}" for i in range(dim)]},
        cam: {
            "dtype": "video" if video else "image",
            "shape": [height, width, 3],
            "names": ["height", "width", "channels"],
        },
        **{
            key: {"dtype": dtype, "shape": [1], "names": None}
            for key, dtype in (
                ("timestamp", "float32"),
                ("frame_index", "int64"),
                ("episode_index", "int64"),
                ("index", "int64"),
                ("task_index", "int64"),
            )
        },
    }
    total = sum(len(e["frames"]) for e in episodes)
    (root / "meta").mkdir(parents=True, exist_ok=True)
    info = {
        "codebase_version": "v3.0",
        "robot_type": "test",
        "fps": fps,
        "total_episodes": len(episodes),
        "total_frames": total,
        "total_tasks": len(tasks),
        "chunks_size": 1000,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 200,
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
        if video
        else None,
        "features": features,
        "splits": {"train": f"0:{len(episodes)}"},
    }
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=2))

    data_path = root / "data" / "chunk-000" / "file-000.parquet"
    data_path.parent.mkdir(parents=True)
    writer = None
    episode_rows = []
    start = 0
    for e_index, episode in enumerate(episodes):
        T = len(episode["frames"])
        columns = {
            "observation.state": pa.FixedSizeListArray.from_arrays(
                pa.array(episode["state"].astype(np.float32).ravel()), dim
            ),
            "action": pa.FixedSizeListArray.from_arrays(
                pa.array(episode["action"].astype(np.float32).ravel()), dim
            ),
        }
        if not video:
            columns[cam] = pa.array(
                [
                    {"bytes": _png(f), "path": f"frame_{i:06d}.png"}
                    for i, f in enumerate(episode["frames"])
                ],
                type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
            )
        columns.update(
            {
                "timestamp": pa.array(np.arange(T, dtype=np.float32) / fps),
                "frame_index": pa.array(np.arange(T, dtype=np.int64)),
                "episode_index": pa.array(np.full(T, e_index, dtype=np.int64)),
                "index": pa.array(np.arange(start, start + T, dtype=np.int64)),
                "task_index": pa.array(np.full(T, tasks.index(episode["task"]), dtype=np.int64)),
            }
        )
        table = pa.table(columns)
        writer = writer or pq.ParquetWriter(data_path, table.schema)
        writer.write_table(table)
        row = {
            "episode_index": e_index,
            "tasks": [episode["task"]],
            "length": T,
            "data/chunk_index": 0,
            "data/file_index": 0,
            "dataset_from_index": start,
            "dataset_to_index": start + T,
        }
        if video:
            row.update(
                {
                    f"videos/{cam}/chunk_index": 0,
                    f"videos/{cam}/file_index": 0,
                    f"videos/{cam}/from_timestamp": start / fps,
                    f"videos/{cam}/to_timestamp": (start + T) / fps,
                }
            )
        episode_rows.append(row)
        start += T
    writer.close()

    if video:
        _write_video(
            root / "videos" / cam / "chunk-000" / "file-000.mp4",
            np.concatenate([e["frames"] for e in episodes]),
            fps,
        )
    episodes_path = root / "meta" / "episodes" / "chunk-000" / "file-000.parquet"
    episodes_path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(episode_rows), episodes_path)
    pq.write_table(
        pa.table({"task_index": list(range(len(tasks))), "task": tasks}),
        root / "meta" / "tasks.parquet",
    )
    return root


def _write_video(path: Path, frames: np.ndarray, fps: int) -> None:
    import av

    path.parent.mkdir(parents=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv444p"
        stream.options = {"crf": "10", "g": "2"}
        for i, frame in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts = i
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
