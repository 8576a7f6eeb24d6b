"""Stagecraft settings, read from the environment.

Every setting that differs between machines comes from an environment variable;
secrets may also come from a file named by ``<NAME>_FILE`` (Docker/Kubernetes
secrets). With ``DEBUG`` off the defaults are production-safe.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from whitenoise.compress import Compressor

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str | None = None) -> str | None:
    """An environment variable, or the contents of the file named by NAME_FILE."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        return Path(file_name).read_text().strip()
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = env(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in (env(name, default) or "").split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it (or SECRET_KEY_FILE), or run with DEBUG=1 "
            "for a development key."
        )
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_rq",
    "guardian",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "core",
    "projects",
    "blueprints",
    "tasks",
    "audits",
    "queues",
    "activity",
    "reports",
    "notifications",
    "experience",
    "connectors",
]

MIDDLEWARE = [
    "core.middleware.HealthCheckMiddleware",  # /healthz: before the host check and redirects
    "django.middleware.security.SecurityMiddleware",
    "core.middleware.UploadSizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "core.middleware.VaryOnHtmxMiddleware",
    "core.middleware.RejectNulMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.stagecraft",
                "notifications.context_processors.notifications",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

DATABASE_URL = env("DATABASE_URL")
if not DATABASE_URL:
    # The embedded default: a SQLite file under var/ (made on first use, even on a fresh clone).
    (BASE_DIR / "var").mkdir(exist_ok=True)
    DATABASE_URL = f"sqlite:///{BASE_DIR / 'var' / 'stagecraft.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=int(env("DB_CONN_MAX_AGE", "60") or 60),
        conn_health_checks=True,
    )
}
# Services own their transactions (STYLE.md §13).
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})
    # WAL + a busy timeout let the web server and the RQ worker share the file.
    DATABASES["default"]["OPTIONS"].update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", str(BASE_DIR / "var" / "staticfiles")))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(BASE_DIR / "var" / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "core.storage.StaticStorage"
        )
    },
}
# --- Data storage (datasets, exports, uploads): core/objectstore.py --------------------
# "local" keeps every file under MEDIA_ROOT (the default, one machine or a shared volume);
# "s3" keeps them in an S3-compatible bucket, so web servers and workers on several machines
# need no shared disk (README, "Several machines"). Credentials may come from *_FILE too; with
# none set, boto3's own chain (instance role, ~/.aws) answers.
STAGECRAFT_STORAGE = (env("STAGECRAFT_STORAGE", "local") or "local").strip().lower()
if STAGECRAFT_STORAGE not in {"local", "s3"}:
    raise ImproperlyConfigured('STAGECRAFT_STORAGE must be "local" or "s3".')
if STAGECRAFT_STORAGE == "s3":
    if not env("STAGECRAFT_S3_BUCKET"):
        raise ImproperlyConfigured("STAGECRAFT_STORAGE=s3 needs STAGECRAFT_S3_BUCKET.")
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env("STAGECRAFT_S3_BUCKET"),
            "location": (env("STAGECRAFT_S3_PREFIX", "") or "").strip("/"),
            "endpoint_url": env("STAGECRAFT_S3_ENDPOINT_URL") or None,
            "region_name": env("STAGECRAFT_S3_REGION") or None,
            "access_key": env("STAGECRAFT_S3_ACCESS_KEY_ID") or None,
            "secret_key": env("STAGECRAFT_S3_SECRET_ACCESS_KEY") or None,
            # Keys are written once under versioned names; never renamed to "name_abc12".
            "file_overwrite": True,
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": int(env("STAGECRAFT_S3_URL_SECONDS", "300") or 300),
            "signature_version": "s3v4",
            "addressing_style": env("STAGECRAFT_S3_ADDRESSING_STYLE") or None,
        },
    }
# Signed download URLs name this endpoint when the users' browsers reach the bucket at
# another address than the servers do (e.g. http://minio:9000 inside, https://files.example.com
# outside); empty: the endpoint above.
STAGECRAFT_S3_PUBLIC_ENDPOINT_URL = (env("STAGECRAFT_S3_PUBLIC_ENDPOINT_URL", "") or "").rstrip("/")
# Files of a remote storage read by a process (HDF5, parquet, video of a dataset) are copied
# into this folder, at most this many bytes, least recently used evicted first.
STAGECRAFT_CACHE_DIR = Path(env("STAGECRAFT_CACHE_DIR", str(BASE_DIR / "var" / "cache")))
STAGECRAFT_CACHE_MAX_BYTES = int(env("STAGECRAFT_CACHE_MAX_BYTES", str(20 * 1024**3)) or 0)
# Where a worker writes what it builds before publishing it to the storage (an export's
# files and zip, a dataset's staging): a local folder of each machine, never shared. On
# the local storage an export is built beside its published versions instead (one rename).
STAGECRAFT_WORK_DIR = Path(env("STAGECRAFT_WORK_DIR", str(BASE_DIR / "var" / "work")))
# Serve static files from the app folders too when DEBUG is off and collectstatic
# has not run (the tests and a quick production trial; core/storage.py).
WHITENOISE_USE_FINDERS = True
# collectstatic (``make serve``) keeps and compresses the hashed copies only, and leaves
# source maps (read by browser tools alone) uncompressed: half the files, a third of the
# time. Unhashed names still answer through the finders.
WHITENOISE_KEEP_ONLY_HASHED_FILES = True
WHITENOISE_SKIP_COMPRESS_EXTENSIONS = (*Compressor.SKIP_COMPRESS_EXTENSIONS, "map")

