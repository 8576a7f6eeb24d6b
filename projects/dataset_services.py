"""Dataset import: copy files into Stagecraft's storage, inspect them, store samples.

``dataset_import_start`` records the request (uploaded files go to the data storage, under
``uploads/datasets/<id>/``) and enqueues ``import_dataset_job`` on the ``imports`` queue;
the job calls ``dataset_import_run``, which:

1. stages the files in a folder of the worker's machine (``staging_dir``: copied from a
   server path, or the uploaded files fetched from the storage, zip archives unpacked),
   hashing each;
2. inspects them with the format's pure importer (projects.formats);
3. refuses files already imported in the project (same checksums);
4. publishes them (``_publish``: one rename into ``MEDIA_ROOT/datasets/<id>/`` on the
   local folder; in a bucket a new version ``datasets/<id>/<version>/`` with its manifest
   written last) and stores every sample, with the version, in one transaction.

Any failure leaves no samples and no files behind (staging, uploads and any published
objects are removed), only the dataset row with status ``failed`` and an error that names
the file and the problem. Where the files live: projects/dataset_files.py.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import zipfile
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from activity.services import activity_record
from core import objectstore
from core.access import Action, actor_user, require
from core.exceptions import ApplicationError
from core.jobs import enqueue, job_log, report_progress

from .dataset_files import (
    MANIFEST,
    dataset_dir,
    dataset_key,
    dataset_prefix,
    datasets_root,
    manifest_bytes,
    new_version,
    staging_dir,
    upload_prefix,
)
from .formats import DataError, SampleSpec, get_format
from .formats.base import check_spec, public_error
from .models import Dataset, DatasetFormat, ImportStatus, Project, Sample

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024
MAX_ZIP_MEMBERS = 100_000


__all__ = ["dataset_dir", "datasets_root", "staging_dir"]  # where they were found before


def import_job_id(dataset: Dataset) -> str:
    return f"import-dataset-{dataset.pk}"


def check_import_path(path: str) -> Path:
    """A server path the API and pages may import from: inside an allowed root."""
    try:
        resolved = Path(path).resolve()
    except (OSError, RuntimeError):
        raise ApplicationError("That path cannot be resolved.", field="path") from None
    roots = [Path(r).resolve() for r in settings.STAGECRAFT_IMPORT_ROOTS]
    if not any(resolved == root or root in resolved.parents for root in roots):
        allowed = ", ".join(str(r) for r in roots) or "none configured"
        raise ApplicationError(
            f"Imports from the server may only read inside the import folders ({allowed}).",
            field="path",
        )
    return resolved


@transaction.atomic
def dataset_import_start(
    *,
    actor,
    project: Project,
    name: str,
    format: str,
    source_path: str | Path | None = None,
    uploads: Iterable[UploadedFile] | None = None,
    options: dict[str, Any] | None = None,
    description: str = "",
    background: bool = True,
) -> Dataset:
    """Record an import and queue it. Exactly one of ``source_path`` and ``uploads``.

    With ``background=False`` nothing is queued: the caller runs ``dataset_import_run``
    itself (the command line does, showing progress in the terminal).
    """
    require(actor, project, Action.CHANGE)
    name = (name or "").strip()
    if not name:
        raise ApplicationError("A dataset needs a name.", field="name")
    if format not in DatasetFormat.values:
        raise ApplicationError(
            f"Format must be one of {', '.join(DatasetFormat.values)}.", field="format"
        )
    uploads = list(uploads or [])
    names = [Path(u.name or "").name for u in uploads]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ApplicationError(
            f"Two uploaded files are both named “{repeated[0]}”: upload a .zip of the folder "
            "to keep its structure.",
            field="files",
        )
    if bool(source_path) == bool(uploads):
        raise ApplicationError(
            "Give either files to upload or a path on the server.", field="files"
        )
    if source_path is not None:
        source = Path(source_path).resolve()
        if not source.exists():
            raise ApplicationError(f"{source} does not exist.", field="path")
    dataset = Dataset.objects.create(
        project=project,
        name=name,
        description=description,
        format=format,
        options=options or {},
        source_path=str(source) if source_path is not None else "",
        created_by=actor_user(actor),
    )
    if uploads:
        _save_uploads(dataset, uploads)
    activity_record(
        actor=actor,
        verb="dataset.import_started",
        target=dataset,
        project=project,
        after={
            "name": dataset.name,
            "format": dataset.format,
            "source": dataset.source_path or f"{len(uploads)} uploaded file(s)",
        },
    )
    if background:
        dataset.job_id = import_job_id(dataset)
        dataset.save(update_fields=["job_id"])
        from .jobs import import_dataset_failed, import_dataset_job

        enqueue(
            "imports",
            import_dataset_job,
            dataset.pk,
            job_id=dataset.job_id,
            on_failure=import_dataset_failed,
        )
    logger.info("dataset %s (%s) import requested by %s", dataset.pk, format, actor)
    return dataset


def _save_uploads(dataset: Dataset, uploads: list[UploadedFile]) -> None:
    """Keep the uploaded files in the data storage until the import job (on any machine)
    takes them. An upload that breaks off leaves none of them (the dataset row is rolled
    back with the request)."""
    try:
        for upload in uploads:
            name = Path(upload.name or "").name  # never a path from the client
            if name in {"", ".", ".."}:
                name = "upload"
            objectstore.put_stream(upload, objectstore.join(upload_prefix(dataset.pk), name))
    except BaseException:
        objectstore.delete_prefix(upload_prefix(dataset.pk))
        raise


def detect_format(path: str | Path) -> str:
    """Guess the format of a file or folder: LeRobot, robomimic, ALOHA HDF5 or images."""
    import h5py

    path = Path(path)
    if (path / "meta" / "info.json").is_file():
        return DatasetFormat.LEROBOT
    if path.name.lower().endswith((".zarr", ".zarr.zip")) or any(
        (store / "meta" / "episode_ends").exists() for store in (path, *path.glob("*.zarr"))
    ):
        return DatasetFormat.ZARR
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for candidate in files:
        suffix = candidate.suffix.lower()
        if suffix in {".png", ".jpg", ".jpeg"}:
            return DatasetFormat.IMAGES
        if suffix in {".hdf5", ".h5"}:
            try:
                with h5py.File(candidate, "r") as f:
                    if "data" in f:
                        return DatasetFormat.ROBOMIMIC
                    if "observations" in f or "action" in f:
                        return DatasetFormat.HDF5
            except OSError:
                continue
    raise ApplicationError(
        f"Cannot tell the format of {path}: give --format "
        "(hdf5, lerobot, robomimic, zarr, images).",
        field="format",
    )


def _copy_hashed(src: Path, dst: Path) -> tuple[str, int]:
    dst.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with src.open("rb") as fin, dst.open("wb") as fout:
        while chunk := fin.read(CHUNK):
            digest.update(chunk)
            fout.write(chunk)
            size += len(chunk)
    shutil.copystat(src, dst)
    return digest.hexdigest(), size


def _hash(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fin:
        while chunk := fin.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _unpack_zip(archive: Path, into: Path) -> None:
    """Unpack safely: no paths outside, bounded size, a single top folder flattened."""
    limit = settings.STAGECRAFT_MAX_IMPORT_BYTES
    unpacked = into / f".unzip-{archive.stem}"
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            if len(members) > MAX_ZIP_MEMBERS:
                raise DataError(archive.name, f"holds more than {MAX_ZIP_MEMBERS} files")
            total = sum(m.file_size for m in members)
            if total > limit:
                raise DataError(archive.name, f"unpacks to {total / 1e9:.1f} GB, over the limit")
            if total > shutil.disk_usage(into).free * 0.9:
                raise DataError(archive.name, "does not fit on the server's disk")
            for member in members:
                # Some Windows tools separate folders with backslashes: folders here too, so
                # a file's path is the same on the local folder and as a bucket's key.
                member.filename = member.filename.replace("\\", "/")
                target = (unpacked / member.filename).resolve()
                if not target.is_relative_to(unpacked.resolve()):
                    raise DataError(archive.name, f"member {member.filename!r} points outside")
            zf.extractall(unpacked, members)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
        raise DataError(archive.name, f"is not a readable zip archive ({exc})") from exc
    archive.unlink()
    children = [c for c in unpacked.iterdir() if c.name != "__MACOSX"]
    base = children[0] if len(children) == 1 and children[0].is_dir() else unpacked
    for child in base.iterdir():
        if child.name == "__MACOSX":
            continue
        if (into / child.name).exists():
            raise DataError(archive.name, f"holds {child.name!r}, which another upload has too")
        child.rename(into / child.name)
    shutil.rmtree(unpacked)


def _stage(dataset: Dataset, fmt, staging: Path) -> dict[str, tuple[str, int]]:
    """Put the dataset's files in ``staging``; return {relative path: (sha256, size)}."""
    checksums: dict[str, tuple[str, int]] = {}
    if dataset.source_path:
        source = Path(dataset.source_path)
        if not source.exists():
            raise DataError(source, "no longer exists")
        if source.is_file():
            base, candidates = source.parent, [source]
        else:
            base = source
            # Symbolic links could reach outside the import folders: they are skipped.
            candidates = sorted(
                p
                for p in source.rglob("*")
                if p.is_file() and not p.is_symlink() and p.resolve().is_relative_to(base)
            )
        files = [p for p in candidates if fmt.accepts(p.relative_to(base))]
        if not files:
            raise DataError(source, f"holds no files that the {dataset.format} importer takes")
        staging.mkdir(parents=True, exist_ok=True)
        for n, path in enumerate(files):
            relative = path.relative_to(base)
            report_progress(0.4 * n / len(files), stage="copying", detail=str(relative))
            checksums[str(relative)] = _copy_hashed(path, staging / relative)
        return checksums
    uploaded = [key for key, _size in objectstore.list_keys(upload_prefix(dataset.pk))]
    for n, key in enumerate(uploaded):
        name = key.rsplit("/", 1)[-1]
        report_progress(0.1 * n / len(uploaded), stage="fetching", detail=name)
        objectstore.get_file(key, staging / name, move=True)
    if not staging.exists():
        raise DataError(None, "The uploaded files are gone (the upload did not complete).")
    for archive in list(staging.glob("*.zip")):
        _unpack_zip(archive, staging)
    files = sorted(p for p in staging.rglob("*") if p.is_file())
    for n, path in enumerate(files):
        relative = path.relative_to(staging)
        if not fmt.accepts(relative):
            path.unlink()
            continue
        report_progress(0.4 * n / len(files), stage="checking", detail=str(relative))
        checksums[str(relative)] = _hash(path)
    if not checksums:
        raise DataError(
            None, f"None of the uploaded files is something the {dataset.format} importer takes."
        )
    return checksums


