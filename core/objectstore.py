"""Where Stagecraft's data lives: one interface over the local folder and an S3 bucket.

Datasets, exports and uploads are stored under *keys* (``datasets/12/v3/ep_0.hdf5``) in the
default storage (``settings.STORAGES["default"]``): a folder (``MEDIA_ROOT``, the default) or
an S3-compatible bucket (``STAGECRAFT_STORAGE=s3``, config/settings.py). Code that writes or
reads data goes through these functions, never through ``MEDIA_ROOT`` itself, so web servers
and workers on several machines need no shared disk.

Publishing is atomic for readers on both backends: a tree is uploaded with its manifest
**last** (``publish_tree``), and a reader trusts a version only once its manifest exists. A
failed or killed writer leaves objects without a manifest, which ``delete_prefix`` removes.

Readers that need a real file (h5py, pyarrow, PyAV, zarr) ask ``local_path`` /
``local_tree``: on the local backend that is the stored file itself; on a bucket it is a copy
in a bounded cache on this machine (``STAGECRAFT_CACHE_DIR``, at most
``STAGECRAFT_CACHE_MAX_BYTES``, least recently used evicted first). Stored keys are never
rewritten in place (a new version gets a new prefix), so a cached copy never goes stale.

Downloads of large files skip the web server on a bucket: ``download_url`` signs a
short-lived URL (the caller checks membership first); on the local backend it answers
``None`` and the caller streams the file through Django.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, default_storage

# A cached copy read within this many seconds is never evicted (another process of this
# machine may be about to open it).
RECENT_SECONDS = 60
COMPLETE = ".complete"
# Objects of one tree fetched into the cache at a time.
FETCH_WORKERS = 8
CHUNK = 1024 * 1024


def storage() -> Storage:
    return default_storage


def is_remote() -> bool:
    """True when the data lives in a bucket rather than a local folder."""
    try:
        storage().path("probe")
    except NotImplementedError:
        return True
    return False


def clean_key(key: str) -> str:
    """A key as stored: forward slashes, no leading slash, no ``..`` or empty parts."""
    parts = [p for p in PurePosixPath(str(key).replace("\\", "/")).parts if p not in ("", "/")]
    if not parts or any(p in (".", "..") for p in parts):
        raise ValueError(f"Not a storage key: {key!r}")
    return "/".join(parts)


def join(*parts: str) -> str:
    return clean_key("/".join(str(p).strip("/") for p in parts if str(p).strip("/")))


# --- writing ------------------------------------------------------------------------------


def put_file(local: Path | str, key: str) -> str:
    """Store one local file under ``key`` (overwriting); multipart on a bucket for large files."""
    with open(local, "rb") as handle:
        return put_stream(handle, key)


def put_stream(stream: IO[bytes] | File, key: str) -> str:
    """Store what a file object holds under ``key`` (an upload as it arrives: Django's
    ``UploadedFile`` is read chunk by chunk), multipart on a bucket for large ones."""
    key = clean_key(key)
    store = storage()
    if not is_remote():
        target = Path(store.path(key))
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part-{os.getpid()}")
        chunks = (
            stream.chunks() if isinstance(stream, File) else iter(lambda: stream.read(CHUNK), b"")
        )
        with tmp.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
        os.replace(tmp, target)
        return key
    if isinstance(stream, File):
        stream.seek(0)
    store.save(
        key, stream if isinstance(stream, File) else File(stream, name=PurePosixPath(key).name)
    )
    return key


def put_bytes(data: bytes, key: str) -> str:
    return put_stream(io.BytesIO(data), key)


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def publish_tree(
    local_dir: Path | str, prefix: str, *, last: Iterable[str] = (), workers: int = 1
) -> list[str]:
    """Store every file under ``local_dir`` as ``prefix/<relative path>``; the relative paths
    named in ``last`` (the manifest) go after every other file, in that order, so a reader
    that waits for the manifest never sees a partial version. Returns the keys written.

    On the local backend the folder is moved into place by one rename when it is on the same
    file system (the atomic publish the local code always had), else copied file by file.
    ``workers`` > 1 uploads the other files that many at a time (a tree of many small files:
    one request each); ``last`` still waits until every one of them is stored."""
    local_dir, prefix = Path(local_dir), clean_key(prefix)
    last = [clean_key(name) for name in last]
    files = _files_under(local_dir)
    relative = [p.relative_to(local_dir).as_posix() for p in files]
    keys = [join(prefix, r) for r in relative]
    if not is_remote():
        target = Path(storage().path(prefix))
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            raise FileExistsError(f"{prefix} is already published")
        try:
            os.rename(local_dir, target)
            return keys
        except OSError:
            pass  # another file system: copy below, the manifest last
    ordered = sorted(zip(relative, files, strict=True), key=lambda rf: _last_rank(rf[0], last))
    first = [(rel, path) for rel, path in ordered if rel not in last]
    if workers > 1 and len(first) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            # list(): every upload done (or its error raised) before anything named last
            list(pool.map(lambda rp: put_file(rp[1], join(prefix, rp[0])), first))
        ordered = [rp for rp in ordered if rp[0] in last]
    for rel, path in ordered:
        put_file(path, join(prefix, rel))
    return keys


def _last_rank(relative: str, last: list[str]) -> tuple[int, str]:
    return (last.index(relative) + 1 if relative in last else 0, relative)


def delete(key: str) -> None:
    storage().delete(clean_key(key))


def delete_prefix(prefix: str, *, keep: str | None = None) -> int:
    """Remove every object under ``prefix`` (a folder on the local backend); how many.
    ``keep``, a prefix inside it, is left as it is (a new version under an old one's)."""
    prefix = clean_key(prefix)
    store = storage()
    if keep is not None:
        kept = clean_key(keep) + "/"
        gone = [key for key, _size in list_keys(prefix) if not key.startswith(kept)]
        for key in gone:
            delete(key)
        return len(gone)
    if not is_remote():
        folder = Path(store.path(prefix))
        if not folder.exists():
            return 0
        count = sum(1 for _ in folder.rglob("*") if _.is_file()) if folder.is_dir() else 1
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
        else:
            folder.unlink(missing_ok=True)
        return count
    bucket = store.bucket  # type: ignore[attr-defined]
    base = store._normalize_name(prefix).rstrip("/") + "/"  # type: ignore[attr-defined]
    deleted = 0
    batch: list[dict] = []
    for obj in bucket.objects.filter(Prefix=base):
        batch.append({"Key": obj.key})
        if len(batch) == 1000:
            bucket.delete_objects(Delete={"Objects": batch, "Quiet": True})
            deleted, batch = deleted + len(batch), []
    if batch:
        bucket.delete_objects(Delete={"Objects": batch, "Quiet": True})
        deleted += len(batch)
    return deleted


# --- reading ------------------------------------------------------------------------------


def exists(key: str) -> bool:
    return storage().exists(clean_key(key))


def size(key: str) -> int:
    return storage().size(clean_key(key))


def list_keys(prefix: str) -> Iterator[tuple[str, int]]:
    """(key, size) of every object under ``prefix``, recursively, in key order."""
    prefix = clean_key(prefix)
    store = storage()
    if not is_remote():
        folder = Path(store.path(prefix))
        if folder.is_dir():
            for path in _files_under(folder):
                yield join(prefix, path.relative_to(folder).as_posix()), path.stat().st_size
        return
    base = store._normalize_name(prefix).rstrip("/") + "/"  # type: ignore[attr-defined]
    location = store.location.strip("/")  # type: ignore[attr-defined]
    for obj in store.bucket.objects.filter(Prefix=base):  # type: ignore[attr-defined]
        key = obj.key[len(location) + 1 :] if location else obj.key
        yield key, obj.size


def list_folders(prefix: str) -> list[str]:
    """The names of the folders right under ``prefix`` (a bucket's common prefixes), sorted:
    the versions of a dataset, say, without listing their objects."""
    prefix = clean_key(prefix)
    store = storage()
    if not is_remote():
        folder = Path(store.path(prefix))
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    base = store._normalize_name(prefix).rstrip("/") + "/"  # type: ignore[attr-defined]
    client = store.connection.meta.client  # type: ignore[attr-defined]
    bucket = store.bucket_name  # type: ignore[attr-defined]
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=base, Delimiter="/"
    )
    return sorted(
        common["Prefix"][len(base) :].rstrip("/")
        for page in pages
        for common in page.get("CommonPrefixes", ())
    )


