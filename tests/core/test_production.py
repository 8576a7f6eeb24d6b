"""Production serving with DEBUG off: the pages render and their static files are served.

Each test starts a real server as a subprocess on a free port, with the production settings
(``config.settings``, ``DEBUG=0``), against the test database (committed data: these tests
are transactional), and talks to it over HTTP:

- ``make serve`` — the documented production start: migrate, ``collectstatic`` into a
  temporary ``STATIC_ROOT``, gunicorn. Pages reference hashed files, served compressed
  with a far-future cache header.
- ``manage.py runserver`` with DEBUG off and no ``collectstatic`` — the first start of a
  trial install. Pages reference plain names, served from the app folders.
"""

import http.client
import os
import re
import signal
import socket
import subprocess
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(settings.BASE_DIR)
PY = ROOT / ".venv" / "bin" / "python"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (
        f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        f"/{db['NAME']}"
    )


def _env(static_root: Path, media_root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_", "MAKE"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="0",
        SECRET_KEY="production-test-secret-key-0123456789abcdefghijklmnop",
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=_database_url(),
        REDIS_URL=settings.REDIS_URL,
        STATIC_ROOT=str(static_root),
        MEDIA_ROOT=str(media_root),
        # Plain HTTP here; behind the proxy these stay on (README, "Production").
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
    )
    return env


class Server:
    """A server subprocess in its own process group, stopped with SIGTERM."""

    def __init__(self, args: list[str], env: dict[str, str], port: int, log: Path):
        self.port = port
        self.log = log
        self.cookies: dict[str, str] = {}
        with log.open("wb") as out:
            self.proc = subprocess.Popen(  # noqa: S603 (our own fixed arguments)
                args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited ({self.proc.returncode}):\n{self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"server not ready after {timeout} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def request(self, method: str, path: str, body: dict | None = None, headers=None):
        """One request on a fresh connection; keeps the cookies like a browser."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        hdrs = {"Accept-Encoding": "gzip", **(headers or {})}
        if self.cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = None
        if body is not None:
            data = urlencode(body)
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        content = resp.read()
        for value in resp.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(value).items():
                self.cookies[name] = morsel.value
        conn.close()
        return resp, content


def _assets(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/static/[^"]+)"', html)


def _log_in_and_check(server: Server, *, hashed: bool) -> None:
    resp, body = server.request("GET", "/accounts/login/")
    assert resp.status == 200, body[:2000]
    html = body.decode()
    assert "Log in to Stagecraft" in html
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    resp, body = server.request(
        "POST", "/accounts/login/", {"csrfmiddlewaretoken": token, "username": "maya",
                                     "password": "pw"},
    )  # fmt: skip
    assert resp.status == 302, body[:2000]
    assert resp.getheader("Location") == "/"

    resp, body = server.request("GET", "/")
    assert resp.status == 200, body[:2000]
    html = body.decode()
    assert "maya" in html  # the dashboard of the user who logged in
    assets = _assets(html)
    css = [a for a in assets if a.startswith("/static/css/stagecraft")]
    htmx = [a for a in assets if a.startswith("/static/vendor/htmx/htmx-")]
    assert len(css) == 1 and len(htmx) == 1, assets
    hashed_name = re.compile(r"\.[0-9a-f]{12}\.(css|js)$")
    for path, content_type, marker in (
        (css[0], "text/css", b"--"),  # custom properties
        (htmx[0], "text/javascript", b"htmx"),
    ):
        assert bool(hashed_name.search(path)) is hashed, path
        resp, content = server.request("GET", path, headers={"Accept-Encoding": "identity"})
        assert resp.status == 200, path
        assert resp.getheader("Content-Type").startswith(content_type), path
        assert marker in content and len(content) > 1000, path
        if hashed:
            # collectstatic's compressed copy, cached for good by the browser
            assert "immutable" in resp.getheader("Cache-Control"), path
            resp, _ = server.request("GET", path, headers={"Accept-Encoding": "gzip"})
            assert resp.getheader("Content-Encoding") == "gzip", path


@pytest.fixture
def manager_account():
    # The production settings know the default hasher only (the suite's is MD5); few
    # iterations keep the test fast (the server upgrades the hash on login).
    user = UserFactory(username="maya")
    user.password = PBKDF2PasswordHasher().encode("pw", "productionsalt", iterations=1000)
    user.save(update_fields=["password"])
    return user


def test_make_serve_collects_static_files_and_serves_them_with_debug_off(manager_account, tmp_path):
    """The documented production start: ``make serve`` (collectstatic, then gunicorn)."""
    port = _free_port()
    static_root = tmp_path / "static"
    env = _env(static_root, tmp_path / "media")
    args = ["make", "--no-print-directory", "-o", ".venv/.installed", "serve",
            f"PORT={port}", "WEB_WORKERS=1"]  # fmt: skip
    server = Server(args, env, port, tmp_path / "serve.log")
    try:
        server.wait_ready()
        assert (static_root / "staticfiles.json").exists()
        _log_in_and_check(server, hashed=True)
        assert "Booting worker" in server.log.read_text()  # gunicorn, not runserver
    finally:
        server.stop()


def test_without_collectstatic_pages_render_and_static_files_are_served(manager_account, tmp_path):
    """A first start with DEBUG off before any ``collectstatic`` (empty STATIC_ROOT)."""
    port = _free_port()
    static_root = tmp_path / "static"  # does not exist: collectstatic never ran
    env = _env(static_root, tmp_path / "media")
    args = [str(PY), "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    server = Server(args, env, port, tmp_path / "runserver.log")
    try:
        server.wait_ready()
        _log_in_and_check(server, hashed=False)
    finally:
        server.stop()
    assert not static_root.exists()
