"""Quality figures against answers computed by hand (audits.selectors, the quality API).

The measurement rows are inserted directly: they are what the selectors read. Rows written
with the ORM skip the services that mark their days for the rollups (audits.rollups), so each
helper here marks the whole project with ``quality_touch(project.pk)``.
"""

import datetime as dt

import krippendorff
import numpy as np
import pytest

from audits.models import AgreementScore, Audit, AuditedWork, AuditFinding, ReviewOutcome
from audits.rollups import quality_refresh, quality_touch
from audits.selectors import CATEGORIES, COUNT_KEYS, audited_tasks, project_quality
from projects import services as project_services
from tasks import services as task_services
from tasks.models import Annotation, StageRun
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

UTC = dt.UTC
# Monday 2 November 2026 (ISO week 45), Wednesday of that week, Tuesday of the next.
MON, WED, NEXT_TUE = dt.date(2026, 11, 2), dt.date(2026, 11, 4), dt.date(2026, 11, 10)


def at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=UTC)


@pytest.fixture
def bob(db):
    return UserFactory(username="bob")


@pytest.fixture
def carl(db):
    return UserFactory(username="carl")


@pytest.fixture
def tasks(project, manager):
    return [
        task_services.task_create(actor=manager, project=project, name=f"Task {i}")
        for i in range(2)
    ]


def review(task, annotator, *, accepted, first=True, stage="annotate", when=MON):
    row = ReviewOutcome.objects.create(
        project=task.project,
        task=task,
        stage_key=stage,
        attempt=1,
        annotator=annotator,
        source=ReviewOutcome.Source.REVIEW,
        accepted=accepted,
        first=first,
    )
    ReviewOutcome.objects.filter(pk=row.pk).update(created_at=at(when))
    quality_touch(task.project_id)  # rows written with the ORM: rebuild the whole project
    return row


@pytest.fixture
def reviews(tasks, annotator, bob):
    """10 first decisions, 7 accepted: ana 5 of 6 on annotate (Mon, Wed, next Tue), bob 2 of
    4 on objects; plus later decisions (not first) that must not count."""
    t = tasks[0]
    for i, accepted in enumerate([True, True, True, True, True, False]):
        review(t, annotator, accepted=accepted, when=[MON, WED, NEXT_TUE][i % 3])
    for accepted in [True, True, False, False]:
        review(t, bob, accepted=accepted, stage="objects", when=NEXT_TUE)
    for _ in range(3):
        review(t, bob, accepted=True, first=False, stage="objects")


def audit(task, *, current=True, when=WED):
    quality_touch(task.project_id)  # rows written with the ORM: rebuild the whole project
    return Audit.objects.create(
        project=task.project,
        task=task,
        kind=Audit.Kind.FIXLESS,
        status=Audit.Status.COMPLETED,
        decision=Audit.Decision.ACCEPT,
        current=current,
        completed_at=at(when),
    )


def work(a, stage, annotator, annotations):
    quality_touch(a.project_id)  # rows written with the ORM: rebuild the whole project
    return AuditedWork.objects.create(
        audit=a,
        project=a.project,
        task=a.task,
        stage_key=stage,
        annotator=annotator,
        annotations=annotations,
        current=a.current,
        completed_at=a.completed_at,
    )


def finding(a, stage, annotator, *, category="geometry", annotation=None, **kwargs):
    options = {
        "type": AuditFinding.Type.ERROR,
        "counts": True,
        "current": a.current,
        "state": AuditFinding.State.ACCEPTED,
    } | kwargs
    quality_touch(a.project_id)  # rows written with the ORM: rebuild the whole project
    return AuditFinding.objects.create(
        audit=a,
        project=a.project,
        task=a.task,
        stage_key=stage,
        annotator=annotator,
        category=category,
        annotation=annotation,
        **options,
    )


@pytest.fixture
def audits(tasks, annotator, bob):
    """One current audit of 40 annotations (ana 25 on annotate, bob 15 on objects) with six
    counted errors: ana 4 annotations (one with two findings), bob 1 annotation and 1
    finding naming none. Not counted: an open error, a flag, an older audit's error."""
    t = tasks[0]
    old = audit(t, current=False, when=MON)
    work(old, "annotate", annotator, 25)
    finding(old, "annotate", annotator, category="extraneous")
    current = audit(t)
    work(current, "annotate", annotator, 25)
    work(current, "objects", bob, 15)
    boxes = [
        Annotation.objects.create(task=t, stage_key=stage, label="cup", kind="box", author=who)
        for stage, who in [("annotate", annotator)] * 4 + [("objects", bob)]
    ]
    for box in boxes[:4]:
        finding(current, "annotate", annotator, annotation=box)
    finding(current, "annotate", annotator, category="attribute", annotation=boxes[0])
    finding(current, "objects", bob, category="wrong_class", annotation=boxes[4])
    finding(current, "objects", bob, category="other")
    finding(current, "objects", bob, counts=False, state=AuditFinding.State.OPEN)
    finding(current, "objects", bob, type=AuditFinding.Type.FLAG)
    return current


