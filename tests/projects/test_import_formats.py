"""Formats users bring (issue 16): LeRobot v2.1, robomimic/robosuite kept replayable, Zarr
replay buffers; each fed a file written the way its library writes it and a corrupt one."""

import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from projects.dataset_services import dataset_dir, dataset_import_run, dataset_import_start
from projects.models import Dataset, Sample
from tests.helpers.lerobot import write_lerobot
from tests.helpers.lerobot_v21 import CAMERA, write_lerobot_v21, write_video

pytestmark = pytest.mark.django_db


def run_import(project, manager, path, fmt, **options):
    dataset = dataset_import_start(
        actor=manager,
        project=project,
        name=Path(path).name,
        format=fmt,
        source_path=path,
        options=options,
        background=False,
    )
    return dataset_import_run(dataset_id=dataset.pk)


def nothing_published(dataset) -> None:
    assert dataset.status == "failed"
    assert not Sample.objects.filter(dataset=dataset).exists()
    assert not dataset_dir(dataset).exists()
    assert not (dataset_dir(dataset).parent / f".staging-{dataset.pk}").exists()


def frame_from_api(client, sample, camera, index) -> np.ndarray:
    answer = client.get(f"/api/v1/samples/{sample.pk}/frames/{camera}/{index}/?encoding=png")
    assert answer.status_code == 200, answer.content[:300]
    return np.asarray(Image.open(io.BytesIO(answer.content)).convert("RGB"))


# --- LeRobot v2.1 -----------------------------------------------------------------------


def v21_episodes():
    rng = np.random.default_rng(3)
    episodes = []
    for e, length in enumerate((6, 9)):
        frames = np.zeros((length, 48, 64, 3), np.uint8)
        for t in range(length):  # a flat grey that differs per frame and episode
            frames[t] = 20 * t + 7 * e
        episodes.append(
            {
                "frames": frames,
                "state": rng.normal(size=(length, 3)),
                "action": rng.normal(size=(length, 3)),
                "velocity": rng.normal(size=(length, 3)),
                "task": f"fold towel {e}",
            }
        )
    return episodes


@pytest.fixture(scope="module")
def v21_dataset(tmp_path_factory):
    return write_lerobot_v21(tmp_path_factory.mktemp("v21") / "towels", v21_episodes())


def test_a_lerobot_v21_dataset_imports_with_its_frames_and_arrays(
    project, manager, v21_dataset, api_as
):
    dataset = run_import(project, manager, v21_dataset, "lerobot")
    assert (dataset.status, dataset.error) == ("finished", "")
    assert (dataset.num_samples, dataset.total_frames) == (2, 15)
    samples = list(dataset.samples.order_by("index"))
    assert [s.name for s in samples] == ["episode_000000", "episode_000001"]
    assert [s.metadata["tasks"] for s in samples] == [["fold towel 0"], ["fold towel 1"]]
    assert samples[1].metadata["codebase_version"] == "v2.1"
    assert [c["name"] for c in samples[0].cameras] == ["top"]
    assert set(samples[0].arrays) == {"observation.state", "action", "observation.velocity"}
    assert samples[0].arrays["action"]["names"] == ["m0", "m1", "m2"]

    client = api_as(manager)
    source = v21_episodes()
    for sample, episode in zip(samples, source, strict=True):
        series = client.get(f"/api/v1/samples/{sample.pk}/series/").json()["series"]
        for name, key in (("observation.state", "state"), ("observation.velocity", "velocity")):
            expected = episode[key].astype(np.float32)
            assert np.allclose(series[name]["values"], expected, atol=1e-6)
        for index in (0, sample.num_frames - 1):  # AV1 is lossy: the grey level, not bits
            frame = frame_from_api(client, sample, "top", index)
            assert frame.shape == (48, 64, 3)
            assert abs(float(frame.mean()) - float(episode["frames"][index].mean())) < 3


def test_a_corrupt_lerobot_v21_episode_list_fails_naming_the_line(
    project, manager, v21_dataset, tmp_path
):
    broken = shutil.copytree(v21_dataset, tmp_path / "broken")
    lines = (broken / "meta" / "episodes.jsonl").read_text().splitlines()
    (broken / "meta" / "episodes.jsonl").write_text(lines[0] + "\n" + lines[1][:20] + "\n")
    dataset = run_import(project, manager, broken, "lerobot")
    nothing_published(dataset)
    assert dataset.error.startswith("meta/episodes.jsonl: line 2 is not valid JSON")