def _sample_rows(dataset: Dataset, specs: list[SampleSpec], checksums: dict) -> list[Sample]:
    rows = []
    stores: dict[str, str] = {}  # a folder the samples come from (a Zarr store): its digest
    for index, spec in enumerate(specs):
        file_sha, size = checksums.get(spec.source.get("file", ""), ("", 0))
        store = spec.source.get("store")
        if store is not None and store not in checksums:
            if store not in stores:
                inside = sorted(
                    sha
                    for path, (sha, _) in checksums.items()
                    if store == "." or path.startswith(f"{store}/")
                )
                stores[store] = hashlib.sha256("\n".join(inside).encode()).hexdigest()
            file_sha = stores[store]
        key = spec.source.get("group") or spec.source.get("episode_index")
        checksum = file_sha
        if key is not None:  # several samples in one file
            checksum = hashlib.sha256(f"{file_sha}:{key}".encode()).hexdigest()
        rows.append(
            Sample(
                dataset=dataset,
                index=index,
                name=spec.name[:300],
                kind=spec.kind,
                num_frames=spec.num_frames,
                fps=spec.fps,
                cameras=spec.cameras,
                arrays=spec.arrays,
                source=spec.source,
                metadata=spec.metadata,
                checksum=checksum,
                size_bytes=size if key is None else 0,
            )
        )
    return rows


