"""Bulk creation writes tasks, runs and events in set-based inserts (COPY on PostgreSQL):
queries do not grow with the number of tasks, and what is written is what one-by-one
creation writes. Stage actions stay within a bounded number of queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.exceptions import ApplicationError
from tasks import services
from tasks.models import StageRun, Task, TaskEvent

pytestmark = pytest.mark.django_db


def _bulk(api, project, start, n):
    return api.post(
        "/api/v1/tasks/bulk/",
        [
            {
                "project": project.pk,
                "name": f"episode {i}",
                "unique_id": f"ep-{i}",
                "metadata": {"episode": i},
                "batch": "day 1",
            }
            for i in range(start, start + n)
        ],
        format="json",
    )


def test_bulk_api_queries_do_not_grow_with_the_number_of_tasks(api_as, project, manager):
    api = api_as(manager)
    _bulk(api, project, 0, 1)  # warm caches (token, spec)
    with CaptureQueriesContext(connection) as ten:
        assert _bulk(api, project, 100, 10).status_code == 201
    with CaptureQueriesContext(connection) as many:
        assert _bulk(api, project, 1000, 500).status_code == 201
    assert len(many.captured_queries) == len(ten.captured_queries)
    assert len(many.captured_queries) <= 20


def test_bulk_creation_writes_what_one_by_one_creation_writes(project, manager):
    one = services.task_create(actor=manager, project=project, name="one", batch="b")
    many = services.task_create_many(
        actor=manager,
        project=project,
        items=[{"name": f"t{i}", "batch": "b", "metadata": {"i": i}} for i in range(3)],
    )
    assert [t.pk for t in many] == sorted(t.pk for t in many)
    stored = Task.objects.get(pk=many[2].pk)
    assert (stored.name, stored.metadata, stored.batch, stored.status, stored.created_by) == (
        "t2",
        {"i": 2},
        "b",
        "pending_start",
        manager,
    )
    assert stored.created_at is not None and stored.updated_at is not None

    def shape(task):
        runs = [
            (r.stage_key, r.kind, r.replica, r.status, r.routed_to, r.reason, r.attempt)
            for r in StageRun.objects.filter(task=task).order_by("stage_key", "replica")
        ]
        events = [
            (e.kind, e.stage_key, e.actor_id, e.data)
            for e in TaskEvent.objects.filter(task=task).order_by("pk")
        ]
        return runs, events

    runs, events = shape(one)
    assert runs == [
        ("annotate", "annotate", 0, "ready", "", "", 1),
        ("review", "review", 0, "blocked", "", "", 1),
    ]
    assert events == [
        (
            "created",
            "",
            manager.pk,
            {
                "blueprint": "default v1",
                "stages": [{"kind": "stage_ready", "stage": "annotate", "reason": ""}],
            },
        ),
    ]
    for task in many:
        assert shape(task) == (runs, events)
    # The tasks are usable at once: a stage action on a bulk-created task.
    services.stage_start(actor=manager, task=many[0], stage_key="annotate")
    assert Task.objects.get(pk=many[0].pk).status == "in_progress"


def test_bulk_creation_links_datasets_and_people(project, manager, dataset):
    created = services.task_create_many(
        actor=manager,
        project=project,
        items=[
            {
                "name": f"t{i}",
                "datasets": [dataset.pk],
                "annotators": ["ana"],
                "reviewers": ["ravi"],
            }
            for i in range(4)
        ],
    )
    for task in created:
        assert [d.pk for d in task.datasets.all()] == [dataset.pk]
        assert [u.username for u in task.annotators.all()] == ["ana"]
        assert [u.username for u in task.reviewers.all()] == ["ravi"]


def test_stage_actions_stay_within_their_query_bounds(
    project, manager, annotator, reviewer, django_assert_max_num_queries
):
    task = services.task_create(actor=manager, project=project, name="t")
    services.task_create(actor=manager, project=project, name="warm")  # spec cached
    with django_assert_max_num_queries(14):
        services.stage_start(actor=annotator, task=task, stage_key="annotate")
    with django_assert_max_num_queries(20):
        services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    with django_assert_max_num_queries(23):
        services.stage_review(actor=reviewer, task=task, stage_key="review", decision="approve")
    assert Task.objects.get(pk=task.pk).status == "review_passed"


def test_a_unique_id_taken_meanwhile_is_an_integrity_error_from_copy(project, manager):
    from django.db import IntegrityError, transaction

    from tasks.services.bulk import copy_available, copy_rows

    if not copy_available():
        pytest.skip("COPY is PostgreSQL's")
    taken = services.task_create(actor=manager, project=project, name="a", unique_id="ep-1")
    row = {
        "project_id": project.pk,
        "blueprint_id": taken.blueprint_id,
        "name": "b",
        "unique_id": "ep-1",
    }
    with pytest.raises(IntegrityError), transaction.atomic():
        copy_rows(Task, [row])
    assert Task.objects.filter(project=project).count() == 1


def test_copy_rows_writes_each_row_given_or_default_columns(project, manager):
    """Rows with the same keys (read with one call per row) and rows with different keys
    store the same thing; a JSON object shared by rows is written to each."""
    from tasks.services.bulk import copy_available, copy_rows

    if not copy_available():
        pytest.skip("COPY is PostgreSQL's")
    task = services.task_create(actor=manager, project=project, name="t")
    shared = {"reason": "r", "n": [1, 2]}
    copy_rows(
        TaskEvent,
        [
            {"task_id": task.pk, "kind": "same", "stage_key": "a", "data": shared},
            {"task_id": task.pk, "kind": "same", "stage_key": "b", "data": shared},
        ],
    )
    copy_rows(
        TaskEvent,
        [
            {"task_id": task.pk, "kind": "mixed", "data": shared},
            {"task_id": task.pk, "kind": "mixed", "stage_key": "c", "actor_id": manager.pk},
        ],
    )
    stored = [
        (e.kind, e.stage_key, e.actor_id, e.data, e.created_at is not None)
        for e in TaskEvent.objects.filter(task=task, kind__in=["same", "mixed"]).order_by("pk")
    ]
    assert stored == [
        ("same", "a", None, shared, True),
        ("same", "b", None, shared, True),
        ("mixed", "", None, shared, True),
        ("mixed", "c", manager.pk, {}, True),
    ]


def test_the_unique_id_check_reads_the_unique_index_for_a_thousand_ids(project, manager):
    """With 1,000 ids PostgreSQL cannot prove the partial unique index's condition from an
    IN list (it stops at 100 values) and scanned every task of the table per request."""
    from django.db import connection

    from tasks.services.creation import tasks_with_unique_ids

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's plan")
    services.task_create_many(
        actor=manager,
        project=project,
        items=[{"name": f"t{i}", "unique_id": f"u-{i}"} for i in range(2000)],
    )
    found = tasks_with_unique_ids(project, [f"v-{i}" for i in range(1000)] + ["u-7"])
    assert list(found.values_list("unique_id", flat=True)) == ["u-7"]
    sql, params = found.values_list("unique_id", "id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tasks_task")
        # A small table: the plan a big one gets (a lookup per id), to show the index serves.
        for setting in ("enable_seqscan", "enable_hashjoin", "enable_mergejoin"):
            cursor.execute(f"SET LOCAL {setting} = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "task_unique_id_per_project" in plan, plan


def test_copy_rows_in_binary_stores_every_column_type_as_the_orm_does(project, manager):
    """COPY goes in PostgreSQL's binary format (no text parsing of timestamps and numbers):
    integers, floats, booleans, timestamps, NULLs, text and JSON (with non-ASCII and
    nesting) read back exactly as the ORM's own insert of the same values."""
    import datetime as dt

    from tasks.services.bulk import _binary_types, copy_available, copy_rows

    if not copy_available():
        pytest.skip("COPY is PostgreSQL's")
    for model in (Task, StageRun, TaskEvent):  # the creation path's tables go in binary
        assert _binary_types(list(model._meta.concrete_fields)) is not None
    task = services.task_create(actor=manager, project=project, name="t")
    at = dt.datetime(2026, 11, 29, 8, 30, 15, 123456, tzinfo=dt.UTC)
    values = {
        "task_id": task.pk,
        "project_id": project.pk,
        "stage_key": "étape",
        "kind": "annotate",
        "replica": 3,
        "status": "in_progress",
        "attempt": 2,
        "reason": "naïve — “quoted”\ttab\nline",
        "agreement": 0.875,
        "active_seconds": 12.5,
        "started_at": at,
        "assignee_id": manager.pk,
        "rejected": True,
        "qc_flags": {"größe": [1, 2.5, None, True], "nested": {"a": "\u00e9\\"}},
        "samples_total": 7,
    }
    copy_rows(StageRun, [values])
    StageRun.objects.create(**{**values, "replica": 4})
    copied, made = (
        StageRun.objects.filter(task=task, stage_key="étape").order_by("replica").values()
    )
    for row in (copied, made):
        row.pop("id"), row.pop("replica")
    assert copied == made
    assert (copied["started_at"], copied["qc_flags"], copied["completed_at"]) == (
        at,
        values["qc_flags"],
        None,
    )


