"""Keyset pages of the task list (issue 15): ``?cursor=`` pages follow each other through
every task exactly once, in the order of the numbered pages, for every order the list
accepts (NULL due dates and equal keys included), at a query count that does not depend on
the depth, each read an index range (no OFFSET). Timings are in bench/README.md."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tasks import services
from tasks.filters import ORDERINGS, task_filter
from tasks.pagination import TaskPaginator
from tasks.selectors import task_list_for_user

pytestmark = pytest.mark.django_db

PAGE = 40


def make_tasks(manager, project, n: int, start: int = 0) -> None:
    # Names, priorities and due dates repeat (ties broken by the id); a third of the due
    # dates are NULL. One bulk insert: many tasks share a creation time.
    services.task_create_many(
        actor=manager,
        project=project,
        items=[
            {
                "name": f"task {i % 7}",
                "priority": ["low", "normal", "high", "urgent"][i % 4],
                "due_at": None if i % 3 == 0 else f"2030-0{1 + i % 5}-01T00:00:00Z",
            }
            for i in range(start, start + n)
        ],
    )


def ids(body) -> list[int]:
    return [task["id"] for task in body["results"]]


def numbered(api, params) -> list[int]:
    found, page = [], 1
    while True:
        body = api.get("/api/v1/tasks/", {**params, "page": page}).json()
        found += ids(body)
        if not body["next"]:
            return found
        page += 1


@pytest.fixture
def many(manager, project):
    make_tasks(manager, project, 150)
    make_tasks(manager, project, 100, start=150)  # a second insert: other creation times
    return 250


@pytest.mark.parametrize("ordering", ORDERINGS)
def test_cursors_go_through_every_task_once_in_the_order_of_the_pages(
    manager, project, api_as, many, ordering
):
    api = api_as(manager)
    params = {"project": project.pk, "ordering": ordering, "page_size": PAGE}
    expected = numbered(api, params)
    assert len(expected) == len(set(expected)) == many

    first = api.get("/api/v1/tasks/", params).json()
    assert first["previous_cursor"] is None and first["next_cursor"]
    forward, body, pages = ids(first), first, []
    while body["next_cursor"]:
        body = api.get("/api/v1/tasks/", {**params, "cursor": body["next_cursor"]}).json()
        assert body["count"] == many and len(body["results"]) <= PAGE
        # The link says the same as the cursor, without a page number.
        assert ("cursor=" in body["next"] and "page=" not in body["next"]) if body["next"] else 1
        forward += ids(body)
        pages.append(body)
    assert forward == expected
    assert len(pages) == -(-many // PAGE) - 1  # the last page says there is none after it

    # Back from the last page: previous_cursor pages, the same tasks in the same order.
    body, backward = pages[-1], ids(pages[-1])
    while body["previous_cursor"]:
        body = api.get("/api/v1/tasks/", {**params, "cursor": body["previous_cursor"]}).json()
        assert len(body["results"]) == PAGE and body["next_cursor"]
        backward = ids(body) + backward
    assert backward == expected

    # A numbered page hands over to cursors where it ends.
    third = api.get("/api/v1/tasks/", {**params, "page": 3}).json()
    after = api.get("/api/v1/tasks/", {**params, "cursor": third["next_cursor"]}).json()
    assert ids(after) == expected[3 * PAGE : 4 * PAGE]
    before = api.get("/api/v1/tasks/", {**params, "cursor": third["previous_cursor"]}).json()
    assert ids(before) == expected[PAGE : 2 * PAGE]


@pytest.mark.parametrize("ordering", ["-created_at", "due_at"])
def test_following_next_from_page_1_turns_to_cursors_at_the_twentieth_page(
    manager, project, api_as, many, ordering
):
    """A client that walks ``next`` through a deep list reads every task once, in order, and
    from page ``NUMBERED_PAGES`` on by cursor (no OFFSET that grows with the depth)."""
    api = api_as(manager)
    params = {"project": project.pk, "ordering": ordering, "page_size": 5}
    expected = numbered(api, params)
    body = api.get("/api/v1/tasks/", params).json()
    walked, links = ids(body), []
    while body["next"]:
        links.append(body["next"])
        body = api.get(body["next"]).json()
        walked += ids(body)
    assert walked == expected and len(walked) == many
    assert len(links) == many // 5 - 1
    by_number = [link for link in links if "page=" in link]
    assert [f"page={n}" in link for n, link in enumerate(by_number, start=2)] == [True] * 19
    assert all("cursor=" in link and "page=" not in link for link in links[19:])


def test_a_cursor_page_costs_the_same_queries_at_any_depth(
    manager, project, api_as, many, django_assert_max_num_queries
):
    api = api_as(manager)
    for ordering in ("-created_at", "due_at", "priority"):
        params = {"project": project.pk, "ordering": ordering, "page_size": 20}
        body, counts = api.get("/api/v1/tasks/", params).json(), []
        while body["next_cursor"]:
            with CaptureQueriesContext(connection) as queries:
                response = api.get("/api/v1/tasks/", {**params, "cursor": body["next_cursor"]})
            body = response.json()
            counts.append(len(queries))
        assert len(counts) == 12 and len(set(counts)) == 1, (ordering, counts)
        with django_assert_max_num_queries(12):
            api.get("/api/v1/tasks/", {**params, "cursor": body["previous_cursor"]})


def scans(sql: str) -> list[dict]:
    """The index scans of the plan of ``sql``."""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON, COSTS OFF) " + sql)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan

    def walk(node) -> list[dict]:
        return [node] + [n for child in node.get("Plans", []) for n in walk(child)]

    return [n for n in walk(plan[0]["Plan"]) if "Index Name" in n]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="plans: PostgreSQL")
@pytest.mark.parametrize(
    ("ordering", "index", "key"),
    [
        ("-created_at", "task_list_created_idx", "created_at"),
        ("created_at", "task_list_created_idx", "created_at"),
        ("due_at", "task_list_due_idx", "due_at"),
        ("-due_at", "task_list_due_idx", "due_at"),
        ("-priority", "task_list_urgency_idx", "CASE"),
        ("priority", "task_list_urgency_asc_idx", "CASE"),
        ("name", "task_list_name_idx", "name"),
        ("-name", "task_list_name_idx", "name"),
    ],
)
def test_a_cursor_page_is_an_index_range_without_offset(
    manager, project, many, ordering, index, key
):
    tasks = task_list_for_user(
        user=manager, filters=task_filter({"project": project.pk, "ordering": ordering})
    )
    cursor = TaskPaginator(tasks, 20).page(1).next_cursor
    for _ in range(3):
        cursor = TaskPaginator(tasks, 20).cursor_page(cursor).next_cursor
    with CaptureQueriesContext(connection) as queries:
        TaskPaginator(tasks, 20).cursor_page(cursor)
    (read,) = [q["sql"] for q in queries if "LIMIT 21" in q["sql"]]
    assert "OFFSET" not in read.upper()
    with connection.cursor() as db:
        # On 250 rows of one project any index will do and the planner picks one by its
        # whims (the primary key and a filter, the finished-date index): in the test's
        # transaction (rolled back) the table keeps the list's index alone, as the planner
        # chooses it at 1,000,000 tasks (bench/README.md), and scanning costs what it does
        # on many rows.
        db.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred checks first
        db.execute("ALTER TABLE tasks_task DROP CONSTRAINT tasks_task_pkey CASCADE")
        db.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'tasks_task'")
        for (other,) in db.fetchall():
            if other != index:
                db.execute(f'DROP INDEX "{other}"')
        db.execute("ANALYZE tasks_task")
        db.execute("SET LOCAL enable_seqscan = off")
        db.execute("SET LOCAL enable_bitmapscan = off")
    found = scans(read)
    described = [(n["Node Type"], n["Index Name"], n.get("Index Cond")) for n in found]
    # Each part of the keyset read is a range of the list's index bounded by the cursor (its
    # Index Cond: the key, and the id among equal keys) under a LIMIT: nothing before the
    # cursor is read, nothing is filtered.
    assert found and all(name == index for _, name, _ in described), described
    assert all(key in n["Index Cond"] and "project_id" in n["Index Cond"] for n in found), described
    assert not any("Filter" in n for n in found), described


def test_a_bad_cursor_is_a_400_that_says_why(manager, project, api_as):
    make_tasks(manager, project, 5)
    api = api_as(manager)
    params = {"project": project.pk, "page_size": 2}
    cursor = api.get("/api/v1/tasks/", params).json()["next_cursor"]
    for bad in (cursor[:-3] + "abc", "nonsense", cursor.replace(":", ";", 1), "é" * 10):
        response = api.get("/api/v1/tasks/", {**params, "cursor": bad})
        assert response.status_code == 400
        assert "cursor is not one this list gave" in response.json()["cursor"][0]
    other = api.get("/api/v1/tasks/", {**params, "ordering": "name", "cursor": cursor})
    assert other.status_code == 400 and "-created_at" in other.json()["cursor"][0]
    both = api.get("/api/v1/tasks/", {**params, "cursor": cursor, "page": 2})
    assert both.status_code == 400 and "not both" in both.json()["cursor"][0]
    assert api.get("/api/v1/tasks/", {**params, "cursor": cursor}).status_code == 200


def walk(api, params) -> list[int]:
    body = api.get("/api/v1/tasks/", params).json()
    found = ids(body)
    while body["next_cursor"]:
        body = api.get("/api/v1/tasks/", {**params, "cursor": body["next_cursor"]}).json()
        found += ids(body)
    return found


def test_cursors_follow_filtered_lists_and_an_annotators(manager, annotator, project, api_as):
    services.task_create_many(
        actor=manager,
        project=project,
        items=[
            {"name": f"cup {i % 4}", "priority": ["low", "high"][i % 2]}
            | ({"annotators": [annotator.username]} if i % 3 else {})
            for i in range(60)
        ],
    )
    lists = [
        (manager, {"priority": "high", "ordering": "name"}),
        (manager, {"search": "cup 1", "ordering": "-due_at"}),
        (annotator, {"ordering": "priority"}),
        (annotator, {}),
    ]
    for user, filters in lists:
        api = api_as(user)
        params = {"project": project.pk, "page_size": 7, **filters}
        expected = numbered(api, params)
        assert expected and walk(api, params) == expected, filters
    assert len(numbered(api_as(annotator), {"project": project.pk})) == 40  # theirs only
