"""Round trips for each importer with files the tests write, and corrupt input."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from projects.formats import DataError, get_format
from tests.helpers.hdf5 import truncate, write_aloha, write_robomimic
from tests.helpers.lerobot import write_lerobot


def inspect(fmt: str, root: Path, options=None):
    reader = get_format(fmt)
    files = [p.relative_to(root) for p in root.rglob("*") if p.is_file()]
    files = [f for f in files if reader.accepts(f)]
    return reader, reader.inspect(root, files, options or {}, lambda *a: None)


def test_aloha_raw_round_trip(tmp_path):
    source = [write_aloha(tmp_path / f"episode_{i}.hdf5", T=10 + i, seed=i) for i in (0, 1, 2)]
    write_aloha(tmp_path / "episode_10.hdf5", T=5, seed=10)
    reader, specs = inspect("hdf5", tmp_path)
    assert [s.name for s in specs] == ["episode_0", "episode_1", "episode_2", "episode_10"]
    first = specs[0]
    assert (first.num_frames, first.fps) == (10, 50.0)
    assert [c["name"] for c in first.cameras] == ["cam_high", "cam_low"]
    assert first.cameras[0] | {} == {
        "name": "cam_high",
        "height": 24,
        "width": 32,
        "encoding": "raw",
        "index": 0,
        "swap_rb": False,
    }
    assert first.arrays["qpos"]["shape"] == [10, 14]
    assert first.arrays["qpos"]["names"][0] == "left_waist"
    assert first.arrays["action"]["role"] == "action"
    frame = reader.read_frame(tmp_path, specs[1], "cam_low", 7)
    assert np.array_equal(frame, source[1]["images"]["cam_low"][7])
    series = reader.read_series(tmp_path, specs[2])
    assert np.allclose(series["qpos"], source[2]["qpos"])
    assert np.allclose(series["action"], source[2]["action"])


def test_aloha_compressed_frames_come_back_in_rgb(tmp_path):
    source = write_aloha(tmp_path / "episode_0.hdf5", T=6, compressed=True)
    reader, [spec] = inspect("hdf5", tmp_path)
    assert spec.cameras[0]["encoding"] == "jpeg" and spec.cameras[0]["swap_rb"]
    frame = reader.read_frame(tmp_path, spec, "cam_high", 3)
    assert frame.shape == (24, 32, 3)
    # JPEG is lossy: compare loosely, and the red corner must still be red.
    assert np.abs(frame.astype(int) - source["images"]["cam_high"][3]).mean() < 12
    assert frame[1, 1, 0] > 200 and frame[1, 1, 2] < 60

    _, [unswapped] = inspect("hdf5", tmp_path, {"swap_rb": False})
    frame = reader.read_frame(tmp_path, unswapped, "cam_high", 3)
    assert frame[1, 1, 2] > 200 and frame[1, 1, 0] < 60


def test_robomimic_round_trip(tmp_path):
    actions = write_robomimic(tmp_path / "demo.hdf5", demos=3, T=8, control_freq=10)
    reader, specs = inspect("robomimic", tmp_path)
    assert [s.name for s in specs] == ["demo/demo_0", "demo/demo_1", "demo/demo_2"]
    spec = specs[1]
    assert (spec.num_frames, spec.fps) == (8, 10.0)
    assert spec.cameras[0]["name"] == "agentview_image"
    assert set(spec.arrays) == {"actions", "states", "obs/robot0_eef_pos"}
    series = reader.read_series(tmp_path, spec)
    assert np.allclose(series["actions"], actions["demo_1"])
    assert reader.read_frame(tmp_path, spec, "agentview_image", 0).shape == (16, 16, 3)


def test_robomimic_without_images_or_env_args(tmp_path):
    import h5py

    with h5py.File(tmp_path / "lift.hdf5", "w") as f:  # robosuite's own demo layout
        f.create_dataset("data/demo_1/states", data=np.zeros((5, 32)))
        f.create_dataset("data/demo_1/actions", data=np.zeros((5, 7)))
    _, [spec] = inspect("robomimic", tmp_path)
    assert (spec.num_frames, spec.fps, spec.cameras) == (5, 20.0, [])


@pytest.mark.parametrize("video", [False, True], ids=["images", "video"])
def test_lerobot_round_trip(tmp_path, video):
    rng = np.random.default_rng(0)
    episodes = []
    for i, T in enumerate((6, 9)):
        base = np.zeros((T, 32, 48, 3), dtype=np.uint8)
        base[..., 1] = np.linspace(0, 250, T, dtype=np.uint8)[
            :, None, None
        ]  # green ramps per frame
        base[..., 0] = 40 * (i + 1)
        episodes.append(
            {
                "frames": base,
                "state": rng.normal(size=(T, 6)),
                "action": rng.normal(size=(T, 6)),
                "task": f"task {i}",
            }
        )
    write_lerobot(tmp_path, episodes, fps=10, video=video)
    reader, specs = inspect("lerobot", tmp_path)
    assert [s.name for s in specs] == ["episode_000000", "episode_000001"]
    second = specs[1]
    assert (second.num_frames, second.fps) == (9, 10.0)
    assert second.metadata["tasks"] == ["task 1"]
    assert second.cameras[0]["name"] == "cam_high"
    assert second.arrays["observation.state"]["names"] == [f"j{i}" for i in range(6)]

    class Row:  # what the reader needs of a Sample row
        def __init__(self, spec):
            self.__dict__.update(spec.__dict__)

        def camera(self, name):
            return next(c for c in self.cameras if c["name"] == name)

    frames = reader.read_frames(tmp_path, Row(second), "cam_high", [0, 4, 8])
    for got, index in zip(frames, (0, 4, 8), strict=True):
        want = episodes[1]["frames"][index]
        # Video is lossy; a frame from the wrong episode or time would be far off.
        assert np.abs(got.astype(int) - want).mean() < 4, index
    # The whole episode in one pass equals frame-by-frame reads.
    every = reader.read_frames(tmp_path, Row(second), "cam_high", range(second.num_frames))
    for index in (0, 3, 8):
        alone = reader.read_frames(tmp_path, Row(second), "cam_high", [index])[0]
        assert np.array_equal(every[index], alone), index
        assert np.abs(alone.astype(int) - episodes[1]["frames"][index]).mean() < 4, index
    series = reader.read_series(tmp_path, Row(second))
    assert np.allclose(series["action"], episodes[1]["action"], atol=1e-6)


def test_images_round_trip(tmp_path):
    red = np.zeros((20, 30, 3), dtype=np.uint8)
    red[..., 0] = 255
    Image.fromarray(red).save(tmp_path / "a.png")
    Image.fromarray(red).save(tmp_path / "b.jpg", quality=95)
    (tmp_path / "notes.txt").write_text("ignored")
    reader, specs = inspect("images", tmp_path)
    assert [(s.name, s.kind, s.cameras[0]["encoding"]) for s in specs] == [
        ("a", "image", "png"),
        ("b", "image", "jpeg"),
    ]
    assert np.array_equal(reader.read_frame(tmp_path, specs[0], "image", 0), red)


# --- bad input: each error names the file and the problem ------------------------------


def test_truncated_hdf5_names_the_file(tmp_path):
    write_aloha(tmp_path / "episode_0.hdf5")
    truncate(write_aloha(tmp_path / "episode_1.hdf5", seed=1) and tmp_path / "episode_1.hdf5")
    with pytest.raises(DataError) as info:
        inspect("hdf5", tmp_path)
    assert info.value.file == "episode_1.hdf5"
    assert "truncated or corrupt" in info.value.message


def test_garbage_named_hdf5(tmp_path):
    (tmp_path / "episode_0.hdf5").write_bytes(b"this is not hdf5" * 100)
    with pytest.raises(DataError, match="episode_0.hdf5: not a readable HDF5 file"):
        inspect("hdf5", tmp_path)


def test_hdf5_that_is_not_aloha(tmp_path):
    write_robomimic(tmp_path / "demo.hdf5")
    with pytest.raises(DataError, match=r"demo.hdf5: missing /observations/qpos"):
        inspect("hdf5", tmp_path)


def test_hdf5_with_disagreeing_lengths(tmp_path):
    import h5py

    with h5py.File(tmp_path / "ep.hdf5", "w") as f:
        f.create_dataset("observations/qpos", data=np.zeros((5, 14)))
        f.create_dataset("action", data=np.zeros((4, 14)))
    with pytest.raises(DataError, match="disagree on the number of frames"):
        inspect("hdf5", tmp_path)


def test_corrupt_image_names_the_file(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    good = tmp_path / "broken.png"
    Image.new("RGB", (64, 64), "red").save(good)
    truncate(good, 0.4)
    with pytest.raises(DataError) as info:
        inspect("images", tmp_path)
    assert info.value.file == "broken.png"


def test_an_unknown_lerobot_version_is_refused_with_the_reason(tmp_path):
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "info.json").write_text('{"codebase_version": "v1.6", "fps": 30}')
    with pytest.raises(DataError, match="v1.6'; LeRobot datasets of versions v3.0, v2.1, v2.0"):
        inspect("lerobot", tmp_path)


def test_lerobot_missing_video_is_named(tmp_path):
    episode = {
        "frames": np.zeros((3, 8, 8, 3), np.uint8),
        "state": np.zeros((3, 2)),
        "action": np.zeros((3, 2)),
        "task": "t",
    }
    write_lerobot(tmp_path, [episode], video=True)
    (tmp_path / "videos/observation.images.cam_high/chunk-000/file-000.mp4").unlink()
    with pytest.raises(DataError, match="file-000.mp4: missing"):
        inspect("lerobot", tmp_path)


def test_lerobot_without_meta(tmp_path):
    with pytest.raises(DataError, match="meta/info.json: missing"):
        inspect("lerobot", tmp_path)
