"""The task list, its filters and sorts, search and My work at scale, on PostgreSQL, over HTTP
against a real server (DEBUG off), as a project **manager** and as an **annotator** (never a
superuser). Prints JSON.

Builds one project of 100,000 tasks through ``task_create_many`` (so every task has its stage
runs and its creation event), then a realistic mix written in SQL: statuses (40 % pending
start, 25 % in progress, 15 % pending review, 15 % review passed, 5 % data submitted), the
runs' statuses and assignees to match (20 annotators), a third of the tasks given to named
annotators, priorities, 20 batches, due dates (a fifth overdue, a fifth without), varied
names. Then VACUUM ANALYZE (what autovacuum does after a bulk load), ``collectstatic``
(pages link hashed static files, as in production),
``manage.py runserver --noreload`` (gunicorn when installed) and a session per role.

Each path is timed over HTTP (``--requests`` calls after 2 warm-up calls: p50 / p95 / max);
the query count of one call and the CPU time one call costs Django and PostgreSQL together
(``cpu_per_call``: wall time grows with whatever else runs on the shared machine, CPU time
much less) are taken in-process. ``--explain`` prints each query's plan (EXPLAIN ANALYZE) of
the manager's list API page 1. ``--reuse`` times the database an earlier run built.

.venv/bin/python bench/task_list.py [--tasks 100000] [--requests 15] [--reuse] [--explain]

DATABASE_URL defaults to a throw-away database ``stagecraft_bench_list`` (dropped and
created unless --reuse).
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import cpu_per_call, serve, summary  # noqa: E402

DEFAULT_DB = "stagecraft_bench_list"
PROJECT = "List bench"
ANNOTATORS = 20
PASSWORD = "bench-password"  # noqa: S105
WORDS = ["kitchen", "warehouse", "garden", "office", "street", "lab", "garage", "shelf"]


def build(tasks: int) -> tuple[int, int, int]:
    """The project and its tasks; answers (project id, manager id, annotator id)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.db import connection

    from projects.services import membership_add, project_create
    from tasks.services import task_create_many

    User = get_user_model()
    manager = User.objects.create_user("boss", password=PASSWORD)
    manager.user_permissions.add(
        Permission.objects.get(codename="add_project", content_type__app_label="projects")
    )
    manager = User.objects.get(pk=manager.pk)  # permissions cache
    project = project_create(actor=manager, name=PROJECT)
    people = [User.objects.create_user(f"ann{i:02}", password=PASSWORD) for i in range(ANNOTATORS)]
    for person in people:
        membership_add(actor=manager, project=project, user=person, role="annotator")
    reviewer = User.objects.create_user("rev", password=PASSWORD)
    membership_add(actor=manager, project=project, user=reviewer, role="reviewer")
    # A second project the manager does not belong to: its tasks must not leak into the list.
    other_owner = User.objects.create_superuser("root", "r@example.com", PASSWORD)
    other = project_create(actor=other_owner, name="Elsewhere")
    task_create_many(
        actor=other_owner, project=other, items=[{"name": f"other {i}"} for i in range(2000)]
    )
    for offset in range(0, tasks, 5000):
        task_create_many(
            actor=manager,
            project=project,
            items=[
                {"name": f"{WORDS[i % 8]} scene {i} take {i % 37}"}
                for i in range(offset, min(offset + 5000, tasks))
            ],
        )
    params = {"p": project.pk, "ann": [p.pk for p in people]}
    who = "(%(ann)s::bigint[])[1 + (t.id * 7) %% 20]"
    statements = [
        "SELECT setseed(0.42)",
        # Priorities, batches, due dates (a fifth overdue, a fifth none), created over a year.
        """UPDATE tasks_task t SET
              priority = (ARRAY['low', 'normal', 'normal', 'high', 'urgent'])[1 + t.id %% 5],
              batch = 'batch-' || (t.id %% 20),
              created_at = now() - (t.id %% 100000) * interval '5 minutes',
              due_at = CASE t.id %% 5 WHEN 0 THEN NULL
                            WHEN 1 THEN now() - (t.id %% 30) * interval '1 day'
                            ELSE now() + (t.id %% 60) * interval '1 day' END,
              status = CASE WHEN t.id %% 20 < 8 THEN 'pending_start'
                            WHEN t.id %% 20 < 13 THEN 'in_progress'
                            WHEN t.id %% 20 < 16 THEN 'pending_review'
                            WHEN t.id %% 20 < 19 THEN 'review_passed'
                            ELSE 'data_submitted' END
            WHERE t.project_id = %(p)s""",
        "UPDATE tasks_task SET finished_at = created_at + interval '2 days' "
        "WHERE project_id = %(p)s AND status IN ('review_passed', 'data_submitted')",
        # Runs to match: annotate ready (pending start), in progress with a person,
        # submitted; review ready for pending review; everything completed once done.
        f"""UPDATE tasks_stagerun r SET
              status = CASE
                WHEN t.status = 'pending_start' THEN
                  CASE WHEN r.kind = 'annotate' THEN 'ready' ELSE 'blocked' END
                WHEN t.status = 'in_progress' THEN
                  CASE WHEN r.kind = 'annotate' THEN 'in_progress' ELSE 'blocked' END
                WHEN t.status = 'pending_review' THEN
                  CASE WHEN r.kind = 'annotate' THEN 'completed' ELSE 'ready' END
                ELSE 'completed' END,
              assignee_id = CASE
                WHEN t.status = 'pending_start' THEN NULL
                WHEN r.kind = 'annotate' THEN {who}
                WHEN t.status IN ('review_passed', 'data_submitted') THEN %(rev)s
                ELSE NULL END,
              started_at = CASE WHEN t.status <> 'pending_start' THEN t.created_at END
            FROM tasks_task t WHERE r.task_id = t.id AND t.project_id = %(p)s""",  # noqa: S608
        # A third of the tasks are given to a named annotator.
        f"""INSERT INTO tasks_task_annotators (task_id, user_id)
            SELECT t.id, {who} FROM tasks_task t
            WHERE t.project_id = %(p)s AND t.id %% 3 = 0""",  # noqa: S608
        "ANALYZE",
    ]
    params["rev"] = reviewer.pk
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql, params)
    return project.pk, manager.pk, people[3].pk  # ann03: runs in progress


