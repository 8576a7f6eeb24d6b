"""The task list at scale (issue 15): the same query shape for a manager as for an
administrator, queries per request that do not grow with the number of tasks, name search
from the trigram index, counts that become estimates ("about") beyond a threshold, and My
work read from indexes. Timings are in bench/task_list.py, not here."""

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tasks import pagination, search, services
from tasks.filters import task_filter
from tasks.models import StageRun, Task
from tasks.selectors import my_work_runs, task_list_for_user
from tests.tasks.test_timing_sampling import limited  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db

FILTERS = {
    "status": "pending_start",
    "assignee": "ana",
    "priority": "high",
    "batch": "b1",
    "search": "cup",
    "due_before": "2030-01-01",
    "overdue": "true",
    "ordering": "name",
}


def make_tasks(manager, project, n: int, start: int = 0) -> None:
    services.task_create_many(
        actor=manager,
        project=project,
        items=[
            {
                "name": f"Cup {i}" if i % 2 else f"tool {i}",
                "priority": ["low", "normal", "high", "urgent"][i % 4],
                "batch": f"b{i % 3}",
                "annotators": ["ana"] if i % 3 == 0 else [],
                "reviewers": ["ravi"] if i % 5 == 0 else [],
                "due_at": "2020-01-01T00:00:00Z" if i % 2 else None,
            }
            for i in range(start, start + n)
        ],
    )


def plan_nodes(queryset) -> list[str]:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON, COSTS OFF) " + sql, params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan

    def walk(node) -> list[str]:
        return [node["Node Type"]] + [n for child in node.get("Plans", []) for n in walk(child)]

    return walk(plan[0]["Plan"])


def test_a_managers_list_has_the_shape_of_an_administrators(manager, admin_user, project):
    make_tasks(manager, project, 6)
    for raw in ({"project": project.pk}, {"project": project.pk, "status": "pending_start"}):
        filters = task_filter(raw)
        as_manager = task_list_for_user(user=manager, filters=filters)
        as_admin = task_list_for_user(user=admin_user, filters=filters)
        assert list(as_manager) == list(as_admin)
        manager_sql, admin_sql = str(as_manager.query), str(as_admin.query)
        # No correlated EXISTS, no OR: the project set is resolved first, as constants.
        assert "EXISTS" not in manager_sql.upper() and " OR " not in manager_sql.upper()
        assert manager_sql.count("SELECT") == admin_sql.count("SELECT") == 1
        if connection.vendor == "postgresql":
            assert plan_nodes(as_manager.all()[:50]) == plan_nodes(as_admin.all()[:50])


def test_an_annotator_sees_only_the_tasks_given_to_them(manager, annotator, project):
    make_tasks(manager, project, 9)
    seen = {t.name for t in task_list_for_user(user=annotator, filters={})}
    assert seen == {"tool 0", "Cup 3", "tool 6"}  # named as annotator: every third task
    run = StageRun.objects.filter(task__name="Cup 1", kind="annotate").get()
    run.assignee = annotator
    run.save(update_fields=["assignee"])
    assert "Cup 1" in {t.name for t in task_list_for_user(user=annotator, filters={})}


def queries(client, path: str) -> int:
    client.get(path)  # warm caches
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, response.content[:300]
    return len(captured.captured_queries)