def test_first_pass_rate_is_seven_of_ten(project, reviews, annotator, bob):
    figures = project_quality(project=project)
    assert figures["first_pass_rate"] == 0.7
    assert (figures["counts"]["reviewed"], figures["counts"]["first_pass"]) == (10, 7)
    by_stage = {e["key"]: e["first_pass_rate"] for e in figures["by_stage"]}
    assert by_stage == {"annotate": round(5 / 6, 4), "objects": 0.5}
    by_person = {e["key"]: (e["user_id"], e["first_pass_rate"]) for e in figures["by_annotator"]}
    assert by_person == {"ana": (annotator.pk, round(5 / 6, 4)), "bob": (bob.pk, 0.5)}
    # Nothing else is measured yet.
    assert figures["accuracy"] is figures["consistency"] is figures["completeness"] is None


def test_accuracy_counts_distinct_accepted_errors_of_current_audits(project, audits):
    figures = project_quality(project=project)
    assert figures["accuracy"] == 0.85  # (40 - 6) / 40
    counts = figures["counts"]
    assert (counts["audits"], counts["audited_annotations"]) == (1, 40)
    assert (counts["errors"], counts["missing"]) == (6, 0)
    assert figures["errors_by_category"] == dict.fromkeys(CATEGORIES, 0) | {
        "geometry": 4,
        "attribute": 1,
        "wrong_class": 1,
        "other": 1,
    }
    # The audit looked at two stages: it counts once for the project, once for each stage.
    by_stage = {e["key"]: (e["accuracy"], e["counts"]["audits"]) for e in figures["by_stage"]}
    assert by_stage == {"annotate": (0.84, 1), "objects": (round(13 / 15, 4), 1)}
    by_person = {e["key"]: e["accuracy"] for e in figures["by_annotator"]}
    assert by_person == {"ana": 0.84, "bob": round(13 / 15, 4)}


def test_a_missing_finding_grows_the_denominator(project, audits, bob):
    finding(audits, "objects", bob, category="missing")
    figures = project_quality(project=project)
    assert figures["accuracy"] == round(34 / 41, 4)
    assert (figures["counts"]["errors"], figures["counts"]["missing"]) == (6, 1)
    assert figures["errors_by_category"]["missing"] == 1
    objects = next(e for e in figures["by_stage"] if e["key"] == "objects")
    assert objects["accuracy"] == round(13 / 16, 4)


def test_accuracy_never_goes_below_zero(project, tasks, annotator):
    a = audit(tasks[0])
    work(a, "annotate", annotator, 1)
    finding(a, "annotate", annotator)
    finding(a, "annotate", annotator)  # two errors naming no annotation, one annotation
    assert project_quality(project=project)["accuracy"] == 0.0


@pytest.fixture
def agreements(tasks, annotator, bob, carl):
    """ana–bob 0.8 (Mon) and 0.6 (Wed) on annotate, bob–carl 0.4 on objects (next Tue)."""
    t = tasks[0]
    for a, b, stage, score, when in [
        (annotator, bob, "annotate", 0.8, MON),
        (annotator, bob, "annotate", 0.6, WED),
        (bob, carl, "objects", 0.4, NEXT_TUE),
    ]:
        row = AgreementScore.objects.create(
            project=t.project,
            task=t,
            stage_key=stage,
            measure=AgreementScore.Measure.BOX,
            annotator_a=a,
            annotator_b=b,
            score=score,
        )
        AgreementScore.objects.filter(pk=row.pk).update(created_at=at(when))
    quality_touch(t.project_id)  # rows written with the ORM: rebuild the whole project


def test_consistency_is_the_mean_of_pair_scores(project, agreements, annotator):
    figures = project_quality(project=project)
    assert figures["consistency"] == 0.6
    assert figures["counts"]["agreement_pairs"] == 3
    assert {e["key"]: e["consistency"] for e in figures["by_stage"]} == {
        "annotate": 0.7,
        "objects": 0.4,
    }
    # Each pair counts for both people in it.
    assert {e["key"]: e["consistency"] for e in figures["by_annotator"]} == {
        "ana": 0.7,
        "bob": 0.6,
        "carl": 0.4,
    }
    mine = project_quality(project=project, annotator=annotator.pk)
    assert mine["consistency"] == 0.7
    assert [e["key"] for e in mine["by_annotator"]] == ["ana"]


