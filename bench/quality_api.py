"""The quality API at scale, on PostgreSQL, over HTTP against a real server (DEBUG off), as a
project manager (not a superuser). Prints JSON.

Builds a project of 100,000 tasks (default blueprint: annotate → review) and the measurement
rows of 1,000,000 audited annotations: review outcomes, one current audit per task with two
AuditedWork rows of 5 annotations each, older superseded audits, findings (some naming an
annotation, some missing, some not counted), agreement scores, and samples with QC flags on
every annotate run, spread over a year among 20 annotators and 4 stages. Then ANALYZE,
``manage.py runserver --noreload`` (gunicorn when installed), a token for the manager, and
``GET /api/v1/projects/{id}/quality/?period=week`` timed over HTTP, for the whole year and
for the last 13 weeks (``&from=``). The figures are read from the per-day rollups
(``audits.rollups``), built once after loading (timed: ``rollup_seconds``), so those reads
have nothing dirty; ``http_after_one_decision`` times reads that each follow one review
decision (``record_outcomes``, which marks today dirty: the read rebuilds that day first).
The query count is taken in-process on one call
(CaptureQueriesContext), and so is the CPU time one call costs Django and PostgreSQL (wall
times grow with whatever else runs on the machine; CPU time does much less);
``--explain`` prints each query's plan.

.venv/bin/python bench/quality_api.py [--tasks 100000] [--requests 30] [--explain]

DATABASE_URL defaults to a throw-away database ``stagecraft_bench_quality`` (dropped and
created).
"""

import argparse
import datetime
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

DEFAULT_DB = "stagecraft_bench_quality"
STAGES = ["annotate", "objects", "grasp", "outcome"]
ANNOTATORS = 20
PASSWORD = "bench-password"  # noqa: S105