def open_read(key: str) -> IO[bytes]:
    """A binary file object for streaming (a response body, a hash): the stored file or the
    bucket's object read as it goes."""
    return storage().open(clean_key(key), "rb")


def download_url(key: str, *, filename: str, seconds: int | None = None) -> str | None:
    """A short-lived signed URL that downloads ``key`` as ``filename`` from the bucket, or
    ``None`` on the local backend (stream through Django). Check access before calling."""
    if not is_remote():
        return None
    safe = filename.replace('"', "").replace("\\", "")
    parameters = {"ResponseContentDisposition": f'attachment; filename="{safe}"'}
    store = storage()
    public = getattr(settings, "STAGECRAFT_S3_PUBLIC_ENDPOINT_URL", "")
    if not public:
        return store.url(clean_key(key), parameters=parameters, expire=seconds)  # type: ignore[call-arg]
    # The servers reach the bucket at one address (a private network, a container's name),
    # the users' browsers at another: sign for the one the browser will ask (SigV4 signs
    # the host), with the same credentials.
    import boto3

    client = boto3.session.Session(
        aws_access_key_id=store.access_key,  # type: ignore[attr-defined]
        aws_secret_access_key=store.secret_key,  # type: ignore[attr-defined]
        aws_session_token=store.security_token,  # type: ignore[attr-defined]
    ).client(
        "s3",
        endpoint_url=public,
        region_name=store.region_name,  # type: ignore[attr-defined]
        config=store.client_config,  # type: ignore[attr-defined]
    )
    return client.generate_presigned_url(
        "get_object",
        Params={
            "Bucket": store.bucket_name,  # type: ignore[attr-defined]
            "Key": store._normalize_name(clean_key(key)),  # type: ignore[attr-defined]
            **parameters,
        },
        ExpiresIn=seconds or store.querystring_expire,  # type: ignore[attr-defined]
    )


