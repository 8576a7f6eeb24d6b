"""The LeRobot importer keeps N-D features (datasets' Array2D…Array5D: nested lists per frame):
a robomimic demo's (T, 12, 10, 1) depth exported to LeRobot and imported back is the same
array, in its shape and dtype (it was left out before), and goes on to the next export."""

import json
import shutil

import h5py
import numpy as np
import pytest

from projects.dataset_services import dataset_dir, dataset_import_run, dataset_import_start
from projects.formats import get_format
from tests.queues.test_export_array_shapes import import_robomimic, write_demos
from tests.queues.test_export_episodes import export, finished_tasks

pytestmark = pytest.mark.django_db

DEPTH = "observation.agentview_depth"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_n_d_features_survive_a_lerobot_round_trip(project, manager, tmp_path):
    source = write_demos(tmp_path / "rm" / "demos.hdf5", (7, 5), camera=False)
    finished_tasks(project, manager, import_robomimic(project, manager, tmp_path / "rm"), 1)
    _, out, _ = export(project, manager, "lerobot")
    shutil.copytree(out, tmp_path / "lerobot")
    dataset = dataset_import_start(
        actor=manager, project=project, name="back", format="lerobot",
        source_path=tmp_path / "lerobot", background=False,
    )  # fmt: skip
    dataset = dataset_import_run(dataset_id=dataset.pk)
    assert dataset.status == "finished", dataset.error
    samples = list(dataset.samples.order_by("index"))
    reader = get_format("lerobot")
    for sample, arrays in zip(samples, source.values(), strict=True):
        spec = sample.arrays[DEPTH]
        assert (spec["item_shape"], spec["dtype"], spec["shape"]) == (
            [12, 10, 1],
            "float32",
            [len(arrays["actions"]), 120],
        )
        rows = reader.read_series_rows(dataset_dir(dataset), sample, 0, sample.num_frames)
        depth = rows[DEPTH]
        want = arrays["obs/agentview_depth"]
        assert depth.shape == want.shape and depth.dtype == want.dtype
        assert np.array_equal(depth, want)
        assert np.array_equal(rows["action"], arrays["actions"])
    # ...and onwards: the next export (HDF5) keeps it N-D.
    finished_tasks(project, manager, dataset, 1, start=10)
    _, again, _ = export(project, manager, "hdf5")
    with h5py.File(again / "episode_2.hdf5") as f:
        assert f.attrs["dataset"] == "back"
        kept = f[json.loads(f.attrs["arrays"])[DEPTH]][...]
        assert np.array_equal(kept, source["demo_0"]["obs/agentview_depth"])
