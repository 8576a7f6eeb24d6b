"""The robomimic export: robosuite's real demos and robomimic files come back in one
``dataset.hdf5`` that robomimic's ``SequenceDataset`` reads (robomimic itself, with torch,
is not installed here: the file is read with h5py the way ``SequenceDataset`` and
``split_train_val.py`` read it — ``mask/<key>`` byte strings, ``data/<demo>.attrs
["num_samples"]``, ``data/<demo>/obs/<key>``, ``actions``/``rewards``/``dones``, and
``json.loads(data.attrs["env_args"])`` as ``get_env_metadata_from_dataset`` does) with
every array bit-exact, ``model_file`` and ``env_args`` kept."""

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from .test_export_array_shapes import import_robomimic, write_demos
from .test_export_episodes import export, finished_tasks, gradient, import_folder, write_episode

pytestmark = pytest.mark.django_db

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "robosuite"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def sequence_dataset(path: Path, filter_key: str | None = None) -> dict:
    """What robomimic's SequenceDataset.load_demo_info / load_dataset_in_memory read."""
    with h5py.File(path, "r") as f:
        if filter_key:
            demos = [e.decode("utf-8") for e in np.array(f[f"mask/{filter_key}"][:])]
        else:
            demos = list(f["data"].keys())
        demos = [demos[i] for i in np.argsort([int(e[5:]) for e in demos])]
        loaded = {}
        for ep in demos:
            group = f[f"data/{ep}"]
            n = group.attrs["num_samples"]
            entry = {"num_samples": int(n), "model_file": group.attrs.get("model_file")}
            entry["obs"] = {k: group[f"obs/{k}"][()] for k in group.get("obs", {})}
            for key in ("actions", "rewards", "dones"):
                entry[key] = group[key][()]
                assert entry[key].shape[0] == n, (ep, key)
            entry["all"] = {}
            group.visititems(
                lambda name, item, e=entry: (
                    e["all"].__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None
                )
            )
            loaded[ep] = entry
        env_meta = (
            json.loads(f["data"].attrs["env_args"]) if "env_args" in f["data"].attrs else None
        )
        return {"demos": loaded, "env_meta": env_meta, "data_attrs": dict(f["data"].attrs)}


def test_real_robosuite_demos_come_back_replayable_and_bit_exact(project, manager, tmp_path):
    """robosuite 1.4.1's own Lift demos (raw collect_human_demonstrations output): every
    state and action bit-exact in float64, each demo's MuJoCo XML as its model_file, the
    env_args robomimic's convert_robosuite.py would build, num_samples, a train/valid split
    covering every demo; rewards/dones filled as the manifest says."""
    folder = tmp_path / "lift"
    folder.mkdir()
    shutil.copy(EXAMPLES / "lift_demo.hdf5", folder / "demo.hdf5")
    dataset = import_robomimic(project, manager, folder)
    finished_tasks(project, manager, dataset, 1)
    done, out, _ = export(project, manager, "robomimic")
    read = sequence_dataset(out / "dataset.hdf5")
    with h5py.File(EXAMPLES / "lift_demo.hdf5") as source:
        attrs = source["data"].attrs
        assert read["env_meta"] == {
            "type": 1,  # EnvType.ROBOSUITE_TYPE
            "env_name": "Lift",
            "env_version": attrs["repository_version"],
            "env_kwargs": json.loads(attrs["env_info"]),
        }
        assert read["data_attrs"]["env_info"] == attrs["env_info"]
        assert list(read["demos"]) == ["demo_0", "demo_1", "demo_2"]
        for n, name in enumerate(("demo_1", "demo_2", "demo_3")):
            mine, theirs = read["demos"][f"demo_{n}"], source[f"data/{name}"]
            assert mine["model_file"] == theirs.attrs["model_file"]
            assert mine["num_samples"] == theirs["actions"].shape[0]
            for key in ("actions", "states"):
                kept = mine["all"][key]
                assert kept.dtype == np.float64 and np.array_equal(kept, theirs[key][()]), key
            assert not mine["rewards"].any() and mine["dones"][-1] == 1
    with h5py.File(out / "dataset.hdf5") as f:
        train = {m.decode() for m in f["mask/train"][...]}
        valid = {m.decode() for m in f["mask/valid"][...]}
    assert train | valid == {"demo_0", "demo_1", "demo_2"} and not train & valid
    assert set(sequence_dataset(out / "dataset.hdf5", "train")["demos"]) == train
    assert done.manifest["casts"].keys() == {"rewards", "dones"}
    assert done.manifest["counts"]["episodes"] == 3


def test_robomimic_files_keep_every_obs_key_shape_dtype_and_mask(project, manager, tmp_path):
    """A robomimic file with env_args, N-D and (T,) arrays, a camera and its own train/valid
    masks: every array under its own path in its dtype and shape, the camera under obs/,
    env_args the same JSON text, the source's split kept; nothing filled."""
    source = write_demos(tmp_path / "rm" / "demos.hdf5")
    with h5py.File(tmp_path / "rm" / "demos.hdf5", "a") as f:
        f["mask/train"] = np.array(["demo_0"], dtype="S")
        f["mask/valid"] = np.array(["demo_1"], dtype="S")
        f["data/demo_1"].attrs["model_file"] = "<mujoco/>"
        env = f["data"].attrs["env_args"]
    dataset = import_robomimic(project, manager, tmp_path / "rm")
    finished_tasks(project, manager, dataset, 1)
    done, out, _ = export(project, manager, "robomimic")
    assert done.manifest["casts"] == {}
    read = sequence_dataset(out / "dataset.hdf5")
    assert read["data_attrs"]["env_args"] == env and read["data_attrs"]["total"] == 55
    for n, arrays in enumerate(source.values()):
        demo = read["demos"][f"demo_{n}"]
        for name, values in arrays.items():
            kept = demo["all"][name]
            assert (kept.shape, kept.dtype) == (values.shape, values.dtype), name
            assert np.array_equal(kept, values), name
        assert np.array_equal(demo["obs"]["agentview_image"], gradient(len(values), 16, 16, n))
    assert read["demos"]["demo_1"]["model_file"] == "<mujoco/>"
    assert list(sequence_dataset(out / "dataset.hdf5", "valid")["demos"]) == ["demo_1"]