# --- Security: safe by default when DEBUG is off. -------------------------------
# TLS is terminated by the reverse proxy; these four are left to the proxy by
# default and can be switched on here (README, "Production").
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = int(env("SECURE_HSTS_SECONDS", "0") or 0)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# --- Redis and RQ ----------------------------------------------------------------
REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")
RQ_QUEUE_NAMES = ["default", "exports", "imports", "webhooks"]
RQ_QUEUES = {
    name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 3600 if name == "exports" else 600}
    for name in RQ_QUEUE_NAMES
}
RQ_SHOW_ADMIN_LINK = True
# When Redis cannot be reached, run jobs in the web process instead of failing
# (the development default; off in production, where a missing Redis is an outage).
STAGECRAFT_JOBS_SYNC_FALLBACK = env_bool("STAGECRAFT_JOBS_SYNC_FALLBACK", DEBUG)
STAGECRAFT_ALLOW_PRIVATE_CALLBACKS = env_bool("STAGECRAFT_ALLOW_PRIVATE_CALLBACKS", DEBUG)
# A worker that stops answering for this many seconds (killed, its machine gone) is lost:
# its running jobs are failed as "worker lost" and can be retried (queues/recovery.py).
STAGECRAFT_WORKER_LOST_SECONDS = int(env("STAGECRAFT_WORKER_LOST_SECONDS", "45") or 45)
# Run a job whose worker was lost once more by itself (off: an administrator retries it).
STAGECRAFT_RETRY_LOST_JOBS = env_bool("STAGECRAFT_RETRY_LOST_JOBS", False)
# Delivery callbacks: HMAC secret, timeout, and the waits between attempts (seconds):
# 1 min, 5 min, 30 min, 2 h, 6 h, 12 h — a receiver that is down for hours still gets it.
STAGECRAFT_WEBHOOK_SECRET = env("STAGECRAFT_WEBHOOK_SECRET") or f"webhook:{SECRET_KEY}"
STAGECRAFT_WEBHOOK_TIMEOUT = float(env("STAGECRAFT_WEBHOOK_TIMEOUT", "10") or 10)
STAGECRAFT_WEBHOOK_RETRY_INTERVALS = [60, 300, 1800, 7200, 21600, 43200]
# Finished export files are deleted after this many days (a daily job; make run schedules it).
STAGECRAFT_EXPORT_RETENTION_DAYS = int(env("STAGECRAFT_EXPORT_RETENTION_DAYS", "30") or 30)
STAGECRAFT_MAX_ACTIVE_EXPORTS_PER_USER = int(
    env("STAGECRAFT_MAX_ACTIVE_EXPORTS_PER_USER", "3") or 3
)
# Bucket connections (connectors/): the Fernet key(s) that encrypt their secrets, the first
# encrypting and all decrypting (rotation); unset, a key derived from SECRET_KEY (changing
# SECRET_KEY then makes stored secrets unreadable: enter them again). *_FILE works too.
STAGECRAFT_ENCRYPTION_KEY = env("STAGECRAFT_ENCRYPTION_KEY", "") or ""
# May a connection's endpoint be a private or loopback address (a MinIO on your network)?
STAGECRAFT_ALLOW_PRIVATE_ENDPOINTS = env_bool("STAGECRAFT_ALLOW_PRIVATE_ENDPOINTS", DEBUG)
# Seconds to wait for a bucket's endpoint to accept a connection.
STAGECRAFT_CONNECTOR_TIMEOUT = int(env("STAGECRAFT_CONNECTOR_TIMEOUT", "5") or 5)
# Server folders that the API and pages may import datasets from (the command line may
# import from anywhere). Files are copied into MEDIA_ROOT/datasets/ on import.
STAGECRAFT_IMPORT_ROOTS = env_list("STAGECRAFT_IMPORT_ROOTS", str(MEDIA_ROOT / "incoming"))

# Largest import (bytes unpacked); protects the disk from zip bombs.
STAGECRAFT_MAX_IMPORT_BYTES = int(env("STAGECRAFT_MAX_IMPORT_BYTES", str(50 * 10**9)) or 0)
# Dataset uploads: many files per request (a folder of episodes), large files on disk.
DATA_UPLOAD_MAX_NUMBER_FILES = int(env("DATA_UPLOAD_MAX_NUMBER_FILES", "5000") or 5000)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# The largest request body accepted (dataset uploads); larger ones are refused with 413 before
# they are read. 0 turns the limit off (leave it to the proxy).
STAGECRAFT_MAX_UPLOAD_BYTES = int(env("STAGECRAFT_MAX_UPLOAD_BYTES", str(10 * 1024**3)) or 0)

# --- API -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Stagecraft API",
    "DESCRIPTION": "Projects, blueprints, tasks, annotations, reviews, audits and exports.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "DatasetFormatEnum": "projects.models.DatasetFormat",
        "ExportFormatEnum": "queues.models.ExportFormat",
        "ExportStatusEnum": "queues.models.ExportStatus",
        "ImportStatusEnum": "projects.models.ImportStatus",
        "SampleKindEnum": "projects.models.SampleKind",
        "CommentKindEnum": "tasks.models.Comment.Kind",
        "AuditKindEnum": "audits.models.Audit.Kind",
        "ConnectionKindEnum": "connectors.models.ConnectionKind",
        "AuditDecisionEnum": [("accept", "Accepted"), ("reject", "Rejected")],
        "ReviewDecisionEnum": [("approve", "approve"), ("reject", "reject")],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
