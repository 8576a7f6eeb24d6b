"""Bucket connections: create, change, test, the secret at rest (tests against the suite's
S3 server, a separate moto process; nothing of boto3 is mocked)."""

import socket

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import PermissionDenied
from django.db import connection as db
from django.http import Http404

from connectors import crypto, services
from connectors.backends import StoredObject
from connectors.episodes import episodes_in
from connectors.models import BucketConnection
from core.exceptions import ApplicationError, Conflict


def _raw_row(pk: int) -> str:
    """Every column of the connection's row as PostgreSQL stores it, as text."""
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT row_to_json(c)::text FROM connectors_bucketconnection c WHERE id = %s", [pk]
        )
        return cursor.fetchone()[0]


def test_it_stores_the_secret_encrypted(connect):
    connection = connect(secret_access_key="s3cr3t-VALUE-42")
    raw = _raw_row(connection.pk)
    assert "s3cr3t-VALUE-42" not in raw
    assert connection.secret_encrypted and connection.secret_encrypted in raw
    assert crypto.decrypt(connection.secret_encrypted) == "s3cr3t-VALUE-42"
    assert services.credentials(connection).secret == "s3cr3t-VALUE-42"


def test_it_encrypts_with_the_configured_keys_and_rotates(connect, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.STAGECRAFT_ENCRYPTION_KEY = old
    connection = connect(secret_access_key="rotate-me")
    settings.STAGECRAFT_ENCRYPTION_KEY = f"{new},{old}"  # the new key first, the old still read
    assert crypto.decrypt(connection.secret_encrypted) == "rotate-me"
    rotated = crypto.reencrypt(connection.secret_encrypted)
    settings.STAGECRAFT_ENCRYPTION_KEY = new
    assert crypto.decrypt(rotated) == "rotate-me"
    with pytest.raises(ApplicationError, match="enter the secret again"):
        crypto.decrypt(connection.secret_encrypted)  # only the old key could read it


def test_the_command_rotates_every_secret_to_the_first_key(connect, settings):
    from django.core.management import call_command

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.STAGECRAFT_ENCRYPTION_KEY = old
    kept = connect(secret_access_key="first")
    connect(secret_access_key="", access_key_id="")  # a public bucket: nothing to rotate
    lost = connect(secret_access_key="lost")
    BucketConnection.objects.filter(pk=lost.pk).update(
        secret_encrypted=Fernet(Fernet.generate_key()).encrypt(b"lost").decode()
    )
    settings.STAGECRAFT_ENCRYPTION_KEY = f"{new},{old}"
    call_command("rotate_connection_keys")
    settings.STAGECRAFT_ENCRYPTION_KEY = new
    kept.refresh_from_db()
    assert crypto.decrypt(kept.secret_encrypted) == "first"


def test_the_fallback_key_comes_from_secret_key(connect, settings):
    settings.STAGECRAFT_ENCRYPTION_KEY = ""
    connection = connect(secret_access_key="derived")
    token = connection.secret_encrypted
    assert Fernet(crypto.derived_key(settings.SECRET_KEY)).decrypt(token.encode()) == b"derived"
    settings.SECRET_KEY = "another-secret-key-for-this-test"
    with pytest.raises(ApplicationError):
        crypto.decrypt(token)


def test_it_tests_a_good_connection(connect, customer_bucket):
    connection = connect()
    result = services.connection_test(actor=connection.created_by, connection=connection)
    assert result["ok"] and "nothing under the prefix" in result["message"]
    customer_bucket.put("robots/ep.hdf5", b"x")
    customer_bucket.put("elsewhere/other.hdf5", b"x")
    result = services.connection_test(actor=connection.created_by, connection=connection)
    assert result == {"ok": True, "message": result["message"], "example": "robots/ep.hdf5"}


def test_it_says_the_bucket_is_missing(connect, manager):
    connection = connect(bucket="no-such-bucket-here")
    result = services.connection_test(actor=manager, connection=connection)
    assert not result["ok"]
    assert "“no-such-bucket-here” does not exist" in result["message"]


def test_it_says_the_endpoint_is_down(connect, manager):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    connection = connect(endpoint_url=f"http://127.0.0.1:{port}")
    result = services.connection_test(actor=manager, connection=connection)
    assert not result["ok"]
    assert result["message"] == f"Cannot reach the storage at http://127.0.0.1:{port}."


def test_it_tells_good_from_bad_credentials(connect, manager, s3_auth, customer_bucket):
    key_id, secret = s3_auth
    good = connect(access_key_id=key_id, secret_access_key=secret)
    assert services.connection_test(actor=manager, connection=good)["ok"]

    wrong_secret = connect(access_key_id=key_id, secret_access_key="not-the-secret")
    result = services.connection_test(actor=manager, connection=wrong_secret)
    assert result == {
        "ok": False,
        "message": "The secret access key does not match the access key id.",
        "example": None,
    }
    unknown = connect(access_key_id="AKIAUNKNOWNKEY000000", secret_access_key="whatever")
    result = services.connection_test(actor=manager, connection=unknown)
    assert result["message"] == "The storage does not know this access key id."
    anonymous = connect(access_key_id="", secret_access_key="")
    result = services.connection_test(actor=manager, connection=anonymous)
    assert not result["ok"]  # moto answers an unsigned request with a 500 of its own, said


def test_a_private_endpoint_is_refused_unless_allowed(connect, settings):
    settings.STAGECRAFT_ALLOW_PRIVATE_ENDPOINTS = False
    with pytest.raises(ApplicationError, match="private or loopback") as caught:
        connect()
    assert caught.value.field == "endpoint_url"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"bucket": "A"}, "bucket"),
        ({"bucket": "has space"}, "bucket"),
        ({"endpoint_url": "ftp://example.com"}, "endpoint_url"),
        ({"endpoint_url": "http://[::1"}, "endpoint_url"),
        ({"direction": "sideways"}, "direction"),
        ({"prefix": "a/../b"}, "prefix"),
        ({"region": "EU WEST"}, "region"),
        ({"format": "pdf"}, "format"),
        ({"name": "  "}, "name"),
        ({"secret_access_key": ""}, "secret_access_key"),
        ({"access_key_id": ""}, "access_key_id"),
    ],
)
def test_bad_fields_are_refused_naming_them(connect, changes, field):
    with pytest.raises(ApplicationError) as caught:
        connect(**changes)
    assert caught.value.field == field
    assert not BucketConnection.objects.exists()