@pytest.mark.parametrize("who", ["manager", "annotator"])
def test_queries_per_request_do_not_grow_with_the_tasks(
    client, manager, annotator, project, who, django_assert_max_num_queries, monkeypatch
):
    user = {"manager": manager, "annotator": annotator}[who]
    client.force_login(user)
    # The search's trigram sample is read once a process every few minutes (tasks.search):
    # read once here, so the comparison is of the pages' own queries.
    monkeypatch.setattr(search, "CACHE_SECONDS", 1e9)
    monkeypatch.setattr(search, "_cached", None)
    paths = [
        f"/api/v1/tasks/?project={project.pk}",
        f"/api/v1/tasks/?project={project.pk}&page=2&page_size=2",
        f"/tasks/?project={project.pk}",
        f"/tasks/?project={project.pk}&page=2",
        "/workspace/",
        *[f"/api/v1/tasks/?project={project.pk}&{k}={v}" for k, v in FILTERS.items()],
        *[f"/tasks/?project={project.pk}&{k}={v}" for k, v in FILTERS.items() if k != "ordering"],
    ]
    make_tasks(manager, project, 12)
    few = {path: queries(client, path) for path in paths}
    make_tasks(manager, project, 90, start=12)
    for path in paths:
        client.get(path)
        with django_assert_max_num_queries(25):  # the page with the tab counts: 21
            response = client.get(path)
        assert response.status_code == 200
        assert queries(client, path) == few[path], path


def test_search_finds_names_and_descriptions_anywhere_in_them(manager, project, api_as):
    make_tasks(manager, project, 6)
    services.task_create_many(
        actor=manager, project=project, items=[{"name": "shelf", "description": "A blue CUP"}]
    )
    api = api_as(manager)
    found = api.get("/api/v1/tasks/", {"project": project.pk, "search": "cup"}).json()
    assert sorted(t["name"] for t in found["results"]) == ["Cup 1", "Cup 3", "Cup 5", "shelf"]
    found = api.get("/api/v1/tasks/", {"project": project.pk, "search": "p 3"}).json()
    assert [t["name"] for t in found["results"]] == ["Cup 3"]
    assert api.get("/api/v1/tasks/", {"search": "zebra"}).json()["count"] == 0


def plan_as_at_scale(tasks) -> str:
    """The EXPLAIN of ``tasks``'s ids with the planner costing the indexes as on a real
    table (``ANALYZE``; scans of a whole table or of a partial index for its condition alone
    made dear, as they are at 100,000 tasks, not at 3,000 where the fresh-clone run's planner
    once chose one; the partial list indexes dropped inside the test's transaction, which
    is rolled back)."""
    sql, params = tasks.values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tasks_task")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("SET LOCAL cpu_index_tuple_cost = 10")
        for index in Task._meta.indexes:
            if index.condition is not None:
                cursor.execute(f"DROP INDEX {index.name}")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.skipif(connection.vendor != "postgresql", reason="trigram index: PostgreSQL")
def test_search_is_read_from_the_trigram_index(manager, admin_user, project):
    # Enough rows and fresh statistics for the planner to cost the trigram indexes as on a
    # real table (on six rows it could read one of them whole for its deleted_at condition
    # and filter the names, a plan that came and went with the costing).
    make_tasks(manager, project, 3000)
    tasks = task_list_for_user(user=admin_user, filters={"search": "cup 1234"}).order_by()
    plan = plan_as_at_scale(tasks)
    assert "task_name_trgm_idx" in plan and "task_description_trgm_idx" in plan, plan
    assert "BitmapOr" in plan, plan


def test_beyond_the_threshold_the_count_is_an_estimate_and_pages_go_on(
    manager, project, api_as, monkeypatch
):
    make_tasks(manager, project, 12)
    api = api_as(manager)
    exact = api.get("/api/v1/tasks/", {"project": project.pk, "page_size": 5}).json()
    assert (exact["count"], exact["count_exact"]) == (12, True)
    monkeypatch.setattr(pagination, "EXACT_UP_TO", 4)
    body = api.get("/api/v1/tasks/", {"project": project.pk, "page_size": 5}).json()
    assert body["count_exact"] is (connection.vendor != "postgresql")
    assert body["count"] >= 5 and len(body["results"]) == 5 and body["next"]
    last = api.get("/api/v1/tasks/", {"project": project.pk, "page_size": 5, "page": 3}).json()
    assert len(last["results"]) == 2 and last["next"] is None
    names = [
        t["name"]
        for page in (1, 2, 3)
        for t in api.get(
            "/api/v1/tasks/", {"project": project.pk, "page_size": 5, "page": page}
        ).json()["results"]
    ]
    assert len(names) == len(set(names)) == 12  # pages read from ids: none lost, none twice


