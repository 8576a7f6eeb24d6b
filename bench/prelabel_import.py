"""Pre-label import: annotations per second and queries for a JSONL file over many tasks.

``DATABASE_URL=postgres://…/stagecraft_bench .venv/bin/python bench/prelabel_import.py
[--tasks 1000 --per-task 10]`` (SQLite without ``DATABASE_URL``; the database is migrated and
each run adds its own project). Tasks of the pick-and-place blueprint; each gets
``per-task`` grasp segments in its ``segments`` stage from one JSONL file as our export
writes it. Times ``prelabels_import`` (the job's work: read, match, validate, one
transaction), the same file again (everything already there: skipped), and Accept all of
one task's pre-labels. CPU = this process plus its PostgreSQL backend (bench/common.py)."""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def run(tasks: int, per_task: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bench.common import cpu_of
    from blueprints.services import blueprint_activate, blueprint_create_from_example
    from projects.models import Role
    from projects.services import membership_add, project_create
    from tasks import services
    from tasks.services.prelabels import prelabels_import, prelabels_resolve

    call_command("migrate", verbosity=0)
    User = get_user_model()
    tag = time.strftime("%H%M%S") + f"{os.getpid() % 1000}"
    manager = User.objects.create_user(f"maya{tag}", password="x")
    annotator = User.objects.create_user(f"ana{tag}", password="x")
    manager.user_permissions.add(
        Permission.objects.get(codename="add_project", content_type__app_label="projects")
    )
    manager = User.objects.get(pk=manager.pk)
    project = project_create(actor=manager, name=f"Pre-label bench {tag}")
    membership_add(actor=manager, project=project, user=annotator, role=Role.ANNOTATOR,
                   skills=["robotics"])  # fmt: skip
    blueprint_activate(
        actor=manager,
        blueprint=blueprint_create_from_example(
            actor=manager, project=project, example="pick-and-place"
        ),
    )
    created = services.task_create_many(
        actor=manager, project=project, items=[{"name": f"t{i}"} for i in range(tasks)]
    )
    lines = []
    for task in created:
        segments = [
            {"label": "gripper_open", "kind": "segment", "stage": "segments",
             "data": {"start": 10 * i, "end": 10 * i + 5}, "attributes": {"description": "g"}}
            for i in range(per_task)
        ]  # fmt: skip
        lines.append(json.dumps({"task": task.pk, "unique_id": None, "annotations": segments}))
    raw = "\n".join(lines).encode()
    figures: dict = {"database": connection.vendor, "tasks": tasks, "file_bytes": len(raw)}

    for name in ("first_import", "same_file_again"):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            _, cpu, summary = cpu_of(
                lambda: prelabels_import(actor=manager, project=project, format="jsonl", raw=raw),
                connection,
            )
            seconds = time.perf_counter() - started
        made = summary["created"] or summary["skipped"]
        figures[name] = {
            "created": summary["created"],
            "skipped": summary["skipped"],
            "seconds": round(seconds, 2),
            "annotations_per_second": round(made / seconds),
            "queries": len(queries),
            "cpu_ms": cpu,
        }
    task = created[0]
    services.stage_start(actor=annotator, task=task, stage_key="segments")
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        result = prelabels_resolve(actor=annotator, task=task, stage="segments", action="accept")
        seconds = time.perf_counter() - started
    figures["accept_all_one_task"] = {
        "accepted": result["count"],
        "ms": round(seconds * 1000, 1),
        "queries": len(queries),
    }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--per-task", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="stagecraft-bench-"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{work}/bench.sqlite3")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="0",
        SECRET_KEY=os.environ.get("SECRET_KEY", "bench-only-secret-key-" + "x" * 40),
        MEDIA_ROOT=str(work),
        LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    print(json.dumps(run(args.tasks, args.per_task), indent=2))


if __name__ == "__main__":
    main()
