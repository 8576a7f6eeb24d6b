"""core/objectstore.py on both backends: the local folder and a real S3 server (moto's server
mode in a separate process, tests/helpers/s3.py)."""

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from core import objectstore

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["local", "s3"])
def backend(request, settings, tmp_path):
    if request.param == "s3":
        return request.getfixturevalue("s3_storage")
    # A media folder of its own: the suite's is shared by every test of the process, and a
    # dataset imported by an earlier test may hold datasets/7/ there.
    settings.MEDIA_ROOT = tmp_path / "media"
    return None


def _tree(root, files: dict[str, bytes]):
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def test_publish_tree_then_read_back(backend, tmp_path):
    files = {"a.hdf5": b"A" * 10, "meta/info.json": b"{}", "manifest.json": b'{"ok": 1}'}
    keys = objectstore.publish_tree(
        _tree(tmp_path / "staged", files), "datasets/7/v1", last=["manifest.json"]
    )

    assert sorted(keys) == ["datasets/7/v1/a.hdf5", "datasets/7/v1/manifest.json",
                            "datasets/7/v1/meta/info.json"]  # fmt: skip
    assert objectstore.exists("datasets/7/v1/manifest.json")
    assert objectstore.local_path("datasets/7/v1/a.hdf5").read_bytes() == b"A" * 10
    assert dict(objectstore.list_keys("datasets/7")) == {
        "datasets/7/v1/a.hdf5": 10,
        "datasets/7/v1/manifest.json": 9,
        "datasets/7/v1/meta/info.json": 2,
    }
    tree = objectstore.local_tree("datasets/7/v1")
    assert (tree / "meta" / "info.json").read_bytes() == b"{}"
    with objectstore.open_read("datasets/7/v1/manifest.json") as handle:
        assert handle.read() == b'{"ok": 1}'


def test_delete_prefix_removes_only_that_prefix(backend, tmp_path):
    objectstore.put_bytes(b"keep", "exports/p/v1-jsonl/tasks.jsonl")
    objectstore.put_bytes(b"x", "exports/p/.tmp-5/tasks.jsonl")
    objectstore.put_bytes(b"y", "exports/p/.tmp-5/deep/more.bin")

    assert objectstore.delete_prefix("exports/p/.tmp-5") == 2

    assert [k for k, _ in objectstore.list_keys("exports")] == ["exports/p/v1-jsonl/tasks.jsonl"]
    assert objectstore.delete_prefix("exports/nothing-here") == 0


def test_keys_cannot_climb_out(backend):
    for key in ("../etc/passwd", "a/../../b", "", "/"):
        with pytest.raises(ValueError):
            objectstore.put_bytes(b"x", key)


def test_manifest_is_the_last_object_written(s3_storage, tmp_path):
    staged = _tree(
        tmp_path / "staged",
        {"manifest.json": b"{}", "z.parquet": b"z" * 5, "a/b.mp4": b"b" * 7, "checksums": b"c"},
    )
    s3_storage.record()

    objectstore.publish_tree(staged, "exports/p/v2", last=["checksums", "manifest.json"])

    puts = [path for method, path in s3_storage.recorded() if method == "PUT"]
    assert [p.rsplit("/v2/", 1)[1] for p in puts] == [
        "a/b.mp4",
        "z.parquet",
        "checksums",
        "manifest.json",
    ]


def test_presigned_download_url_serves_the_object(s3_storage):
    objectstore.put_bytes(b"episode bytes", "exports/p/v1-hdf5/export.zip")

    url = objectstore.download_url("exports/p/v1-hdf5/export.zip", filename='p "v1".zip')

    with urllib.request.urlopen(url) as response:  # noqa: S310 (the test server)
        assert response.read() == b"episode bytes"
        assert response.headers["Content-Disposition"] == 'attachment; filename="p v1.zip"'
    tampered = url.replace("export.zip", "other.zip")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(tampered)  # noqa: S310
    assert refused.value.code == 403


def test_local_backend_has_no_download_url(settings):
    assert objectstore.is_remote() is False
    assert objectstore.download_url("exports/x.zip", filename="x.zip") is None


