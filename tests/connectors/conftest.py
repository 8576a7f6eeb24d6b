"""The customer's bucket for connector tests: a bucket of its own on the suite's S3 server
(tests/helpers/s3.py), a different one from Stagecraft's own storage, filled by boto3."""

import json
import urllib.request
import uuid
from pathlib import Path

import boto3
import numpy as np
import pytest

from connectors import services
from tests.helpers.hdf5 import write_aloha
from tests.helpers.lerobot import write_lerobot
from tests.helpers.s3 import ACCESS_KEY, REGION, SECRET_KEY


@pytest.fixture(autouse=True)
def _private_endpoints(settings):
    settings.STAGECRAFT_ALLOW_PRIVATE_ENDPOINTS = True  # the S3 server is on 127.0.0.1


class CustomerBucket:
    def __init__(self, server, tmp_path: Path):
        self.server, self.tmp = server, tmp_path
        self.name = server.new_bucket()
        self.client = server.client()

    def put(self, key: str, path_or_bytes) -> None:
        data = path_or_bytes if isinstance(path_or_bytes, bytes) else path_or_bytes.read_bytes()
        self.client.put_object(Bucket=self.name, Key=key, Body=data)

    def put_tree(self, prefix: str, folder: Path) -> None:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            self.put(f"{prefix}/{path.relative_to(folder).as_posix()}", path)

    def aloha(self, key: str, seed: int = 0) -> None:
        local = self.tmp / "src" / uuid.uuid4().hex / Path(key).name
        write_aloha(local, T=12, seed=seed)
        self.put(key, local)

    def lerobot(self, prefix: str) -> None:
        frames = np.zeros((6, 16, 16, 3), np.uint8)
        episode = {"frames": frames, "state": np.zeros((6, 2)), "action": np.ones((6, 2))}
        root = write_lerobot(
            self.tmp / "src" / uuid.uuid4().hex,
            [{**episode, "task": "a"}, {**episode, "task": "b"}],
        )
        self.put_tree(prefix, root)

    def keys(self, prefix: str = "") -> list[str]:
        return self.server.keys(self.name, prefix)


@pytest.fixture
def customer_bucket(s3_server, tmp_path):
    return CustomerBucket(s3_server, tmp_path)


@pytest.fixture
def connect(project, manager, s3_server, customer_bucket):
    """``connect(**changes)``: a connection of ``project`` to the customer's bucket."""

    def make(**changes):
        fields = {
            "name": f"Lab bucket {uuid.uuid4().hex[:6]}",
            "direction": "source",
            "bucket": customer_bucket.name,
            "prefix": "robots",
            "endpoint_url": s3_server.endpoint,
            "region": REGION,
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
        }
        fields.update(changes)
        return services.connection_create(actor=manager, project=project, **fields)

    return make


def _moto_auth(endpoint: str, count: str) -> None:
    request = urllib.request.Request(  # noqa: S310 (the test server)
        f"{endpoint}/moto-api/reset-auth",
        data=count.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},  # moto reads the raw body
    )
    urllib.request.urlopen(request).close()  # noqa: S310


@pytest.fixture
def s3_auth(s3_server):
    """The S3 server checks credentials (moto's IAM) until the test ends; yields an access
    key of a user that may do anything in S3: (key id, secret)."""
    iam = boto3.client(
        "iam",
        endpoint_url=s3_server.endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    name = f"lab-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    iam.put_user_policy(UserName=name, PolicyName="s3", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    _moto_auth(s3_server.endpoint, "0")
    try:
        yield key["AccessKeyId"], key["SecretAccessKey"]
    finally:
        _moto_auth(s3_server.endpoint, "inf")


@pytest.fixture
def sync(manager, run_jobs, django_capture_on_commit_callbacks):
    """``sync(connection, keys=None)``: start a sync, let a worker run it, the connection after."""

    def run(connection, keys=None, queue="imports"):
        with django_capture_on_commit_callbacks(execute=True):
            services.connection_sync_start(actor=manager, connection=connection, keys=keys)
        connection.refresh_from_db()
        assert connection.sync_status == "queued"
        run_jobs(queue)
        connection.refresh_from_db()
        return connection

    return run