def _fail(dataset_id: int, message: str) -> None:
    Dataset.objects.filter(pk=dataset_id).update(status=ImportStatus.FAILED, error=message[:4000])


class ImportAbandoned(Exception):
    """The import's row was marked failed (its job declared lost) before it could finish."""


def _discard_import(dataset_id: int) -> None:
    """Everything an import that did not finish left: this machine's staging folder, the
    uploads, and whatever it published (objects of a version without a manifest, or one
    whose samples were never saved). Nothing of the dataset is kept before it finishes."""
    shutil.rmtree(staging_dir(dataset_id), ignore_errors=True)
    objectstore.delete_prefix(upload_prefix(dataset_id))
    objectstore.delete_prefix(dataset_key(dataset_id))


# Files of a dataset uploaded to a bucket at a time (a Zarr store is many small chunks).
PUBLISH_WORKERS = 8
STAGING_NAME = re.compile(r"\.(?:staging|resync)-(\d+)(?:-[0-9a-f]{8})?")


def _sweep_staging() -> None:
    """This machine's staging folders of imports and re-syncs that no longer run: a worker
    killed here, whose clean-up ran on another machine, left its folder in this machine's
    ``STAGECRAFT_WORK_DIR``. Each job sweeps before it stages (on the local folder the
    clean-up paths see the one disk)."""
    root = Path(settings.STAGECRAFT_WORK_DIR) / "datasets"
    if not objectstore.is_remote() or not root.is_dir():
        return
    found: dict[int, list[Path]] = {}
    for path in root.iterdir():
        match = STAGING_NAME.fullmatch(path.name)
        if match:
            found.setdefault(int(match.group(1)), []).append(path)
    running = set(
        Dataset.objects.filter(pk__in=found)
        .filter(models.Q(status=ImportStatus.STARTED) | models.Q(resync_started_at__isnull=False))
        .values_list("pk", flat=True)
    )
    for dataset_id, paths in found.items():
        if dataset_id not in running:
            for path in paths:
                shutil.rmtree(path, ignore_errors=True)