def test_a_lerobot_v21_episode_with_rows_missing_is_refused(
    project, manager, v21_dataset, tmp_path
):
    import pyarrow.parquet as pq

    broken = shutil.copytree(v21_dataset, tmp_path / "short")
    data = broken / "data" / "chunk-000" / "episode_000001.parquet"
    pq.write_table(pq.read_table(data).slice(0, 5), data)
    dataset = run_import(project, manager, broken, "lerobot")
    nothing_published(dataset)
    assert dataset.error == ("data/chunk-000/episode_000001.parquet: episode 1 has 5 rows, not 9")


# --- truncated videos are refused at import ---------------------------------------------


@pytest.mark.parametrize("faststart", [True, False], ids=["index-first", "index-last"])
def test_a_truncated_lerobot_v21_video_is_refused_naming_the_file(
    project, manager, v21_dataset, tmp_path, faststart
):
    broken = shutil.copytree(v21_dataset, tmp_path / "cut")
    video = broken / "videos" / "chunk-000" / CAMERA / "episode_000001.mp4"
    write_video(video, v21_episodes()[1]["frames"], 10, faststart=faststart)
    video.write_bytes(video.read_bytes()[: int(video.stat().st_size * 0.6)])
    dataset = run_import(project, manager, broken, "lerobot")
    nothing_published(dataset)
    relative = video.relative_to(broken).as_posix()
    assert dataset.error.startswith(f"{relative}: "), dataset.error
    assert "truncated" in dataset.error and "episode_000001" in dataset.error


def test_a_truncated_lerobot_v3_video_is_refused_naming_the_file(project, manager, tmp_path):
    frames = np.zeros((12, 32, 32, 3), np.uint8)
    episode = {"frames": frames, "state": np.zeros((12, 2)), "action": np.ones((12, 2))}
    root = write_lerobot(tmp_path / "v3", [{**episode, "task": "a"}, {**episode, "task": "b"}],
                         video=True)  # fmt: skip
    video = next((root / "videos").rglob("*.mp4"))
    video.write_bytes(video.read_bytes()[: int(video.stat().st_size * 0.5)])
    dataset = run_import(project, manager, root, "lerobot")
    nothing_published(dataset)
    assert dataset.error.startswith(f"{video.relative_to(root).as_posix()}: "), dataset.error
    assert "truncated" in dataset.error


def test_a_video_shorter_than_its_episode_is_refused(project, manager, v21_dataset, tmp_path):
    broken = shutil.copytree(v21_dataset, tmp_path / "short-video")
    video = broken / "videos" / "chunk-000" / CAMERA / "episode_000001.mp4"
    write_video(video, v21_episodes()[1]["frames"][:5], 10)  # 5 frames for 9 rows
    dataset = run_import(project, manager, broken, "lerobot")
    nothing_published(dataset)
    assert dataset.error == (
        f"videos/chunk-000/{CAMERA}/episode_000001.mp4: frames [8] are past the end of the "
        "video (truncated, or shorter than the episode) (episode_000001)"
    )


def test_a_truncated_video_uploaded_in_a_zip_is_a_failed_import_not_a_500(
    api_as, manager, project, v21_dataset, tmp_path, run_jobs, django_capture_on_commit_callbacks
):
    broken = shutil.copytree(v21_dataset, tmp_path / "zipped")
    video = broken / "videos" / "chunk-000" / CAMERA / "episode_000000.mp4"
    video.write_bytes(video.read_bytes()[: int(video.stat().st_size * 0.5)])
    archive = tmp_path / "towels.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in broken.rglob("*"):
            zf.write(path, Path("towels") / path.relative_to(broken))
    with archive.open("rb") as fh, django_capture_on_commit_callbacks(execute=True):
        response = api_as(manager).post(
            f"/api/v1/projects/{project.pk}/datasets/",
            {"name": "Towels", "format": "lerobot", "files": [fh]},
        )
    assert response.status_code == 202, response.content
    run_jobs("imports")
    dataset = Dataset.objects.get(name="Towels")
    nothing_published(dataset)
    assert dataset.error.startswith(f"videos/chunk-000/{CAMERA}/episode_000000.mp4: ")
    page = api_as(manager).get(f"/api/v1/datasets/{dataset.pk}/")
    assert page.status_code == 200 and page.json()["error"] == dataset.error


