"""Project progress at scale, on PostgreSQL, over HTTP against a real server (DEBUG off), as a
project manager (not a superuser). Prints JSON.

Builds a project of 100,000 tasks (default blueprint: annotate → review, so 200,000 stage
runs) with a realistic mix: 85 % done over the last year (5 % of them sent to training),
each annotate run taking 5–25 minutes among 20 annotators and reviewed an hour later; 5 %
waiting for review (half being reviewed); 5 % being annotated; 5 % not started; open tasks
with due dates from 5 days ago to 15 days ahead. Then VACUUM ANALYZE, a server
(``manage.py runserver --noreload``, gunicorn when installed), a session for the manager,
and ``GET /projects/{slug}/`` (the Overview: every figure, chart and table) and
``GET /api/v1/projects/{id}/progress/`` timed over HTTP. Query counts are taken in-process
on one call; ``--explain`` prints each query's plan. Static files are collected into
``STATIC_ROOT`` (default /tmp/stagecraft-bench-static) as in production.

.venv/bin/python bench/progress.py [--tasks 100000] [--requests 30] [--explain] [--reuse]
                                   [--no-reindex]

DATABASE_URL defaults to a throw-away database ``stagecraft_bench_progress`` (dropped and
created unless ``--reuse``).
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import cpu_per_call, serve, summary  # noqa: E402

DEFAULT_DB = "stagecraft_bench_progress"
ANNOTATORS = 20
PASSWORD = "bench-password"  # noqa: S105
PROJECT = "Progress bench"


def build(tasks: int, reindex: bool = True) -> tuple[int, int]:
    """The project and its tasks and runs; answers (project id, manager id)."""
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
    for offset in range(0, tasks, 5000):
        task_create_many(
            actor=manager,
            project=project,
            items=[{"name": f"task {i}"} for i in range(offset, min(offset + 5000, tasks))],
        )
    params = {"p": project.pk, "ann": [p.pk for p in people], "rev": reviewer.pk}
    # Deterministic pseudo-random rows, written by the database itself. The SQL is built
    # from constant fragments only; every value is a parameter.
    statements = [
        "SELECT setseed(0.17)",
        """CREATE TEMP TABLE plan AS
            SELECT t.id, random() AS r, now() - random() * interval '365 days' AS done_at,
                   300 + random() * 1200 AS secs,
                   (%(ann)s::bigint[])[1 + (t.id * 7) %% 20] AS who
            FROM tasks_task t WHERE t.project_id = %(p)s""",
        # Done (85 %): annotated, submitted an hour before the review that passed it.
        """UPDATE tasks_stagerun r SET status = 'completed', assignee_id = p.who,
              active_seconds = p.secs, started_at = p.done_at - interval '2 hours',
              submitted_at = p.done_at - interval '1 hour',
              completed_at = p.done_at - interval '1 hour'
            FROM plan p WHERE r.task_id = p.id AND r.stage_key = 'annotate' AND p.r < 0.85""",
        """UPDATE tasks_stagerun r SET status = 'completed', assignee_id = %(rev)s,
              started_at = p.done_at - interval '10 minutes', completed_at = p.done_at
            FROM plan p WHERE r.task_id = p.id AND r.stage_key = 'review' AND p.r < 0.85""",
        """UPDATE tasks_task t SET status = CASE WHEN p.r < 0.05 THEN 'data_submitted'
                                                 ELSE 'review_passed' END,
              finished_at = p.done_at
            FROM plan p WHERE t.id = p.id AND p.r < 0.85""",
        # Waiting for review (5 %): annotated in the last three days; half being reviewed.
        """UPDATE tasks_stagerun r SET status = 'completed', assignee_id = p.who,
              active_seconds = p.secs,
              completed_at = now() - (p.r - 0.85) * 60 * interval '1 day',
              submitted_at = now() - (p.r - 0.85) * 60 * interval '1 day',
              started_at = now() - (p.r - 0.85) * 60 * interval '1 day' - interval '1 hour'
            FROM plan p WHERE r.task_id = p.id AND r.stage_key = 'annotate'
              AND p.r >= 0.85 AND p.r < 0.9""",
        """UPDATE tasks_stagerun r SET
              status = CASE WHEN p.r < 0.875 THEN 'in_progress' ELSE 'ready' END,
              assignee_id = CASE WHEN p.r < 0.875 THEN %(rev)s END,
              started_at = CASE WHEN p.r < 0.875 THEN now() - interval '20 minutes' END
            FROM plan p WHERE r.task_id = p.id AND r.stage_key = 'review'
              AND p.r >= 0.85 AND p.r < 0.9""",
        """UPDATE tasks_task t SET status = 'pending_review'
            FROM plan p WHERE t.id = p.id AND p.r >= 0.85 AND p.r < 0.9""",
        # Being annotated (5 %).
        """UPDATE tasks_stagerun r SET status = 'in_progress', assignee_id = p.who,
              started_at = now() - p.secs * interval '1 second'
            FROM plan p WHERE r.task_id = p.id AND r.stage_key = 'annotate'
              AND p.r >= 0.9 AND p.r < 0.95""",
        """UPDATE tasks_task t SET status = 'in_progress'
            FROM plan p WHERE t.id = p.id AND p.r >= 0.9 AND p.r < 0.95""",
        # Open tasks are due from 5 days ago to 15 days ahead; tasks created a year ago.
        """UPDATE tasks_task t SET due_at = now() + (p.r - 0.875) * 160 * interval '1 day'
            FROM plan p WHERE t.id = p.id AND p.r >= 0.85""",
        """UPDATE tasks_task SET created_at = now() - interval '366 days'
            WHERE project_id = %(p)s""",
        # The bulk UPDATEs above rewrite every row up to four times at once, leaving the
        # indexes two to ten times their size (half-empty pages a live project's gradual
        # writes would refill): rebuild them, as after any bulk load. --no-reindex keeps
        # them as written (bench/README gives both figures).
        "REINDEX TABLE tasks_task",
        "REINDEX TABLE tasks_stagerun",
        # What autovacuum does to a table after bulk writes: statistics and the visibility
        # map (index-only scans read it).
        "VACUUM ANALYZE tasks_task",
        "VACUUM ANALYZE tasks_stagerun",
        "ANALYZE",
    ]
    with connection.cursor() as cursor:
        for sql in statements:
            if reindex or not sql.startswith("REINDEX"):
                cursor.execute(sql, params)
    return project.pk, manager.pk


def row_counts(project_id: int) -> dict:
    from django.db.models import Count

    from tasks.models import StageRun, Task

    return {
        "tasks": Task.objects.filter(project_id=project_id).count(),
        "stage_runs": StageRun.objects.filter(project_id=project_id).count(),
        "tasks_by_status": dict(
            Task.objects.filter(project_id=project_id)
            .order_by()
            .values_list("status")
            .annotate(n=Count("pk"))
            .values_list("status", "n")
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--explain", action="store_true", help="print each query's plan")
    parser.add_argument(
        "--reuse", action="store_true", help="time the project an earlier run built (no build)"
    )
    parser.add_argument(
        "--no-reindex", action="store_true", help="keep the indexes as the bulk build left them"
    )
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{DEFAULT_DB}")
    if url.endswith(f"/{DEFAULT_DB}") and not args.reuse:
        for sql in (f"drop database if exists {DEFAULT_DB}", f"create database {DEFAULT_DB}"):
            subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", sql], check=True)
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

    call_command("migrate", verbosity=0)
    # Pages link their static files by hashed names, as in production (DEBUG off).
    call_command("collectstatic", interactive=False, verbosity=0)
    started = time.perf_counter()
    if args.reuse:
        project_id = Project.objects.get(name=PROJECT).pk
        manager_id = get_user_model().objects.get(username="boss").pk
    else:
        project_id, manager_id = build(args.tasks, reindex=not args.no_reindex)
    build_seconds = round(time.perf_counter() - started, 1)
    project = Project.objects.get(pk=project_id)
    page_path = f"/projects/{project.slug}/"
    api_path = f"/api/v1/projects/{project_id}/progress/"

    client = Client()
    client.force_login(get_user_model().objects.get(pk=manager_id))
    queries, bodies = {}, {}
    for name, path in (("overview", page_path), ("api", api_path)):
        client.get(path)  # warm caches (permissions, URL resolver, blueprint spec)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path)
        assert response.status_code == 200, response.content[:300]
        queries[name] = len(captured.captured_queries)
        bodies[name] = response
        if args.explain:
            with connection.cursor() as cursor:
                for query in captured.captured_queries:
                    cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + query["sql"])
                    plan = "\n".join(row[0] for row in cursor.fetchall())
                    print(f"-- {query['time']} s\n{query['sql']}\n{plan}\n", file=sys.stderr)
    # The project report over 90 days reuses the completions per day: timed in-process.
    import datetime as dt

    from django.utils import timezone

    since = timezone.localdate() - dt.timedelta(days=89)
    report_path = f"/reports/project/{project.slug}/?from={since.isoformat()}"
    with CaptureQueriesContext(connection) as captured:
        assert client.get(report_path).status_code == 200
    queries["report_90_days"] = len(captured.captured_queries)
    report_times = []
    for _ in range(args.requests):
        begun = time.perf_counter()
        assert client.get(report_path).status_code == 200
        report_times.append(time.perf_counter() - begun)
    paths = {"overview": page_path, "api": api_path, "report_90_days": report_path}
    cpu = {name: cpu_per_call(client, path, connection) for name, path in paths.items()}
    body = bodies["api"].json()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = serve(port)
    try:
        base = f"http://127.0.0.1:{port}"
        http = requests.Session()
        # The manager's session (the test client's login): the server's cookies are Secure
        # (DEBUG off), so the login form over plain HTTP would not keep its CSRF cookie.
        http.cookies.set(
            settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value
        )

        def timed(path: str) -> dict:
            for _ in range(3):
                assert http.get(base + path).status_code == 200
            times = []
            for _ in range(args.requests):
                begun = time.perf_counter()
                answer = http.get(base + path)
                times.append(time.perf_counter() - begun)
                assert answer.status_code == 200, answer.text[:300]
            return summary(times)

        overview = timed(page_path)
        api = timed(api_path)
    finally:
        server.terminate()
        server.wait()
    print(
        json.dumps(
            {
                "database": connection.vendor,
                "debug": settings.DEBUG,
                "rows": row_counts(project_id),
                "build_seconds": build_seconds,
                "requests": args.requests,
                "overview": {"request": f"GET {page_path} (session)", **overview},
                "api": {"request": f"GET {api_path} (session)", **api},
                "report_90_days": {
                    "request": f"GET {report_path} (in-process, test client)",
                    **summary(report_times),
                },
                "queries_per_call": queries,
                "cpu_per_call": cpu,
                "load_average": [round(x, 1) for x in os.getloadavg()],
                "cores": os.cpu_count(),
                "figures": {
                    key: body[key]
                    for key in (
                        "total",
                        "percent_complete",
                        "throughput_per_day",
                        "runs_per_day",
                        "eta_seconds",
                        "eta_range",
                        "overdue",
                        "due_soon",
                    )
                },  # fmt: skip
                "stages": body["stages"],
            },
            indent=2,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
