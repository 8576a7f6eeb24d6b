"""Batch delete, assign and update of 10,000 tasks out of 100,000, on PostgreSQL, over HTTP
against a real server (DEBUG off), as the project's **manager** (a session, never a
superuser). Prints JSON.

The project is the task list bench's (``bench.task_list.build``: 100,000 tasks made through
``task_create_many`` with their 200,000 stage runs and creation events, then a realistic mix
of statuses, runs in progress held by 20 annotators, a third of the tasks naming an
annotator), then VACUUM ANALYZE and a server (gunicorn when installed, else runserver).

Each action is ``POST /api/v1/tasks/batch/`` on 10,000 tasks (``--size``), one slice of the
project per round (slices of consecutive ids, so each holds the same mix):

- ``delete by ids``: the 10,000 ids in the body;
- ``delete by filter``: ``{"project": …, "batch": …}`` naming a batch the slice was put in;
- ``assign``: the slice's annotators replaced by one annotator (about 2,400 runs in progress
  move to them, each with its ``run_transferred`` event and notification);
- ``update``: priority, due date and batch.

Deleted tasks are put back after each round (their rows, and their runs', events' and
people's rows, are copied aside before the call and inserted again after it, then VACUUM
ANALYZE), so every delete meets a project of 100,000 tasks. Per action: p50 / max wall time
of ``--rounds`` calls, then one more call in-process (Django's test client, same code) for its
query count and the CPU it costs Django and the PostgreSQL backend together (wall times on
the shared machine follow the load; CPU much less). ``--profile`` prints a cProfile of that
in-process call and its slowest queries to stderr.

.venv/bin/python bench/batch_ops.py [--tasks 100000] [--size 10000] [--rounds 5] [--reuse]
[--only delete] [--profile] [--port 8103]

DATABASE_URL defaults to a throw-away database ``stagecraft_bench_batch`` (dropped and created
unless --reuse).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import cpu_of, serve, summary  # noqa: E402
from bench.task_list import PROJECT, build  # noqa: E402

DEFAULT_DB = "stagecraft_bench_batch"
ENDPOINT = "/api/v1/tasks/batch/"
ACTIONS = ("delete by ids", "delete by filter", "assign", "update")


def task_children():
    """(table, column) of every table whose rows go with a task (core.deletion's walk, one
    level), and the tables one level further down, which the bench data must leave empty."""
    from django.db import models

    from core.deletion import _relations
    from tasks.models import Task

    children, deeper = [], []
    for relation in _relations(Task):
        if relation.field.remote_field.on_delete is not models.CASCADE:
            continue
        model = relation.related_model
        children.append((model._meta.db_table, relation.field.column))
        deeper += [r.related_model._meta.db_table for r in _relations(model)]
    return children, sorted(set(deeper) - {t for t, _ in children})


class Keeper:
    """Copies a slice's tasks and their child rows aside, and puts them back after a delete."""

    def __init__(self, connection) -> None:
        self.connection = connection
        self.children, self.deeper = task_children()

    def keep(self, ids: list[int]) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE keep_ids AS SELECT unnest(%s::bigint[]) AS id", [ids])
            cursor.execute(
                "CREATE TEMP TABLE keep_tasks_task AS "
                "SELECT * FROM tasks_task WHERE id IN (SELECT id FROM keep_ids)"
            )
            for table, column in self.children:
                cursor.execute(
                    f"CREATE TEMP TABLE keep_{table} AS SELECT * FROM {table} "  # noqa: S608
                    f"WHERE {column} IN (SELECT id FROM keep_ids)"
                )
            for table in self.deeper:  # deliveries' attempts, audits' rows: none in this data
                cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table})")  # noqa: S608
                if cursor.fetchone()[0]:
                    raise SystemExit(f"{table} has rows: the bench cannot put them back")

    def restore(self) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass('pg_temp.keep_ids') IS NOT NULL")
            if not cursor.fetchone()[0]:
                return
            # A delete hides the tasks (deleted_at) and records who deleted them; the purge
            # (or nothing, when it did not run) removed the rest.
            cursor.execute(
                "DELETE FROM tasks_taskevent WHERE kind = 'deleted' "
                "AND task_id IN (SELECT id FROM keep_ids)"
            )  # the code before tasks 0024 (TaskDeletion) wrote a "deleted" event per task
            cursor.execute("SELECT to_regclass('tasks_taskdeletion') IS NOT NULL")
            if cursor.fetchone()[0]:
                cursor.execute("DELETE FROM tasks_taskdeletion")
            cursor.execute(
                "UPDATE tasks_task SET deleted_at = NULL "
                "WHERE id IN (SELECT id FROM keep_ids) AND deleted_at IS NOT NULL"
            )
            # Only rows not there (a delete that failed left them); an anti-join on the
            # primary key (NOT IN over a table larger than work_mem rescans it per row).
            for table in ("tasks_task", *(t for t, _ in self.children)):
                cursor.execute(
                    f"INSERT INTO {table} SELECT * FROM keep_{table} k "  # noqa: S608
                    f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.id = k.id)"
                )
            for table in ("tasks_task", *(t for t, _ in self.children)):
                cursor.execute(f"DROP TABLE keep_{table}")
            cursor.execute("DROP TABLE keep_ids")
        vacuum(self.connection)


