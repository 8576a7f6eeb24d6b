"""The stage funnel's completed runs waiting for an open review (``in_review`` of a reviewed
stage): where the pipeline makes every open review run wait on completed work, PostgreSQL
reads them from the kept counts of the open review runs (``progress._waiting_per_review``)
instead of joining the open reviews to their tasks' completed runs — a join that grew with
the open reviews (150,000 at 1,000,000 tasks). The figure is the same as counting the runs,
through the services and for a pipeline that is partly joined (a skippable reviewed stage),
and on SQLite (counted directly)."""

from pathlib import Path

import pytest
import yaml
from django.db import connection
from django.db.models import Exists, OuterRef
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from blueprints.services import blueprint_activate_newest, blueprint_save
from projects import counts, progress
from tasks import batch, services
from tasks.models import StageRun, Task

pytestmark = pytest.mark.django_db
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "blueprints"


def counted(project, key: str) -> int:
    """The completed runs of ``key`` whose task has an open run of a stage reviewing it."""
    spec = progress._active_spec(project)
    reviews = [s.key for s in spec.stages if key in (getattr(s, "reviews", None) or [])]
    open_review = StageRun.objects.filter(
        task_id=OuterRef("task_id"), stage_key__in=reviews, status__in=["ready", "in_progress"]
    )
    return (
        StageRun.objects.filter(project=project, stage_key=key, status="completed")
        .filter(Exists(open_review))
        .count()
    )


def funnel(project) -> tuple[dict, int]:
    """Each stage's (in review, done) and the funnel's queries."""
    with CaptureQueriesContext(connection) as captured:
        stages = progress.stage_funnel(project=project)
    return {s.key: (s.in_review, s.done) for s in stages}, len(captured.captured_queries)


def joined(project, monkeypatch) -> tuple[dict, int]:
    """The funnel with every waiting count joined (as before the kept path)."""
    with monkeypatch.context() as m:
        m.setattr(progress, "_waiting_per_review", lambda versions, reviewed_by: {})
        return funnel(project)


def by_counting(project, monkeypatch) -> dict:
    with monkeypatch.context() as m:
        m.setattr(counts, "kept", lambda: False)
        return funnel(project)[0]


def test_the_runs_waiting_for_review_follow_submit_review_and_delete(
    project, manager, annotator, reviewer, monkeypatch, django_capture_on_commit_callbacks
):
    made = services.task_create_many(
        actor=manager, project=project, items=[{"name": f"t{i}"} for i in range(4)]
    )

    def check(in_review: int, done: int) -> None:
        figures, queries = funnel(project)
        assert figures["annotate"] == (in_review, done)
        assert counted(project, "annotate") == in_review
        assert by_counting(project, monkeypatch) == figures
        if connection.vendor == "postgresql":  # kept: one query less than the join
            assert joined(project, monkeypatch) == (figures, queries + 1)

    check(0, 0)
    for task in made[:3]:
        services.stage_start(actor=annotator, task=task, stage_key="annotate")
        services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    check(3, 0)  # three submitted: their reviews are ready
    services.stage_start(actor=reviewer, task=made[0], stage_key="review")
    check(3, 0)  # a review in progress still waits
    services.stage_review(actor=reviewer, task=made[0], stage_key="review", decision="approve")
    check(2, 1)
    services.stage_start(actor=reviewer, task=made[1], stage_key="review")
    services.stage_review(
        actor=reviewer, task=made[1], stage_key="review", decision="reject", comment="again"
    )
    check(1, 1)  # the rejected work is back in progress, not waiting
    selection = batch.batch_selection(user=manager, ids=[made[2].pk])
    with django_capture_on_commit_callbacks(execute=True):
        assert batch.task_batch_delete(actor=manager, selection=selection) == 1
    check(0, 1)  # the deleted task's waiting run is gone
    services.stage_submit(actor=annotator, task=made[1], stage_key="annotate")
    check(1, 1)  # the rework waits for its review again


def test_a_partly_kept_pipeline_equals_counting(client, project, manager, monkeypatch):
    """driving-scene: ``audit`` reviews ``boxes`` (never skipped: kept), ``weather`` (a
    consensus of 3: kept, three runs per open audit) and ``truck_detail`` (skipped by its
    condition on some tasks while the audit is open: joined). Counting the three by the
    join failed before (its union of unions: the Overview answered 500)."""
    definition = yaml.safe_load((EXAMPLES / "driving-scene.yaml").read_text())
    blueprint, _ = blueprint_save(actor=manager, project=project, definition=definition)
    blueprint_activate_newest(actor=manager, project=project, name=blueprint.name)
    made = services.task_create_many(
        actor=manager, project=project, items=[{"name": f"t{i}"} for i in range(6)]
    )
    ids = [t.pk for t in made]
    runs = StageRun.objects.filter(task_id__in=ids)
    audited, trucks, reviewing = ids[:4], ids[:2], ids[1:3]  # as the engine leaves them
    runs.filter(task_id__in=audited, stage_key__in=["boxes", "weather"]).update(status="completed")
    runs.filter(task_id__in=audited, stage_key="truck_detail").update(status="skipped")
    runs.filter(task_id__in=trucks, stage_key="truck_detail").update(status="completed")
    runs.filter(task_id__in=audited, stage_key="audit_route").update(status="completed")
    runs.filter(task_id__in=audited, stage_key="audit").update(status="completed")
    runs.filter(task_id__in=reviewing, stage_key="audit").update(status="ready")
    runs.filter(task_id=ids[1], stage_key="audit").update(status="in_progress")
    Task.objects.filter(pk__in=ids).update(status="in_progress")
    figures, queries = funnel(project)
    assert figures["boxes"][0] == counted(project, "boxes") == 2
    assert figures["weather"][0] == counted(project, "weather") == 6  # 3 replicas x 2
    assert figures["truck_detail"][0] == counted(project, "truck_detail") == 1  # one skipped
    assert by_counting(project, monkeypatch) == figures
    client.force_login(manager)
    page = client.get(reverse("projects:detail", args=[project.slug]))
    assert page.status_code == 200 and "truck detail" in page.content.decode().lower()
    if connection.vendor == "postgresql":
        assert progress._waiting_per_review(
            [progress._active_spec(project)],
            {"boxes": ["audit"], "weather": ["audit"], "truck_detail": ["audit"]},
        ) == {"boxes": 1, "weather": 3}
        assert joined(project, monkeypatch) == (figures, queries)  # truck_detail still joined
