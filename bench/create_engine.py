"""Task creation over HTTP and the engine through the services, on PostgreSQL, as a manager,
DEBUG off. Prints JSON.

Creation: the real server (``bench.common.serve``: gunicorn, 2 workers, persistent database
connections; DEBUG off) serves ``POST /api/v1/tasks/bulk/`` with 1,000 tasks per request (each
with a unique_id and metadata, like Label Studio's import), a fresh HTTP connection per
request, the project's manager's token. Figures: tasks/s (wall), the CPU per task of the
server's processes and of the PostgreSQL backends of its database (``/proc``, as
``side_by_side.py`` counts them: on a shared machine the steadier figure), the stage runs and
events written, and the queries of one request (counted in-process with the test client).

Engine: ``stage_start`` → ``stage_submit`` → ``stage_review`` (approve) of the default
blueprint (annotate, then review) on each task, by an annotator and a reviewer, through the
services in this process: stage transitions/s (3 per task), this process's CPU and the
queries of each action.

.venv/bin/python bench/create_engine.py [--tasks 20000] [--engine-tasks 500 | 0]
    [--db stagecraft_bench_p2] [--template DB] [--port 8122]

``--template DB``: create the database as a copy of DB (an empty, migrated database), which
saves the migrations' minutes on a loaded machine. ``--preload N``: first N tasks in the
project through ``task_create_many`` (untimed, then ANALYZE), to time creation into a big
project as the side-by-side run does (90,000).
"""

import argparse
import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", sql], check=True)  # noqa: S603, S607


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its waited-for children (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(f) for f in fields[11:15]) / ticks