def test_krippendorff_alpha_matches_a_hand_calculation():
    # Two coders, four units: coincidences o11=2, o12=o21=1, o22=4; n1=3, n2=5, n=8.
    # alpha = 1 - (n - 1) * (o12 + o21) / (2 * n1 * n2) = 1 - 7 * 2 / 30 = 8 / 15.
    data = np.array([[1, 1, 2, 2], [1, 2, 2, 2]], dtype=float)
    alpha = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    assert alpha == pytest.approx(8 / 15)


@pytest.fixture
def runs(tasks, manager, annotator, bob):
    """ana 8 of 10 samples (Mon), bob 5 of 5 with a QC flag (next Tue); review runs have no
    samples; one run of another project must not count."""
    first, second = tasks
    StageRun.objects.filter(task=first, stage_key="annotate").update(
        samples_total=10, samples_complete=8, assignee=annotator, submitted_at=at(MON)
    )
    StageRun.objects.filter(task=second, stage_key="annotate").update(
        samples_total=5,
        samples_complete=5,
        assignee=bob,
        submitted_at=at(NEXT_TUE),
        qc_flags=["Fewer than 2 boxes"],
    )
    other = project_services.project_create(actor=manager, name="Other")
    elsewhere = task_services.task_create(actor=manager, project=other, name="x")
    StageRun.objects.filter(task=elsewhere).update(samples_total=100, submitted_at=at(MON))
    for touched in (first.project_id, other.pk):  # rows written with the ORM: rebuild all
        quality_touch(touched)


def test_completeness_is_complete_over_total_samples(project, runs, annotator):
    figures = project_quality(project=project)
    assert figures["completeness"] == round(13 / 15, 4)
    counts = figures["counts"]
    assert (counts["samples_total"], counts["samples_complete"], counts["qc_flags"]) == (15, 13, 1)
    assert [e["key"] for e in figures["by_stage"]] == ["annotate"]
    assert {e["key"]: e["completeness"] for e in figures["by_annotator"]} == {
        "ana": 0.8,
        "bob": 1.0,
    }


@pytest.fixture
def everything(reviews, audits, agreements, runs):
    return None


def test_the_shape_has_every_key(project, everything):
    figures = project_quality(project=project, period="week")
    assert set(figures) == {
        "first_pass_rate",
        "accuracy",
        "consistency",
        "completeness",
        "counts",
        "errors_by_category",
        "by_stage",
        "by_annotator",
        "by_period",
    }
    assert set(figures["counts"]) == set(COUNT_KEYS)
    groups = figures["by_stage"] + figures["by_annotator"] + figures["by_period"]
    for entry in groups:
        assert {"key", "first_pass_rate", "accuracy", "consistency", "completeness"} <= set(entry)
        assert set(entry["counts"]) == set(COUNT_KEYS)


def test_by_period_groups_days_and_weeks(project, everything):
    weeks = project_quality(project=project, period="week")["by_period"]
    assert [e["key"] for e in weeks] == ["2026-11-02", "2026-11-09"]
    first, second = weeks
    # Week 45: ana's 4 reviews (Mon, Wed) all accepted; next week ana 1 of 2, bob 2 of 4.
    assert (first["counts"]["reviewed"], first["first_pass_rate"]) == (4, 1.0)
    assert (second["counts"]["reviewed"], second["first_pass_rate"]) == (6, 0.5)
    assert first["accuracy"] == 0.85 and second["accuracy"] is None  # audited on Wednesday
    # Distinct current audits per period (the superseded Monday audit is not one).
    assert (first["counts"]["audits"], second["counts"]["audits"]) == (1, 0)
    assert (first["consistency"], second["consistency"]) == (0.7, 0.4)
    assert (first["completeness"], second["completeness"]) == (0.8, 1.0)
    assert second["counts"]["qc_flags"] == 1
    days = project_quality(project=project, period="day")["by_period"]
    assert [e["key"] for e in days] == ["2026-11-02", "2026-11-04", "2026-11-10"]
    assert project_quality(project=project)["by_period"] == []


