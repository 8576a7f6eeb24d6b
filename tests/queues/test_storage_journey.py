"""Done means of issue 18, through the HTTP API as people use it, on the local folder and on a
real S3 server (moto's server mode, a separate process): a manager uploads episodes, a worker
imports them, a frame answers, a task on them is annotated, submitted and approved, an HDF5
export is built by a worker and downloaded — streamed by Django locally, a signed URL of the
bucket on S3 — and the episodes inside are the uploaded ones, on both alike."""

import io
import urllib.request
import zipfile

import h5py
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from core import objectstore
from tests.helpers.hdf5 import write_aloha

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["local", "s3"])
def backend(request, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    if request.param == "s3":
        return request.getfixturevalue("s3_storage")
    return None


def test_upload_import_label_export_download(
    backend, api_as, project, manager, annotator, reviewer, run_jobs, tmp_path,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    maya, ana, ravi = api_as(manager), api_as(annotator), api_as(reviewer)
    sources = [write_aloha(tmp_path / f"episode_{i}.hdf5", T=10, seed=i) for i in range(2)]
    files = [
        SimpleUploadedFile(f"episode_{i}.hdf5", (tmp_path / f"episode_{i}.hdf5").read_bytes())
        for i in range(2)
    ]

    with django_capture_on_commit_callbacks(execute=True):
        answer = maya.post(
            f"/api/v1/projects/{project.pk}/datasets/",
            {"name": "Rig 3", "format": "hdf5", "files": files},
            format="multipart",
        )
    assert answer.status_code == 202, answer.content
    run_jobs("imports")
    dataset = maya.get(f"/api/v1/datasets/{answer.json()['dataset']['id']}/").json()
    assert dataset["status"] == "finished", dataset
    samples = maya.get(f"/api/v1/datasets/{dataset['id']}/samples/").json()
    samples = samples.get("results", samples)
    assert len(samples) == 2
    if backend:  # the episodes are objects of the bucket, read back through a cold cache
        assert backend.keys(prefix=f"{backend.prefix}/datasets/{dataset['id']}/")
        objectstore.evict()
    frame = maya.get(f"/api/v1/samples/{samples[0]['id']}/frames/cam_high/9/")
    assert frame.status_code == 200 and frame["Content-Type"].startswith("image/")

    task = maya.post(
        "/api/v1/tasks/",
        {"project": project.pk, "name": "Both episodes", "datasets": [dataset["id"]]},
        format="json",
    ).json()
    url = f"/api/v1/tasks/{task['id']}"
    assert ana.post("/api/v1/tasks/next/").json()["id"] == task["id"]
    saved = ana.post(
        f"{url}/annotations/",
        {
            "stage": "annotate",
            "label": "segment",
            "data": {"start": 2, "end": 7},
            "attributes": {"description": "reach"},
        },
        format="json",
    )
    assert saved.status_code == 201, saved.content
    submitted = ana.post(f"{url}/stages/annotate/submit/")
    assert submitted.json().get("status") == "pending_review", submitted.content
    approved = ravi.post(f"{url}/stages/review/review/", {"decision": "approve"}, format="json")
    assert approved.json()["status"] == "review_passed"

    with django_capture_on_commit_callbacks(execute=True):
        started = maya.post(
            "/api/v1/exports/", {"project": project.pk, "format": "hdf5"}, format="json"
        )
    assert started.status_code == 202, started.content
    run_jobs("exports")
    export = maya.get(f"/api/v1/exports/{started.json()['id']}/").json()
    assert export["status"] == "finished", export
    download = maya.get(f"/api/v1/exports/{export['id']}/download/")
    if backend:
        assert download.status_code == 302
        location = download["Location"]
        assert location.startswith(backend.endpoint) and "X-Amz-Signature" in location
        with urllib.request.urlopen(location) as response:  # noqa: S310 (the test server)
            archive = response.read()
        assert api_as(annotator).get(f"/api/v1/exports/{export['id']}/download/").status_code in {
            403,
            404,
        }
    else:
        assert download.status_code == 200
        archive = b"".join(download.streaming_content)

    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        episodes = sorted(n for n in opened.namelist() if n.endswith(".hdf5"))
        assert len(episodes) == 2
        for name, source in zip(episodes, sources, strict=True):
            with h5py.File(io.BytesIO(opened.read(name)), "r") as exported:
                assert np.array_equal(exported["observations/qpos"][()], source["qpos"])
                assert np.array_equal(
                    exported["observations/images/cam_high"][()], source["images"]["cam_high"]
                )
