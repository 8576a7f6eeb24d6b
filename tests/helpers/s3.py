"""A real S3 server for the suite: moto's server mode, a separate process on 127.0.0.1.

``s3_server`` starts it once per test process (``python -m moto.server`` on a free port);
``s3_storage`` points the data storage (core/objectstore.py) at a fresh bucket of its own for
one test, with a cache folder of its own, exactly as ``STAGECRAFT_STORAGE=s3`` does in
config/settings.py. Nothing of boto3 is mocked: every call crosses HTTP to that process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass

import pytest

ACCESS_KEY = "stagecraft-test"
SECRET_KEY = "stagecraft-test-secret"
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class S3:
    endpoint: str
    bucket: str = ""
    prefix: str = ""

    def record(self) -> None:
        """Start recording every request the server gets (moto's recorder), from empty."""
        for step in ("reset-recording", "start-recording"):
            urllib.request.urlopen(f"{self.endpoint}/moto-api/recorder/{step}").close()  # noqa: S310

    def recorded(self) -> list[tuple[str, str]]:
        """(method, path) of every request since ``record()``, in the order served."""
        with urllib.request.urlopen(  # noqa: S310
            f"{self.endpoint}/moto-api/recorder/download-recording"
        ) as response:
            text = response.read().decode()
        # The server records from several threads: two entries can share a line (each is one
        # write, the newline another), so read JSON values one after another, not lines.
        decoder, entries, at = json.JSONDecoder(), [], 0
        while True:
            while at < len(text) and text[at].isspace():
                at += 1
            if at == len(text):
                break
            entry, at = decoder.raw_decode(text, at)
            entries.append(entry)
        return [(e["method"], e["url"].split("?", 1)[0]) for e in entries]

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def new_bucket(self) -> str:
        name = f"stagecraft-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str | None = None, prefix: str = "") -> list[str]:
        """Every key in the bucket (under ``prefix``), sorted."""
        pages = (
            self.client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=bucket or self.bucket, Prefix=prefix)
        )
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", ()))

    def storage_settings(self, bucket: str, prefix: str = "") -> dict:
        """``STORAGES["default"]`` as config/settings.py builds it for these values."""
        return {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "location": prefix,
                "endpoint_url": self.endpoint,
                "region_name": REGION,
                "access_key": ACCESS_KEY,
                "secret_key": SECRET_KEY,
                "file_overwrite": True,
                "default_acl": None,
                "querystring_auth": True,
                "querystring_expire": 300,
                "signature_version": "s3v4",
                "addressing_style": "path",
            },
        }

    def environ(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """The environment that makes a Stagecraft process use this bucket."""
        return {
            "STAGECRAFT_STORAGE": "s3",
            "STAGECRAFT_S3_BUCKET": bucket,
            "STAGECRAFT_S3_PREFIX": prefix,
            "STAGECRAFT_S3_ENDPOINT_URL": self.endpoint,
            "STAGECRAFT_S3_REGION": REGION,
            "STAGECRAFT_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "STAGECRAFT_S3_SECRET_ACCESS_KEY": SECRET_KEY,
            "STAGECRAFT_S3_ADDRESSING_STYLE": "path",
        }


@pytest.fixture(scope="session")
def s3_server():
    """The S3 server process, started once per test process, stopped at the end."""
    port = _free_port()
    recording = tempfile.NamedTemporaryFile(prefix="stagecraft-moto-", suffix=".log", delete=False)
    recording.close()
    proc = subprocess.Popen(  # noqa: S603 (our own fixed arguments)
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MOTO_RECORDER_FILEPATH": recording.name},
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()  # noqa: S310
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("the S3 test server (moto) did not start")
            time.sleep(0.1)
    yield S3(endpoint=endpoint)
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    os.unlink(recording.name)


@pytest.fixture
def s3_storage(s3_server, settings, tmp_path):
    """The data storage on a fresh bucket (prefix ``stagecraft``) for this test."""
    bucket = s3_server.new_bucket()
    settings.STAGECRAFT_STORAGE = "s3"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3_server.storage_settings(bucket, "stagecraft"),
    }
    settings.STAGECRAFT_CACHE_DIR = tmp_path / "s3-cache"
    return S3(endpoint=s3_server.endpoint, bucket=bucket, prefix="stagecraft")
