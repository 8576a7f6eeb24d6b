"""CPU per call of the pages a manager opens, in-process (Django + the PostgreSQL backend,
``bench.common.cpu_per_call``), for two commits against one database, interleaved: each
commit is exported with ``git archive`` (read-only for the checkout) and run in its own
process. For before/after figures on a shared machine, where wall times follow the load.

.venv/bin/python bench/cpu_compare.py BEFORE AFTER [--db stagecraft_bench_list] [--calls 10]
    [--rounds 2] [--only "/tasks/?project=,project page"]

The database is one ``bench/task_list.py`` built (the project "List bench", the manager
``boss``), migrated to AFTER's migrations: BEFORE's queries run on AFTER's schema and indexes,
so a schema change between the two (indexes made partial, say) shows in BEFORE's figures too.
Prints one JSON line per run: {commit: {page: [Django ms, PostgreSQL ms, queries]}}.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PAGES = {
    "/tasks/?project=": "/tasks/?project={pk}",
    "/tasks/ (all)": "/tasks/",
    "/tasks/ page 500": "/tasks/?project={pk}&page=500",
    "/tasks/ status": "/tasks/?project={pk}&status=in_progress",
    "My work": "/workspace/",
    "project page": "/projects/{slug}/",
    "dashboard /": "/",
    "progress API": "/api/v1/projects/{pk}/progress/",
}


def measure(snapshot: str, calls: int, only: list[str]) -> dict:
    """In a child process: this snapshot's code on the database of DATABASE_URL."""
    sys.path.insert(0, snapshot)
    os.chdir(snapshot)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from bench.common import cpu_per_call
    from projects.models import Project

    if not Path(os.environ["STATIC_ROOT"], "staticfiles.json").exists():
        call_command("collectstatic", interactive=False, verbosity=0)
    project = Project.objects.get(name="List bench")
    client = Client()
    client.force_login(get_user_model().objects.get(username="boss"))
    found = {}
    for name, path in PAGES.items():
        if only and name not in only:
            continue
        path = path.format(pk=project.pk, slug=project.slug)
        for _ in range(2):  # warm caches
            assert client.get(path).status_code == 200, path
        # The queries of one call (CaptureQueriesContext sees none here: the request's end
        # closes the connection, as CONN_MAX_AGE 0 does in production).
        connection.force_debug_cursor = True
        connection.queries_log.clear()
        client.get(path)
        queries = len(connection.queries_log)
        connection.force_debug_cursor = False
        cpu = cpu_per_call(client, path, connection, calls=calls)
        found[name] = [cpu["django_ms"], cpu["postgres_ms"], queries]
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--db", default="stagecraft_bench_list")
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", default="")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    only = [name for name in args.only.split(",") if name]
    if args.child:
        print(json.dumps(measure(args.child, args.calls, only)))
        return
    work = Path(tempfile.mkdtemp(prefix="cpu-compare-"))
    snapshots = {}
    for commit in (args.before, args.after):
        target = work / commit
        target.mkdir()
        archive = subprocess.run(  # noqa: S603
            ["git", "archive", commit],
            cwd=ROOT,
            check=True,
            capture_output=True,  # noqa: S607
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)  # noqa: S603, S607
        snapshots[commit] = target
    for _ in range(args.rounds):
        row = {"load": round(os.getloadavg()[0], 1)}
        for commit, target in snapshots.items():
            env = os.environ | {
                "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{args.db}",
                "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "0",
                "SECRET_KEY": "bench-only-secret-key-not-for-production", "LOG_LEVEL": "WARNING",
                "ALLOWED_HOSTS": "127.0.0.1,testserver", "STATIC_ROOT": str(target / ".static"),
            }  # fmt: skip
            out = subprocess.run(  # noqa: S603
                [sys.executable, __file__, commit, commit, "--child", str(target),
                 "--calls", str(args.calls), "--only", args.only],
                env=env, check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
            row[commit] = json.loads(out.strip().splitlines()[-1])
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