def _publish(dataset: Dataset, staging: Path, checksums: dict, digest: str) -> str:
    """Publish the staged files; the version to record on the dataset ("" on the local
    folder: the files are renamed into ``datasets/<id>/``). In a bucket a new version
    prefix gets every file, then the manifest (files, sha256, sizes) last; a failure
    removes what was written. The staging folder is gone afterwards."""
    if objectstore.is_remote():
        version = new_version()
        prefix = objectstore.join(dataset_key(dataset.pk), version)
        (staging / MANIFEST).write_bytes(manifest_bytes(dataset, version, checksums, digest))
    else:
        version, prefix = "", dataset_key(dataset.pk)
        objectstore.delete_prefix(prefix)  # a dead attempt's folder
    try:
        objectstore.publish_tree(
            staging, prefix, last=[MANIFEST] if version else [], workers=PUBLISH_WORKERS
        )
    except BaseException:
        objectstore.delete_prefix(prefix)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return version


def dataset_import_abandon(*, dataset_id: int, reason: str) -> None:
    """Mark an import that can no longer finish as failed and drop its staged files."""
    stuck = Dataset.objects.filter(
        pk=dataset_id, status__in=[ImportStatus.QUEUED, ImportStatus.STARTED]
    )
    if stuck.update(
        status=ImportStatus.FAILED,
        error=f"The import job stopped before it finished ({reason}). Nothing was kept; "
        "import the files again.",
    ):
        _discard_import(dataset_id)
        logger.warning("dataset %s import abandoned: %s", dataset_id, reason)


def _read_into(dataset: Dataset, staging: Path) -> tuple[dict, list[SampleSpec], str]:
    """Put the dataset's files in ``staging`` and inspect them: the files' checksums, the
    checked sample specs and the digest of the whole set (import and re-sync alike)."""
    fmt = get_format(dataset.format)
    report_progress(0.0, stage="copying")
    checksums = _stage(dataset, fmt, staging)

    def progress(done: int, total: int, detail: str) -> None:
        report_progress(0.4 + 0.55 * done / max(total, 1), stage="reading", detail=detail)

    job_log(f"dataset {dataset.pk}: {len(checksums)} file(s) staged")
    specs = fmt.inspect(staging, [Path(p) for p in checksums], dataset.options, progress)
    job_log(f"{len(specs)} sample(s) found")
    if not specs:
        raise DataError(None, "No samples found.")
    for spec in specs:
        check_spec(spec)
    digest = hashlib.sha256("\n".join(sorted(s for s, _ in checksums.values())).encode())
    return checksums, specs, digest.hexdigest()