def test_filters_narrow_everything(project, everything, annotator, bob):
    wednesday_on = project_quality(project=project, start=WED, end=WED)
    assert wednesday_on["counts"]["reviewed"] == 2  # ana's Wednesday decisions
    assert wednesday_on["accuracy"] == 0.85
    assert wednesday_on["consistency"] == 0.6
    assert wednesday_on["completeness"] is None  # submitted Monday and next Tuesday
    # ``end`` is inclusive: a decision late on the last day counts.
    ReviewOutcome.objects.filter(created_at=at(NEXT_TUE)).update(created_at=at(WED, 23))
    quality_touch(project.pk)  # rows written with the ORM: rebuild the whole project
    assert project_quality(project=project, end=WED)["counts"]["reviewed"] == 10
    objects = project_quality(project=project, stage="objects")
    assert [e["key"] for e in objects["by_stage"]] == ["objects"]
    assert objects["accuracy"] == round(13 / 15, 4)
    assert objects["consistency"] == 0.4
    assert objects["completeness"] is None
    bobs = project_quality(project=project, annotator=bob.pk)
    assert [e["key"] for e in bobs["by_annotator"]] == ["bob"]
    assert (bobs["first_pass_rate"], bobs["completeness"]) == (0.5, 1.0)
    assert bobs["counts"]["audited_annotations"] == 15


def test_query_count_is_small_and_constant(
    project, everything, tasks, carl, django_assert_num_queries
):
    # A read with nothing to rebuild: whether anything is dirty, the rollups, the usernames.
    quality_refresh(project)
    with django_assert_num_queries(3):
        project_quality(project=project)
    for i in range(5):  # more rows, more people, more stages and days: the same queries
        review(tasks[1], carl, accepted=True, stage=f"stage {i}", when=MON + dt.timedelta(i))
    quality_refresh(project)
    with django_assert_num_queries(3):
        figures = project_quality(project=project, period="day", start=MON, stage="annotate")
    assert figures["by_period"]


def test_audited_tasks_lists_current_audits_with_their_errors(project, audits, bob, annotator):
    rows = list(audited_tasks(project=project))
    assert [(a.pk, a.task_name, a.errors) for a in rows] == [(audits.pk, "Task 0", 7)]
    assert [a.pk for a in audited_tasks(project=project, stage="objects", annotator=bob.pk)] == [
        audits.pk
    ]
    assert not audited_tasks(project=project, stage="objects", annotator=annotator.pk).exists()
    assert not audited_tasks(project=project, start=NEXT_TUE).exists()


# --- the API ---------------------------------------------------------------------------


def url(project, query=""):
    return f"/api/v1/projects/{project.pk}/quality/{query}"


def test_api_answers_the_figures(api_as, manager, project, everything):
    response = api_as(manager).get(url(project, "?period=week&from=2026-11-01&to=2026-11-30"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body == project_quality(
        project=project, period="week", start=dt.date(2026, 11, 1), end=dt.date(2026, 11, 30)
    )
    assert body["accuracy"] == 0.85 and len(body["by_period"]) == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?period=year", "period"),
        ("?from=notadate", "from"),
        ("?to=2026-13-01", "to"),
        ("?from=2026-11-10&to=2026-11-01", "to"),
        ("?annotator=nobody", "annotator"),
        ("?stage=" + "x" * 65, "stage"),
    ],
)
def test_api_refuses_bad_query_values_by_field(api_as, reviewer, project, query, field):
    response = api_as(reviewer).get(url(project, query))
    assert response.status_code == 400
    assert list(response.json()) == [field]


@pytest.mark.parametrize("query", ["?stage=a%00b", "?annotator=%00", "?from=%00"])
def test_api_nul_characters_are_a_400(api_as, reviewer, project, query):
    # core.middleware refuses them before the view (PostgreSQL cannot compare them).
    assert api_as(reviewer).get(url(project, query)).status_code == 400


def test_api_far_dates_and_blank_values_are_no_500(api_as, manager, project, everything):
    response = api_as(manager).get(url(project, "?from=0001-01-01&to=9999-12-31&period="))
    assert response.status_code == 200
    assert response.json()["counts"]["reviewed"] == 10


def test_api_narrows_by_annotator_username(api_as, reviewer, project, everything):
    body = api_as(reviewer).get(url(project, "?annotator=bob&stage=objects")).json()
    assert [e["key"] for e in body["by_annotator"]] == ["bob"]
    assert body["first_pass_rate"] == 0.5


def test_an_annotator_sees_only_their_own_figures(api_as, annotator, project, everything):
    body = api_as(annotator).get(url(project, "?annotator=bob")).json()
    assert [e["key"] for e in body["by_annotator"]] == ["ana"]
    assert body["first_pass_rate"] == round(5 / 6, 4)
    assert body["accuracy"] == 0.84
    assert body["completeness"] == 0.8


def test_outsiders_do_not_see_the_project(api_as, outsider, project):
    assert api_as(outsider).get(url(project)).status_code == 404
    assert api_as(None).get(url(project)).status_code == 401


def test_the_schema_documents_the_response(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/projects/{project_id}/quality/"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"period", "from", "to", "annotator"}
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    component = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"by_period", "errors_by_category", "counts"} <= set(component["properties"])
