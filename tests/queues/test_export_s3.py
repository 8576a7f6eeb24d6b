"""Exports on object storage (issue 18), against a real S3 server (moto's server mode in a
separate process, tests/helpers/s3.py): each format published to the bucket with its manifest
the last object written and its files bit-identical to the local storage's export of the same
data; a run killed mid-publish leaves no trusted export and its clean-up removes its objects;
downloads are a short-lived signed URL for a member and refused to others; the retention
clean-up and a project's deletion remove the objects."""

import io
import json
import shutil
import urllib.request
import zipfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from django.test import Client
from django.utils import timezone

from core import objectstore
from core.access import SYSTEM
from queues import services
from queues.models import Export, ExportStatus

from .test_export_array_shapes import import_robomimic, write_demos
from .test_export_episodes import export, finished_tasks

pytestmark = pytest.mark.django_db
FORMATS = ["jsonl", "hdf5", "coco", "lerobot", "robomimic"]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def demos(project, manager, tmp_path):
    """A robomimic file of three demos (every format can export it), one finished task."""
    write_demos(tmp_path / "rm" / "demos.hdf5")
    dataset = import_robomimic(project, manager, tmp_path / "rm")
    finished_tasks(project, manager, dataset, 1)
    return dataset


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def zip_members(data: bytes) -> dict[str, bytes]:
    """The archive's files by their path under its top folder (whose name is the version)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {
            name.split("/", 1)[1]: archive.read(name)
            for name in archive.namelist()
            if not name.endswith("/manifest.json")
        }


def stored(s3, key: str) -> bytes:
    body = s3.client().get_object(Bucket=s3.bucket, Key=f"{s3.prefix}/{key}")["Body"]
    return body.read()


def mirror_datasets_to_bucket(local_media: Path) -> None:
    """The project's dataset files, as the local storage keeps them, at the same keys in the
    bucket: both exports read the same bytes."""
    for folder in sorted((local_media / "datasets").iterdir()):
        if folder.is_dir() and folder.name.isdigit():
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                objectstore.put_file(path, path.relative_to(local_media).as_posix())


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_is_published_to_the_bucket_manifest_last_and_bit_identical_to_local(
    project, manager, tmp_path, settings, request, fmt
):
    demos(project, manager, tmp_path)
    on_disk, folder, _ = export(project, manager, fmt)
    local_files = files_of(folder)
    local_manifest = json.loads((folder / "manifest.json").read_text())
    local_zip = folder.with_suffix(".zip").read_bytes() if fmt != "jsonl" else None
    media = Path(settings.MEDIA_ROOT)
    # Exports name their version inside (HDF5 attributes, COCO's info): the bucket's export
    # gets the same number once the local one's row is gone.
    Export.objects.filter(pk=on_disk.pk).delete()

    s3 = request.getfixturevalue("s3_storage")  # the same data, now on the bucket
    mirror_datasets_to_bucket(media)
    s3.record()
    done, _, _ = export(project, manager, fmt)

    name = f"exports/{project.slug}/v{done.version}-{fmt}"
    assert done.path == f"{project.slug}/v{done.version}-{fmt}"
    puts = [path.split(f"/{s3.prefix}/", 1)[1] for method, path in s3.recorded() if method == "PUT"]
    puts = [key for key in puts if key.startswith("exports/")]
    assert puts[-1] == f"{name}/manifest.json"  # the last object written
    tree = sorted(f"{name}/{rel}" for rel in local_files) + [f"{name}/manifest.json"]
    if fmt != "jsonl":
        assert puts[0] == f"{name}.zip"  # the zip before any file of the folder
        tree.append(f"{name}.zip")
    assert sorted(puts) == sorted(tree)  # every object once
    assert s3.keys(prefix=f"{s3.prefix}/exports/") == sorted(f"{s3.prefix}/{k}" for k in tree)
    # Bit-identical to the local storage's export: every file, the manifest's checksums.
    for rel, data in local_files.items():
        assert stored(s3, f"{name}/{rel}") == data, rel
    manifest = json.loads(stored(s3, f"{name}/manifest.json"))
    assert manifest["files"] == local_manifest["files"]
    assert manifest["export_id"] == done.pk and done.manifest == manifest
    if fmt != "jsonl":
        assert zip_members(stored(s3, f"{name}.zip")) == zip_members(local_zip)
        assert manifest["archive"] == f"v{done.version}-{fmt}.zip"
    # Nothing of it stays in this machine's working folder, nor on the local disk.
    assert not list(services.work_root().glob(f".tmp-{done.pk}*"))
    assert done.version == on_disk.version
    assert sorted(p.name for p in (media / "exports" / project.slug).iterdir()) == (
        [f"v{done.version}-{fmt}"] + ([f"v{done.version}-{fmt}.zip"] if fmt != "jsonl" else [])
    )  # the local one only: nothing of the bucket's export on this disk


def test_export_dir_on_a_bucket_is_a_cached_copy(project, manager, tmp_path, s3_storage, settings):
    demos(project, manager, tmp_path)
    done, folder, _ = export(project, manager, "jsonl")
    assert folder.is_relative_to(settings.STAGECRAFT_CACHE_DIR)
    lines = (folder / "tasks.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["task"] == done.manifest["tasks"][0]


@pytest.mark.parametrize("dies", ["before the manifest", "after the manifest"])
def test_a_run_killed_mid_publish_leaves_no_trusted_export_and_is_cleaned(
    project, manager, tmp_path, s3_storage, monkeypatch, dies
):
    """The worker killed while uploading — stood in for by a SystemExit at that instant (a
    real SIGKILL cannot be timed there): before the manifest's PUT, or after it but before
    the row says finished. Readers trust neither; recovery's abandon removes every object;
    the retry publishes."""
    demos(project, manager, tmp_path)
    started, _ = services.export_start(
        actor=manager, project=project, format="hdf5", background=False
    )
    real_put, real_log = objectstore.put_file, services.job_log

    def put_dying_at_the_manifest(local, key):
        if key.endswith("/manifest.json"):
            raise SystemExit("worker killed")
        return real_put(local, key)

    def log_dying_once_published(message, *args, **kwargs):
        if message.startswith("published"):
            raise SystemExit("worker killed")
        return real_log(message, *args, **kwargs)

    if dies == "before the manifest":
        monkeypatch.setattr(objectstore, "put_file", put_dying_at_the_manifest)
    else:
        monkeypatch.setattr(services, "job_log", log_dying_once_published)
    with pytest.raises(SystemExit):
        services.export_run(export_id=started.pk)
    monkeypatch.undo()

    name = f"{s3_storage.prefix}/exports/{project.slug}/v{started.version}-hdf5"
    left = s3_storage.keys(prefix=f"{s3_storage.prefix}/exports/")
    assert f"{name}.zip" in left and f"{name}/episode_0.hdf5" in left
    assert (f"{name}/manifest.json" in left) == (dies == "after the manifest")
    started.refresh_from_db()
    assert started.status == ExportStatus.STARTED and started.path == ""
    client = Client()
    client.force_login(manager)
    refused = client.get(f"/api/v1/exports/{started.pk}/download/")
    assert refused.status_code == 400  # not finished: nothing to download

    services.export_abandon(export_id=started.pk, reason="worker lost")  # what recovery does
    started.refresh_from_db()
    assert started.status == ExportStatus.FAILED and "nothing was published" in started.error
    assert s3_storage.keys(prefix=f"{s3_storage.prefix}/exports/") == []
    assert not list(services.work_root().glob(f".tmp-{started.pk}*"))

    done = services.export_run(export_id=started.pk)  # "Retry failed"
    assert done.status == ExportStatus.FINISHED, done.error
    assert f"{name}/manifest.json" in s3_storage.keys(prefix=f"{s3_storage.prefix}/exports/")


def test_a_retry_removes_what_a_killed_run_uploaded_before_it_publishes(
    project, manager, tmp_path, s3_storage
):
    """The lost-worker clean-up never ran (its callback lost too): the retry itself removes
    the objects without a manifest, and publishes under the same name."""
    demos(project, manager, tmp_path)
    started, _ = services.export_start(
        actor=manager, project=project, format="jsonl", background=False
    )
    name = f"exports/{project.slug}/v{started.version}-jsonl"
    objectstore.put_bytes(b"half a file", f"{name}/tasks.jsonl")
    Export.objects.filter(pk=started.pk).update(status=ExportStatus.FAILED)

    done = services.export_run(export_id=started.pk)

    assert done.status == ExportStatus.FINISHED and done.path == name.removeprefix("exports/")
    assert stored(s3_storage, f"{name}/tasks.jsonl") != b"half a file"
    assert s3_storage.keys(prefix=f"{s3_storage.prefix}/exports/") == [
        f"{s3_storage.prefix}/{name}/manifest.json",
        f"{s3_storage.prefix}/{name}/tasks.jsonl",
    ]


def test_a_finished_export_of_another_database_is_never_overwritten(
    project, manager, tmp_path, s3_storage
):
    demos(project, manager, tmp_path)
    started, _ = services.export_start(
        actor=manager, project=project, format="jsonl", background=False
    )
    name = f"exports/{project.slug}/v{started.version}-jsonl"
    objectstore.put_bytes(b"theirs", f"{name}/tasks.jsonl")
    objectstore.put_bytes(json.dumps({"export_id": 10**9}).encode(), f"{name}/manifest.json")

    done = services.export_run(export_id=started.pk)

    assert done.path == f"{project.slug}/v{started.version}-jsonl-{started.pk}"
    assert stored(s3_storage, f"{name}/tasks.jsonl") == b"theirs"


@pytest.fixture
def published(project, manager, tmp_path, s3_storage, settings):
    """A finished HDF5 export (a zip) and a JSONL export in the bucket; signed URLs for 120 s."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            **settings.STORAGES["default"],
            "OPTIONS": {**settings.STORAGES["default"]["OPTIONS"], "querystring_expire": 120},
        },
    }
    demos(project, manager, tmp_path)
    zipped, _, _ = export(project, manager, "hdf5")
    plain, _, _ = export(project, manager, "jsonl")
    return zipped, plain