def dataset_import_run(*, dataset_id: int) -> Dataset | None:
    """Run a queued import (the job's body). Safe to call twice: only a queued import runs,
    or a failed one when its job is retried (queue administration, a lost worker)."""
    claimed = Dataset.objects.filter(
        pk=dataset_id, status__in=[ImportStatus.QUEUED, ImportStatus.FAILED]
    ).update(status=ImportStatus.STARTED, error="")
    if not claimed:
        return None
    dataset = Dataset.objects.select_related("project").get(pk=dataset_id)
    staging = staging_dir(dataset)
    _sweep_staging()
    try:
        checksums, specs, dataset.checksum = _read_into(dataset, staging)
        duplicate = (
            Dataset.objects.filter(
                project=dataset.project_id, checksum=dataset.checksum, status=ImportStatus.FINISHED
            )
            .exclude(pk=dataset.pk)
            .first()
        )
        if duplicate:
            raise DataError(
                None,
                f"These files were already imported as “{duplicate.name}” "
                f"(dataset {duplicate.pk}).",
            )
        report_progress(0.95, stage="saving")
        version = _publish(dataset, staging, checksums, dataset.checksum)
        _save_samples(dataset, specs, checksums, version)
        objectstore.delete_prefix(upload_prefix(dataset_id))  # its (emptied) folder
    except ImportAbandoned:
        # Declared lost elsewhere (recovery on another machine) while this worker went on:
        # the row says failed and stays so; what this run published goes too.
        _discard_import(dataset_id)
        logger.warning("dataset %s import finished after it was abandoned: discarded", dataset_id)
        return Dataset.objects.get(pk=dataset_id)
    except DataError as exc:
        _discard_import(dataset_id)
        _fail(dataset_id, exc.message)
        logger.info("dataset %s import failed: %s", dataset_id, exc.message)
        return Dataset.objects.get(pk=dataset_id)
    except IntegrityError:
        _discard_import(dataset_id)
        _fail(dataset_id, "The same files were imported into this project at the same moment.")
        return Dataset.objects.get(pk=dataset_id)
    except Exception as exc:
        _discard_import(dataset_id)
        _fail(dataset_id, f"The import failed unexpectedly ({public_error(exc)}).")
        logger.exception("dataset %s import crashed", dataset_id)
        raise
    report_progress(1.0, stage="done")
    dataset.refresh_from_db()
    return dataset


@transaction.atomic
def _save_samples(dataset: Dataset, specs: list[SampleSpec], checksums: dict, version: str) -> None:
    Sample.objects.bulk_create(_sample_rows(dataset, specs, checksums), batch_size=500)
    finished = Dataset.objects.filter(pk=dataset.pk, status=ImportStatus.STARTED).update(
        status=ImportStatus.FINISHED,
        files_version=version,
        error="",
        checksum=dataset.checksum,
        num_samples=len(specs),
        total_frames=sum(s.num_frames for s in specs),
        duration_seconds=sum(s.num_frames / s.fps for s in specs if s.fps),
        size_bytes=sum(size for _, size in checksums.values()),
        imported_at=timezone.now(),
    )
    if not finished:  # abandoned meanwhile: the samples roll back with this transaction
        raise ImportAbandoned(dataset.pk)


@transaction.atomic
def dataset_delete(*, actor, dataset: Dataset) -> None:
    """Delete a dataset, its samples and its files. Datasets outlive tasks, not the other
    way round: one that tasks still use is refused, as is one still being imported."""
    require(actor, dataset.project, Action.CHANGE)
    locked = Dataset.objects.select_for_update().select_related("project").get(pk=dataset.pk)
    resyncing = locked.resync_started_at and (
        locked.resync_started_at > timezone.now() - RESYNC_CLAIM_TIMEOUT
    )
    if locked.status in {ImportStatus.QUEUED, ImportStatus.STARTED} or resyncing:
        raise ApplicationError("Wait until the import or re-sync ends.", field="dataset")
    used = locked.tasks.count()
    if used:
        raise ApplicationError(
            f"{used} task(s) use “{locked.name}”: unlink it from them first.", field="dataset"
        )
    activity_record(
        actor=actor,
        verb="dataset.deleted",
        target=locked,
        project=locked.project,
        before={"name": locked.name, "format": locked.format, "samples": locked.num_samples},
    )
    pk = locked.pk
    locked.delete()

    def remove_files() -> None:
        # Every version and any upload left; this machine's staging folder and cached copies.
        _discard_import(pk)
        objectstore.evict(dataset_key(pk))

    transaction.on_commit(remove_files)
    logger.info("dataset %s deleted by %s", dataset.pk, actor)