def test_cache_survives_a_cleared_cache_and_stays_in_bounds(s3_storage, settings):
    for i in range(4):
        objectstore.put_bytes(bytes([i]) * 1000, f"datasets/1/v1/ep{i}.hdf5")
    settings.STAGECRAFT_CACHE_MAX_BYTES = 2500
    first = objectstore.local_path("datasets/1/v1/ep0.hdf5")
    assert first.read_bytes() == b"\x00" * 1000

    objectstore.evict()
    assert not first.exists()
    assert objectstore.local_path("datasets/1/v1/ep0.hdf5").read_bytes() == b"\x00" * 1000

    cache = objectstore._cache()
    for i in range(1, 4):
        objectstore.local_path(f"datasets/1/v1/ep{i}.hdf5")
    # Every entry was used in the last minute: none may go yet (a process may be opening it).
    assert len(cache.entries()) == 4
    objectstore.RECENT_SECONDS, saved = 0, objectstore.RECENT_SECONDS
    try:
        freed = cache.trim()
    finally:
        objectstore.RECENT_SECONDS = saved
    assert freed == 2000
    assert sum(size for _, size, _, _ in cache.entries()) <= 2500


def test_a_missing_object_is_file_not_found(s3_storage):
    with pytest.raises(FileNotFoundError):
        objectstore.local_path("datasets/9/none.hdf5")
    assert not objectstore.exists("datasets/9/none.hdf5")


def test_list_folders_names_the_folders_right_under_a_prefix(backend):
    for key in ("v-a/x.hdf5", "v-a/deep/y", "v-b/z", "f"):
        objectstore.put_bytes(b"1", f"datasets/3/{key}")

    assert objectstore.list_folders("datasets/3") == ["v-a", "v-b"]
    assert objectstore.list_folders("datasets/3/v-a") == ["deep"]
    assert objectstore.list_folders("datasets/nothing") == []


def test_a_public_endpoint_is_the_one_signed_for(s3_storage, settings):
    """The servers reach the bucket at one address, the browsers at another: the signed URL
    names the public one (SigV4 signs the host) and downloads the object from there."""
    objectstore.put_bytes(b"for the browser", "exports/p/v1-jsonl/export.zip")
    public = s3_storage.endpoint.replace("127.0.0.1", "localhost")
    settings.STAGECRAFT_S3_PUBLIC_ENDPOINT_URL = public

    url = objectstore.download_url("exports/p/v1-jsonl/export.zip", filename="p.zip", seconds=60)

    assert url.startswith(f"{public}/{s3_storage.bucket}/stagecraft/exports/p/v1-jsonl/export.zip?")
    assert "X-Amz-Expires=60" in url and "X-Amz-Signature=" in url
    with urllib.request.urlopen(url) as response:  # noqa: S310 (the test server)
        assert response.read() == b"for the browser"
        assert response.headers["Content-Disposition"] == 'attachment; filename="p.zip"'


def test_cache_entries_are_sized_once_and_leave_nothing_when_evicted(s3_storage, settings):
    """Each cached entry records its size when it is complete (a trim reads one small file
    per entry, not every file of a Zarr store); eviction leaves no folder behind."""
    objectstore.put_bytes(b"z" * 300, "datasets/2/v1/store.zarr/0.0")
    objectstore.put_bytes(b"z" * 200, "datasets/2/v1/store.zarr/0.1")
    objectstore.put_bytes(b"e" * 50, "datasets/2/v1/ep.hdf5")
    objectstore.local_tree("datasets/2/v1/store.zarr")
    objectstore.local_path("datasets/2/v1/ep.hdf5")
    cache = objectstore._cache()

    assert sorted((key, size) for _, size, _, key in cache.entries()) == [
        ("datasets/2/v1/ep.hdf5", 50),
        ("datasets/2/v1/store.zarr/", 500),
    ]
    markers = {entry: json.loads((entry / objectstore.COMPLETE).read_text())
               for _, _, entry, _ in cache.entries()}  # fmt: skip
    assert sorted(m["bytes"] for m in markers.values()) == [50, 500]
    objectstore.evict()
    assert cache.entries() == []
    assert not [p for p in Path(settings.STAGECRAFT_CACHE_DIR).rglob("*") if p.is_file()]