def test_the_data_page_shows_a_failed_import(client, manager, project, v21_dataset, tmp_path):
    broken = shutil.copytree(v21_dataset, tmp_path / "page")
    (broken / "meta" / "episodes.jsonl").write_text("{not json\n")
    dataset = run_import(project, manager, broken, "lerobot")
    client.force_login(manager)
    page = client.get(reverse("projects:dataset", args=[project.slug, dataset.pk]))
    assert page.status_code == 200
    assert "meta/episodes.jsonl: line 1 is not valid JSON" in page.content.decode()


# --- robomimic / robosuite: what makes a demo replayable is kept -------------------------

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "robosuite"


def test_a_real_robosuite_demo_file_keeps_model_file_env_info_and_arrays(
    project, manager, tmp_path, api_as
):
    import h5py

    folder = tmp_path / "lift"
    folder.mkdir()
    shutil.copy(EXAMPLES / "lift_demo.hdf5", folder / "demo.hdf5")
    dataset = run_import(project, manager, folder, "robomimic")
    assert (dataset.status, dataset.error) == ("finished", "")
    samples = list(dataset.samples.order_by("index"))
    assert [(s.name, s.num_frames, s.fps) for s in samples] == [
        ("demo/demo_1", 482, 20.0),
        ("demo/demo_2", 510, 20.0),
        ("demo/demo_3", 392, 20.0),
    ]
    client = api_as(manager)
    with h5py.File(EXAMPLES / "lift_demo.hdf5") as f:
        for sample in samples:
            demo = f[sample.source["group"]]
            stored = Sample.objects.get(pk=sample.pk)  # as the database gives it back
            assert stored.metadata["model_file"] == demo.attrs["model_file"]
            assert stored.metadata["model_file"].startswith('<mujoco model="base">')
            assert stored.metadata["data_attrs"]["env_info"] == f["data"].attrs["env_info"]
            assert stored.metadata["data_attrs"]["env"] == "Lift"
            assert {n: (a["dtype"], a["shape"]) for n, a in stored.arrays.items()} == {
                "actions": ("float64", [demo["actions"].shape[0], 7]),
                "states": ("float64", [demo["states"].shape[0], 32]),
            }
            series = client.get(f"/api/v1/samples/{sample.pk}/series/").json()["series"]
            assert np.allclose(series["states"]["values"], demo["states"][...], atol=1e-6)


def test_robosuite_extra_arrays_are_kept_as_series(project, manager, tmp_path):
    import h5py

    from projects.formats import get_format

    folder = tmp_path / "wipe"
    folder.mkdir()
    shutil.copy(EXAMPLES / "wipe_demo.hdf5", folder / "demo.hdf5")
    dataset = run_import(project, manager, folder, "robomimic")
    assert dataset.status == "finished", dataset.error
    sample = dataset.samples.get()
    assert sorted(sample.arrays) == ["actions", "joint_torques", "states"]
    assert sample.arrays["joint_torques"]["role"] == "other"
    assert sample.metadata["model_file"] == "model_1.xml"
    series = get_format("robomimic").read_series(dataset_dir(dataset), sample)
    with h5py.File(EXAMPLES / "wipe_demo.hdf5") as f:
        assert np.array_equal(series["joint_torques"], f["data/demo_1/joint_torques"][...])


def write_robomimic_full(path: Path, T: int = 5) -> dict:
    """A file in robomimic's processed layout (dataset_states_to_obs.py): env_args on
    data, obs/ and next_obs/ with images, depth and proprioception, rewards, dones,
    interventions, action_dict/."""
    import json

    import h5py

    rng = np.random.default_rng(7)
    arrays = {
        "actions": rng.normal(size=(T, 7)).astype(np.float32),
        "states": rng.normal(size=(T, 45)),
        "rewards": rng.normal(size=T),
        "dones": (np.arange(T) == T - 1).astype(np.int64),
        "interventions": np.array([0, 1, 1, 0, 0][:T], dtype=bool),
        "action_dict/abs_pos": rng.normal(size=(T, 3)).astype(np.float32),
        "obs/robot0_eef_pos": rng.normal(size=(T, 3)),
        "obs/robot0_eef_quat": rng.normal(size=(T, 4)).astype(np.float32),
        "obs/agentview_depth": rng.random(size=(T, 6, 8, 1)).astype(np.float32),
        "obs/object": rng.normal(size=(T, 10)),
        "next_obs/robot0_eef_pos": rng.normal(size=(T, 3)),
    }
    image = np.zeros((T, 6, 8, 3), np.uint8)
    image[:, 0] = 255  # the first stored row is white: the picture's bottom, upside down
    env_args = {"env_name": "Lift", "type": 1, "env_kwargs": {"control_freq": 20}}
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps(env_args)
        data.attrs["total"] = T
        demo = data.create_group("demo_0")
        demo.attrs["num_samples"] = T
        demo.attrs["model_file"] = '<mujoco model="base"><worldbody/></mujoco>'
        for name, values in arrays.items():
            demo.create_dataset(name, data=values)
        demo.create_dataset("obs/agentview_image", data=image)
        demo.create_dataset("next_obs/agentview_image", data=image)
        f.create_dataset("mask/train", data=np.array([b"demo_0"]))
    return {"arrays": arrays, "image": image, "env_args": json.dumps(env_args)}