def test_copy_rows_of_tuples_store_what_rows_of_dicts_store(project, manager):
    """Creation hands its runs and events over as tuples of named fields (no dict a row):
    the same rows as dicts, a shared JSON object dumped for each row; an unknown field is
    refused before anything is written."""
    from tasks.services.bulk import copy_available, copy_rows

    if not copy_available():
        pytest.skip("COPY is PostgreSQL's")
    task = services.task_create(actor=manager, project=project, name="t")
    shared = {"reason": "r", "n": [1, 2]}
    fields = ("kind", "stage_key", "actor_id", "data", "task_id")
    copy_rows(
        TaskEvent,
        [("tuple", "a", manager.pk, shared, task.pk), ("tuple", "b", None, shared, task.pk)],
        fields=fields,
    )
    copy_rows(
        TaskEvent,
        [dict(zip(fields, ("dict", "a", manager.pk, shared, task.pk), strict=True))],
    )
    stored = [
        (e.kind, e.stage_key, e.actor_id, e.data, e.created_at is not None)
        for e in TaskEvent.objects.filter(task=task, kind__in=["tuple", "dict"]).order_by("pk")
    ]
    assert stored == [
        ("tuple", "a", manager.pk, shared, True),
        ("tuple", "b", None, shared, True),
        ("dict", "a", manager.pk, shared, True),
    ]
    with pytest.raises(ValueError, match="no column colour"):
        copy_rows(TaskEvent, [("x", task.pk, "red")], fields=("kind", "task_id", "colour"))


def test_due_dates_given_as_text_dates_or_naive_times_are_stored_as_the_orm_would(project, manager):
    """COPY's binary format takes datetimes only: the service parses a due date given as
    text or a date (as the ORM's save would) and refuses one that is not a date, naming the
    item."""
    import datetime as dt

    tasks = services.task_create_many(
        actor=manager,
        project=project,
        items=[
            {"name": "text", "due_at": "2030-01-02T03:04:05Z"},
            {"name": "date", "due_at": dt.date(2030, 1, 2)},
            {"name": "naive", "due_at": dt.datetime(2030, 1, 2, 3, 4, 5)},  # noqa: DTZ001
            {"name": "none", "due_at": ""},
        ],
    )
    stored = dict(Task.objects.filter(pk__in=[t.pk for t in tasks]).values_list("name", "due_at"))
    assert stored["text"] == dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert stored["date"] is not None and stored["naive"] is not None
    assert stored["none"] is None
    with pytest.raises(ApplicationError) as info:
        services.task_create_many(
            actor=manager, project=project, items=[{"name": "a"}, {"name": "b", "due_at": "soon"}]
        )
    assert info.value.field == "[1].due_at"