def get_file(key: str, target: Path | str, *, move: bool = False) -> Path:
    """Put ``key``'s bytes at ``target``, a path of this machine (a worker's staging folder):
    copied from the folder or downloaded from the bucket (ranged parts, never whole in
    memory). With ``move`` the stored object is gone afterwards: on the local backend the
    file is moved there (one rename on the same file system)."""
    key, target = clean_key(key), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not is_remote():
        stored = Path(storage().path(key))
        if not stored.is_file():
            raise FileNotFoundError(f"No stored object {key}")
        if move:
            shutil.move(stored, target)
        else:
            shutil.copyfile(stored, target)
        return target
    _download(key, target)
    if move:
        delete(key)
    return target


def local_path(key: str) -> Path:
    """A real file holding ``key``'s bytes: the stored file, or a cached copy of the object."""
    key = clean_key(key)
    if not is_remote():
        return Path(storage().path(key))
    return _cache().file(key)


def local_tree(
    prefix: str, *, parts: Iterable[str] | None = None, require: str | None = None
) -> Path:
    """A real folder holding every object under ``prefix`` (a zarr store, a LeRobot dataset):
    the stored folder, or a cached copy fetched whole.

    ``parts`` (paths relative to ``prefix``: files, folders, ``.`` for all) fetches only those
    into the copy, at their places in the folder: what one reader needs of a large tree (an
    episode's HDF5 file, its parquet file and videos). ``require`` (relative to ``prefix``)
    must exist before anything is fetched, else FileNotFoundError: a version is trusted only
    once its manifest was written. The local backend answers the stored folder either way."""
    prefix = clean_key(prefix)
    if not is_remote():
        return Path(storage().path(prefix))
    wanted = None if parts is None else sorted({_relative_part(p) for p in parts})
    return _cache().tree(prefix, parts=wanted, require=clean_key(require) if require else None)


