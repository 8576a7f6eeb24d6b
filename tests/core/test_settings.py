"""Settings come from the environment, and production defaults are safe."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# HTTPS settings that the reverse proxy in front of Stagecraft provides (README).
PROXY_PROVIDED = {"security.W004", "security.W008"}


def run_manage(*args, **env):
    dropped = {"DEBUG", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE", "DATABASE_URL"}
    clean = {k: v for k, v in os.environ.items() if k not in dropped}
    clean.pop("DJANGO_SETTINGS_MODULE", None)
    clean.update(env)
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_apart_from_proxy_https_settings():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "ERROR",
        DEBUG="0",
        SECRET_KEY="x" * 64 + "-a-long-random-production-key",
        ALLOWED_HOSTS="stagecraft.example.com",
    )
    assert result.returncode == 0, result.stderr
    warnings = set(re.findall(r"\((\w+\.[EW]\d+)\)", result.stderr))
    assert warnings <= PROXY_PROVIDED, result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    result = run_manage("check", DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_database_and_redis_come_from_the_environment(tmp_path):
    result = run_manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME'], s.REDIS_URL, "
        "s.MEDIA_ROOT, s.ALLOWED_HOSTS)",
        DEBUG="1",
        DATABASE_URL=f"sqlite:///{tmp_path}/x.sqlite3",
        REDIS_URL="redis://cache:6379/3",
        MEDIA_ROOT=str(tmp_path / "media"),
        ALLOWED_HOSTS="a.example,b.example",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        f"{tmp_path}/x.sqlite3",
        "redis://cache:6379/3",
        str(tmp_path / "media"),
        "['a.example',",
        "'b.example']",
    ]


def test_secrets_can_come_from_files(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    result = run_manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings as s; print(s.SECRET_KEY)",
        DEBUG="0",
        SECRET_KEY_FILE=str(secret),
    )
    assert result.stdout.strip() == "from-a-file", result.stderr