def row_counts(project_id: int) -> dict:
    from django.db.models import Count

    from tasks.models import StageRun, Task, TaskEvent

    return {
        "tasks": Task.objects.filter(project_id=project_id).count(),
        "tasks_elsewhere": Task.objects.exclude(project_id=project_id).count(),
        "stage_runs": StageRun.objects.filter(task__project_id=project_id).count(),
        "events": TaskEvent.objects.filter(task__project_id=project_id).count(),
        "by_status": dict(
            Task.objects.filter(project_id=project_id)
            .values_list("status")
            .annotate(n=Count("id"))
            .order_by("status")
        ),
    }


def paths(project_id: int, tasks: int, task_id: int, role: str) -> dict[str, str]:
    import datetime

    api = f"/api/v1/tasks/?project={project_id}"
    week = (datetime.datetime.now(datetime.UTC).date() + datetime.timedelta(days=7)).isoformat()
    last = max((tasks + 49) // 50, 1)
    found = {
        "api page 1": api,
        "api page 500": f"{api}&page={min(500, last)}",
        "api last page": f"{api}&page={last}",
        "/tasks/ page 1": f"/tasks/?project={project_id}",
        "/tasks/ page 500": f"/tasks/?project={project_id}&page={min(500, last)}",
        "filter status": f"{api}&status=in_progress",
        "filter assignee": f"{api}&assignee=ann03",
        "filter priority": f"{api}&priority=urgent",
        "filter batch": f"{api}&batch=batch-7",
        "filter search (name)": f"{api}&search=scene%204242",
        "filter search (no match)": f"{api}&search=zebra",
        "filter due before": f"{api}&due_before={week}",
        "filter overdue": f"{api}&overdue=true",
        "sort name": f"{api}&ordering=name",
        "sort priority": f"{api}&ordering=-priority",
        "sort priority page 500": f"{api}&ordering=-priority&page={min(500, last)}",
        "sort due": f"{api}&ordering=due_at",
        "sort created asc": f"{api}&ordering=created_at",
        "/tasks/ search": f"/tasks/?project={project_id}&q=kitchen%20scene%2012",
        "my work": "/workspace/",
        "task page": f"/tasks/{task_id}/",
    }
    if role == "annotator":  # the annotator's own list: a few hundred of the tasks
        keep = ("api page 1", "/tasks/ page 1", "filter status", "filter search (name)",
                "sort priority", "my work", "task page")  # fmt: skip
        found = {k: found[k] for k in keep}
    return found


def main() -> None:
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the server on the way out
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=15)
    parser.add_argument("--explain", action="store_true", help="print the list's query plans")
    parser.add_argument("--reuse", action="store_true", help="time an earlier run's database")
    parser.add_argument("--only", default="", help="time only paths whose name contains this")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{DEFAULT_DB}")
    if url.endswith(f"/{DEFAULT_DB}") and not args.reuse:
        for sql in (f"drop database if exists {DEFAULT_DB}", f"create database {DEFAULT_DB}"):
            subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", sql], check=True)  # noqa: S603, S607
    os.environ.update(
        DATABASE_URL=url, DJANGO_SETTINGS_MODULE="config.settings", DEBUG="0",
        SECRET_KEY="bench-only-secret-key-not-for-production", LOG_LEVEL="WARNING",
        ALLOWED_HOSTS="127.0.0.1,testserver",
        STATIC_ROOT=os.environ.get("STATIC_ROOT", "/tmp/stagecraft-bench-static"),  # noqa: S108
    )  # fmt: skip
    import django

    django.setup()
    import requests
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from projects.models import Project
    from tasks.models import StageRun

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    started = time.perf_counter()
    User = get_user_model()
    if args.reuse:
        project_id = Project.objects.get(name=PROJECT).pk
        manager_id = User.objects.get(username="boss").pk
        annotator_id = User.objects.get(username="ann03").pk
    else:
        project_id, manager_id, annotator_id = build(args.tasks)
    build_seconds = round(time.perf_counter() - started, 1)
    with connection.cursor() as cursor:
        # What autovacuum does after a bulk load (statistics, and the visibility map that
        # lets index-only scans skip the rows).
        cursor.execute("VACUUM (ANALYZE) tasks_task, tasks_stagerun, tasks_task_annotators")
        cursor.execute("SHOW jit")
        jit = cursor.fetchone()[0]
    rows = row_counts(project_id)
    annotator_task = (
        StageRun.objects.filter(assignee_id=annotator_id, task__project_id=project_id)
        .order_by("task_id")
        .values_list("task_id", flat=True)
        .first()
    )
    manager_task = annotator_task

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = serve(port)
    results: dict = {}
    try:
        base = f"http://127.0.0.1:{port}"
        for role, user_id, task_id in (
            ("manager", manager_id, manager_task),
            ("annotator", annotator_id, annotator_task),
        ):
            client = Client()
            client.force_login(User.objects.get(pk=user_id))
            http = requests.Session()
            # The session of the test client's login: the server's cookies are Secure (DEBUG
            # off), so the login form over plain HTTP would not keep its CSRF cookie.
            http.cookies.set(
                settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value
            )
            results[role] = {}
            for name, path in paths(project_id, rows["tasks"], task_id, role).items():
                if args.only and args.only not in name:
                    continue
                client.get(path)  # warm caches (permissions, URL resolver)
                with CaptureQueriesContext(connection) as captured:
                    response = client.get(path)
                assert response.status_code == 200, (path, response.content[:300])
                queries = len(captured.captured_queries)
                count = None
                if path.startswith("/api/"):
                    count = response.json().get("count")
                if args.explain and role == "manager" and name == "api page 1":
                    with connection.cursor() as cursor:
                        for query in captured.captured_queries:
                            cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + query["sql"])
                            plan = "\n".join(row[0] for row in cursor.fetchall())
                            print(
                                f"-- {query['time']} s\n{query['sql']}\n{plan}\n", file=sys.stderr
                            )
                cpu = cpu_per_call(client, path, connection, calls=3)
                for _ in range(2):
                    assert http.get(base + path).status_code == 200
                times = []
                for _ in range(args.requests):
                    begun = time.perf_counter()
                    answer = http.get(base + path)
                    times.append(time.perf_counter() - begun)
                    assert answer.status_code == 200, (path, answer.text[:300])
                results[role][name] = {
                    "path": path,
                    **summary(times),
                    "queries": queries,
                    "cpu_ms": cpu["total_ms"],
                    "cpu": cpu,
                    **({"count": count} if count is not None else {}),
                }
                said = results[role][name]["p50_ms"]
                print(f"{role} {name}: {said} ms p50, {cpu['total_ms']} ms CPU, {queries} q",
                      file=sys.stderr)  # fmt: skip
    finally:
        server.terminate()
        server.wait()
    print(
        json.dumps(
            {
                "database": connection.vendor,
                "debug": settings.DEBUG,
                "jit": jit,
                "server": "gunicorn"
                if shutil.which("gunicorn", path=str(Path(sys.executable).parent))
                else "runserver",
                "rows": rows,
                "build_seconds": build_seconds,
                "requests": args.requests,
                "load_average": [round(x, 1) for x in os.getloadavg()],
                "cores": os.cpu_count(),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
