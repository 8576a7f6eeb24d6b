"""Engine throughput: the pure engine, and stage actions through the task services.

Prints JSON: the pure engine (``advance`` over a task's whole life, no database) and the
services on the pick-and-place blueprint (the demo's), as the people who do the work — an
annotator (ana, skill robotics), a reviewer (ravi), the project's manager creating the tasks;
nobody is an administrator, so every permission check is paid as in production.

Per task: ana starts ``objects`` and submits it, starts ``segments``, saves a grasp segment
and submits (the logic stage ``route`` runs in that submit); a task routed to
``full_review`` is started by ravi and approved — every second one rejected first, after
which ana submits both stages again and ravi approves.

A **stage transition** is a service call that moves a stage run: start, submit, a review's
decision (saving an annotation is a service call but moves nothing). For each kind of call:
how many, queries per call (mean and max), wall ms and CPU ms per call (Django in this
process + the PostgreSQL backend serving it, read from /proc: CPU does not grow with the
machine's load, wall time does).

With ``--batch N`` the same work is done again on a new project with the batch services
(tasks.services.batch_stages) where a person acts on many tasks at once — the starts of
``objects`` and ``segments``, the rejects and the approves of ``full_review``, N tasks a call
— and those calls alone are timed: queries per call, wall and CPU ms per call and per
transition, transitions/s by wall clock and by CPU.

Usage: DATABASE_URL=postgres://postgres@127.0.0.1:5432/stagecraft_engine \
       .venv/bin/python bench/engine_throughput.py [--tasks 300] [--pure 20000] [--batch 100
       --batch-tasks 1500]
Without DATABASE_URL a throw-away SQLite database is used. The database is migrated and
each run adds its own project and users (names carry the run's timestamp).
"""

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pure_engine(count: int) -> dict:
    import yaml

    from blueprints import engine
    from blueprints.services import example_source
    from blueprints.validation import validate

    spec = validate(yaml.safe_load(example_source("pick-and-place")))
    grasp = engine.Annotation("segments", "gripper_open")
    started = time.perf_counter()
    routed = 0
    for i in range(count):
        facts = engine.TaskFacts(seed=f"t{i}", batch="day")
        runs = engine.advance(spec, {}, [], facts)
        for key in ("segments", "objects"):
            runs[key] = engine.Run(status=engine.COMPLETED)
        runs = engine.advance(spec, runs, [grasp], facts)
        routed += runs["route"].routed_to == "full_review"
    seconds = time.perf_counter() - started
    return {
        "tasks": count,
        "seconds": round(seconds, 3),
        "tasks_routed_per_second": round(count / seconds),
        "share_to_full_review": round(routed / count, 4),
    }


class Meter:
    """Queries, wall and CPU time of each service call, by kind."""

    def __init__(self, connection):
        self.connection = connection
        self.calls: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
        self.stat = None
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.stat = Path(f"/proc/{cursor.fetchone()[0]}/stat")
        self.ticks = os.sysconf("SC_CLK_TCK")

    def backend_seconds(self) -> float:
        if self.stat is None or not self.stat.exists():
            return 0.0
        fields = self.stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.ticks

    def __call__(self, kind: str, function, **kwargs):
        from django.test.utils import CaptureQueriesContext

        self.connection.queries_log.clear()  # the log keeps 9,000 queries, then counts 0
        db, cpu, wall = self.backend_seconds(), time.process_time(), time.perf_counter()
        with CaptureQueriesContext(self.connection) as queries:
            result = function(**kwargs)
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu + self.backend_seconds() - db
        self.calls[kind].append((len(queries), wall, cpu))
        return result

    def report(self) -> dict:
        out = {}
        for kind, rows in sorted(self.calls.items()):
            counts = [q for q, _, _ in rows]
            out[kind] = {
                "calls": len(rows),
                "queries_mean": round(sum(counts) / len(rows), 1),
                "queries_max": max(counts),
                "wall_ms": round(sum(w for _, w, _ in rows) / len(rows) * 1000, 2),
                "cpu_ms": round(sum(c for _, _, c in rows) / len(rows) * 1000, 2),
            }
        return out


TRANSITIONS = {"start", "submit", "submit_routed", "review_start", "review_approve"} | {
    "review_reject",
    "resubmit",
}