def test_flipped_cameras_go_back_as_robosuite_renders_them(project, manager, tmp_path):
    write_demos(tmp_path / "rm" / "demos.hdf5", lengths=(6,))
    from projects.dataset_services import dataset_import_run, dataset_import_start

    dataset = dataset_import_start(
        actor=manager,
        project=project,
        name="flipped",
        format="robomimic",
        source_path=tmp_path / "rm",
        options={"flip_cameras": True},
        background=False,
    )
    dataset = dataset_import_run(dataset_id=dataset.pk)
    assert dataset.status == "finished", dataset.error
    finished_tasks(project, manager, dataset, 1)
    _, out, _ = export(project, manager, "robomimic")
    read = sequence_dataset(out / "dataset.hdf5")
    assert np.array_equal(read["demos"]["demo_0"]["obs"]["agentview_image"], gradient(6, 16, 16, 0))


def test_aloha_episodes_become_demos_with_actions_and_obs(project, manager, tmp_path):
    """Another source: qpos/qvel/effort under obs/, action as actions, cameras as
    obs/<cam>_image; no env_args (the source names no environment)."""
    folder = tmp_path / "aloha"
    sources = [write_episode(folder / f"episode_{i}.hdf5", 12 + i, seed=i) for i in range(2)]
    dataset = import_folder(project, manager, folder)
    finished_tasks(project, manager, dataset, 1)
    _, out, _ = export(project, manager, "robomimic")
    read = sequence_dataset(out / "dataset.hdf5")
    assert read["env_meta"] is None
    for n, arrays in enumerate(sources):
        demo = read["demos"][f"demo_{n}"]
        assert np.array_equal(demo["actions"], arrays["action"])
        assert np.array_equal(demo["obs"]["qpos"], arrays["observations/qpos"])
        assert {"qvel", "effort", "cam_high_image"} <= demo["obs"].keys()


def test_episodes_of_two_environments_are_refused(project, manager, tmp_path):
    from queues import services

    for n, env in enumerate(("Lift", "Wipe")):
        write_demos(tmp_path / env / "demos.hdf5", lengths=(3,), camera=False)
        with h5py.File(tmp_path / env / "demos.hdf5", "a") as f:
            f["data"].attrs["env_args"] = json.dumps({"env_name": env})
        finished_tasks(project, manager, import_robomimic(project, manager, tmp_path / env), 1,
                       start=n)  # fmt: skip
    started, _ = services.export_start(
        actor=manager, project=project, format="robomimic", background=False
    )
    failed = services.export_run(export_id=started.pk)
    assert failed.status == "failed"
    assert "environment (env_args) differs" in failed.error
    assert not list((tmp_path / "media" / "exports").glob(f"{project.slug}/*"))


def test_queries_do_not_grow_with_tasks(project, manager, dataset, monkeypatch):
    from queues import services

    monkeypatch.setattr(services, "PROGRESS_INTERVAL", 3600)
    finished_tasks(project, manager, dataset, 2)
    small, _, small_queries = export(project, manager, "robomimic")
    finished_tasks(project, manager, dataset, 10, start=2)
    large, out, large_queries = export(project, manager, "robomimic")
    assert (small.manifest["counts"]["episodes"], large.manifest["counts"]["episodes"]) == (4, 24)
    assert large_queries == small_queries <= 30
    assert len(sequence_dataset(out / "dataset.hdf5")["demos"]) == 24


@pytest.mark.parametrize(("fmt", "options"), [("robomimic", {}), ("hdf5", {"compress": "jpeg"})])
def test_a_long_episode_is_exported_in_bounded_memory(
    project, manager, tmp_path, monkeypatch, fmt, options
):
    """400 frames of two 120x160 cameras (46 MB of pixels) with a 1 MB frame window: the
    robomimic and the JPEG-compressed HDF5 writers peak far below one camera's frames."""
    import tracemalloc

    from queues.exporters import base

    folder = tmp_path / "long"
    write_episode(folder / "episode_0.hdf5", 400, h=120, w=160)
    finished_tasks(project, manager, import_folder(project, manager, folder), 1)
    monkeypatch.setattr(base, "WINDOW_BYTES", 1024 * 1024)
    one_camera = 400 * 120 * 160 * 3
    tracemalloc.start()
    try:
        done, _, _ = export(project, manager, fmt, **options)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert done.manifest["counts"]["frames"] == 400
    assert peak < one_camera / 2, f"peak {peak / 1e6:.1f} MB"


def test_tasks_without_episodes_are_a_clear_failure(project, manager):
    from queues import services
    from tasks.services import task_create_many

    ids = [t.pk for t in task_create_many(actor=manager, project=project, items=[{"name": "a"}])]
    from tasks.models import Task

    Task.objects.filter(pk__in=ids).update(status="review_passed")
    started, _ = services.export_start(
        actor=manager, project=project, format="robomimic", background=False
    )
    failed = services.export_run(export_id=started.pk)
    assert (failed.status, failed.error) == ("failed", "No episodes to export (the tasks have "
                                             "no datasets with episodes).")  # fmt: skip
