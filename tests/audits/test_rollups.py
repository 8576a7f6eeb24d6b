"""The quality rollups (audits.rollups) kept up to date by the services: after real work —
reviews, a reject and its rework, audits, findings answered and disputes settled days later,
a task deleted — the figures read from the rollups equal those of a rebuild from scratch."""

import datetime as dt

import pytest
import time_machine

from audits import services as audits
from audits.models import QualityDay, QualityDirty
from audits.rollups import quality_rebuild, quality_refresh, quality_touch
from audits.selectors import project_quality
from tasks import services
from tests.audits.test_audit_services import delivered

pytestmark = pytest.mark.django_db

# Monday 2 November 2026 and the days after it, at noon UTC.
MON = dt.datetime(2026, 11, 2, 12, tzinfo=dt.UTC)
TUE, NEXT_MON = MON + dt.timedelta(days=1), MON + dt.timedelta(days=7)


def views(project, annotator):
    """The figures read every way the rollups are grouped and narrowed."""
    return [
        project_quality(project=project),
        project_quality(project=project, period="day"),
        project_quality(project=project, period="week", stage="annotate"),
        project_quality(project=project, period="day", annotator=annotator.pk),
        project_quality(project=project, stage="annotate", annotator=annotator.pk),
        project_quality(project=project, start=MON.date(), end=MON.date()),
    ]


def assert_same_as_rebuilt(project, annotator):
    """The rollups as the services left them (only days marked, never the whole project)
    answer as a rebuild of every day does."""
    assert not QualityDirty.objects.filter(project=project, day__isnull=True).exists()
    incremental = views(project, annotator)
    assert not QualityDirty.objects.filter(project=project).exists()
    quality_rebuild(project)
    assert views(project, annotator) == incremental
    return incremental[1]  # by day


def by_day(figures) -> dict[str, dict]:
    return {entry["key"]: entry for entry in figures["by_period"]}


@pytest.fixture
def work(project, manager, annotator, reviewer, dataset):
    """Monday: one task approved first time, one rejected then approved on its rework."""
    with time_machine.travel(MON, tick=False):
        first = delivered(project, manager, annotator, reviewer, dataset, name="First")
        second = services.task_create(
            actor=manager, project=project, name="Second", datasets=[dataset.pk],
            annotators=["ana"],
        )  # fmt: skip
        services.stage_start(actor=annotator, task=second, stage_key="annotate")
        sample = dataset.samples.order_by("index").first()
        services.annotation_create(
            actor=annotator, task=second, stage="annotate", label="object", sample=sample.pk,
            data={"frame": 0, "x": 1, "y": 1, "w": 4, "h": 4},
        )  # fmt: skip
        services.stage_submit(actor=annotator, task=second, stage_key="annotate")
        services.stage_review(
            actor=reviewer, task=second, stage_key="review", decision="reject", comment="Redo"
        )
        services.stage_submit(actor=annotator, task=second, stage_key="annotate")
        services.stage_review(actor=reviewer, task=second, stage_key="review", decision="approve")
    return first, second


def test_reviews_and_rework_match_a_rebuild(project, annotator, work):
    figures = assert_same_as_rebuilt(project, annotator)
    assert figures["counts"]["reviewed"] == 2 and figures["first_pass_rate"] == 0.5
    assert list(by_day(figures)) == ["2026-11-02"]


def test_a_dispute_settled_a_week_later_moves_the_audits_day(project, annotator, reviewer, work):
    first, _ = work
    with time_machine.travel(TUE, tick=False):
        audit = audits.audit_create(actor=reviewer, task=first, kind="fixless")
        wrong = audits.finding_add(
            actor=reviewer, audit=audit, type="error", category="geometry",
            annotation=first.boxes[0].pk,
        )  # fmt: skip
        audits.audit_complete(actor=reviewer, audit=audit)
        audits.finding_respond(actor=annotator, finding=wrong, response="dispute", note="No")
    tuesday = by_day(assert_same_as_rebuilt(project, annotator))["2026-11-03"]
    assert (tuesday["accuracy"], tuesday["counts"]["audits"]) == (1.0, 1)

    with time_machine.travel(NEXT_MON, tick=False):
        audits.finding_settle(actor=reviewer, finding=wrong, uphold=True)
    assert set(QualityDirty.objects.values_list("day", flat=True)) == {TUE.date()}
    days = by_day(assert_same_as_rebuilt(project, annotator))
    assert days["2026-11-03"]["accuracy"] == round(2 / 3, 4)  # 3 boxes, one wrong
    assert "2026-11-09" not in days


