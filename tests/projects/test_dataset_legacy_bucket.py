"""A dataset imported on the local folder and moved into a bucket as it was (README, moving a
deployment to a bucket): its files are ``datasets/<id>/…`` without a version or manifest
(``files_version`` empty). A re-sync on the bucket publishes a version under that same
prefix, so the old files go and the new version stays."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import objectstore
from projects import dataset_selectors
from projects.dataset_files import MANIFEST, dataset_key
from projects.dataset_services import dataset_import_run, dataset_import_start, dataset_resync_run
from projects.formats import get_format
from projects.models import Dataset
from tests.helpers.hdf5 import write_aloha

pytestmark = pytest.mark.django_db


def _as_moved_from_the_local_folder(dataset: Dataset, tmp_path: Path) -> None:
    """The version's files copied to ``datasets/<id>/`` as the local folder kept them."""
    version = objectstore.join(dataset_key(dataset.pk), dataset.files_version)
    for key, _size in list(objectstore.list_keys(version)):
        relative = key[len(version) + 1 :]
        if relative != MANIFEST:
            copy = objectstore.get_file(key, tmp_path / "moved" / relative)
            objectstore.put_file(copy, objectstore.join(dataset_key(dataset.pk), relative))
    objectstore.delete_prefix(version)
    Dataset.objects.filter(pk=dataset.pk).update(files_version="")
    objectstore.evict()


def test_a_resync_of_a_dataset_moved_from_the_local_folder_keeps_its_new_version(
    s3_storage, project, manager, tmp_path, settings
):
    folder = Path(settings.STAGECRAFT_IMPORT_ROOTS[0]) / f"legacy-{tmp_path.name}"
    for i in range(2):
        write_aloha(folder / f"episode_{i}.hdf5", T=8, seed=i)
    dataset = dataset_import_start(
        actor=manager, project=project, name="Rig", format="hdf5", source_path=folder,
        background=False,
    )  # fmt: skip
    dataset = dataset_import_run(dataset_id=dataset.pk)
    _as_moved_from_the_local_folder(dataset, tmp_path)
    base = f"{s3_storage.prefix}/datasets/{dataset.pk}/"
    assert s3_storage.keys(prefix=base) == [f"{base}episode_0.hdf5", f"{base}episode_1.hdf5"]

    write_aloha(folder / "episode_0.hdf5", T=9, seed=7)
    write_aloha(folder / "episode_2.hdf5", T=5, seed=2)
    assert dataset_resync_run(dataset_id=dataset.pk) == {
        "changed": ["episode_0"],
        "added": ["episode_2"],
    }

    dataset.refresh_from_db()
    assert dataset.files_version
    new = f"{base}{dataset.files_version}/"
    assert s3_storage.keys(prefix=base) == [
        f"{new}{MANIFEST}",
        f"{new}episode_0.hdf5",
        f"{new}episode_1.hdf5",
        f"{new}episode_2.hdf5",
    ]  # the moved files are gone, the new version is whole
    objectstore.evict()
    sample = dataset.samples.select_related("dataset").get(name="episode_0")
    png = dataset_selectors.sample_frame(sample=sample, camera="cam_high", index=8, encoding="png")
    expected = get_format("hdf5").read_frame(folder, sample, "cam_high", 8)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")), expected)