def _relative_part(part: str) -> str:
    part = str(part).replace("\\", "/").strip("/")
    return "." if part in ("", ".") else clean_key(part)


def evict(prefix: str = "") -> None:
    """Drop this machine's cached copies (all, or of keys under ``prefix``)."""
    if is_remote():
        _cache().evict(clean_key(prefix) if prefix else "")


def _cache() -> LocalCache:
    store = storage()
    namespace = f"{getattr(store, 'endpoint_url', '')}|{store.bucket_name}|{store.location}"  # type: ignore[attr-defined]
    return LocalCache(Path(settings.STAGECRAFT_CACHE_DIR), namespace)


class LocalCache:
    """Copies of stored objects on this machine's disk, bounded in bytes.

    Each key is kept at ``<dir>/<hash of namespace + key>/<file name>`` (the file name kept,
    since readers look at suffixes); a tree at ``<dir>/<hash>/`` with a ``.complete`` marker
    written once every file is in. Downloads go to a temporary name and are renamed into
    place, so two processes fetching the same key both end with a whole file. Reading touches
    the entry's time; when the total passes the bound, the least recently used entries go,
    except those used in the last minute (an open file stays readable after its unlink)."""

    def __init__(self, root: Path, namespace: str) -> None:
        self.root, self.namespace = root, namespace
        self.limit = int(settings.STAGECRAFT_CACHE_MAX_BYTES or 0)

    def _entry(self, key: str) -> Path:
        digest = hashlib.sha256(f"{self.namespace}|{key}".encode()).hexdigest()[:32]
        return self.root / digest[:2] / digest

    def file(self, key: str) -> Path:
        entry = self._entry(key)
        path = entry / PurePosixPath(key).name
        if (entry / COMPLETE).exists():
            _touch(entry / COMPLETE)
            return path
        entry.mkdir(parents=True, exist_ok=True)
        self._download(key, path)
        _mark_complete(entry, key)
        self.trim(keep=entry)
        return path

    def tree(
        self, prefix: str, *, parts: list[str] | None = None, require: str | None = None
    ) -> Path:
        # An entry per prefix and set of parts: a part's files are fetched once per set that
        # names it (the episodes of one file or store all name the same set).
        name = prefix + "/" + ("" if parts is None else "\n".join(parts))
        entry = self._entry(name)
        folder = entry / "tree"
        if (entry / COMPLETE).exists():
            _touch(entry / COMPLETE)
            return folder
        if require and not exists(join(prefix, require)):
            raise FileNotFoundError(f"No stored object {join(prefix, require)}")
        entry.mkdir(parents=True, exist_ok=True)
        wanted = [(key, folder / key[len(prefix) + 1 :]) for key in self._keys(prefix, parts)]
        for _key, target in wanted:
            target.parent.mkdir(parents=True, exist_ok=True)
        missing = [(key, target) for key, target in wanted if not target.exists()]
        if len(missing) > 1:  # a Zarr store is many small objects: one request each
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=FETCH_WORKERS) as pool:
                list(pool.map(lambda kt: self._download(*kt), missing))
        else:
            for key, target in missing:
                self._download(key, target)
        folder.mkdir(parents=True, exist_ok=True)
        _mark_complete(entry, prefix + "/")
        self.trim(keep=entry)
        return folder

    @staticmethod
    def _keys(prefix: str, parts: list[str] | None) -> list[str]:
        if parts is None or "." in parts:
            return [key for key, _size in list_keys(prefix)]
        keys: list[str] = []
        for part in parts:
            inside = [key for key, _size in list_keys(join(prefix, part))]
            keys.extend(inside or [join(prefix, part)])  # a folder's objects, else the file
        return keys

    def _download(self, key: str, path: Path) -> None:
        _download(key, path)

    def entries(self) -> list[tuple[float, int, Path, str]]:
        """(last used, bytes, folder, key) of every complete entry."""
        found: list[tuple[float, int, Path, str]] = []
        if not self.root.exists():
            return found
        for marker in self.root.glob(f"*/*/{COMPLETE}"):
            entry = marker.parent
            try:
                used = marker.stat().st_mtime
                key, total = _read_marker(marker)
            except OSError:
                continue
            found.append((used, total, entry, key))
        return found

    def trim(self, keep: Path | None = None) -> int:
        """Evict least recently used entries until the cache fits its bound; bytes freed."""
        if not self.limit:
            return 0
        entries = sorted(self.entries())
        total = sum(size for _, size, _, _ in entries)
        freed, now = 0, time.time()
        for used, size, entry, _key in entries:
            if total - freed <= self.limit:
                break
            if entry == keep or now - used < RECENT_SECONDS:
                continue
            _remove_entry(entry)
            freed += size
        return freed

    def evict(self, prefix: str) -> None:
        for _used, _size, entry, key in self.entries():
            if not prefix or key == prefix or key.startswith(prefix.rstrip("/") + "/"):
                _remove_entry(entry)