def build(tasks: int) -> tuple[int, int]:
    """The project and its measurement rows; answers (project id, manager id)."""
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
    project = project_create(actor=manager, name="Quality bench")
    people = [User.objects.create_user(f"ann{i:02}", password=PASSWORD) for i in range(ANNOTATORS)]
    for person in people:
        membership_add(actor=manager, project=project, user=person, role="annotator")
    auditor = User.objects.create_user("auditor", password=PASSWORD)
    membership_add(actor=manager, project=project, user=auditor, role="reviewer")
    for offset in range(0, tasks, 5000):
        task_create_many(
            actor=manager,
            project=project,
            items=[{"name": f"task {i}"} for i in range(offset, min(offset + 5000, tasks))],
        )
    ids = [p.pk for p in people]
    # Deterministic pseudo-random rows, written by the database itself. The SQL is built
    # from the constant fragments below only; every value is a parameter.
    params = {"p": project.pk, "ann": ids, "stages": STAGES, "auditor": auditor.pk}
    year_ago = "now() - random() * interval '365 days'"
    who = "(%(ann)s::bigint[])[1 + (t.id * 7) %% 20]"
    stage = "(%(stages)s::text[])[1 + t.id %% 4]"
    statements = [
        "SELECT setseed(0.42)",
        # Two decisions per task: the first (accepted 80 %%) and a later one.
        f"""INSERT INTO audits_reviewoutcome (project_id, task_id, stage_key, replica, attempt,
              annotator_id, decided_by_id, source, accepted, first, created_at)
            SELECT t.project_id, t.id, {stage}, 0, g, {who}, %(auditor)s, 'review',
                   g = 2 OR random() < 0.8, g = 1, {year_ago}
            FROM tasks_task t CROSS JOIN generate_series(1, 2) g WHERE t.project_id = %(p)s""",  # noqa: S608
        # One current audit per task, and a superseded one for every tenth task.
        f"""INSERT INTO audits_audit (project_id, task_id, stage_key, attempt, kind, status,
              decision, fixed, sampled, current, auditor_id, annotation_count, note, created_at,
              completed_at)
            SELECT t.project_id, t.id, '', 1, 'fixless', 'completed', 'accept', false, false,
                   g = 1, %(auditor)s, 10, '', ts, ts
            FROM tasks_task t CROSS JOIN generate_series(1, 2) g
            CROSS JOIN LATERAL (SELECT {year_ago} + t.id * interval '0' AS ts) x
            WHERE t.project_id = %(p)s AND (g = 1 OR t.id %% 10 = 0)""",  # noqa: S608
        # Two stages × annotators per audit, 5 annotations each: 1,000,000 current ones.
        """INSERT INTO audits_auditedwork (audit_id, project_id, task_id, stage_key,
              annotator_id, annotations, current, completed_at)
            SELECT a.id, a.project_id, a.task_id, (%(stages)s::text[])[1 + (a.task_id + g) %% 4],
                   (%(ann)s::bigint[])[1 + (a.task_id * 7 + g * 3) %% 20], 5, a.current,
                   a.completed_at
            FROM audits_audit a CROSS JOIN generate_series(0, 1) g WHERE a.project_id = %(p)s""",
        # The annotations findings name (one on every third task).
        f"""INSERT INTO tasks_annotation (task_id, stage_key, replica, label, kind, data,
              attributes, author_id, version, invalid, invalid_reason, created_at, updated_at)
            SELECT t.id, {stage}, 0, 'cup', 'box', '{{}}', '{{}}', {who}, 1, false, '',
                   now(), now()
            FROM tasks_task t WHERE t.project_id = %(p)s AND t.id %% 3 = 0""",  # noqa: S608
        # Findings on 60 %% of audits: errors (15 %% missing), flags; 80 %% counted.
        """INSERT INTO audits_auditfinding (audit_id, project_id, task_id, stage_key,
              annotator_id, type, category, annotation_id, attribute, note, state, counts,
              current, response, resolution, author_id, created_at, updated_at)
            SELECT a.id, a.project_id, a.task_id, (%(stages)s::text[])[1 + a.task_id %% 4],
                   (%(ann)s::bigint[])[1 + (a.task_id * 7) %% 20],
                   CASE WHEN r.kind < 0.9 THEN 'error' ELSE 'flag' END,
                   CASE WHEN r.cat < 0.15 THEN 'missing'
                        ELSE (ARRAY['extraneous', 'wrong_class', 'geometry', 'attribute',
                                    'other'])[1 + a.task_id %% 5] END,
                   CASE WHEN r.cat < 0.15 THEN NULL ELSE n.id END, '', '',
                   CASE WHEN r.counted < 0.8 THEN 'accepted' ELSE 'open' END,
                   r.counted < 0.8 AND r.kind < 0.9, a.current, '', '', a.auditor_id,
                   a.completed_at, a.completed_at
            FROM audits_audit a
            CROSS JOIN LATERAL (SELECT random() + a.id * 0 AS pick, random() + a.id * 0 AS kind,
                                       random() + a.id * 0 AS cat, random() + a.id * 0 AS counted) r
            LEFT JOIN tasks_annotation n ON n.task_id = a.task_id
            WHERE a.project_id = %(p)s AND r.pick < 0.6""",
        # Agreement of two annotators on every fourth task.
        f"""INSERT INTO audits_agreementscore (project_id, task_id, stage_key, measure,
              annotator_a_id, annotator_b_id, score, created_at)
            SELECT t.project_id, t.id, {stage}, 'box_iou', {who},
                   (%(ann)s::bigint[])[1 + (t.id * 7 + 1) %% 20], 0.5 + random() / 2, {year_ago}
            FROM tasks_task t WHERE t.project_id = %(p)s AND t.id %% 4 = 0""",  # noqa: S608
        # Every annotate run submitted with 10 samples, 7–10 complete, 5 %% flagged.
        f"""UPDATE tasks_stagerun r SET samples_total = 10,
              samples_complete = 7 + floor(random() * 4)::int, assignee_id = {who},
              submitted_at = {year_ago}, status = 'completed',
              qc_flags = CASE WHEN random() < 0.05 THEN '["Fewer than 2 boxes"]'::jsonb
                              ELSE '[]'::jsonb END
            FROM tasks_task t WHERE r.task_id = t.id AND t.project_id = %(p)s
              AND r.stage_key = 'annotate'""",  # noqa: S608
        "ANALYZE",
    ]
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql, params)
    return project.pk, manager.pk


def row_counts(project_id: int) -> dict:
    from django.db.models import Sum

    from audits.models import AgreementScore, Audit, AuditedWork, AuditFinding, ReviewOutcome
    from tasks.models import StageRun, Task

    work = AuditedWork.objects.filter(project_id=project_id)
    return {
        "tasks": Task.objects.filter(project_id=project_id).count(),
        "stage_runs": StageRun.objects.filter(task__project_id=project_id).count(),
        "review_outcomes": ReviewOutcome.objects.filter(project_id=project_id).count(),
        "audits": Audit.objects.filter(project_id=project_id).count(),
        "audited_work_rows": work.count(),
        "current_audited_annotations": work.filter(current=True).aggregate(n=Sum("annotations"))[
            "n"
        ],
        "findings": AuditFinding.objects.filter(project_id=project_id).count(),
        "agreement_scores": AgreementScore.objects.filter(project_id=project_id).count(),
    }