def fetch(url: str) -> tuple[bytes, str]:
    with urllib.request.urlopen(url) as response:  # noqa: S310 (the test server)
        return response.read(), response.headers["Content-Disposition"]


@pytest.mark.parametrize("where", ["page", "api"])
def test_a_member_downloads_through_a_short_lived_signed_url(
    published, project, manager, s3_storage, where
):
    zipped, plain = published
    client = Client()
    client.force_login(manager)
    for export_row, key, filename in (
        (zipped, f"exports/{zipped.path}.zip", f"{project.slug}-v{zipped.version}-hdf5.zip"),
        (
            plain,
            f"exports/{plain.path}/tasks.jsonl",
            f"{project.slug}-v{plain.version}-jsonl.jsonl",
        ),
    ):
        url = (
            f"/projects/{project.slug}/exports/{export_row.pk}/download/"
            if where == "page"
            else f"/api/v1/exports/{export_row.pk}/download/"
        )
        response = client.get(url)
        assert response.status_code == 302
        signed = response["Location"]
        assert signed.startswith(f"{s3_storage.endpoint}/{s3_storage.bucket}/{s3_storage.prefix}/")
        query = parse_qs(urlparse(signed).query)
        assert query["X-Amz-Expires"] == ["120"]  # STAGECRAFT_S3_URL_SECONDS
        assert "X-Amz-Signature" in query
        data, disposition = fetch(signed)
        assert data == stored(s3_storage, key)
        assert disposition == f'attachment; filename="{filename}"'
    assert zip_members(stored(s3_storage, f"exports/{zipped.path}.zip"))["episode_0.hdf5"]


