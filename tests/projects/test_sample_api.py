"""The sample API on a robomimic import with an N-D obs key and a large model_file: the
series endpoint sends N-D arrays only when asked (and bounded), the sample list sends
small metadata, the sample detail all of it."""

import json
from pathlib import Path

import numpy as np
import pytest

from projects import dataset_selectors
from projects.dataset_services import dataset_import_run, dataset_import_start

pytestmark = pytest.mark.django_db

T = 30
MODEL_FILE = '<mujoco model="base">' + "<body/>" * 700 + "</mujoco>"  # ~4.9 KB


def write_demos(path: Path, demos: int = 2) -> dict:
    import h5py

    rng = np.random.default_rng(5)
    written = {}
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "env_kwargs": {}})
        for d in range(demos):
            demo = data.create_group(f"demo_{d}")
            demo.attrs["model_file"] = MODEL_FILE
            arrays = {
                "actions": rng.normal(size=(T, 7)),
                "states": rng.normal(size=(T, 20)),
                "rewards": rng.normal(size=T),
                "obs/agentview_depth": rng.random(size=(T, 12, 10, 1)).astype(np.float32),
            }
            for name, values in arrays.items():
                demo.create_dataset(name, data=values)
            written[f"demo_{d}"] = arrays
    return written


def import_folder(project, manager, folder: Path):
    dataset = dataset_import_start(
        actor=manager,
        project=project,
        name=folder.name,
        format="robomimic",
        source_path=folder,
        background=False,
    )
    dataset = dataset_import_run(dataset_id=dataset.pk)
    assert dataset.status == "finished", dataset.error
    return dataset


@pytest.fixture
def robomimic(project, manager, tmp_path):
    (tmp_path / "rm").mkdir()
    written = write_demos(tmp_path / "rm" / "demos.hdf5")
    dataset = import_folder(project, manager, tmp_path / "rm")
    return dataset, written


def series_url(sample, query=""):
    return f"/api/v1/samples/{sample.pk}/series/{query}"


def test_series_leave_out_n_d_arrays_unless_asked(api_as, reviewer, robomimic):
    dataset, written = robomimic
    sample = dataset.samples.get(index=0)
    source = written["demo_0"]
    client = api_as(reviewer)

    body = client.get(series_url(sample)).json()
    assert set(body["series"]) == {"actions", "states", "rewards"}
    assert np.allclose(body["series"]["states"]["values"], source["states"], atol=1e-6)
    assert body["omitted"] == {
        "obs/agentview_depth": {
            "role": "state",
            "shape": [T, 120],
            "item_shape": [12, 10, 1],
            "dtype": "float32",
        }
    }
    assert "agentview_depth" not in json.dumps(body["series"])

    # What the workspace asks for (static/js/workspace/api.js): plottable series only.
    thin = client.get(series_url(sample, "?max_points=600")).json()
    assert thin["frames"] == list(range(T)) and "obs/agentview_depth" not in thin["series"]

    asked = client.get(series_url(sample, "?key=obs/agentview_depth&key=rewards")).json()
    assert set(asked["series"]) == {"obs/agentview_depth", "rewards"} and asked["omitted"] == {}
    depth = asked["series"]["obs/agentview_depth"]
    assert depth["item_shape"] == [12, 10, 1] and depth["dtype"] == "float32"
    back = np.asarray(depth["values"]).reshape([T, *depth["item_shape"]])
    assert np.allclose(back, source["obs/agentview_depth"], atol=1e-6)

    ranged = client.get(series_url(sample, "?key=obs/agentview_depth&start=5&end=9")).json()
    assert ranged["frames"] == [5, 6, 7, 8, 9]
    rows = np.asarray(ranged["series"]["obs/agentview_depth"]["values"])
    assert np.allclose(rows, source["obs/agentview_depth"][5:10].reshape(5, -1), atol=1e-6)


def test_asking_for_too_much_or_for_nothing_is_a_clear_400(
    api_as, reviewer, robomimic, monkeypatch
):
    dataset, _ = robomimic
    sample = dataset.samples.get(index=0)
    client = api_as(reviewer)
    monkeypatch.setattr(dataset_selectors, "SERIES_MAX_VALUES", 1200)  # 10 frames of 120

    answer = client.get(series_url(sample, "?key=obs/agentview_depth"))
    assert answer.status_code == 400
    message = answer.json()["key"][0]
    assert "30 frames × 120 values" in message and "at most 10 frames" in message
    fits = client.get(series_url(sample, "?key=obs/agentview_depth&start=0&end=9"))
    assert fits.status_code == 200
    thinned = client.get(series_url(sample, "?key=obs/agentview_depth&max_points=10"))
    assert thinned.status_code == 200 and len(thinned.json()["frames"]) == 10

    unknown = client.get(series_url(sample, "?key=obs/nothing"))
    assert unknown.status_code == 400 and "obs/nothing" in unknown.json()["key"][0]
    backwards = client.get(series_url(sample, "?start=9&end=3"))
    assert backwards.status_code == 400 and "start" in backwards.json()
    beyond = client.get(series_url(sample, f"?end={T}"))
    assert beyond.status_code == 400 and "end" in beyond.json()
    assert client.get(series_url(sample, "?start=x")).status_code == 400


def test_the_list_omits_large_metadata_and_the_detail_keeps_it(api_as, annotator, robomimic):
    dataset, _ = robomimic
    client = api_as(annotator)
    listing = client.get(f"/api/v1/datasets/{dataset.pk}/samples/")
    assert listing.status_code == 200
    results = listing.json()["results"]
    assert len(results) == 2
    for row in results:
        assert row["metadata"]["model_file"] == {
            "omitted": True,
            "bytes": len(MODEL_FILE.encode()),
        }
        assert row["metadata"]["env_args"] == json.dumps({"env_name": "Lift", "env_kwargs": {}})
        assert row["arrays"]["actions"]["names"][0] == "actions_0"  # small: kept
    assert len(listing.content) < 8000  # two samples, not two model files

    sample = dataset.samples.get(index=1)
    detail = client.get(f"/api/v1/samples/{sample.pk}/")
    assert detail.status_code == 200
    assert detail.json()["metadata"]["model_file"] == MODEL_FILE
    assert detail.json()["name"] == results[1]["name"]
    assert detail.json()["arrays"]["obs/agentview_depth"]["item_shape"] == [12, 10, 1]


def test_sample_detail_is_for_project_members(api_as, outsider, robomimic):
    dataset, _ = robomimic
    url = f"/api/v1/samples/{dataset.samples.first().pk}/"
    assert api_as(outsider).get(url).status_code == 404
    assert api_as(None).get(url).status_code == 401


def test_sample_list_queries_do_not_grow_with_samples(
    api_as, annotator, project, manager, tmp_path, django_assert_max_num_queries
):
    client = api_as(annotator)
    counts = {}
    for demos in (2, 12):
        folder = tmp_path / f"rm{demos}"
        folder.mkdir()
        write_demos(folder / "demos.hdf5", demos=demos)
        dataset = import_folder(project, manager, folder)
        with django_assert_max_num_queries(6) as captured:
            answer = client.get(f"/api/v1/datasets/{dataset.pk}/samples/")
        assert answer.status_code == 200 and len(answer.json()["results"]) == demos
        counts[demos] = len(captured.captured_queries)
    assert counts[2] == counts[12]
