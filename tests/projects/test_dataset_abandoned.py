"""An import declared lost (its worker's heartbeat gone, recovered from another machine) must
not turn finished when its worker was only slow and goes on: the row stays failed, no samples
are kept and what the run published is removed."""

import pytest

from core import objectstore
from projects.dataset_files import dataset_key, staging_dir
from projects.dataset_services import (
    ImportAbandoned,
    _discard_import,
    _publish,
    _read_into,
    _save_samples,
    dataset_import_abandon,
    dataset_import_start,
)
from projects.models import Dataset, ImportStatus, Sample
from tests.helpers.hdf5 import write_aloha

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_an_import_abandoned_while_it_publishes_stays_failed(
    backend, request, project, manager, tmp_path
):
    if backend == "s3":
        request.getfixturevalue("s3_storage")
    folder = tmp_path / "episodes"
    write_aloha(folder / "episode_0.hdf5", T=8, seed=1)
    dataset = dataset_import_start(
        actor=manager, project=project, name="Slow", format="hdf5", source_path=folder,
        background=False,
    )  # fmt: skip
    Dataset.objects.filter(pk=dataset.pk).update(status=ImportStatus.STARTED)  # the claim
    # The job's own steps, in dataset_import_run's order, with the recovery in between.
    checksums, specs, dataset.checksum = _read_into(dataset, staging_dir(dataset))
    version = _publish(dataset, staging_dir(dataset), checksums, dataset.checksum)
    dataset_import_abandon(dataset_id=dataset.pk, reason="worker lost")

    with pytest.raises(ImportAbandoned):
        _save_samples(dataset, specs, checksums, version)
    _discard_import(dataset.pk)  # what dataset_import_run does on ImportAbandoned

    dataset.refresh_from_db()
    assert dataset.status == ImportStatus.FAILED
    assert "stopped before it finished" in dataset.error
    assert not Sample.objects.filter(dataset=dataset).exists()
    assert list(objectstore.list_keys(dataset_key(dataset.pk))) == []