def test_robomimic_every_obs_key_and_extra_array_reads_back_from_the_stored_sample(
    project, manager, tmp_path
):
    from projects.formats import get_format

    (tmp_path / "rm").mkdir()
    written = write_robomimic_full(tmp_path / "rm" / "image.hdf5")
    dataset = run_import(project, manager, tmp_path / "rm", "robomimic")
    assert dataset.status == "finished", dataset.error
    sample = Sample.objects.get(dataset=dataset)
    assert sample.fps == 20.0
    assert sample.metadata["env_args"] == written["env_args"]
    assert sample.metadata["model_file"] == '<mujoco model="base"><worldbody/></mujoco>'
    assert sample.metadata["demo_attrs"] == {"num_samples": 5}
    assert sample.metadata["not_kept"] == ["next_obs/agentview_image"]
    assert sample.metadata["mask"] == ["train"]
    assert [c["name"] for c in sample.cameras] == ["agentview_image"]
    assert set(sample.arrays) == set(written["arrays"])
    assert sample.arrays["actions"]["role"] == "action"
    assert sample.arrays["action_dict/abs_pos"]["role"] == "action"
    assert sample.arrays["obs/object"]["role"] == "state"
    assert sample.arrays["interventions"]["role"] == "other"
    series = get_format("robomimic").read_series(dataset_dir(dataset), sample)
    for name, source in written["arrays"].items():
        info = sample.arrays[name]
        assert info["dtype"] == str(source.dtype)
        back = series[name].reshape([len(source), *info["item_shape"]])
        assert np.array_equal(back.astype(info["dtype"]), source), name


def test_the_flip_option_turns_robosuite_cameras_right_side_up(project, manager, tmp_path, api_as):
    (tmp_path / "rm").mkdir()
    write_robomimic_full(tmp_path / "rm" / "image.hdf5")
    client = api_as(manager)
    dataset = run_import(project, manager, tmp_path / "rm", "robomimic")
    as_stored = frame_from_api(client, dataset.samples.get(), "agentview_image", 0)
    assert as_stored[0].min() == 255 and as_stored[-1].max() == 0
    (tmp_path / "rm2").mkdir()  # other bytes: the same file again would be a re-import
    write_robomimic_full(tmp_path / "rm2" / "image.hdf5", T=4)
    response = client.post(
        f"/api/v1/projects/{project.pk}/datasets/",
        {"name": "Flipped", "format": "robomimic", "path": str(tmp_path / "rm2"),
         "flip_cameras": True},
        format="json",
    )  # fmt: skip
    assert response.status_code == 202, response.content
    flipped = dataset_import_run(dataset_id=response.json()["dataset"]["id"])
    assert flipped.status == "finished", flipped.error
    frame = frame_from_api(client, flipped.samples.get(), "agentview_image", 0)
    assert frame[-1].min() == 255 and frame[0].max() == 0


def test_a_corrupt_robomimic_file_fails_and_publishes_nothing(project, manager, tmp_path):
    from tests.helpers.hdf5 import truncate

    (tmp_path / "rm").mkdir()
    shutil.copy(EXAMPLES / "lift_demo.hdf5", tmp_path / "rm" / "demo.hdf5")
    truncate(tmp_path / "rm" / "demo.hdf5", 0.5)
    dataset = run_import(project, manager, tmp_path / "rm", "robomimic")
    nothing_published(dataset)
    assert dataset.error.startswith("demo.hdf5")
    assert "truncated or corrupt" in dataset.error or "cannot be read" in dataset.error


# --- Zarr replay buffers (diffusion policy, UMI), written with zarr's own API -------------

ENDS = [4, 9, 12]