def test_names_are_unique_per_project(connect):
    connect(name="Lab")
    with pytest.raises(Conflict):
        connect(name="Lab")


def test_update_keeps_replaces_or_clears_the_secret(connect, manager):
    connection = connect(secret_access_key="first")
    token = connection.secret_encrypted
    connection = services.connection_update(
        actor=manager, connection=connection, prefix="/robots/aloha/", secret_access_key=""
    )
    assert connection.prefix == "robots/aloha" and connection.secret_encrypted == token
    connection = services.connection_update(
        actor=manager, connection=connection, secret_access_key="second"
    )
    assert crypto.decrypt(connection.secret_encrypted) == "second"
    assert "second" not in _raw_row(connection.pk)
    with pytest.raises(ApplicationError):  # an access key without a secret
        services.connection_update(actor=manager, connection=connection, clear_secret=True)
    connection = services.connection_update(
        actor=manager, connection=connection, clear_secret=True, access_key_id=""
    )
    assert connection.secret_encrypted == "" and not connection.has_secret


def test_the_audit_trail_never_holds_the_secret(connect, manager):
    from activity.models import Activity

    connection = connect(secret_access_key="audit-me-not")
    services.connection_update(actor=manager, connection=connection, secret_access_key="again")
    services.connection_delete(actor=manager, connection=connection)
    rows = list(Activity.objects.filter(verb__startswith="connection.").values("before", "after"))
    assert len(rows) == 3
    assert "audit-me-not" not in str(rows) and "again" not in str(rows)