def one_decision(project, manager_id: int):
    """A review decision on one annotate run (a ReviewOutcome through ``record_outcomes``,
    which marks today dirty), to run before a timed read."""
    from django.contrib.auth import get_user_model

    from tasks.models import StageRun
    from tasks.services.stages import record_outcomes

    manager = get_user_model().objects.get(pk=manager_id)
    run = (
        StageRun.objects.filter(task__project=project, stage_key="annotate")
        .select_related("task")
        .order_by("pk")
        .first()
    )

    def decide() -> None:
        record_outcomes(run.task, [run], accepted=True, actor=manager, source="review")

    return decide


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--explain", action="store_true", help="print each query's plan")
    parser.add_argument(
        "--reuse", action="store_true", help="time the project an earlier run built (no build)"
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
    )  # fmt: skip
    import django

    django.setup()
    import requests
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    if args.reuse:
        from projects.models import Project

        project_id = Project.objects.get(name="Quality bench").pk
        manager_id = django.contrib.auth.get_user_model().objects.get(username="boss").pk
    else:
        project_id, manager_id = build(args.tasks)
    build_seconds = round(time.perf_counter() - started, 1)
    from audits.rollups import quality_rebuild
    from projects.models import Project

    project = Project.objects.get(pk=project_id)
    started = time.perf_counter()
    quality_rebuild(project)  # the rows were loaded in SQL, past the services' marks
    rollup_seconds = round(time.perf_counter() - started, 1)
    path = f"/api/v1/projects/{project_id}/quality/?period=week"

    client = Client()
    client.force_login(django.contrib.auth.get_user_model().objects.get(pk=manager_id))
    client.get(path)  # warm caches (permissions, URL resolver)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, response.content
    queries = len(captured.captured_queries)  # read now: the next request clears the log
    body = response.json()
    from audits.models import QualityDay

    if args.explain:
        with connection.cursor() as cursor:
            for query in captured.captured_queries:
                cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + query["sql"])
                plan = "\n".join(row[0] for row in cursor.fetchall())
                print(f"-- {query['time']} s\n{query['sql']}\n{plan}\n", file=sys.stderr)
    cpu = cpu_per_call(client, path, connection)
    decide = one_decision(project, manager_id)
    decide()
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    dirty_queries = len(captured.captured_queries)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = serve(port)
    try:
        base = f"http://127.0.0.1:{port}"
        http = requests.Session()
        token = http.post(
            f"{base}/api/v1/auth/token/", json={"username": "boss", "password": PASSWORD}
        ).json()["token"]
        http.headers["Authorization"] = f"Token {token}"
        for _ in range(3):
            assert http.get(base + path).status_code == 200

        def timed(url: str, before=None) -> dict:
            times = []
            for _ in range(args.requests):
                if before is not None:
                    before()
                begun = time.perf_counter()
                answer = http.get(url)
                times.append(time.perf_counter() - begun)
                assert answer.status_code == 200, answer.text[:300]
            return summary(times)

        whole_year = timed(base + path)
        # What a dashboard usually asks: the last 13 weeks.
        since = (
            (datetime.datetime.now(datetime.UTC) - datetime.timedelta(weeks=13)).date().isoformat()
        )
        quarter = timed(f"{base}{path}&from={since}")
        after_decision = timed(base + path, before=decide)
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
                "request": f"GET {path} as a project manager (token), over HTTP",
                "requests": args.requests,
                "http": whole_year,
                "http_last_13_weeks": quarter,
                "http_after_one_decision": after_decision,
                "queries_per_call": queries,
                "queries_after_one_decision": dirty_queries,
                "rollup_seconds": rollup_seconds,
                "rollup_rows": QualityDay.objects.filter(project_id=project_id).count(),
                "cpu_per_call": cpu,
                "load_average": [round(x, 1) for x in os.getloadavg()],
                "cores": os.cpu_count(),
                "figures": {
                    key: body[key]
                    for key in ("first_pass_rate", "accuracy", "consistency", "completeness")
                },
                "periods": len(body["by_period"]),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
