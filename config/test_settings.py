"""Settings for the test suite: PostgreSQL and a Redis database of its own."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/stagecraft")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-for-the-stagecraft-suite")
# Playwright's sync API runs an event loop in the test thread (STACK.md).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from config.settings import *  # noqa: E402, F403
from config.settings import RQ_QUEUE_NAMES, env  # noqa: E402

# Never the application's Redis database: the suite empties its own.
REDIS_URL = env("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Parallel runs (pytest-xdist): each worker empties a Redis database of its own, counting
# down from the configured one (gw0 uses it, gw1 the one below…), as each has its own
# PostgreSQL test database.
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker.startswith("gw") and _worker[2:].isdigit():
    _base, _, _number = REDIS_URL.rpartition("/")
    REDIS_URL = f"{_base}/{int(_number or 0) - int(_worker[2:])}"
RQ_QUEUES = {name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 600} for name in RQ_QUEUE_NAMES}
STAGECRAFT_JOBS_SYNC_FALLBACK = True
STAGECRAFT_ALLOW_PRIVATE_CALLBACKS = True  # the tests run their receivers on 127.0.0.1
# Media of the test run lives in a folder of its own, removed at the end (tests/conftest.py).
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="stagecraft-test-media-"))
STAGECRAFT_IMPORT_ROOTS = [str(MEDIA_ROOT / "incoming"), tempfile.gettempdir()]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
# The data storage follows STAGECRAFT_STORAGE as in production (local unless set; the S3
# tests switch one test at a time, tests/helpers/s3.py); static files unhashed.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STAGECRAFT_CACHE_DIR = Path(tempfile.mkdtemp(prefix="stagecraft-test-cache-"))
STAGECRAFT_WORK_DIR = Path(tempfile.mkdtemp(prefix="stagecraft-test-work-"))
# The demo without its quality history (core/demo.py): tests count the demo's eight tasks
# and browser tests seed it for every test; tests of the history turn it on.
STAGECRAFT_DEMO_QUALITY = False
# Between transactional tests (browser tests, live servers) the suite empties the database
# with DELETE rather than TRUNCATE: same rows gone, a fraction of the time (tests/db_backend).
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    DATABASES["default"]["ENGINE"] = "tests.db_backend"  # noqa: F405
