"""Clients of the customer's buckets, one class per connection kind, and their errors in words.

Every failure the bucket's side can cause (wrong credentials, a missing bucket, an endpoint
that is down or not an S3 server) becomes a ``BucketError`` whose message a manager can act
on; nothing of it reaches anyone as a 500. A connection never falls back to the server's own
credentials (its instance role, ``~/.aws``): without an access key it reads anonymously.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from django.conf import settings

from core.addresses import not_public, resolves_private
from core.exceptions import ApplicationError


class BucketError(ApplicationError):
    """The bucket refused or could not be reached; the message says which and why."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    etag: str


@dataclass(frozen=True)
class Credentials:
    bucket: str
    prefix: str = ""
    endpoint_url: str = ""
    region: str = ""
    access_key_id: str = ""
    secret: str = ""


class Bucket(Protocol):
    def probe(self) -> StoredObject | None: ...
    def objects(self) -> Iterator[StoredObject]: ...
    def download(self, key: str, target: Path) -> None: ...
    def upload(self, source: Path, key: str) -> None: ...


def check_endpoint(url: str) -> str:
    """An endpoint URL a connection may use: http(s), a host, and no private or loopback
    address unless ``STAGECRAFT_ALLOW_PRIVATE_ENDPOINTS`` (a MinIO on the local network)."""
    url = (url or "").strip()
    if not url:
        return ""
    try:
        parsed = urlparse(url)
        host = parsed.hostname
        parsed.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        raise ApplicationError("This is not a valid URL.", field="endpoint_url") from None
    if parsed.scheme not in {"http", "https"} or not host:
        raise ApplicationError(
            "The endpoint must be an http(s) URL such as https://s3.example.com.",
            field="endpoint_url",
        )
    if not settings.STAGECRAFT_ALLOW_PRIVATE_ENDPOINTS and resolves_private(host):
        raise ApplicationError(
            "The endpoint is a private or loopback address, which this server does not "
            "connect to (STAGECRAFT_ALLOW_PRIVATE_ENDPOINTS).",
            field="endpoint_url",
        )
    return url.rstrip("/")


class PrivatePeer(OSError):
    """The endpoint's connected socket is a private or loopback address."""


class _PeerChecked:
    """Checks the connected socket's own address (a DNS answer that changed since
    ``check_endpoint`` cannot reach an internal address), as the callback sender does."""

    def connect(self):
        super().connect()  # type: ignore[misc]
        if not settings.STAGECRAFT_ALLOW_PRIVATE_ENDPOINTS and not_public(
            self.sock.getpeername()[0]  # type: ignore[attr-defined]
        ):
            self.sock.close()  # type: ignore[attr-defined]
            raise PrivatePeer("the endpoint is a private or loopback address")


def _peer_checked_pools() -> dict[str, type]:
    from botocore.awsrequest import (
        AWSHTTPConnection,
        AWSHTTPConnectionPool,
        AWSHTTPSConnection,
        AWSHTTPSConnectionPool,
    )

    class HTTPConnection(_PeerChecked, AWSHTTPConnection):
        pass

    class HTTPSConnection(_PeerChecked, AWSHTTPSConnection):
        pass

    class HTTPPool(AWSHTTPConnectionPool):
        ConnectionCls = HTTPConnection

    class HTTPSPool(AWSHTTPSConnectionPool):
        ConnectionCls = HTTPSConnection

    return {"http": HTTPPool, "https": HTTPSPool}


def _check_peers(client: Any) -> None:
    """Make the client's connections check their peer. botocore keeps its pool classes in
    one dict its pool managers share; if that ever moves, refuse rather than go unchecked."""
    pools = getattr(
        getattr(client._endpoint, "http_session", None), "_pool_classes_by_scheme", None
    )
    if not isinstance(pools, dict) or set(pools) != {"http", "https"}:
        raise BucketError("This server cannot check the endpoint's address (botocore changed).")
    pools.update(_peer_checked_pools())