def test_a_finding_accepted_later_and_a_newer_audit_move_their_days(
    project, annotator, reviewer, manager, work
):
    first, _ = work
    with time_machine.travel(TUE, tick=False):
        audit = audits.audit_create(actor=reviewer, task=first, kind="fixless")
        wrong = audits.finding_add(
            actor=reviewer, audit=audit, type="error", category="wrong_class",
            annotation=first.boxes[1].pk,
        )  # fmt: skip
        audits.audit_complete(actor=reviewer, audit=audit)
    assert by_day(assert_same_as_rebuilt(project, annotator))["2026-11-03"]["accuracy"] == 1.0

    with time_machine.travel(TUE + dt.timedelta(days=2), tick=False):
        audits.finding_respond(actor=annotator, finding=wrong, response="accept")
    figures = assert_same_as_rebuilt(project, annotator)
    assert by_day(figures)["2026-11-03"]["accuracy"] == round(2 / 3, 4)
    assert figures["errors_by_category"]["wrong_class"] == 1

    # A newer audit of the unit, a week on, is the one that counts: Tuesday's stops.
    with time_machine.travel(NEXT_MON, tick=False):
        audits.audit_complete(
            actor=manager, audit=audits.audit_create(actor=manager, task=first, kind="fixless")
        )
    days = by_day(assert_same_as_rebuilt(project, annotator))
    assert "2026-11-03" not in days
    assert (days["2026-11-09"]["accuracy"], days["2026-11-09"]["counts"]["audits"]) == (1.0, 1)


def test_a_deleted_task_takes_its_figures_with_it(project, manager, annotator, work):
    first, _ = work
    assert project_quality(project=project)["counts"]["reviewed"] == 2
    services.task_delete(actor=manager, task=first)
    figures = project_quality(project=project)
    assert (figures["counts"]["reviewed"], figures["first_pass_rate"]) == (1, 0.0)
    quality_rebuild(project)
    assert project_quality(project=project) == figures


def test_a_read_with_nothing_dirty_is_three_queries(
    project, annotator, work, django_assert_max_num_queries
):
    quality_refresh(project)
    for kwargs in ({}, {"period": "week"}, {"period": "day", "annotator": annotator.pk}):
        with django_assert_max_num_queries(3):  # dirty marks?, the rollups, the usernames
            project_quality(project=project, **kwargs)


def test_touch_marks_once_and_refresh_takes_the_marks(project, work):
    quality_touch(project.pk, [MON, MON.date(), None])
    quality_touch(project.pk)
    quality_touch(project.pk)
    assert sorted(QualityDirty.objects.values_list("day", flat=True), key=str) == [
        MON.date(),
        None,
    ]
    quality_refresh(project)
    assert not QualityDirty.objects.exists()
    assert QualityDay.objects.filter(project=project, day=MON.date()).exists()


def test_deleting_an_annotation_named_by_findings_rebuilds_their_audits_day(
    project, manager, annotator, reviewer, dataset
):
    """Two counted errors on one box count once; once the box is gone (deleted in the
    rework a standard audit asked for) each finding counts on its own, on the audit's day."""
    project.delivery = "stage"
    project.save(update_fields=["delivery"])
    with time_machine.travel(MON, tick=False):
        task = delivered(project, manager, annotator, reviewer, dataset, boxes=2)
        audit = audits.audit_create(actor=reviewer, task=task, stage="annotate", kind="standard")
        for note in ("Too loose", "Wrong object"):
            finding = audits.finding_add(
                actor=reviewer, audit=audit, type="error", annotation=task.boxes[0].pk, note=note
            )
            audits.finding_respond(actor=annotator, finding=finding, response="accept")
        audits.audit_complete(actor=reviewer, audit=audit, decision="reject")
        assert project_quality(project=project)["counts"]["errors"] == 1
    with time_machine.travel(NEXT_MON, tick=False):
        services.annotation_delete(actor=annotator, annotation=task.boxes[0])
        figures = assert_same_as_rebuilt(project, annotator)
    assert figures["counts"]["errors"] == 2