def post(port: int, path: str, token: str, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request(
        "POST",
        path,
        body=body,
        headers={
            "Authorization": f"Token {token}",
            "Content-Type": "application/json",
            "Connection": "close",
        },
    )
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--engine-tasks", type=int, default=500)
    parser.add_argument("--db", default="stagecraft_bench_p2")
    parser.add_argument("--port", type=int, default=8122)
    parser.add_argument("--template", default="")
    parser.add_argument("--preload", type=int, default=0)
    args = parser.parse_args()
    psql(f"drop database if exists {args.db}")
    psql(f"create database {args.db}" + (f" template {args.template}" if args.template else ""))
    env = dict(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{args.db}",
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="0",
        SECRET_KEY="bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        LOG_LEVEL="WARNING",
        ALLOWED_HOSTS="testserver,localhost,127.0.0.1",
        REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12"),
        DB_CONN_MAX_AGE="3600",
    )
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from rest_framework.authtoken.models import Token

    from projects.services import membership_add, project_create
    from tasks import services
    from tasks.models import StageRun, Task, TaskEvent

    call_command("migrate", verbosity=0)
    User = get_user_model()
    admin = User.objects.create_superuser("bench", "b@example.com", "x")
    manager = User.objects.create_user("manager", password="x")
    ana = User.objects.create_user("ana", password="x")
    rev = User.objects.create_user("rev", password="x")
    project = project_create(actor=admin, name="Bench")
    membership_add(actor=admin, project=project, user=manager, role="manager")
    membership_add(actor=admin, project=project, user=ana, role="annotator")
    membership_add(actor=admin, project=project, user=rev, role="reviewer")
    token = Token.objects.create(user=manager).key

    def items(start: int, n: int) -> list[dict]:
        return [
            {
                "project": project.pk,
                "name": f"episode {i}",
                "unique_id": f"ep-{i}",
                "metadata": {"image": f"s3://bucket/ep-{i}.jpg", "episode": i, "meta": {"k": i}},
            }
            for i in range(start, start + n)
        ]

    for start in range(0, args.preload, 5000):
        services.task_create_many(
            actor=manager,
            project=project,
            items=[
                {"name": f"preloaded {i}", "unique_id": f"pre-{i}", "metadata": {"episode": i}}
                for i in range(start, min(start + 5000, args.preload))
            ],
        )
    # The queries of one request of `--batch` tasks (in-process, the same view).
    client = Client()
    client.force_login(manager)
    with CaptureQueriesContext(connection) as ctx:
        r = client.post(
            "/api/v1/tasks/bulk/", items(10_000_000, args.batch), content_type="application/json"
        )
    assert r.status_code == 201, r.content[:500]
    queries_per_request = len(ctx.captured_queries)
    with CaptureQueriesContext(connection) as ctx:
        r = client.post(
            "/api/v1/tasks/bulk/", items(20_000_000, 10), content_type="application/json"
        )
    queries_10 = len(ctx.captured_queries)
    Task.objects.filter(project=project, unique_id__startswith="ep-").delete()
    call_command(
        "shell", "-c", "from django.db import connection; connection.cursor().execute('ANALYZE')"
    )

    from bench.common import serve
    from bench.side_by_side import Meter, sc_snapshot

    server = serve(args.port)
    try:
        # Warm-up requests (imports, each worker's connection), not counted.
        for n in range(4):
            status, data = post(
                args.port,
                "/api/v1/tasks/bulk/",
                token,
                json.dumps(items(30_000_000 + 1000 * n, 100)).encode(),
            )
            assert status == 201, data[:500]
        Task.objects.filter(project=project, unique_id__startswith="ep-").delete()
        load_before = os.getloadavg()
        started = time.perf_counter()
        per_request = []
        with Meter(sc_snapshot(server.pid, args.db)) as meter:
            for offset in range(0, args.tasks, args.batch):
                body = json.dumps(items(offset, min(args.batch, args.tasks - offset))).encode()
                t = time.perf_counter()
                status, data = post(args.port, "/api/v1/tasks/bulk/", token, body)
                per_request.append(time.perf_counter() - t)
                assert status == 201, data[:500]
        wall = time.perf_counter() - started
        load_after = os.getloadavg()
    finally:
        server.terminate()
        server.wait(timeout=30)
    per_request.sort()
    with connection.cursor() as cursor:  # fresh statistics: the counts below join 20,000 tasks
        cursor.execute("ANALYZE")
    creation = {
        "preloaded": args.preload,
        "tasks": Task.objects.filter(project=project, unique_id__startswith="ep-").count(),
        "stage_runs": StageRun.objects.filter(task__unique_id__startswith="ep-").count(),
        "events": TaskEvent.objects.filter(task__unique_id__startswith="ep-").count(),
        "requests": len(per_request),
        "wall_s": round(wall, 2),
        "tasks_per_s": round(args.tasks / wall),
        "request_ms_median": round(per_request[len(per_request) // 2] * 1000),
        "cpu_ms_per_task": {  # the server's processes, its database's backends
            part: round(1000 * seconds / args.tasks, 3) for part, seconds in meter.seconds.items()
        },
        "queries_per_request": {f"{args.batch}_tasks": queries_per_request, "10_tasks": queries_10},
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
    }

    if not args.engine_tasks:
        print(json.dumps({"creation_over_http": creation}, indent=2))
        connection.close()
        psql(f"drop database if exists {args.db}")
        return
    # The engine through the services.
    call_command(
        "shell", "-c", "from django.db import connection; connection.cursor().execute('ANALYZE')"
    )
    tasks = services.task_create_many(
        actor=manager,
        project=project,
        items=[{"name": f"engine {i}"} for i in range(args.engine_tasks)],
    )
    queries: dict[str, list[int]] = {"start": [], "submit": [], "review": []}
    load_before = os.getloadavg()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    pg0 = cpu_seconds(backend)
    cpu0 = time.process_time()
    started = time.perf_counter()
    for i, task in enumerate(tasks):
        counted = i < 5
        for action, call, kwargs in (
            ("start", services.stage_start, {"actor": ana, "stage_key": "annotate"}),
            ("submit", services.stage_submit, {"actor": ana, "stage_key": "annotate"}),
            (
                "review",
                services.stage_review,
                {"actor": rev, "stage_key": "review", "decision": "approve"},
            ),
        ):
            if counted:
                with CaptureQueriesContext(connection) as ctx:
                    call(task=task, **kwargs)
                queries[action].append(len(ctx.captured_queries))
            else:
                call(task=task, **kwargs)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    pg = cpu_seconds(backend) - pg0
    load_after = os.getloadavg()
    done = Task.objects.filter(pk__in=[t.pk for t in tasks], status="review_passed").count()
    assert done == len(tasks), done
    engine_figures = {
        "tasks": len(tasks),
        "transitions": 3 * len(tasks),
        "wall_s": round(wall, 2),
        "transitions_per_s": round(3 * len(tasks) / wall),
        "process_cpu_s": round(cpu, 2),
        "postgres_backend_cpu_s": round(pg, 2),
        "queries_per_action": {k: max(v) for k, v in queries.items()},
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
    }
    print(
        json.dumps(
            {
                "database": f"PostgreSQL {connection.cursor().connection.info.server_version}",
                "creation_over_http": creation,
                "engine_through_services": engine_figures,
            },
            indent=2,
        )
    )
    connection.close()
    psql(f"drop database if exists {args.db}")


if __name__ == "__main__":
    main()