RESYNC_FIELDS = ("num_frames", "fps", "cameras", "arrays", "source", "metadata", "checksum")


def resync_job_id(dataset: Dataset) -> str:
    return f"resync-dataset-{dataset.pk}"


@transaction.atomic
def dataset_resync_start(*, actor, dataset: Dataset) -> str:
    """Queue a re-sync of a finished dataset from the server folder it was imported from."""
    require(actor, dataset.project, Action.CHANGE)
    if dataset.status != ImportStatus.FINISHED:
        raise ApplicationError("Only a finished import can be re-synced.", field="dataset")
    if not dataset.source_path:
        raise ApplicationError(
            "This dataset was uploaded: there is no server folder to re-sync it from.",
            field="dataset",
        )
    from .jobs import resync_dataset_job

    job_id = resync_job_id(dataset)
    activity_record(
        actor=actor,
        verb="dataset.resync_started",
        target=dataset,
        project=dataset.project,
        after={"source": dataset.source_path},
    )
    enqueue("imports", resync_dataset_job, dataset.pk, job_id=job_id)
    logger.info("dataset %s re-sync requested by %s", dataset.pk, actor)
    return job_id


def _sample_identity(source: dict) -> tuple:
    """Which recording a sample is, independent of its (not necessarily unique) name."""
    return (source.get("file"), source.get("group"), source.get("episode_index"))


def _restore_interrupted_swap(dataset: Dataset) -> None:
    """A worker that died between the two renames of a swap left the files aside (the
    local folder; a bucket's re-sync switches versions in the database instead)."""
    if objectstore.is_remote():
        return
    final, previous = dataset_dir(dataset), datasets_root() / f".previous-{dataset.pk}"
    if previous.exists() and not final.exists():
        previous.replace(final)
        logger.warning("dataset %s: restored its files after an interrupted re-sync", dataset.pk)


RESYNC_CLAIM_TIMEOUT = timedelta(hours=2)


def dataset_resync_run(*, dataset_id: int) -> dict:
    """Read the dataset's source folder again and bring its samples up to date.

    Samples are matched by the recording they come from (file, group, episode): changed
    ones are updated in place and stamped ``changed_at`` (tasks using them show a
    reminder), new ones are added. A sample that is gone from the source stops the re-sync
    (annotations refer to it): nothing changes. One re-sync of a dataset runs at a time.
    """
    now = timezone.now()
    claimed = (
        Dataset.objects.filter(pk=dataset_id, status=ImportStatus.FINISHED)
        .exclude(source_path="")
        .filter(
            models.Q(resync_started_at=None)
            | models.Q(resync_started_at__lt=now - RESYNC_CLAIM_TIMEOUT)
        )
        .update(resync_started_at=now)
    )
    if not claimed:
        return {"skipped": True}
    dataset = Dataset.objects.select_related("project").get(pk=dataset_id)
    try:
        _restore_interrupted_swap(dataset)
        _sweep_staging()
        _remove_dead_versions(dataset)
        return _resync(dataset)
    finally:
        Dataset.objects.filter(pk=dataset_id).update(resync_started_at=None)