def _mark_complete(entry: Path, key: str) -> None:
    """The entry is whole: its key and its size in bytes, counted once here, so that
    ``entries`` (every trim) reads one small file per entry instead of walking its files."""
    size = sum(p.stat().st_size for p in entry.rglob("*") if p.is_file() and p.name != COMPLETE)
    tmp = entry / f"{COMPLETE}.{os.getpid()}-{time.monotonic_ns()}"
    tmp.write_text(json.dumps({"key": key, "bytes": size}))
    os.replace(tmp, entry / COMPLETE)


def _read_marker(marker: Path) -> tuple[str, int]:
    text = marker.read_text()
    try:
        data = json.loads(text)
        return str(data["key"]), int(data["bytes"])
    except (ValueError, TypeError, KeyError):  # a marker of before: the key alone
        entry = marker.parent
        size = sum(p.stat().st_size for p in entry.rglob("*") if p.is_file() and p.name != COMPLETE)
        return text, size


def _remove_entry(entry: Path) -> None:
    """Take the entry out of the cache in one rename (a reader then finds no marker and
    fetches again, never a marker whose files are half deleted), then delete it."""
    gone = entry.with_name(f".gone-{entry.name}-{os.getpid()}-{time.monotonic_ns()}")
    try:
        os.rename(entry, gone)
    except OSError:
        return
    shutil.rmtree(gone, ignore_errors=True)


def _download(key: str, path: Path) -> None:
    """The object ``key`` into the file ``path``: to a temporary name beside it, then renamed
    (two processes fetching one key both end with a whole file)."""
    store = storage()
    tmp = path.with_name(f".{path.name}.part-{os.getpid()}-{time.monotonic_ns()}")
    try:
        client = store.connection.meta.client  # type: ignore[attr-defined]
        client.download_file(
            store.bucket_name,  # type: ignore[attr-defined]
            store._normalize_name(key),  # type: ignore[attr-defined]
            str(tmp),
        )
        os.replace(tmp, path)
    except Exception as error:
        tmp.unlink(missing_ok=True)
        if _is_not_found(error):
            raise FileNotFoundError(f"No stored object {key}") from None
        raise


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass


def _is_not_found(error: Exception) -> bool:
    response = getattr(error, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NotFound"}
