"""``publish_tree(…, workers=N)`` on a real S3 server (moto, tests/helpers/s3.py): many files
uploaded N at a time, every one stored before the manifest, which is still the last PUT."""

import pytest

from core import objectstore

pytestmark = pytest.mark.django_db


def test_parallel_uploads_store_every_file_before_the_manifest(s3_storage, tmp_path):
    tree = tmp_path / "tree"
    files = {f"data/chunk-000/file-{i:03}.parquet": bytes([i]) * (100 + i) for i in range(40)}
    files |= {"checksums": b"c", "manifest.json": b"{}"}
    for name, data in files.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(data)
    s3_storage.record()

    keys = objectstore.publish_tree(
        tree, "exports/p/v1-lerobot", last=["checksums", "manifest.json"], workers=8
    )

    puts = [p.split("/v1-lerobot/", 1)[1] for m, p in s3_storage.recorded() if m == "PUT"]
    assert puts[-2:] == ["checksums", "manifest.json"]
    assert sorted(puts[:-2]) == sorted(n for n in files if n not in {"checksums", "manifest.json"})
    assert sorted(keys) == sorted(f"exports/p/v1-lerobot/{n}" for n in files)
    for name, data in files.items():
        with objectstore.open_read(f"exports/p/v1-lerobot/{name}") as handle:
            assert handle.read() == data


def test_a_failed_upload_stops_before_the_manifest(s3_storage, tmp_path, monkeypatch):
    tree = tmp_path / "tree"
    for i in range(10):
        (tree / f"f{i}").parent.mkdir(parents=True, exist_ok=True)
        (tree / f"f{i}").write_bytes(b"x")
    (tree / "manifest.json").write_bytes(b"{}")
    real = objectstore.put_file

    def failing(local, key):
        if key.endswith("/f3"):
            raise OSError("disk read error")
        return real(local, key)

    monkeypatch.setattr(objectstore, "put_file", failing)
    with pytest.raises(OSError, match="disk read error"):
        objectstore.publish_tree(tree, "exports/p/v2", last=["manifest.json"], workers=4)
    assert not objectstore.exists("exports/p/v2/manifest.json")