def replay_arrays(total: int = ENDS[-1]) -> dict:
    rng = np.random.default_rng(11)
    img = rng.integers(0, 256, size=(total, 12, 16, 3), dtype=np.uint8)
    return {
        "action": rng.normal(size=(total, 2)).astype(np.float32),
        "state": rng.normal(size=(total, 5)).astype(np.float32),
        "keypoint": rng.normal(size=(total, 9, 2)).astype(np.float32),
        "n_contacts": rng.integers(0, 3, size=(total, 1)),
        "img": img,
    }


def write_replay_buffer(store, *, zarr_format: int = 2, ends=ENDS) -> dict:
    """diffusion policy's ReplayBuffer layout: data/<key> concatenated, meta/episode_ends."""
    import zarr

    arrays = replay_arrays(ends[-1])
    root = zarr.open_group(store, mode="w", zarr_format=zarr_format)
    data, meta = root.create_group("data"), root.create_group("meta")
    for key, values in arrays.items():
        chunks = (1, *values.shape[1:]) if key == "img" else (5, *values.shape[1:])
        data.create_array(key, shape=values.shape, dtype=values.dtype, chunks=chunks)[:] = values
    meta.create_array("episode_ends", shape=(len(ends),), dtype="int64")[:] = ends
    return arrays


def test_a_zarr_replay_buffer_imports_every_array_and_frame(project, manager, tmp_path, api_as):
    from projects.formats import get_format

    arrays = write_replay_buffer(str(tmp_path / "pusht.zarr"))
    dataset = run_import(project, manager, tmp_path / "pusht.zarr", "zarr")
    assert (dataset.status, dataset.error) == ("finished", "")
    samples = list(dataset.samples.order_by("index"))
    assert [(s.name, s.num_frames, s.fps) for s in samples] == [
        ("episode_000000", 4, 10.0),
        ("episode_000001", 5, 10.0),
        ("episode_000002", 3, 10.0),
    ]
    assert samples[0].metadata["fps_assumed"] is True
    assert [c["name"] for c in samples[0].cameras] == ["img"]
    assert {k: (a["role"], a["shape"], a["dtype"]) for k, a in samples[1].arrays.items()} == {
        "action": ("action", [5, 2], "float32"),
        "state": ("state", [5, 5], "float32"),
        "keypoint": ("state", [5, 18], "float32"),
        "n_contacts": ("other", [5, 1], "int64"),
    }
    assert samples[1].arrays["keypoint"]["item_shape"] == [9, 2]
    reader, client = get_format("zarr"), api_as(manager)
    for sample, start, end in zip(samples, [0, *ENDS[:-1]], ENDS, strict=True):
        series = reader.read_series(dataset_dir(dataset), sample)
        for key, info in sample.arrays.items():
            shape = [end - start, *info["item_shape"]]
            back = series[key].reshape(shape).astype(info["dtype"])
            assert np.array_equal(back, arrays[key][start:end]), key
        for index in (0, sample.num_frames - 1):
            frame = frame_from_api(client, sample, "img", index)
            assert np.array_equal(frame, arrays["img"][start + index])
    assert len({s.checksum for s in samples}) == 3


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_a_zipped_zarr_store_imports_from_the_server_and_by_upload(
    project, manager, tmp_path, zarr_format, api_as, run_jobs, django_capture_on_commit_callbacks
):
    from zarr.storage import ZipStore

    store = ZipStore(tmp_path / "umi.zarr.zip", mode="w")
    write_replay_buffer(store, zarr_format=zarr_format)
    store.close()
    dataset = run_import(project, manager, tmp_path / "umi.zarr.zip", "zarr", fps=60)
    assert (dataset.status, dataset.error) == ("finished", "")
    assert [(s.name, s.fps) for s in dataset.samples.order_by("index")][:1] == [
        ("umi/episode_000000", 60.0)
    ]
    dataset.delete()
    with (
        (tmp_path / "umi.zarr.zip").open("rb") as fh,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = api_as(manager).post(
            f"/api/v1/projects/{project.pk}/datasets/",
            {"name": "Uploaded", "format": "zarr", "files": [fh]},
        )
    assert response.status_code == 202, response.content
    run_jobs("imports")
    uploaded = Dataset.objects.get(name="Uploaded")
    assert (uploaded.status, uploaded.error, uploaded.num_samples) == ("finished", "", 3)


def test_zarr_stores_are_detected(tmp_path):
    from projects.dataset_services import detect_format

    write_replay_buffer(str(tmp_path / "run" / "replay_buffer.zarr"))
    assert detect_format(tmp_path / "run") == "zarr"
    assert detect_format(tmp_path / "run" / "replay_buffer.zarr") == "zarr"


def break_missing_codec(store: Path) -> None:
    import json

    zarray = store / "data" / "img" / ".zarray"
    meta = json.loads(zarray.read_text())
    meta["compressor"] = {"id": "imagecodecs_jpegxl", "level": 90}  # as UMI writes
    zarray.write_text(json.dumps(meta))


def break_missing_chunk(store: Path) -> None:
    (store / "data" / "action" / "1.0").unlink()


def break_episode_ends(store: Path) -> None:
    import zarr

    zarr.open_array(str(store / "meta" / "episode_ends"), mode="r+")[:] = [4, 9, 20]


def break_metadata(store: Path) -> None:
    (store / "data" / "state" / ".zarray").write_text("{not json")


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            break_missing_codec,
            "data/img is compressed with the codec “imagecodecs_jpegxl”, which this "
            "server cannot decode (install imagecodecs)",
        ),
        (break_missing_chunk, "data/action lacks 1 of its 3 chunks (a partial copy?)"),
        (break_episode_ends, "data/action has 12 rows but meta/episode_ends ends at 20"),
        (break_metadata, "data/state cannot be read"),
    ],
    ids=["missing-codec", "missing-chunk", "episode-ends", "bad-metadata"],
)
def test_a_corrupt_zarr_store_is_refused_with_a_clear_error(
    project, manager, tmp_path, damage, message
):
    write_replay_buffer(str(tmp_path / "pusht.zarr"))
    damage(tmp_path / "pusht.zarr")
    dataset = run_import(project, manager, tmp_path / "pusht.zarr", "zarr")
    nothing_published(dataset)
    assert dataset.error.startswith(f"the Zarr store: {message}"), dataset.error


