"""Task list and batch timings at scale, on PostgreSQL (DATABASE_URL, default a throw-away
database `stagecraft_bench`). Prints JSON.

.venv/bin/python bench/task_list.py [--tasks 100000] [--delete 10000]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--delete", type=int, default=10_000)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/stagecraft_bench")
    if url.endswith("/stagecraft_bench"):
        for sql in ("drop database if exists stagecraft_bench", "create database stagecraft_bench"):
            subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", sql], check=True)  # noqa: S603, S607
    os.environ.update(
        DATABASE_URL=url, DJANGO_SETTINGS_MODULE="config.settings", DEBUG="1",
        LOG_LEVEL="WARNING", ALLOWED_HOSTS="testserver,localhost",
    )  # fmt: skip
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from projects.services import membership_add, project_create
    from tasks import batch, services
    from tasks.models import Task

    call_command("migrate", verbosity=0)
    User = get_user_model()
    admin = User.objects.create_superuser("bench", "b@example.com", "x")
    ana = User.objects.create_user("ana", password="x")
    project = project_create(actor=admin, name="Bench")
    membership_add(actor=admin, project=project, user=ana, role="annotator")
    started = time.perf_counter()
    priorities = ["low", "normal", "high", "urgent"]
    for offset in range(0, args.tasks, 5000):
        services.task_create_many(
            actor=admin,
            project=project,
            items=[
                {
                    "name": f"task {i}",
                    "priority": priorities[i % 4],
                    "batch": f"b{i % 20}",
                    "annotators": ["ana"] if i % 3 == 0 else [],
                }
                for i in range(offset, min(offset + 5000, args.tasks))
            ],
        )
    create_seconds = time.perf_counter() - started
    call_command(
        "shell", "-c", "from django.db import connection; connection.cursor().execute('ANALYZE')"
    )

    client = Client()
    client.force_login(admin)
    results = {
        "tasks": args.tasks,
        "bulk_create_seconds": round(create_seconds, 1),
        "list_page_ms": {
            "all, newest first": timed(lambda: client.get("/tasks/")),
            "status tab": timed(lambda: client.get("/tasks/?status=pending_start")),
            "batch filter + priority sort": timed(
                lambda: client.get("/tasks/?batch=b3&sort=-priority")
            ),
            "search": timed(lambda: client.get("/tasks/?q=task%20999")),
            "page 100": timed(lambda: client.get("/tasks/?page=100")),
            "htmx fragment": timed(
                lambda: client.get("/tasks/?status=pending_start", HTTP_HX_REQUEST="true")
            ),
        },
        "api_list_ms": timed(lambda: client.get("/api/v1/tasks/?page_size=50")),
    }
    ids = list(
        Task.objects.filter(project=project)
        .order_by("pk")
        .values_list("pk", flat=True)[: args.delete]
    )
    selection = batch.batch_selection(user=admin, ids=ids[: args.delete // 2])
    started = time.perf_counter()
    batch.task_batch_update(actor=admin, selection=selection, priority="urgent")
    results["batch_update_seconds"] = {args.delete // 2: round(time.perf_counter() - started, 2)}
    selection = batch.batch_selection(user=admin, ids=ids)
    started = time.perf_counter()
    deleted = batch.task_batch_delete(actor=admin, selection=selection)
    results["batch_delete_seconds"] = {deleted: round(time.perf_counter() - started, 2)}
    results["database"] = django.db.connection.vendor
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