def test_my_work_lists_own_given_and_free_review_runs(manager, reviewer, annotator, project):
    make_tasks(manager, project, 6)
    mine = {(r.task.name, r.kind) for r in my_work_runs(user=annotator)}
    # Free annotate runs of the tasks naming ana (every third), nothing else.
    assert mine == {("tool 0", "annotate"), ("Cup 3", "annotate")}
    StageRun.objects.filter(kind="review").update(status=StageRun.Status.READY)
    reviews = {r.task.name for r in my_work_runs(user=reviewer)}
    # ravi reviews the project: tasks naming him (0, 5) and tasks naming nobody (1–4).
    assert reviews == {"tool 0", "Cup 1", "tool 2", "Cup 3", "tool 4", "Cup 5"}
    assert list(my_work_runs(user=manager)) == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="expression indexes: PostgreSQL")
@pytest.mark.parametrize(
    ("ordering", "index"),
    [("-priority", "task_list_urgency_idx"), ("priority", "task_list_urgency_asc_idx")],
)
def test_the_priority_sorts_are_read_in_order_from_an_index(
    manager, admin_user, project, ordering, index
):
    make_tasks(manager, project, 8)
    filters = task_filter({"project": project.pk, "ordering": ordering})
    tasks = task_list_for_user(user=manager, filters=filters)
    page = tasks.prefetch_related(None).values_list("pk", flat=True)[4:9]
    with connection.cursor() as cursor:  # a tiny table: make sorting what a big one makes it
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = page.query.sql_with_params()
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert index in plan and "Sort" not in plan, plan
    rank = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
    ranked = [(rank[t.priority], t.pk) for t in tasks]
    expected = sorted(ranked, key=lambda r: (-r[0] if ordering[0] == "-" else r[0], -r[1]))
    assert ranked == expected  # by urgency, newest first among equals


def test_my_work_searches_for_expired_runs_only_where_a_time_limit_exists(
    client, manager, annotator, project
):
    make_tasks(manager, project, 6)
    for run in StageRun.objects.filter(kind="annotate")[:3]:
        services.stage_start(actor=annotator, task=run.task, stage_key=run.stage_key)
    client.force_login(manager)
    client.get("/workspace/")
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/workspace/").status_code == 200
    # The lazy release's search joins every run in progress to its task's blueprint: with
    # no stage under a time limit anywhere, nothing can expire and it is not run.
    assert not [
        q["sql"]
        for q in captured.captured_queries
        if "tasks_stagerun" in q["sql"] and "blueprints_blueprint" in q["sql"]
    ]


def test_my_work_still_releases_a_run_past_its_time_limit(
    client,
    limited,  # noqa: F811 - the fixture imported above
    annotator,
    manager,
    time_machine,
):
    from tests.tasks.test_timing_sampling import at

    at(time_machine, 601)
    client.force_login(manager)
    assert client.get("/workspace/").status_code == 200  # no scheduler: My work releases it
    run = limited.runs.get(stage_key="label")
    assert (run.status, run.assignee) == ("ready", None)
    assert limited.events.filter(kind="stage_released").count() == 1


def test_my_work_does_not_read_every_blueprint_version_on_each_load(client, manager, project):
    """Hundreds of blueprint versions (every edit is one): My work asks whether any has a
    time limit with one aggregate read, not one read per version on every load."""
    from blueprints.models import Blueprint

    make_tasks(manager, project, 1)
    blueprint = Blueprint.objects.get(project=project)
    Blueprint.objects.bulk_create(
        Blueprint(project=project, name=blueprint.name, version=v, definition=blueprint.definition)
        for v in range(blueprint.version + 1, blueprint.version + 301)
    )
    client.force_login(manager)
    client.get("/workspace/")
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/workspace/").status_code == 200
    reads = [q["sql"] for q in captured.captured_queries if "blueprints_blueprint" in q["sql"]]
    assert len(reads) <= 2, reads


