"""Zip archives written on Windows by some tools (PowerShell 5's Compress-Archive) separate
folders with backslashes. The import unpacks them into folders, so a sample's file is the
same path on the local folder and in a bucket (whose keys turn ``\\`` into ``/``)."""

import io
import zipfile

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from core import objectstore
from projects import dataset_selectors
from projects.dataset_services import dataset_import_run, dataset_import_start
from tests.helpers.hdf5 import write_aloha

pytestmark = pytest.mark.django_db


def windows_zip(tmp_path) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for i in range(2):
            path = tmp_path / f"episode_{i}.hdf5"
            write_aloha(path, T=6, seed=i)
            zf.write(path, f"rig\\day1\\episode_{i}.hdf5")
    return SimpleUploadedFile("rig.zip", buffer.getvalue())


@pytest.mark.parametrize("where", ["local", "bucket"])
def test_a_zip_with_backslash_separators_imports_into_folders_and_reads_back(
    project, manager, tmp_path, settings, request, where
):
    settings.MEDIA_ROOT = tmp_path / "media"
    if where == "bucket":
        request.getfixturevalue("s3_storage")
    dataset = dataset_import_start(
        actor=manager, project=project, name="Windows", format="hdf5",
        uploads=[windows_zip(tmp_path)], background=False,
    )  # fmt: skip
    dataset = dataset_import_run(dataset_id=dataset.pk)
    assert dataset.status == "finished", dataset.error

    files = sorted(s["file"] for s in dataset.samples.values_list("source", flat=True))
    assert files == ["day1/episode_0.hdf5", "day1/episode_1.hdf5"]
    objectstore.evict()
    sample = dataset.samples.select_related("dataset").get(name="episode_1")
    png = dataset_selectors.sample_frame(sample=sample, camera="cam_high", index=5, encoding="png")
    assert np.asarray(Image.open(io.BytesIO(png))).shape[2] == 3
