"""``manage.py storage``: the data storage named, probed, and a missing bucket created."""

import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command


def _run(*args) -> str:
    out = StringIO()
    call_command("storage", *args, stdout=out)
    return out.getvalue()


def test_local_folder(settings):
    output = _run()
    assert f"local folder {settings.MEDIA_ROOT}" in output
    assert "Write, read and delete: ok" in output


def test_missing_bucket_is_refused_then_created(s3_storage, s3_server, settings):
    bucket = f"stagecraft-new-{uuid.uuid4().hex[:8]}"
    settings.STORAGES = {**settings.STORAGES, "default": s3_server.storage_settings(bucket)}

    with pytest.raises(CommandError, match="does not work"):
        _run()
    output = _run("--create-bucket")

    assert f"Created the bucket {bucket}." in output
    assert "Write, read and delete: ok" in output
    assert s3_server.keys(bucket) == []  # the probe cleaned up after itself
