"""HDF5 files for importer tests: ALOHA (raw and JPEG-compressed) and robomimic."""

import io
import json
from pathlib import Path

import h5py
import numpy as np
from PIL import Image


def frames(T: int, h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
    """Smooth, distinct frames (gradients that move with t and differ by seed)."""
    t = np.arange(T)[:, None, None]
    y = np.arange(h)[None, :, None]
    x = np.arange(w)[None, None, :]
    base = np.empty((T, h, w, 3), dtype=np.uint8)
    base[..., 0] = (x * 5 + t * 7 + seed * 31) % 256
    base[..., 1] = (y * 6 + t * 3 + seed * 17) % 256
    base[..., 2] = (x + y + t * 11 + seed * 13) % 256 // 2 + 64
    base[:, :6, :6] = [255, 0, 0]  # a red corner, to check channel order
    return base


def write_aloha(path: Path, T: int = 12, *, seed: int = 0, compressed: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    qpos = rng.normal(size=(T, 14)).astype(np.float32)
    action = rng.normal(size=(T, 14)).astype(np.float32)
    images = {"cam_high": frames(T, seed=seed), "cam_low": frames(T, seed=seed + 1)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["sim"] = False
        f.create_dataset("observations/qpos", data=qpos)
        f.create_dataset("observations/qvel", data=np.zeros_like(qpos))
        f.create_dataset("action", data=action)
        if compressed:
            encoded = {}
            for name, video in images.items():
                # ACT hands RGB arrays to OpenCV, which writes them as if they were BGR.
                encoded[name] = [_jpeg(frame[..., ::-1]) for frame in video]
            longest = max(len(b) for blobs in encoded.values() for b in blobs)
            lengths = np.zeros((len(images), T), dtype=np.int64)
            for c, name in enumerate(sorted(images)):
                padded = np.zeros((T, longest), dtype=np.uint8)
                for t, blob in enumerate(encoded[name]):
                    padded[t, : len(blob)] = np.frombuffer(blob, dtype=np.uint8)
                    lengths[c, t] = len(blob)
                f.create_dataset(f"observations/images/{name}", data=padded)
            f.create_dataset("compress_len", data=lengths)
            f.attrs["compress"] = True
        else:
            for name, video in images.items():
                f.create_dataset(
                    f"observations/images/{name}", data=video, chunks=(1, *video.shape[1:])
                )
    return {"qpos": qpos, "action": action, "images": images}


def _jpeg(frame: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def write_robomimic(
    path: Path, demos: int = 3, T: int = 8, *, images: bool = True, control_freq: int = 10
) -> dict:
    rng = np.random.default_rng(1)
    written = {}
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps(
            {"env_name": "Lift", "env_kwargs": {"control_freq": control_freq}}
        )
        for i in range(demos):
            group = data.create_group(f"demo_{i}")
            actions = rng.normal(size=(T, 7)).astype(np.float32)
            group.create_dataset("actions", data=actions)
            group.create_dataset("states", data=rng.normal(size=(T, 32)))
            group.create_dataset("obs/robot0_eef_pos", data=rng.normal(size=(T, 3)))
            if images:
                group.create_dataset("obs/agentview_image", data=frames(T, 16, 16, seed=i))
            group.attrs["num_samples"] = T
            written[f"demo_{i}"] = actions
    return written


def truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path