@pytest.mark.parametrize("who, status", [("outsider", 404), ("annotator", 403), (None, 302)])
def test_others_are_refused_before_anything_is_signed(
    published, project, users, s3_storage, who, status
):
    zipped, _ = published
    client = Client()
    if who:
        client.force_login(users[who])
    page = client.get(f"/projects/{project.slug}/exports/{zipped.pk}/download/")
    api = client.get(f"/api/v1/exports/{zipped.pk}/download/")
    if who is None:  # anonymous: the page sends to the login, the API refuses
        assert page.status_code == 302 and "/accounts/login/" in page["Location"]
        assert api.status_code in (401, 403)
        return
    assert page.status_code == status and api.status_code == status
    assert "X-Amz-Signature" not in page.content.decode() + api.content.decode()


def test_a_download_is_refused_when_the_manifest_is_gone(published, project, manager, s3_storage):
    zipped, _ = published
    objectstore.delete(f"exports/{zipped.path}/manifest.json")
    client = Client()
    client.force_login(manager)
    response = client.get(f"/api/v1/exports/{zipped.pk}/download/")
    assert response.status_code == 400
    assert "missing from the storage" in response.content.decode()
    page = client.get(f"/projects/{project.slug}/exports/{zipped.pk}/download/", follow=True)
    assert "missing from the storage" in page.content.decode()


def test_retention_removes_expired_exports_objects(published, project, s3_storage):
    zipped, plain = published
    assert services.export_clean_expired(actor=SYSTEM) == 0
    Export.objects.filter(pk=zipped.pk).update(finished_at=timezone.now() - timedelta(days=31))

    assert services.export_clean_expired(actor=SYSTEM) == 1

    left = s3_storage.keys(prefix=f"{s3_storage.prefix}/exports/")
    assert left and all(f"/{plain.path}/" in key for key in left)
    zipped.refresh_from_db()
    assert zipped.path == "" and "retention" in zipped.error


