"""Where a dataset's files live: their keys in the data storage (core/objectstore.py), the
worker's staging folder, the manifest, and the real folder a reader opens.

On the local folder (the default) a dataset's files are ``datasets/<id>/`` under
``MEDIA_ROOT``, published by renaming the staging folder beside them (``.staging-<id>``),
exactly as before there was a bucket. In a bucket (``STAGECRAFT_STORAGE=s3``) each import
or re-sync publishes a new version ``datasets/<id>/<files_version>/`` from a staging folder
on the worker's own disk (``STAGECRAFT_WORK_DIR``), the manifest written last; the dataset
row names the version its samples describe, and readers fetch a version only once its
manifest exists. Uploads wait for their import under ``uploads/datasets/<id>/``.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from django.conf import settings

from core import objectstore

from .formats import get_format
from .models import Dataset, Sample

# Written last into a published version: its files with their sha256 and size. A dot name:
# no format takes a dot file from an upload or a folder, so it never meets a dataset's own.
MANIFEST = ".stagecraft-manifest.json"


def datasets_root() -> Path:
    """The local backend's folder of datasets (``MEDIA_ROOT/datasets``)."""
    return Path(settings.MEDIA_ROOT) / "datasets"


def dataset_key(dataset_id: int) -> str:
    """Every object of a dataset, whatever its version, lies under this key."""
    return f"datasets/{int(dataset_id)}"


def dataset_prefix(dataset: Dataset) -> str:
    """The key of the dataset's current files: its version in a bucket, else its folder."""
    if dataset.files_version:
        return objectstore.join(dataset_key(dataset.pk), dataset.files_version)
    return dataset_key(dataset.pk)


def upload_prefix(dataset_id: int) -> str:
    """Where the web process keeps a dataset's uploaded files until its import job runs."""
    return f"uploads/datasets/{int(dataset_id)}"


def new_version() -> str:
    """A version name never used before (a retried job never writes into a dead one's)."""
    return f"v-{uuid.uuid4().hex[:12]}"


def staging_dir(dataset: Dataset | int, *, label: str = "staging") -> Path:
    """This machine's folder where a job gathers and checks the files before publishing:
    beside the datasets on the local backend (published by one rename), in the worker's
    ``STAGECRAFT_WORK_DIR`` with a bucket (nothing of it is shared). An import's is
    ``.staging-<id>`` (one at a time per dataset; the clean-up paths find it by its name),
    any other ``label``'s (a re-sync's) ``.<label>-<id>-<random>``."""
    pk = dataset if isinstance(dataset, int) else dataset.pk
    name = f".{label}-{pk}" if label == "staging" else f".{label}-{pk}-{uuid.uuid4().hex[:8]}"
    if objectstore.is_remote():
        return Path(settings.STAGECRAFT_WORK_DIR) / "datasets" / name
    return datasets_root() / name


def dataset_dir(dataset: Dataset) -> Path:
    """A real folder with all the dataset's current files: the stored folder on the local
    backend, a cached copy of the whole version with a bucket (readers of one sample use
    ``sample_root``, which fetches only that sample's files)."""
    if objectstore.is_remote():
        return objectstore.local_tree(dataset_prefix(dataset), require=_required(dataset))
    return datasets_root() / str(dataset.pk)


def sample_root(sample: Sample) -> Path:
    """The folder a format's reader opens ``sample``'s files in (``sample.source`` paths
    are relative to it): the dataset's folder on the local backend; with a bucket a cached
    copy of the files this sample reads (its HDF5 file, its parquet file and videos, its
    Zarr store), fetched from the dataset's published version on first use."""
    dataset = sample.dataset
    if not objectstore.is_remote():
        return dataset_dir(dataset)
    parts = get_format(dataset.format).sample_files(sample)
    return objectstore.local_tree(dataset_prefix(dataset), parts=parts, require=_required(dataset))


def _required(dataset: Dataset) -> str | None:
    """A version is read only once its manifest exists. A dataset without one was imported
    on the local folder and its ``datasets/<id>/`` copied into the bucket as it was (moving
    a deployment to a bucket): that folder was published whole by a rename."""
    return MANIFEST if dataset.files_version else None


def manifest_bytes(dataset: Dataset, version: str, checksums: dict, digest: str) -> bytes:
    """The manifest of a version: the dataset, its format and every file with its sha256
    and size (``checksums``: {relative path: (sha256, size)})."""
    return json.dumps(
        {
            "dataset": dataset.pk,
            "version": version,
            "format": dataset.format,
            "checksum": digest,
            "files": {
                path: {"sha256": sha, "size": size}
                for path, (sha, size) in sorted(checksums.items())
            },
        },
        indent=1,
    ).encode()
