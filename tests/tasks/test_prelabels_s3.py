"""Pre-label imports on object storage (issue 18): the upload and the import's state are
objects in the bucket (a real S3 server, tests/helpers/s3.py), so the worker that imports and
the web server that shows the state share no disk."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tasks.services.prelabels import (
    prelabel_import_get,
    prelabel_import_list,
    prelabel_import_start,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_upload_and_state_live_in_the_bucket(
    s3_storage, project, manager, run_jobs, django_capture_on_commit_callbacks, tmp_path
):
    line = {"unique_id": "nobody", "annotations": [{"label": "outcome", "data": {}}]}
    raw = (json.dumps(line) + "\n").encode()
    with django_capture_on_commit_callbacks(execute=True):
        first = prelabel_import_start(
            actor=manager,
            project=project,
            upload=SimpleUploadedFile("a.jsonl", raw),
            format="jsonl",
        )
    prefix = f"{s3_storage.prefix}/prelabels/{project.pk}"
    assert s3_storage.keys(prefix=prefix) == [
        f"{prefix}/{first['id']}.json",
        f"{prefix}/{first['id']}.upload",
    ]
    body = s3_storage.client().get_object(
        Bucket=s3_storage.bucket, Key=f"{prefix}/{first['id']}.upload"
    )["Body"]
    assert body.read() == raw
    assert not (tmp_path / "media" / "prelabels").exists()  # nothing on this machine's disk

    run_jobs("imports")

    state = prelabel_import_get(project=project, import_id=first["id"])
    assert state["status"] == "finished", state
    assert state["summary"]["created"] == 0 and state["summary"]["skipped"] == 1
    assert s3_storage.keys(prefix=prefix) == [f"{prefix}/{first['id']}.json"]  # upload gone
    with django_capture_on_commit_callbacks(execute=True):
        second = prelabel_import_start(
            actor=manager,
            project=project,
            upload=SimpleUploadedFile("b.jsonl", b"{"),
            format="jsonl",
        )
    run_jobs("imports")
    listed = prelabel_import_list(project=project)
    assert [r["id"] for r in listed] == [second["id"], first["id"]]  # newest first
    assert listed[0]["status"] == "failed" and "not JSON" in listed[0]["error"]