def test_only_managers_connect(project, annotator, reviewer, outsider, connect):
    for user, refusal in ((annotator, PermissionDenied), (reviewer, PermissionDenied),
                          (outsider, Http404)):  # fmt: skip
        with pytest.raises(refusal):
            services.connection_create(
                actor=user, project=project, name="x", direction="source", bucket="abc"
            )
    connection = connect()
    with pytest.raises(PermissionDenied):
        services.connection_test(actor=annotator, connection=connection)
    with pytest.raises(PermissionDenied):
        services.connection_sync_start(actor=annotator, connection=connection)
    with pytest.raises(Http404):
        services.connection_episodes(actor=outsider, connection=connection)


def _objects(*keys: str) -> list[StoredObject]:
    return [StoredObject(key=k, size=10, etag=f"etag-{k}") for k in keys]


def test_the_listing_groups_objects_into_episodes():
    listing = episodes_in(
        _objects(
            "robots/aloha/ep_0.hdf5",
            "robots/aloha/ep_1.H5",
            "robots/lr/meta/info.json",
            "robots/lr/data/chunk-000/file-000.parquet",
            "robots/lr/videos/cam/episode_0.mp4",
            "robots/pusht.zarr/data/action/.zarray",
            "robots/pusht.zarr/meta/episode_ends/0",
            "robots/replay/meta/episode_ends/.zarray",
            "robots/replay/data/state/0.0",
            "robots/umi.zarr.zip",
            "robots/images/a.png",
            "robots/loose.mp4",
            "robots/notes.txt",
            "robots/.hidden/ep.hdf5",
            "robots/folder/",
            "other/ep.hdf5",
        ),
        "robots/",
    )
    assert [(e.key, e.kind, len(e.objects)) for e in listing.episodes] == [
        ("robots/aloha/ep_0.hdf5", "hdf5", 1),
        ("robots/aloha/ep_1.H5", "hdf5", 1),
        ("robots/images/a.png", "images", 1),
        ("robots/lr/", "lerobot", 3),
        ("robots/pusht.zarr/", "zarr", 2),
        ("robots/replay/", "zarr", 2),
        ("robots/umi.zarr.zip", "zarr", 1),
    ]
    assert listing.ignored == 3  # the loose video, the notes, the hidden folder


def test_an_episode_is_new_until_each_of_its_objects_was_imported_with_its_etag():
    (episode,) = episodes_in(_objects("lr/meta/info.json", "lr/data/x.parquet")).episodes
    seen = {o.key: o.etag for o in episode.objects}
    assert not episode.is_new(seen)
    assert episode.is_new({**seen, "lr/data/x.parquet": "changed"})
    assert episode.is_new({"lr/meta/info.json": "etag-lr/meta/info.json"})


def test_the_connected_socket_is_checked_not_only_the_name(s3_server, customer_bucket, settings):
    """A name whose DNS answer changes after ``check_endpoint`` (rebinding) still cannot reach
    an internal address: each connection's peer is checked. Here the check of the name is
    skipped (the client is made directly) and the peer, 127.0.0.1, is refused."""
    from connectors.backends import BucketError, Credentials, open_bucket
    from tests.helpers.s3 import ACCESS_KEY, SECRET_KEY

    creds = Credentials(
        bucket=customer_bucket.name,
        endpoint_url=s3_server.endpoint,
        access_key_id=ACCESS_KEY,
        secret=SECRET_KEY,
    )
    customer_bucket.put("ep.hdf5", b"x")
    assert open_bucket("s3", creds).probe() is not None  # allowed (the fixture's setting)
    settings.STAGECRAFT_ALLOW_PRIVATE_ENDPOINTS = False
    bucket = open_bucket("s3", creds)
    with pytest.raises(BucketError, match="private or loopback address"):
        bucket.probe()
    with pytest.raises(BucketError, match="private or loopback address"):
        bucket.download("ep.hdf5", customer_bucket.tmp / "dl" / "ep.hdf5")
    assert not (customer_bucket.tmp / "dl" / "ep.hdf5").exists()