_MESSAGES = {
    "InvalidAccessKeyId": "The storage does not know this access key id.",
    "SignatureDoesNotMatch": "The secret access key does not match the access key id.",
    "AccessDenied": "Access denied: these credentials may not read (or write) this bucket.",
    "AllAccessDisabled": "Access to this bucket is disabled.",
    "InvalidBucketName": "This is not a valid bucket name.",
    "ExpiredToken": "These credentials have expired.",
    "InvalidToken": "These credentials are not valid.",
    "AuthorizationHeaderMalformed": "The region does not match the bucket's region.",
    "PermanentRedirect": "The bucket is in another region: set the region.",
}


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``kind`` is somewhere in what botocore and urllib3 wrapped into ``error``."""
    seen: set[int] = set()
    todo: list[object] = [error]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        if isinstance(item, kind):
            return True
        seen.add(id(item))
        kwargs = getattr(item, "kwargs", None)
        todo += [item.__cause__, item.__context__, getattr(item, "reason", None), *item.args]
        if isinstance(kwargs, dict):
            todo.append(kwargs.get("error"))
    return False


def describe_error(error: Exception, creds: Credentials) -> BucketError:
    """A boto3/botocore exception as a BucketError a manager can act on."""
    from botocore import exceptions as bx

    where = creds.endpoint_url or "the AWS S3 endpoint"
    if _caused_by(error, PrivatePeer):
        return BucketError(
            f"{where} answered from a private or loopback address, which this server does not "
            "connect to (STAGECRAFT_ALLOW_PRIVATE_ENDPOINTS).",
            field="endpoint_url",
        )
    if isinstance(error, bx.ClientError):
        info = error.response.get("Error", {})
        code = str(info.get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in {"NoSuchBucket", "404", "NotFound"} and "Key" not in info:
            return BucketError(f"The bucket “{creds.bucket}” does not exist at {where}.")
        if code in {"NoSuchKey"}:
            return BucketError("The object is gone from the bucket.")
        if code in _MESSAGES:
            return BucketError(_MESSAGES[code])
        if code == "403" or status == 403:
            return BucketError(_MESSAGES["AccessDenied"])
        text = str(info.get("Message", "") or code or error)[:300]
        return BucketError(f"The storage refused: {text}")
    if isinstance(error, bx.NoCredentialsError | bx.PartialCredentialsError):
        return BucketError("Give both the access key id and the secret access key.")
    if isinstance(error, bx.EndpointConnectionError | bx.ConnectionClosedError):
        return BucketError(f"Cannot reach the storage at {where}.")
    if isinstance(error, bx.ConnectTimeoutError | bx.ReadTimeoutError):
        return BucketError(f"The storage at {where} did not answer in time.")
    if isinstance(error, bx.ParamValidationError):
        return BucketError(f"The storage refused the request: {str(error)[:300]}")
    if isinstance(error, bx.BotoCoreError | ValueError):
        return BucketError(f"The storage could not be used: {str(error)[:300]}")
    raise error


class S3Bucket:
    """An S3 or S3-compatible bucket under a prefix, through boto3."""

    def __init__(self, creds: Credentials) -> None:
        self.creds = creds
        self.prefix = creds.prefix.strip("/")
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore import UNSIGNED
            from botocore.config import Config

            signed = bool(self.creds.access_key_id or self.creds.secret)
            config = Config(
                connect_timeout=settings.STAGECRAFT_CONNECTOR_TIMEOUT,
                read_timeout=max(30, settings.STAGECRAFT_CONNECTOR_TIMEOUT),
                retries={"max_attempts": 2, "mode": "standard"},
                signature_version="s3v4" if signed else UNSIGNED,
                s3={"addressing_style": "path" if self.creds.endpoint_url else "auto"},
            )
            try:
                # A session of its own: never the server's environment or ~/.aws credentials.
                session = boto3.session.Session(
                    aws_access_key_id=self.creds.access_key_id or None,
                    aws_secret_access_key=self.creds.secret or None,
                )
                client = session.client(
                    "s3",
                    endpoint_url=self.creds.endpoint_url or None,
                    region_name=self.creds.region or "us-east-1",
                    config=config,
                )
            except Exception as error:
                raise describe_error(error, self.creds) from None
            _check_peers(client)
            self._client = client
        return self._client

    def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client(), method)(**kwargs)
        except Exception as error:
            raise describe_error(error, self.creds) from None

    def _base(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    def probe(self) -> StoredObject | None:
        """List one key under the prefix: proves the endpoint, the credentials and the bucket."""
        page = self._call(
            "list_objects_v2", Bucket=self.creds.bucket, Prefix=self._base(), MaxKeys=1
        )
        for item in page.get("Contents", ()):
            return _stored(item)
        return None

    def objects(self) -> Iterator[StoredObject]:
        """Every object under the prefix, in key order, a page (1,000) at a time."""
        token = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.creds.bucket, "Prefix": self._base()}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("list_objects_v2", **kwargs)
            for item in page.get("Contents", ()):
                if not item["Key"].endswith("/"):  # folder markers
                    yield _stored(item)
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    def download(self, key: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f".{target.name}.part")
        try:
            self.client().download_file(self.creds.bucket, key, str(part))
        except Exception as error:
            part.unlink(missing_ok=True)
            raise describe_error(error, self.creds) from None
        part.replace(target)

    def upload(self, source: Path, key: str) -> None:
        """One file; boto3 uploads large ones in parts."""
        try:
            self.client().upload_file(str(source), self.creds.bucket, key)
        except Exception as error:
            raise describe_error(error, self.creds) from None


def _stored(item: dict) -> StoredObject:
    return StoredObject(
        key=item["Key"], size=int(item.get("Size", 0)), etag=str(item.get("ETag", "")).strip('"')
    )


# Each kind's client (GCS or Azure would add theirs here, with a ConnectionKind).
KINDS: dict[str, type] = {"s3": S3Bucket}


def open_bucket(kind: str, creds: Credentials) -> Bucket:
    try:
        return KINDS[kind](creds)
    except KeyError:
        raise ApplicationError(f"Unknown kind of bucket {kind!r}.", field="kind") from None
