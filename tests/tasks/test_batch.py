import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from projects.models import Dataset
from tasks import batch, services
from tasks.models import Annotation, StageRun, Task, TaskEvent

pytestmark = pytest.mark.django_db


def make(project, manager, n, **extra):
    return services.task_create_many(
        actor=manager, project=project, items=[{"name": f"t{i}", **extra} for i in range(n)]
    )


def queries(fn) -> int:
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx.captured_queries)


@pytest.mark.parametrize(
    "action",
    [
        lambda user, sel: batch.task_batch_update(actor=user, selection=sel, priority="urgent"),
        lambda user, sel: batch.task_batch_assign(
            actor=user, selection=sel, annotators=["ana"], reviewers=["ravi"]
        ),
        lambda user, sel: batch.task_batch_delete(actor=user, selection=sel),
    ],
    ids=["update", "assign", "delete"],
)  # fmt: skip
def test_batch_actions_take_the_same_queries_for_10_and_1000_tasks(project, manager, action):
    counts = {}
    for n in (10, 1000):
        Task.objects.all().delete()
        make(project, manager, n, batch=f"b{n}")
        selection = batch.batch_selection(user=manager, filters={"batch": f"b{n}"})
        counts[n] = queries(lambda sel=selection: action(manager, sel))
    assert counts[10] == counts[1000], counts


def test_batch_delete_keeps_datasets(
    project, manager, annotator, dataset, run_jobs, django_capture_on_commit_callbacks
):
    tasks = make(project, manager, 5, datasets=[dataset.pk], annotators=["ana"])
    services.stage_start(actor=annotator, task=tasks[0], stage_key="annotate")
    services.annotation_create(
        actor=annotator, task=tasks[0], stage="annotate", label="outcome", data={"value": "success"}
    )
    selection = batch.batch_selection(user=manager, ids=[t.pk for t in tasks[:3]])
    with django_capture_on_commit_callbacks(execute=True):
        assert batch.task_batch_delete(actor=manager, selection=selection) == 3
    assert Task.objects.count() == 2
    run_jobs("default")  # the purge
    assert Task.all_objects.count() == 2
    assert Annotation.objects.count() == 0
    assert StageRun.objects.filter(task_id=tasks[0].pk).count() == 0
    assert Dataset.objects.filter(pk=dataset.pk).exists()
    assert dataset.samples.count() == 2


def test_batch_assign_and_update_write_events(project, manager):
    tasks = make(project, manager, 4)
    selection = batch.batch_selection(user=manager, ids=[t.pk for t in tasks])
    batch.task_batch_assign(actor=manager, selection=selection, annotators=["ana"])
    assert {u.username for t in tasks for u in t.annotators.all()} == {"ana"}
    batch.task_batch_update(actor=manager, selection=selection, batch="night", priority="high")
    assert set(Task.objects.values_list("batch", "priority")) == {("night", "high")}
    assert TaskEvent.objects.filter(kind="assigned").count() == 4
    assert TaskEvent.objects.filter(kind="updated").count() == 4
    from core.exceptions import ApplicationError

    with pytest.raises(ApplicationError, match="ravi is not a annotator"):
        batch.task_batch_assign(actor=manager, selection=selection, annotators=["ravi"])


def test_batch_only_touches_tasks_the_user_manages(project, manager, outsider):
    from projects.services import project_create

    make(project, manager, 3)
    outsider.user_permissions.add(*manager.user_permissions.all())
    own = project_create(actor=outsider, name="Other")
    services.task_create(actor=outsider, project=own, name="theirs")
    selection = batch.batch_selection(user=outsider, filters={})
    assert batch.task_batch_delete(actor=outsider, selection=selection) == 1
    assert Task.objects.filter(project=project).count() == 3


def test_batch_api(api_as, manager, annotator, project):
    tasks = make(project, manager, 6, batch="x")
    client = api_as(manager)
    response = client.post(
        "/api/v1/tasks/batch/",
        {"action": "update", "filter": {"batch": "x"}, "priority": "low"},
        format="json",
    )
    assert response.json() == {"affected": 6}
    response = client.post(
        "/api/v1/tasks/batch/",
        {"action": "delete", "ids": [tasks[0].pk, tasks[1].pk]},
        format="json",
    )
    assert response.json() == {"affected": 2}
    assert (
        client.post(
            "/api/v1/tasks/batch/", {"action": "update", "ids": [1]}, format="json"
        ).status_code
        == 400
    )
    assert (
        client.post(
            "/api/v1/tasks/batch/", {"action": "delete", "filter": {"colour": "red"}}, format="json"
        ).status_code
        == 400
    )
    assert (
        api_as(annotator)
        .post("/api/v1/tasks/batch/", {"action": "delete", "filter": {}}, format="json")
        .status_code
        == 403
    )
    assert Task.objects.count() == 4