def test_deleting_a_project_removes_its_exports_and_prelabel_objects(
    project, manager, s3_storage, django_capture_on_commit_callbacks
):
    from projects.services import project_delete

    other = objectstore.put_bytes(b"keep", f"exports/{project.slug}-2/v1-jsonl/tasks.jsonl")
    objectstore.put_bytes(b"{}", f"prelabels/{project.pk}/{'0' * 32}.json")
    done, _, _ = export(project, manager, "jsonl")  # no tasks: the project can be deleted
    assert s3_storage.keys(prefix=f"{s3_storage.prefix}/exports/{project.slug}/")

    with django_capture_on_commit_callbacks(execute=True):
        project_delete(actor=manager, project=project)

    assert s3_storage.keys(prefix=f"{s3_storage.prefix}/exports/") == [
        f"{s3_storage.prefix}/{other}"
    ]
    assert s3_storage.keys(prefix=f"{s3_storage.prefix}/prelabels/") == []


def test_the_daily_clean_up_sweeps_working_folders_of_exports_not_running(
    project, manager, s3_storage
):
    running, _ = services.export_start(
        actor=manager, project=project, format="jsonl", background=False
    )
    root = services.work_root()
    for name in (f".tmp-{running.pk}", ".tmp-999999"):
        (root / name).mkdir(parents=True)
        (root / name / "part").write_bytes(b"x")
    (root / ".tmp-999999.zip").write_bytes(b"x")

    services.export_clean_expired(actor=SYSTEM)

    assert sorted(p.name for p in root.glob(".tmp-*")) == [f".tmp-{running.pk}"]
    shutil.rmtree(root / f".tmp-{running.pk}")


def test_the_export_command_names_the_key_or_copies_the_objects_out(
    project, manager, s3_storage, tmp_path
):
    from django.core.management import call_command

    from tasks.models import Task
    from tasks.services import task_create

    task = task_create(actor=manager, project=project, name="one")
    Task.objects.filter(pk=task.pk).update(status="review_passed")
    said = io.StringIO()
    call_command("export", project.slug, "--as", manager.username, "--format", "jsonl", stdout=said)
    first = Export.objects.order_by("-pk").first()
    assert f"storage key exports/{first.path}/" in said.getvalue()
    assert not (tmp_path / "media" / "exports").exists()

    out = tmp_path / "copied"
    call_command(
        "export", project.slug, "--as", manager.username, "--format", "jsonl", "--out", str(out),
        stdout=io.StringIO(),
    )  # fmt: skip
    second = Export.objects.order_by("-pk").first()
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "tasks.jsonl"]
    assert (out / "tasks.jsonl").read_bytes() == stored(
        s3_storage, f"exports/{second.path}/tasks.jsonl"
    )


def test_a_cancel_before_the_upload_uploads_nothing(project, manager, tmp_path, s3_storage):
    demos(project, manager, tmp_path)
    started, _ = services.export_start(
        actor=manager, project=project, format="hdf5", background=False
    )
    real_log = services.job_log

    def cancelled_while_zipping(message, *args, **kwargs):
        if message == "zipping":
            services.export_cancel(actor=manager, export=Export.objects.get(pk=started.pk))
        return real_log(message, *args, **kwargs)

    s3_storage.record()
    services.job_log = cancelled_while_zipping
    try:
        done = services.export_run(export_id=started.pk)
    finally:
        services.job_log = real_log

    assert done.status == ExportStatus.CANCELLED and done.path == ""
    assert not [path for method, path in s3_storage.recorded() if method in {"PUT", "POST"}]
    assert not list(services.work_root().glob(f".tmp-{started.pk}*"))


def test_messages_never_name_the_working_folder_or_the_cache(settings):
    from core.exceptions import without_server_paths

    settings.STAGECRAFT_WORK_DIR = "/srv/stagecraft-work"  # need not exist (a run cleaned it)
    settings.STAGECRAFT_CACHE_DIR = "/srv/stagecraft-cache"
    text = (
        "Unable to open /srv/stagecraft-work/exports/.tmp-5/episode_0.hdf5 or "
        "/srv/stagecraft-cache/ab/abcd/tree/meta/info.json; /observations/qpos is fine."
    )
    assert without_server_paths(text) == (
        "Unable to open episode_0.hdf5 or info.json; /observations/qpos is fine."
    )