def vacuum(connection) -> None:
    """What autovacuum does after bulk writes: statistics and the visibility map."""
    with connection.cursor() as cursor:
        cursor.execute(
            "VACUUM (ANALYZE) tasks_task, tasks_stagerun, tasks_taskevent, tasks_task_annotators,"
            " notifications_notification"
        )


def slice_ids(project_id: int, size: int, index: int) -> list[int]:
    from tasks.models import Task

    ids = list(
        Task.objects.filter(project_id=project_id).order_by("pk").values_list("pk", flat=True)
    )
    count = max(len(ids) // size, 1)
    start = (index % count) * size
    return ids[start : start + size]


def body_for(action: str, project_id: int, ids: list[int], round_: int, connection) -> dict:
    import datetime

    if action == "delete by ids":
        return {"action": "delete", "ids": ids}
    if action == "delete by filter":
        # Unique to this run: the restored tasks keep their batch, and a later run's round
        # with the same name would select them too (--reuse).
        batch = f"leaving-{os.getpid()}-{round_}"
        with connection.cursor() as cursor:
            cursor.execute("UPDATE tasks_task SET batch = %s WHERE id = ANY(%s)", [batch, ids])
            cursor.execute("ANALYZE tasks_task")
        return {"action": "delete", "filter": {"project": project_id, "batch": batch}}
    if action == "assign":
        # The slice's annotators replaced by one person: the runs others hold move to them.
        reset_people(ids, connection)
        return {"action": "assign", "ids": ids, "annotators": [f"ann{10 + round_ % 2:02}"]}
    due = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=3 + round_)
    return {
        "action": "update",
        "ids": ids,
        "priority": ("urgent", "low")[round_ % 2],
        "due_at": due.isoformat(),
        "batch": f"week-{round_}",
    }