def test_a_zip_that_is_no_zarr_store_is_a_failed_upload_not_a_500(
    project, manager, tmp_path, api_as, run_jobs, django_capture_on_commit_callbacks
):
    with zipfile.ZipFile(tmp_path / "notes.zarr.zip", "w") as zf:
        zf.writestr("notes.txt", "hello")
    with (
        (tmp_path / "notes.zarr.zip").open("rb") as fh,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = api_as(manager).post(
            f"/api/v1/projects/{project.pk}/datasets/",
            {"name": "Notes", "format": "zarr", "files": [fh]},
        )
    assert response.status_code == 202, response.content
    run_jobs("imports")
    dataset = Dataset.objects.get(name="Notes")
    nothing_published(dataset)
    assert dataset.error == (
        "No Zarr store found (a folder with data/ and meta/episode_ends, or a .zarr.zip)."
    )


def test_a_corrupt_zarr_upload_through_the_page_is_a_failed_import_not_a_500(
    client, manager, project, tmp_path, run_jobs, django_capture_on_commit_callbacks
):
    store = tmp_path / "umi.zarr"
    write_replay_buffer(str(store))
    break_missing_codec(store)
    with zipfile.ZipFile(tmp_path / "umi.zarr.zip", "w") as zf:
        for path in store.rglob("*"):
            zf.write(path, path.relative_to(store))
    client.force_login(manager)
    with (
        (tmp_path / "umi.zarr.zip").open("rb") as fh,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(
            reverse("projects:data", args=[project.slug]),
            {"name": "UMI", "format": "zarr", "files": [fh], "flip_cameras": "on"},
        )
    assert response.status_code == 302
    dataset = Dataset.objects.get(name="UMI")
    assert dataset.options == {"flip_cameras": True}
    run_jobs("imports")
    dataset.refresh_from_db()
    nothing_published(dataset)
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert "“imagecodecs_jpegxl”, which this server cannot decode" in page.content.decode()


def test_the_command_takes_flip_cameras_and_detects_zarr(project, tmp_path, capsys):
    from django.core.management import call_command

    (tmp_path / "rm").mkdir()
    write_robomimic_full(tmp_path / "rm" / "image.hdf5")
    call_command("import_dataset", str(tmp_path / "rm"), "--project", project.slug,
                 "--flip-cameras")  # fmt: skip
    write_replay_buffer(str(tmp_path / "run" / "replay_buffer.zarr"))
    call_command("import_dataset", str(tmp_path / "run"), "--project", project.slug)
    robomimic, zarr_store = Dataset.objects.order_by("pk")
    assert (robomimic.format, robomimic.options) == ("robomimic", {"flip_cameras": True})
    assert robomimic.samples.get().cameras[0]["flip"] is True
    assert (zarr_store.format, zarr_store.status, zarr_store.num_samples) == ("zarr", "finished", 3)
