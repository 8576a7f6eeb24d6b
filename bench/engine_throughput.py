"""Engine throughput through the pick-and-place blueprint.

Prints JSON: the pure engine (advance over a task's whole life, no database) and the
services (create → annotate → submit both stages → routed), against a throw-away SQLite
database (or DATABASE_URL when set). Usage: .venv/bin/python bench/engine_throughput.py
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(tasks: int = 300, pure: int = 20000) -> None:
    work = Path(tempfile.mkdtemp(prefix="stagecraft-bench-"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{work}/bench.sqlite3")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="1",
        MEDIA_ROOT=str(work),
        LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    import yaml
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from blueprints import engine
    from blueprints.services import (
        blueprint_activate,
        blueprint_create_from_example,
        example_source,
    )
    from blueprints.validation import validate
    from projects.services import project_create
    from tasks import services

    spec = validate(yaml.safe_load(example_source("pick-and-place")))
    grasp = engine.Annotation("segments", "gripper_open")
    started = time.perf_counter()
    routed = 0
    for i in range(pure):
        facts = engine.TaskFacts(seed=f"t{i}", batch="day")
        runs = engine.advance(spec, {}, [], facts)
        for key in ("segments", "objects"):
            runs[key] = engine.Run(status=engine.COMPLETED)
        runs = engine.advance(spec, runs, [grasp], facts)
        routed += runs["route"].routed_to == "full_review"
    pure_seconds = time.perf_counter() - started

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_superuser("bench", "b@example.com", "x")
    project = project_create(actor=user, name="Bench")
    blueprint_activate(
        actor=user,
        blueprint=blueprint_create_from_example(
            actor=user, project=project, example="pick-and-place"
        ),
    )
    started = time.perf_counter()
    created = services.task_create_many(
        actor=user, project=project, items=[{"name": f"t{i}"} for i in range(tasks)]
    )
    create_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for task in created:
        services.stage_start(actor=user, task=task, stage_key="objects")
        services.stage_submit(actor=user, task=task, stage_key="objects")
        services.stage_start(actor=user, task=task, stage_key="segments")
        services.annotation_create(
            actor=user, task=task, stage="segments", label="gripper_open",
            data={"start": 1, "end": 3}, attributes={"description": "g"},
        )  # fmt: skip
        services.stage_submit(actor=user, task=task, stage_key="segments")
    flow_seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "pure_engine": {
                    "tasks": pure,
                    "seconds": round(pure_seconds, 3),
                    "tasks_routed_per_second": round(pure / pure_seconds),
                    "share_to_full_review": round(routed / pure, 4),
                },
                "services": {
                    "database": django.db.connection.vendor,
                    "bulk_create_tasks_per_second": round(tasks / create_seconds),
                    "tasks_routed_per_second": round(tasks / flow_seconds, 1),
                    "note": "5 service calls per task (start, submit x2, annotate), "
                    "each a transaction",
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