def tab_counts(client, path: str) -> dict[str, str]:
    page = client.get(path).content.decode()
    return dict(re.findall(r'aria-selected="\w+"[^>]*>([^<]+?) <span class="count">([^<]+)<', page))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="estimates: PostgreSQL")
def test_tab_counts_beyond_the_threshold_are_estimates_said_as_such(
    client, manager, project, monkeypatch, django_assert_max_num_queries
):
    make_tasks(manager, project, 12)
    first_two = list(project.tasks.order_by("pk").values_list("pk", flat=True)[:2])
    project.tasks.filter(pk__in=first_two).update(status="in_progress")
    client.force_login(manager)
    # Under a filter the kept counts cannot answer (a search every name matches): counted.
    path = f"/tasks/?project={project.pk}&q=+"
    exact = tab_counts(client, path)
    assert exact == {"All": "12", "Pending start": "10", "In progress": "2", "Pending review": "0",
                     "Review passed": "0", "Data submitted": "0"}  # fmt: skip
    with connection.cursor() as cursor:  # the planner's statistics, as autovacuum keeps them
        cursor.execute("ANALYZE tasks_task")
    monkeypatch.setattr(pagination, "EXACT_UP_TO", 4)
    counts = tab_counts(client, path)
    # Above the threshold the planner's estimate, said as "about"; the small ones exact.
    assert counts["All"].startswith("about ") and counts["Pending start"].startswith("about ")
    assert {k: v for k, v in counts.items() if k not in ("All", "Pending start")} == {
        "In progress": "2",
        "Pending review": "0",
        "Review passed": "0",
        "Data submitted": "0",
    }
    page = client.get(f"{path}&status=pending_start").content.decode()
    assert "Page 1 of about" not in page  # 10 tasks: one page, no pager
    few = queries(client, path)
    make_tasks(manager, project, 90, start=12)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tasks_task")
    with django_assert_max_num_queries(25):
        page = client.get(path).content.decode()
    assert re.search(r"Page 1 of about \d+ · about \d+ tasks", page), page
    assert queries(client, path) == few  # the same queries for 102 tasks as for 12


@pytest.mark.skipif(connection.vendor != "postgresql", reason="kept counts: PostgreSQL")
def test_whole_project_tabs_are_exact_from_the_kept_counts(
    client, manager, annotator, project, monkeypatch, django_capture_on_commit_callbacks
):
    """A project's list without other filters reads its tabs from the kept counts
    (projects.counts): exact beyond the estimate threshold, the same queries for 12 and 102
    tasks, deleted tasks gone at once; an annotator's list is still counted."""
    from tasks import batch

    monkeypatch.setattr(pagination, "EXACT_UP_TO", 4)
    make_tasks(manager, project, 12)
    first_two = list(project.tasks.order_by("pk").values_list("pk", flat=True)[:2])
    project.tasks.filter(pk__in=first_two).update(status="in_progress")
    client.force_login(manager)
    path = f"/tasks/?project={project.pk}"
    assert tab_counts(client, path) == {
        "All": "12", "Pending start": "10", "In progress": "2", "Pending review": "0",
        "Review passed": "0", "Data submitted": "0",
    }  # fmt: skip
    assert tab_counts(client, "/tasks/?sort=name")["All"] == "12"
    few = queries(client, path)
    make_tasks(manager, project, 90, start=12)
    page = client.get(path).content.decode()
    assert "Page 1 of 3 · 102 tasks" in page
    assert queries(client, path) == few
    selection = batch.batch_selection(user=manager, ids=first_two)
    with django_capture_on_commit_callbacks(execute=True):
        batch.task_batch_delete(actor=manager, selection=selection)
    assert tab_counts(client, path)["In progress"] == "0"
    assert tab_counts(client, path)["All"] == "100"
    monkeypatch.undo()  # the usual threshold: the annotator's 33 tasks counted exactly
    client.force_login(annotator)  # sees the tasks given to them only
    assert tab_counts(client, path)["All"] == str(
        project.tasks.filter(annotators=annotator).count()
    )
