"""``/tasks/`` over HTTP for two commits side by side, requests interleaved (one to A, one to
B), on one database ``bench/task_list.py`` built: p50 / p95 wall ms per path and each
server's CPU per request (its gunicorn processes' /proc counters over the phase). As the
project manager ``boss``, DEBUG off, ``collectstatic`` done per snapshot. Prints JSON.

.venv/bin/python bench/tasks_page_ab.py BEFORE_DIR AFTER_DIR [--requests 30]
    (DATABASE_URL: the built database; BEFORE_DIR / AFTER_DIR: checkouts, e.g. worktrees)

Paths: page 1, pages 500 and 1,900 by number (OFFSET), the pages after them by the cursor
their Next link carries (a checkout whose pager has no cursor link is asked for the next
number), a status tab, and every project. The database is read only.
"""

import argparse
import html
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "0", "LOG_LEVEL": "WARNING",
    "SECRET_KEY": "bench-only-secret-key-not-for-production",
    "ALLOWED_HOSTS": "127.0.0.1,testserver",
}  # fmt: skip


def start(snapshot: Path) -> tuple[subprocess.Popen, int]:
    env = os.environ | ENV | {"STATIC_ROOT": str(snapshot / ".bench-static")}
    python = str(Path(sys.executable))
    subprocess.run(  # noqa: S603
        [python, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=snapshot,
        env=env,
        check=True,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    server = subprocess.Popen(  # noqa: S603
        [gunicorn, "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2"],
        cwd=snapshot, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, port
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{snapshot}: the server did not start")


def cpu_seconds(server: subprocess.Popen) -> float:
    """utime + stime of the gunicorn master and its workers."""
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [server.pid]
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def session_cookie() -> tuple[str, str]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.update(ENV)
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username="boss"))
    return settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value


def next_link(body: str) -> str | None:
    pager = re.search(r'<nav aria-label="Pages" class="pager">(.*?)</nav>', body, re.S)
    found = re.search(r'<a href="\?([^"]*)"[^>]*>Next</a>', pager.group(1) if pager else "")
    return html.unescape(found.group(1)) if found else None


def main() -> None:
    import requests

    parser = argparse.ArgumentParser()
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    name, value = session_cookie()
    from projects.models import Project

    pk = Project.objects.get(name="List bench").pk
    servers = {
        side: start(path.resolve()) for side, path in (("A", args.before), ("B", args.after))
    }
    http = requests.Session()
    http.cookies.set(name, value)
    results: dict = {"load_start": os.getloadavg()[0], "paths": {}}
    try:
        paths = {
            "page 1": {side: f"/tasks/?project={pk}" for side in servers},
            "page 500 by number": {side: f"/tasks/?project={pk}&page=500" for side in servers},
            "status tab": {side: f"/tasks/?project={pk}&status=in_progress" for side in servers},
            "all projects": {side: "/tasks/" for side in servers},
        }
        paths["page 1,900 by number"] = {
            side: f"/tasks/?project={pk}&page=1900" for side in servers
        }
        for page in (500, 1900):
            deep = {}
            for side, (_server, port) in servers.items():
                body = http.get(f"http://127.0.0.1:{port}/tasks/?project={pk}&page={page}").text
                following = next_link(body) or ""
                deep[side] = (
                    f"/tasks/?{following}"
                    if "cursor=" in following
                    else f"/tasks/?project={pk}&page={page + 1}"
                )
            paths[f"page {page + 1:,} by page {page:,}'s Next link"] = deep
        for label, by_side in paths.items():
            times: dict[str, list[float]] = {side: [] for side in servers}
            cpu = dict.fromkeys(servers, 0.0)
            for side, (_server, port) in servers.items():
                for _ in range(3):
                    assert http.get(f"http://127.0.0.1:{port}{by_side[side]}").status_code == 200
            for _ in range(args.requests):
                for side, (server, port) in servers.items():
                    before = cpu_seconds(server)
                    begun = time.perf_counter()
                    answer = http.get(f"http://127.0.0.1:{port}{by_side[side]}")
                    times[side].append(time.perf_counter() - begun)
                    cpu[side] += cpu_seconds(server) - before
                    assert answer.status_code == 200, (label, side, answer.text[:200])
            results["paths"][label] = {
                side: {
                    "path": by_side[side][:80],
                    "p50_ms": round(statistics.median(times[side]) * 1000, 1),
                    "p95_ms": round(
                        sorted(times[side])[int(len(times[side]) * 0.95) - 1] * 1000, 1
                    ),
                    "server_cpu_ms": round(cpu[side] / args.requests * 1000, 1),
                }
                for side in servers
            }
            print(label, json.dumps(results["paths"][label]), file=sys.stderr)
    finally:
        for server, _port in servers.values():
            server.terminate()
            server.wait()
    results["load_end"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
