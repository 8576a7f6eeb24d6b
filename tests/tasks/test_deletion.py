"""Deleting tasks — one at a time or in a batch — removes every row that depends on them
(whatever tables exist), and never a dataset or a sample."""

import pytest
from django.apps import apps

from audits.models import (
    AgreementScore,
    Audit,
    AuditedWork,
    AuditFinding,
    AuditFix,
    ReviewOutcome,
)
from experience.models import Post
from experience.services import post_create
from projects.models import Dataset, Sample
from tasks import batch, services
from tasks.models import (
    AnnotationReview,
    Delivery,
    DeliveryAttempt,
    StageRun,
    Task,
    TaskDeletion,
    TaskEvent,
)

pytestmark = pytest.mark.django_db


def dependants():
    """Every model with a foreign key to Task (auto-created many-to-many tables included)."""
    return sorted(
        (
            (model, field.name)
            for model in apps.get_models(include_auto_created=True)
            for field in model._meta.concrete_fields
            if field.is_relation and field.related_model is Task
        ),
        key=lambda pair: pair[0]._meta.label,
    )


def task_with_every_child(project, manager, annotator, reviewer, dataset) -> Task:
    task = services.task_create(
        actor=manager,
        project=project,
        name="Everything",
        datasets=[dataset.pk],
        annotators=["ana"],
        reviewers=["ravi"],
        callback_url="http://127.0.0.1:9/hook",
    )
    services.stage_start(actor=annotator, task=task, stage_key="annotate")
    samples = list(dataset.samples.order_by("index"))
    box = services.annotation_create(
        actor=annotator,
        task=task,
        stage="annotate",
        label="object",
        sample=samples[0].pk,
        data={"frame": 1, "x": 1, "y": 1, "w": 4, "h": 4},
    )
    services.sample_mark_invalid(
        actor=annotator, task=task, sample=samples[1].pk, stage="annotate", reason="blurred"
    )
    problem = services.comment_create(
        actor=reviewer, task=task, body="Check this", kind="problem", annotation=box.pk
    )
    services.comment_create(
        actor=annotator, task=task, body="Fixed", kind="solution", parent=problem.pk
    )
    AnnotationReview.objects.create(
        task=task,
        review_stage="review",
        stage_key="annotate",
        annotation=box,
        verdict=AnnotationReview.Verdict.REJECTED,
        comment=problem,
        reviewer=reviewer,
    )
    delivery = Delivery.objects.create(task=task, payload={})
    DeliveryAttempt.objects.create(delivery=delivery, url="http://127.0.0.1:9/hook")
    # Quality measurements and an audit with a finding, work and a fix.
    ReviewOutcome.objects.create(
        project=project, task=task, stage_key="annotate", attempt=1, source="review", accepted=True
    )
    AgreementScore.objects.create(
        project=project, task=task, stage_key="annotate", measure="box_iou", score=0.5
    )
    audit = Audit.objects.create(project=project, task=task, kind="fixless")
    AuditedWork.objects.create(
        audit=audit, project=project, task=task, stage_key="annotate", completed_at=task.created_at
    )
    AuditFinding.objects.create(audit=audit, project=project, task=task, type="error")
    AuditFix.objects.create(audit=audit, annotation=box, action="update", before={}, after={})
    # An experience post pinned to the task and its box: the post stays, its pins go.
    post_create(
        actor=annotator,
        project=project,
        title="Tip",
        body="Tight.",
        task=task.pk,
        annotation=box.pk,
    )
    return task


@pytest.mark.parametrize("how", ["one", "batch"])
def test_deleting_a_task_hides_it_at_once_and_the_purge_removes_every_kind_of_child_row(
    how,
    project,
    manager,
    annotator,
    reviewer,
    dataset,
    run_jobs,
    django_capture_on_commit_callbacks,
):
    task = task_with_every_child(project, manager, annotator, reviewer, dataset)
    kept = services.task_create(actor=manager, project=project, name="Kept", datasets=[dataset.pk])
    for model, field in dependants():
        # A new kind of child row must be added to the fixture above, so that this test
        # really deletes one of each.
        assert model._base_manager.filter(**{field: task}).exists(), model._meta.label
    assert DeliveryAttempt.objects.filter(delivery__task=task).exists()

    with django_capture_on_commit_callbacks(execute=True):
        if how == "one":
            services.task_delete(actor=manager, task=task)
        else:
            selection = batch.batch_selection(user=manager, ids=[task.pk])
            assert batch.task_batch_delete(actor=manager, selection=selection) == 1

    # Hidden at once; the rows nothing else refers to went with the request (its runs: My
    # work and claiming no longer see it) but its history, which waits for the purge, and a
    # TaskDeletion row says who deleted it.
    assert not Task.objects.filter(pk=task.pk).exists()
    assert not project.tasks.filter(pk=task.pk).exists()
    assert Task.all_objects.filter(pk=task.pk, deleted_at__isnull=False).exists()
    assert not StageRun.objects.filter(task_id=task.pk).exists()
    assert TaskEvent.objects.filter(task_id=task.pk).exists()
    record = TaskDeletion.objects.get(task_ids__contains=[task.pk])
    assert (record.project_id, record.actor_id, record.task_ids) == (
        project.pk,
        manager.pk,
        [task.pk],
    )
    # The purge job (a real worker) removes the task and everything else.
    run_jobs("default")
    assert not Task.all_objects.filter(pk=task.pk).exists()
    for model, field in dependants():
        assert not model._base_manager.filter(**{f"{field}_id": task.pk}).exists(), model
    assert not DeliveryAttempt.objects.exists()
    assert Dataset.objects.filter(pk=dataset.pk).exists()
    assert Sample.objects.filter(dataset=dataset).count() == 2
    assert kept.runs.exists() and kept.datasets.exists()
    assert Post.objects.filter(title="Tip", task=None, annotation=None).exists()
    # Who deleted it outlives the purge (no reference to the task row).
    assert TaskDeletion.objects.filter(task_ids__contains=[task.pk], actor=manager).exists()


def test_batch_delete_of_tasks_with_comments_answers_over_the_api(
    api_as, project, manager, annotator, reviewer, dataset
):
    task = task_with_every_child(project, manager, annotator, reviewer, dataset)
    response = api_as(manager).post(
        "/api/v1/tasks/batch/", {"action": "delete", "ids": [task.pk]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"affected": 1}
