"""A LeRobot v2.1 writer for tests, following ../shared/FORMATS.md.

lerobot's own v2.1 writer is not available offline (lerobot >= 0.4 writes and reads
v3.0 only), so this writes the layout with pyarrow and PyAV the way lerobot 0.3 did:
one parquet per episode under ``data/chunk-000/``, one AV1 (libsvtav1, yuv420p, GOP 2)
mp4 per episode and camera under ``videos/chunk-000/<key>/``, ``meta/episodes.jsonl``,
``meta/tasks.jsonl`` and ``meta/episodes_stats.jsonl``.

Checked against lerobot's own v2.1 reader (2026-11-29): lerobot 0.6.1's
``convert_dataset_v21_to_v30`` (offline, ``--root``) converts what this writes, and
``../shared/tools/lerobot-check/run`` says VALID for the result (2 episodes, 15 frames).
"""

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CAMERA = "observation.images.top"


def write_lerobot_v21(
    root: Path,
    episodes: list[dict],
    *,
    fps: int = 10,
    codec: str = "libsvtav1",
    faststart: bool = True,
) -> Path:
    """``episodes``: dicts with ``frames`` (T,H,W,3) uint8, ``state``/``action`` (T,D),
    optional ``velocity`` (T,D), and ``task``."""
    root = Path(root)
    height, width = episodes[0]["frames"].shape[1:3]
    dim = episodes[0]["state"].shape[1]
    tasks = sorted({e["task"] for e in episodes})
    vector = {
        "dtype": "float32",
        "shape": [dim],
        "names": {"motors": [f"m{i}" for i in range(dim)]},
    }
    features = {
        "observation.state": vector,
        "action": vector,
        CAMERA: {
            "dtype": "video",
            "shape": [height, width, 3],
            "names": ["height", "width", "channels"],
            "info": {
                "video.fps": float(fps),
                "video.height": height,
                "video.width": width,
                "video.channels": 3,
                "video.codec": "av1",
                "video.pix_fmt": "yuv420p",
                "video.is_depth_map": False,
                "has_audio": False,
            },
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
    if "velocity" in episodes[0]:
        features["observation.velocity"] = vector
    total = sum(len(e["frames"]) for e in episodes)
    (root / "meta").mkdir(parents=True, exist_ok=True)
    info = {
        "codebase_version": "v2.1",
        "robot_type": "aloha",
        "total_episodes": len(episodes),
        "total_frames": total,
        "total_tasks": len(tasks),
        "total_videos": len(episodes),
        "total_chunks": 1,
        "chunks_size": 1000,
        "fps": fps,
        "splits": {"train": f"0:{len(episodes)}"},
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": (
            "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
        ),
        "features": features,
    }
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    (root / "meta" / "tasks.jsonl").write_text(
        "".join(json.dumps({"task_index": i, "task": t}) + "\n" for i, t in enumerate(tasks))
    )
    episode_lines, stats_lines = [], []
    start = 0
    for e_index, episode in enumerate(episodes):
        T = len(episode["frames"])
        columns = {
            # datasets writes Sequence features as lists of float32
            "observation.state": pa.array(
                list(episode["state"].astype(np.float32)), pa.list_(pa.float32())
            ),
            "action": pa.array(list(episode["action"].astype(np.float32)), pa.list_(pa.float32())),
        }
        if "velocity" in episode:
            columns["observation.velocity"] = pa.array(
                list(episode["velocity"].astype(np.float32)), pa.list_(pa.float32())
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
        path = root / "data" / "chunk-000" / f"episode_{e_index:06d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(columns), path)
        write_video(
            root / "videos" / "chunk-000" / CAMERA / f"episode_{e_index:06d}.mp4",
            episode["frames"],
            fps,
            codec=codec,
            faststart=faststart,
        )
        episode_lines.append({"episode_index": e_index, "tasks": [episode["task"]], "length": T})
        state = episode["state"].astype(np.float32)
        stats_lines.append(
            {
                "episode_index": e_index,
                "stats": {
                    "observation.state": {
                        "min": state.min(0).tolist(),
                        "max": state.max(0).tolist(),
                        "mean": state.mean(0).tolist(),
                        "std": state.std(0).tolist(),
                        "count": [T],
                    }
                },
            }
        )
        start += T
    for name, lines in (("episodes.jsonl", episode_lines), ("episodes_stats.jsonl", stats_lines)):
        (root / "meta" / name).write_text("".join(json.dumps(line) + "\n" for line in lines))
    return root


def write_video(
    path: Path, frames: np.ndarray, fps: int, *, codec: str = "libsvtav1", faststart: bool = True
) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": "2", "crf": "30"} if codec == "libsvtav1" else {"g": "2"}
        for i, frame in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts = i
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