def _setup(tasks: int):
    """A fresh project on the pick-and-place blueprint with its people and ``tasks`` tasks:
    (annotator, reviewer, the tasks, seconds to create them)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from blueprints.services import blueprint_activate, blueprint_create_from_example
    from projects.models import Role
    from projects.services import membership_add, project_create
    from tasks import services

    call_command("migrate", verbosity=0)
    from django.urls import reverse

    reverse("tasks:detail", args=[1])  # the URL patterns loaded, as in a running server
    User = get_user_model()
    tag = time.strftime("%H%M%S") + f"{os.getpid() % 1000}"
    manager = User.objects.create_user(f"maya{tag}", password="x")
    annotator = User.objects.create_user(f"ana{tag}", password="x")
    reviewer = User.objects.create_user(f"ravi{tag}", password="x")
    from django.contrib.auth.models import Permission

    manager.user_permissions.add(
        Permission.objects.get(codename="add_project", content_type__app_label="projects")
    )
    manager = User.objects.get(pk=manager.pk)  # permission cache fresh
    project = project_create(actor=manager, name=f"Engine bench {tag}")
    membership_add(actor=manager, project=project, user=annotator, role=Role.ANNOTATOR,
                   skills=["robotics"])  # fmt: skip
    membership_add(actor=manager, project=project, user=reviewer, role=Role.REVIEWER)
    blueprint_activate(
        actor=manager,
        blueprint=blueprint_create_from_example(
            actor=manager, project=project, example="pick-and-place"
        ),
    )
    started = time.perf_counter()
    created = services.task_create_many(
        actor=manager, project=project, items=[{"name": f"t{i}"} for i in range(tasks)]
    )
    return annotator, reviewer, created, time.perf_counter() - started


def services_flow(tasks: int) -> dict:
    from django.db import connection

    from tasks import services
    from tasks.models import StageRun

    annotator, reviewer, created, create_seconds = _setup(tasks)

    meter = Meter(connection)
    rejected = routed = 0
    cpu, db = time.process_time(), meter.backend_seconds()
    started = time.perf_counter()
    ana, ravi = {"actor": annotator}, {"actor": reviewer}
    for task in created:
        # Each call gets the task as a view would: a fresh object, nothing cached.
        ana["task"] = ravi["task"] = task
        meter("start", services.stage_start, **ana, stage_key="objects")
        meter("submit", services.stage_submit, **ana, stage_key="objects")
        meter("start", services.stage_start, **ana, stage_key="segments")
        grasp = {"data": {"start": 1, "end": 3}, "attributes": {"description": "g"}}
        meter("annotate", services.annotation_create, **ana, stage="segments",
              label="gripper_open", **grasp)  # fmt: skip
        meter("submit_routed", services.stage_submit, **ana, stage_key="segments")
        review = StageRun.objects.get(task=task, stage_key="full_review")
        if review.status != StageRun.Status.READY:
            continue
        routed += 1
        meter("review_start", services.stage_start, **ravi, stage_key="full_review")
        if routed % 2 == 0:
            rejected += 1
            reject = {"decision": "reject", "comment": "Grasp ends too early."}
            meter("review_reject", services.stage_review, **ravi, stage_key="full_review",
                  **reject)  # fmt: skip
            for key in ("objects", "segments"):
                meter("resubmit", services.stage_submit, **ana, stage_key=key)
        meter("review_approve", services.stage_review, **ravi, stage_key="full_review",
              decision="approve")  # fmt: skip
    flow_seconds = time.perf_counter() - started
    flow_cpu = time.process_time() - cpu + meter.backend_seconds() - db
    per_kind = meter.report()
    transitions = sum(v["calls"] for k, v in per_kind.items() if k in TRANSITIONS)
    calls = sum(v["calls"] for v in per_kind.values())
    queries = sum(len(r) and sum(q for q, _, _ in r) for r in meter.calls.values())
    return {
        "database": connection.vendor,
        "tasks": tasks,
        "routed_to_full_review": routed,
        "rejected_once": rejected,
        "bulk_create_tasks_per_second": round(tasks / create_seconds),
        "seconds": round(flow_seconds, 2),
        "stage_transitions": transitions,
        "stage_transitions_per_second": round(transitions / flow_seconds, 1),
        "service_calls_per_second": round(calls / flow_seconds, 1),
        "tasks_per_second": round(tasks / flow_seconds, 1),
        "queries_per_call": round(queries / calls, 1),
        "cpu_ms_per_call": round(flow_cpu / calls * 1000, 2),
        "by_call": per_kind,
        "note": "stage transitions = start, submit and review calls (annotation saves are "
        "service calls, not transitions); cpu = this process + its PostgreSQL backend",
    }


def batched_flow(tasks: int, size: int) -> dict:
    """The same work with the batch services (tasks.services.batch_stages) where a person
    acts on many tasks at once: ana starts ``objects`` on ``size`` tasks in one call, then
    ``segments``; the submits stay per task (each runs its own checks); ravi rejects every
    second routed task's review in one call per batch (``size`` tasks), and after the rework
    approves every routed task's review in one call per batch. Per kind of call: queries,
    wall and CPU ms per call and per transition (one transition per task)."""
    from django.db import connection

    from tasks import services
    from tasks.models import StageRun
    from tasks.services.batch_stages import stage_review_many, stage_start_many

    annotator, reviewer, created, _ = _setup(tasks)
    ids = [t.pk for t in created]
    chunks = [ids[i : i + size] for i in range(0, len(ids), size)]
    meter = Meter(connection)
    moved: dict[str, int] = defaultdict(int)

    def batch(kind, function, chosen, **kwargs):
        moved[kind] += meter(kind, function, task_ids=chosen, **kwargs)

    for chunk in chunks:
        batch("batch_start", stage_start_many, chunk, actor=annotator, stage_key="objects")
    for task in created:
        services.stage_submit(actor=annotator, task=task, stage_key="objects")
    for chunk in chunks:
        batch("batch_start", stage_start_many, chunk, actor=annotator, stage_key="segments")
    grasp = {"data": {"start": 1, "end": 3}, "attributes": {"description": "g"}}
    for task in created:
        services.annotation_create(actor=annotator, task=task, stage="segments",
                                   label="gripper_open", **grasp)  # fmt: skip
        services.stage_submit(actor=annotator, task=task, stage_key="segments")
    routed = list(
        StageRun.objects.filter(
            task__in=ids, stage_key="full_review", status=StageRun.Status.READY
        ).values_list("task_id", flat=True)
    )
    routed.sort()
    rejected = routed[1::2]
    for i in range(0, len(rejected), size):
        batch("batch_reject", stage_review_many, rejected[i : i + size], actor=reviewer,
              stage_key="full_review", decision="reject",
              comment="Grasp ends too early.")  # fmt: skip
    by_id = {t.pk: t for t in created}
    for pk in rejected:
        for key in ("objects", "segments"):
            services.stage_submit(actor=annotator, task=by_id[pk], stage_key=key)
    for i in range(0, len(routed), size):
        batch("batch_approve", stage_review_many, routed[i : i + size], actor=reviewer,
              stage_key="full_review", decision="approve")  # fmt: skip
    per_kind = meter.report()
    for kind, figures in per_kind.items():
        rows = meter.calls[kind]
        wall, cpu = sum(w for _, w, _ in rows), sum(c for _, _, c in rows)
        figures.update(
            transitions=moved[kind],
            wall_ms_per_transition=round(wall / moved[kind] * 1000, 3),
            cpu_ms_per_transition=round(cpu / moved[kind] * 1000, 3),
            transitions_per_second_wall=round(moved[kind] / wall),
            transitions_per_second_cpu=round(moved[kind] / cpu),
        )
    total = sum(moved.values())
    wall = sum(w for rows in meter.calls.values() for _, w, _ in rows)
    cpu = sum(c for rows in meter.calls.values() for _, _, c in rows)
    return {
        "database": connection.vendor,
        "tasks": tasks,
        "tasks_per_call": size,
        "routed_to_full_review": len(routed),
        "rejected_once": len(rejected),
        "batched_transitions": total,
        "batched_transitions_per_second_wall": round(total / wall),
        "batched_cpu_ms_per_transition": round(cpu / total * 1000, 3),
        "by_call": per_kind,
        "note": "only the batched calls are timed (the submits and annotation saves between "
        "them are per task, as in the services flow); cpu = this process + its PostgreSQL "
        "backend",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--pure", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=0, help="tasks per batched call (0: none)")
    parser.add_argument("--batch-tasks", type=int, default=0, help="tasks of the batched run")
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
    figures = {"pure_engine": pure_engine(args.pure), "services": services_flow(args.tasks)}
    if args.batch:
        figures["batched"] = batched_flow(args.batch_tasks or args.tasks, args.batch)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