def reset_people(ids: list[int], connection) -> None:
    """The slice's people as the loader made them (an earlier run's assign may have given
    the slice to one person or sent its runs back to the pool): its in-progress tasks' annotate
    runs held by the 20 annotators in turn, a third of the tasks naming one of them."""
    who = "(SELECT array_agg(id ORDER BY username) FROM auth_user WHERE username ~ '^ann')"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE tasks_stagerun r SET status = 'in_progress', last_active_at = NULL,
                  assignee_id = ({who})[1 + (r.task_id * 7) %% 20], started_at = t.created_at
                FROM tasks_task t
                WHERE r.task_id = t.id AND t.id = ANY(%s) AND t.status = 'in_progress'
                  AND r.kind = 'annotate'""",  # noqa: S608
            [ids],
        )
        cursor.execute("DELETE FROM tasks_task_annotators WHERE task_id = ANY(%s)", [ids])
        cursor.execute(
            f"""INSERT INTO tasks_task_annotators (task_id, user_id)
                SELECT t, ({who})[1 + (t * 7) %% 20] FROM unnest(%s::bigint[]) t
                WHERE t %% 3 = 0""",  # noqa: S608
            [ids],
        )
        cursor.execute("ANALYZE tasks_stagerun, tasks_task_annotators")


def counts(project_id: int) -> dict:
    from django.db.models import Count

    from notifications.models import Notification
    from tasks.models import StageRun, Task, TaskEvent

    return {
        "tasks": Task.objects.filter(project_id=project_id).count(),
        "stage_runs": StageRun.objects.filter(project_id=project_id).count(),
        "events": TaskEvent.objects.filter(task__project_id=project_id).count(),
        "notifications": Notification.objects.count(),
        "runs_by_status": dict(
            StageRun.objects.filter(project_id=project_id)
            .values_list("status")
            .annotate(n=Count("id"))
            .order_by("status")
        ),
    }


def main() -> None:  # noqa: PLR0915
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the server on the way out
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="time an earlier run's database")
    parser.add_argument("--only", default="", help="time only actions whose name contains this")
    parser.add_argument("--profile", action="store_true", help="cProfile the in-process call")
    parser.add_argument("--port", type=int, default=8103)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{DEFAULT_DB}")
    if url.endswith(f"/{DEFAULT_DB}") and not args.reuse:
        for sql in (f"drop database if exists {DEFAULT_DB}", f"create database {DEFAULT_DB}"):
            subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", sql], check=True)  # noqa: S603, S607
    os.environ.update(
        DATABASE_URL=url, DJANGO_SETTINGS_MODULE="config.settings", DEBUG="0",
        SECRET_KEY="bench-only-secret-key-not-for-production", LOG_LEVEL="WARNING",
        ALLOWED_HOSTS="127.0.0.1,testserver",
        REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/3"),
        # gunicorn's default 30 s worker timeout would kill a slow call (the code before
        # this bench deleted 10,000 tasks in 25 s at load 10).
        GUNICORN_CMD_ARGS=os.environ.get("GUNICORN_CMD_ARGS", "--timeout 600"),
    )  # fmt: skip
    import django

    django.setup()
    import requests
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.middleware.csrf import _get_new_csrf_string
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from projects.models import Project

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    User = get_user_model()
    if args.reuse:
        project_id = Project.objects.get(name=PROJECT).pk
    else:
        project_id = build(args.tasks)[0]
    build_seconds = round(time.perf_counter() - started, 1)
    keeper = Keeper(connection)
    vacuum(connection)
    rows_before = counts(project_id)
    manager = User.objects.get(username="boss")
    client = Client()
    client.force_login(manager)
    csrf = _get_new_csrf_string()  # cookie and header alike (an unmasked secret)
    http = requests.Session()
    # The test client's session: the server's cookies are Secure (DEBUG off), so a login
    # form over plain HTTP would not keep them; the CSRF cookie and header go with it.
    http.cookies.set(
        settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value
    )
    http.cookies.set(settings.CSRF_COOKIE_NAME, csrf)
    http.headers["X-CSRFToken"] = csrf
    server = serve(args.port)
    base = f"http://127.0.0.1:{args.port}"
    # Warm both: the first request of a process imports the URL configuration and every
    # view module (seconds on this machine); each gunicorn worker once or more.
    noop = {"action": "delete", "ids": []}
    assert client.post(ENDPOINT, noop, content_type="application/json").json()["affected"] == 0
    for _ in range(6):
        assert http.post(base + ENDPOINT, json=noop).json()["affected"] == 0
    load = [round(x, 1) for x in os.getloadavg()]
    results: dict = {}
    try:
        slice_no = 0
        for action in ACTIONS:
            if args.only and args.only not in action:
                continue
            deleting = action.startswith("delete")
            times = []
            for round_ in range(args.rounds + 1):
                ids = slice_ids(project_id, args.size, slice_no)
                slice_no += 1
                body = body_for(action, project_id, ids, round_, connection)
                if deleting:
                    keeper.keep(ids)
                try:
                    if round_ < args.rounds:  # over HTTP
                        begun = time.perf_counter()
                        answer = http.post(base + ENDPOINT, json=body)
                        times.append(time.perf_counter() - begun)
                        assert answer.status_code == 200, (action, answer.text[:300])
                        affected = answer.json()["affected"]
                    else:  # in-process: queries and CPU
                        with CaptureQueriesContext(connection) as captured:
                            profile, cpu, response = cpu_of(
                                lambda body=body: client.post(
                                    ENDPOINT, body, content_type="application/json"
                                ),
                                connection,
                                profile=args.profile,
                            )
                        assert response.status_code == 200, (action, response.content[:300])
                        affected = response.json()["affected"]
                        if args.profile:
                            print(f"==== {action}\n{profile}", file=sys.stderr)
                            slow = sorted(
                                captured.captured_queries, key=lambda q: -float(q["time"])
                            )
                            for query in slow[:8]:
                                print(f"-- {query['time']} s {query['sql'][:400]}", file=sys.stderr)
                    assert affected == len(ids), (action, affected, len(ids))
                    if deleting and round_ == args.rounds:
                        # The purge job's work for this delete, in-process (no worker runs
                        # here: the HTTP rounds' jobs wait in Redis, their tasks restored).
                        from tasks.services.deletion import tasks_purge_deleted

                        begun = time.perf_counter()
                        _, purge_cpu, purged = cpu_of(tasks_purge_deleted, connection)
                        purge = {
                            "tasks": purged,
                            "wall_ms": round((time.perf_counter() - begun) * 1000, 1),
                            "cpu": purge_cpu,
                        }
                        print(f"{action}: purge {purge}", file=sys.stderr)
                finally:
                    if deleting:
                        keeper.restore()
            results[action] = {
                **summary(times),
                "rounds": len(times),
                "tasks_per_call": args.size,
                "queries": len(captured.captured_queries),
                "cpu_ms": cpu["total_ms"],
                "cpu": cpu,
                **({"purge": purge} if deleting else {}),
            }
            print(
                f"{action}: {results[action]['p50_ms']} ms p50, {cpu['total_ms']} ms CPU "
                f"({cpu['postgres_ms']} PostgreSQL), {results[action]['queries']} q",
                file=sys.stderr,
            )
    finally:
        keeper.restore()
        server.terminate()
        server.wait()
    print(
        json.dumps(
            {
                "database": connection.vendor,
                "debug": settings.DEBUG,
                "server": "gunicorn"
                if shutil.which("gunicorn", path=str(Path(sys.executable).parent))
                else "runserver",
                "rows_before": rows_before,
                "rows_after": counts(project_id),
                "build_seconds": build_seconds,
                "load_average_before": load,
                "load_average_after": [round(x, 1) for x in os.getloadavg()],
                "cores": os.cpu_count(),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