def _resync(dataset: Dataset) -> dict:
    staging = staging_dir(dataset, label="resync")
    try:
        check_import_path(dataset.source_path)  # the allowed folders may have changed
        checksums, specs, digest = _read_into(dataset, staging)
        fresh = {_sample_identity(r.source): r for r in _sample_rows(dataset, specs, checksums)}
        current = {_sample_identity(s.source): s for s in dataset.samples.all()}
        gone = sorted(s.name for key, s in current.items() if key not in fresh)
        if gone:
            raise DataError(
                None,
                f"{len(gone)} sample(s) are no longer in {dataset.source_path} "
                f"({', '.join(gone[:5])}); a re-sync only updates and adds samples.",
            )
        now = timezone.now()
        changed, added = [], []
        next_index = max((s.index for s in current.values()), default=-1) + 1
        for key, row in fresh.items():
            sample = current.get(key)
            if sample is None:
                row.index, row.changed_at = next_index, now
                next_index += 1
                added.append(row)
            elif any(getattr(sample, f) != getattr(row, f) for f in RESYNC_FIELDS):
                for f in (*RESYNC_FIELDS, "size_bytes", "name"):
                    setattr(sample, f, getattr(row, f))
                sample.changed_at = now
                changed.append(sample)

        def save(version: str) -> None:
            with transaction.atomic():
                fields = [*RESYNC_FIELDS, "size_bytes", "name", "changed_at"]
                Sample.objects.bulk_update(changed, fields)
                Sample.objects.bulk_create(added)
                samples = list(dataset.samples.all())
                Dataset.objects.filter(pk=dataset.pk).update(
                    checksum=digest,
                    num_samples=len(samples),
                    total_frames=sum(s.num_frames for s in samples),
                    duration_seconds=sum(s.duration_seconds for s in samples),
                    size_bytes=sum(size for _, size in checksums.values()),
                    imported_at=now,
                    error="",
                    files_version=version,
                )

        if objectstore.is_remote():
            _switch_version(dataset, staging, checksums, digest, save)
        else:
            _swap_folders(dataset, staging, save)
    except ApplicationError as exc:
        _resync_failed(dataset, staging, exc.message)
        return {"error": exc.message}
    except IntegrityError:
        message = "The re-synced files are identical to another dataset of this project."
        _resync_failed(dataset, staging, message)
        return {"error": message}
    except Exception as exc:
        _resync_failed(dataset, staging, f"unexpected {public_error(exc)}")
        logger.exception("dataset %s re-sync crashed", dataset.pk)
        raise
    result = {"changed": [s.name for s in changed], "added": [s.name for s in added]}
    job_log(f"dataset {dataset.pk} re-synced: {len(changed)} changed, {len(added)} added")
    return result


def _remove_dead_versions(dataset: Dataset) -> None:
    """A bucket's versions of the dataset other than its current one: what a re-sync killed
    while publishing left (one re-sync runs at a time, so none is being written now)."""
    if not objectstore.is_remote() or not dataset.files_version:
        return
    for name in objectstore.list_folders(dataset_key(dataset.pk)):
        if name != dataset.files_version:
            objectstore.delete_prefix(objectstore.join(dataset_key(dataset.pk), name))
            logger.warning("dataset %s: removed the unfinished version %s", dataset.pk, name)


def _switch_version(
    dataset: Dataset, staging: Path, checksums: dict, digest: str, save: Callable[[str], None]
) -> None:
    """A bucket's re-sync: publish the files as a new version, switch the dataset and its
    samples to it in one transaction, then delete the old version's objects (readers that
    loaded the dataset before the switch may still have its files in their cache)."""
    old = dataset_prefix(dataset)
    version = _publish(dataset, staging, checksums, digest)
    new = objectstore.join(dataset_key(dataset.pk), version)
    try:
        save(version)
    except BaseException:
        objectstore.delete_prefix(new)
        raise
    # Files moved from the local folder have no version: the new one is inside their prefix.
    objectstore.delete_prefix(old, keep=None if dataset.files_version else new)
    objectstore.evict(old)


def _swap_folders(dataset: Dataset, staging: Path, save: Callable[[str], None]) -> None:
    """The local folder's re-sync: the staged folder takes the live one's place by two
    renames, put back if the database refuses the change."""
    final, previous = dataset_dir(dataset), datasets_root() / f".previous-{dataset.pk}"
    shutil.rmtree(previous, ignore_errors=True)
    final.replace(previous)
    staging.replace(final)
    try:
        save("")
    except BaseException:
        final.replace(staging)
        previous.replace(final)
        raise
    shutil.rmtree(previous, ignore_errors=True)


def _resync_failed(dataset: Dataset, staging: Path, message: str) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    Dataset.objects.filter(pk=dataset.pk).update(error=f"Re-sync failed: {message}"[:4000])
    logger.info("dataset %s re-sync failed: %s", dataset.pk, message)
