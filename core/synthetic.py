"""Synthetic robot episodes for the demo and the tests: a rendered tabletop scene.

A top camera sees a table with coloured blocks and a bin; a two-finger gripper
approaches a block, grasps it, carries it to the bin and releases it. A wrist
camera sees a close-up around the gripper. Joint trajectories are smooth
(minimum-jerk between key poses) and follow the gripper, in the 14-joint ALOHA
layout (left arm resting, right arm working). Files are written in the
ALOHA/ACT HDF5 layout, so the demo goes through the real importer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

TABLE = np.array([196, 178, 150], dtype=np.float32)
BLOCK_COLOURS = {
    "red": (208, 64, 58),
    "blue": (52, 104, 204),
    "green": (64, 160, 90),
    "yellow": (230, 190, 60),
}


@dataclass
class Episode:
    top: np.ndarray  # (T, H, W, 3) uint8
    wrist: np.ndarray  # (T, h, w, 3) uint8
    qpos: np.ndarray  # (T, 14) float32
    qvel: np.ndarray
    action: np.ndarray
    grasped: str  # colour of the block moved
    grasp_frames: tuple[int, int]  # gripper closed from..to (inclusive)


def _min_jerk(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    s = np.linspace(0.0, 1.0, n)
    s = 10 * s**3 - 15 * s**4 + 6 * s**5
    return a[None, :] + (b - a)[None, :] * s[:, None]


def _path(keys: list[np.ndarray], durations: list[int]) -> np.ndarray:
    parts = [_min_jerk(keys[i], keys[i + 1], d) for i, d in enumerate(durations)]
    return np.concatenate(parts)


def _draw_rect(img, cx, cy, w, h, colour, alpha=1.0):
    H, W = img.shape[:2]
    x0, x1 = int(max(0, cx - w / 2)), int(min(W, cx + w / 2))
    y0, y1 = int(max(0, cy - h / 2)), int(min(H, cy + h / 2))
    if x1 > x0 and y1 > y0:
        img[y0:y1, x0:x1] = (1 - alpha) * img[y0:y1, x0:x1] + alpha * np.asarray(colour)


def _render(size, blocks, bin_xy, grip, opening, carried, zoom=1.0, centre=None):
    """Render the scene; coordinates are in table units (0..1)."""
    H = W = size
    img = np.empty((H, W, 3), dtype=np.float32)
    ys = np.linspace(0, 1, H)[:, None, None]
    img[:] = TABLE * (0.92 + 0.08 * ys)
    cx0, cy0 = centre if centre is not None else (0.5, 0.5)

    def to_px(x, y):
        return ((x - cx0) * zoom + 0.5) * W, ((y - cy0) * zoom + 0.5) * H

    scale = W * zoom
    bx, by = to_px(*bin_xy)
    _draw_rect(img, bx, by, 0.24 * scale, 0.24 * scale, (90, 90, 96))
    _draw_rect(img, bx, by, 0.19 * scale, 0.19 * scale, (150, 150, 158))
    gx, gy, gz = grip
    for colour, (x, y) in blocks.items():
        if colour == carried:
            x, y = gx, gy
        px, py = to_px(x, y)
        lift = 1.0 + (0.35 * gz if colour == carried else 0.0)
        _draw_rect(img, px + 1.5, py + 1.5, 0.1 * scale * lift, 0.1 * scale * lift, (0, 0, 0), 0.25)
        _draw_rect(img, px, py, 0.1 * scale * lift, 0.1 * scale * lift, BLOCK_COLOURS[colour])
        _draw_rect(img, px - 0.015 * scale, py - 0.015 * scale, 0.04 * scale, 0.04 * scale,
                   (255, 255, 255), 0.18)  # fmt: skip
    # The gripper: a palm and two fingers; higher means bigger and with a softer shadow.
    px, py = to_px(gx, gy)
    size_ = (0.09 + 0.08 * gz) * scale
    _draw_rect(img, px + 3 + 6 * gz, py + 3 + 6 * gz, size_, size_ * 0.5, (0, 0, 0), 0.2)
    gap = (0.03 + 0.06 * opening) * scale
    _draw_rect(img, px, py - size_ * 0.1, size_, size_ * 0.35, (48, 52, 60))
    for side in (-1, 1):
        _draw_rect(img, px + side * gap, py + size_ * 0.2, size_ * 0.16, size_ * 0.5, (70, 74, 84))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_episode(
    seed: int, *, size: int = 96, wrist_size: int = 64, frames: int | None = None
) -> Episode:
    """One pick-and-place episode, fully determined by ``seed``."""
    rng = np.random.default_rng(seed)
    colours = list(rng.choice(list(BLOCK_COLOURS), size=3, replace=False))
    blocks = {c: (float(rng.uniform(0.12, 0.55)), float(rng.uniform(0.15, 0.85))) for c in colours}
    target = colours[0]
    bin_xy = (float(rng.uniform(0.72, 0.85)), float(rng.uniform(0.25, 0.75)))
    home = np.array([0.5, 0.95, 1.0, 1.0])  # x, y, height, gripper opening
    bx, by = blocks[target]
    keys = [
        home,
        np.array([bx, by, 0.8, 1.0]),
        np.array([bx, by, 0.05, 1.0]),
        np.array([bx, by, 0.05, 0.0]),
        np.array([bx, by, 0.7, 0.0]),
        np.array([bin_xy[0], bin_xy[1], 0.7, 0.0]),
        np.array([bin_xy[0], bin_xy[1], 0.25, 0.0]),
        np.array([bin_xy[0], bin_xy[1], 0.25, 1.0]),
        np.array([bin_xy[0], bin_xy[1], 0.8, 1.0]),
        home,
    ]
    total = frames or int(rng.integers(90, 140))
    weights = np.array([1.4, 0.8, 0.4, 0.7, 1.3, 0.6, 0.4, 0.5, 1.2])
    durations = np.maximum(3, np.round(weights / weights.sum() * total)).astype(int)
    durations[-1] += total - durations.sum()
    pose = _path(keys, list(durations))
    pose[:, :2] += rng.normal(0, 0.002, size=(len(pose), 2)).cumsum(axis=0) * 0.2
    closed_from = int(durations[:3].sum())
    closed_to = int(durations[:7].sum()) - 1

    T = len(pose)
    top = np.empty((T, size, size, 3), dtype=np.uint8)
    wrist = np.empty((T, wrist_size, wrist_size, 3), dtype=np.uint8)
    for t, (x, y, z, opening) in enumerate(pose):
        carried = target if closed_from <= t <= closed_to else None
        if carried is None and t > closed_to:
            blocks[target] = bin_xy
        top[t] = _render(size, blocks, bin_xy, (x, y, z), opening, carried)
        wrist[t] = _render(
            wrist_size, blocks, bin_xy, (x, y, z), opening, carried, zoom=2.6, centre=(x, y)
        )

    # Joint angles that follow the gripper: a smooth, made-up inverse kinematics.
    x, y, z, g = pose.T
    right = np.stack(
        [
            np.arctan2(x - 0.5, 1.2 - y),
            -0.6 + 0.9 * (1 - z) + 0.3 * (0.95 - y),
            0.9 - 1.1 * (1 - z) - 0.4 * (0.95 - y),
            0.15 * np.sin(np.linspace(0, np.pi, T)),
            -0.3 + 0.5 * (1 - z),
            0.2 * (x - 0.5),
            0.02 + 0.06 * g,
        ],
        axis=1,
    )
    left = np.tile(np.array([0.0, -0.96, 1.16, 0.0, -0.3, 0.0, 0.024]), (T, 1))
    left += rng.normal(0, 0.003, size=left.shape)
    qpos = np.concatenate([left, right], axis=1).astype(np.float32)
    qvel = np.gradient(qpos, axis=0).astype(np.float32) * 25
    action = np.concatenate([qpos[1:], qpos[-1:]], axis=0)  # the next pose is the command
    return Episode(top, wrist, qpos, qvel, action, target, (closed_from, closed_to))


def write_aloha_episode(path: Path, episode: Episode, *, fps: float = 25.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["sim"] = True
        f.attrs["fps"] = fps
        obs = f.create_group("observations")
        obs.create_dataset("qpos", data=episode.qpos)
        obs.create_dataset("qvel", data=episode.qvel)
        images = obs.create_group("images")
        for name, frames in (("cam_high", episode.top), ("cam_right_wrist", episode.wrist)):
            images.create_dataset(
                name,
                data=frames,
                chunks=(1, *frames.shape[1:]),
                compression="gzip",
                compression_opts=4,
            )
        f.create_dataset("action", data=episode.action)


def write_aloha_folder(folder: Path, *, episodes: int, seed: int, **kwargs) -> list[Episode]:
    made = []
    for i in range(episodes):
        episode = make_episode(seed * 1000 + i, **kwargs)
        write_aloha_episode(folder / f"episode_{i}.hdf5", episode)
        made.append(episode)
    return made
