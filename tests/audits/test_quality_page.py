"""The quality page, its drill-down and CSV (audits/quality_views.py) and its SVG charts.

Measurement rows are inserted directly, as the selectors' own tests do (so the helpers mark
the whole project for the rollups with ``quality_touch(project.pk)``); time is frozen on
Wednesday 11 November 2026 so the default span (the last 8 weeks, by week) is known.
"""

import csv
import datetime as dt
import io
import re

import pytest
import time_machine
from django.contrib.staticfiles import finders
from django.urls import reverse

from audits import charts
from audits.models import AgreementScore, Audit, AuditedWork, AuditFinding, ReviewOutcome
from audits.rollups import quality_refresh, quality_touch
from tasks import services as task_services
from tasks.models import StageRun
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 11, 11)  # a Wednesday; its week starts on Monday 9 November
MON, LAST_WED, OLD = dt.date(2026, 11, 9), dt.date(2026, 11, 4), dt.date(2026, 8, 3)


def at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(at(TODAY), tick=False):
        yield


@pytest.fixture
def bob(project, manager):
    from projects import services as project_services

    user = UserFactory(username="bob")
    project_services.membership_add(actor=manager, project=project, user=user, role="annotator")
    return user


def review(task, who, accepted, when, stage="annotate"):
    row = ReviewOutcome.objects.create(
        project=task.project,
        task=task,
        stage_key=stage,
        attempt=1,
        annotator=who,
        source=ReviewOutcome.Source.REVIEW,
        accepted=accepted,
        first=True,
    )
    ReviewOutcome.objects.filter(pk=row.pk).update(created_at=at(when))
    quality_touch(task.project_id)  # rows written with the ORM: rebuild the whole project


@pytest.fixture
def rows(project, manager, reviewer, annotator, bob):
    """ana: 3 of 4 first passes (this week and last), 20 audited annotations with 2 geometry
    errors, 9 of 10 samples complete; bob: 1 of 2 on the objects stage, 10 audited, one
    missing annotation; ana and bob agree 0.8. Old rows (August) fall outside the span."""
    tasks = [
        task_services.task_create(actor=manager, project=project, name=f"Pick {i}")
        for i in range(2)
    ]
    first, second = tasks
    StageRun.objects.create(task=second, stage_key="objects", kind="annotate", assignee=bob)
    for accepted, when in [(True, MON), (True, MON), (True, LAST_WED), (False, LAST_WED)]:
        review(first, annotator, accepted, when)
    for accepted in (True, False):
        review(second, bob, accepted, MON, stage="objects")
    review(first, annotator, False, OLD)
    audit = Audit.objects.create(
        project=project,
        task=first,
        kind=Audit.Kind.FIXLESS,
        status=Audit.Status.COMPLETED,
        current=True,
        auditor=reviewer,
        completed_at=at(LAST_WED),
    )
    for stage, who, n in [("annotate", annotator, 20), ("objects", bob, 10)]:
        AuditedWork.objects.create(
            audit=audit,
            project=project,
            task=first,
            stage_key=stage,
            annotator=who,
            annotations=n,
            completed_at=audit.completed_at,
        )
    for stage, who, category in [
        ("annotate", annotator, "geometry"),
        ("annotate", annotator, "geometry"),
        ("objects", bob, "missing"),
    ]:
        AuditFinding.objects.create(
            audit=audit,
            project=project,
            task=first,
            stage_key=stage,
            annotator=who,
            type=AuditFinding.Type.ERROR,
            category=category,
            state=AuditFinding.State.ACCEPTED,
            counts=True,
            current=True,
        )
    score = AgreementScore.objects.create(
        project=project,
        task=first,
        stage_key="annotate",
        measure=AgreementScore.Measure.BOX,
        annotator_a=annotator,
        annotator_b=bob,
        score=0.8,
    )
    AgreementScore.objects.filter(pk=score.pk).update(created_at=at(MON))
    StageRun.objects.filter(task=first, stage_key="annotate").update(
        assignee=annotator, samples_total=10, samples_complete=9, submitted_at=at(MON)
    )
    quality_touch(project.pk)  # rows written with the ORM: rebuild the whole project
    return {"tasks": tasks, "audit": audit}


def page(client, user, project, **query):
    client.force_login(user)
    return client.get(reverse("quality:page", args=[project.slug]), query)


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_it_shows_the_four_figures_to_a_manager(client, manager, project, rows):
    response = page(client, manager, project)
    assert response.status_code == 200
    body = text(response)
    # 4 of 6 first passes; (30 − 2) / (30 + 1 missing); one pair at 0.8; 9 of 10 samples.
    assert "67%" in body and "4 of 6 reviewed runs passed first time" in body
    assert "90%" in body and "2 errors and 1 missing annotation in 30 audited annotations" in body
    assert "80%" in body and "Mean agreement of 1 pair of annotators" in body
    assert "9 of 10 samples carry the required annotations" in body
    assert "Per annotator" in body and ">bob<" in body and ">ana<" in body
    assert "Week by week, 21 Sep 2026 – 11 Nov 2026" in body  # the default: 8 weeks


def test_it_shows_the_figures_to_a_reviewer(client, reviewer, project, rows):
    body = text(page(client, reviewer, project))
    assert "Quality of Pick and place" in body and "67%" in body and ">bob<" in body


def test_figures_not_measured_read_not_measured_yet(client, manager, project):
    body = text(page(client, manager, project))
    assert body.count('— <span class="not-yet">not measured yet</span>') == 4
    assert "No reviewed runs in this span." in body


def test_an_annotator_sees_only_their_own_figures(client, annotator, project, rows, bob):
    response = page(client, annotator, project, annotator=bob.pk)
    body = text(response)
    assert "My quality in Pick and place" in body
    assert "3 of 4 reviewed runs passed first time" in body  # hers, whatever the URL asks
    assert "Per annotator" not in body and "bob" not in body
    assert 'name="annotator"' not in body


def test_an_outsider_gets_404(client, outsider, project, rows):
    assert page(client, outsider, project).status_code == 404


def test_filters_narrow_the_figures(client, manager, project, rows, bob):
    body = text(page(client, manager, project, annotator=bob.pk))
    assert "1 of 2 reviewed runs passed first time" in body and "everyone" not in body
    body = text(page(client, manager, project, stage="objects"))
    assert "1 of 2 reviewed runs" in body and "stage objects" in body
    body = text(page(client, manager, project, start="2026-11-09", end="2026-11-11"))
    assert "3 of 4 reviewed runs" in body  # ana's two of Monday, bob's two
    body = text(page(client, manager, project, start="2026-08-01", end="2026-08-31"))
    assert "0 of 1 reviewed run passed first time" in body


INVALID = [
    ({"period": "month"}, "Period “month” left out: not one of the choices."),
    ({"start": "yesterday"}, "From “yesterday” left out: not a date like 2026-11-02."),
    ({"stage": "nope"}, "Stage “nope” left out: not one of the choices."),
    ({"annotator": "x"}, "Annotator “x” left out: not one of the choices."),
    ({"start": "2026-11-10", "end": "2026-11-01"}, "is after To (2026-11-01)"),
    ({"period": "day", "start": "2025-01-01"}, "By day shows at most 186 days"),
    ({"start": "2001-01-01"}, "At most five years at once"),
    ({"end": "9999-12-31"}, "To “9999-12-31” left out: not a date between 2000 and 2100."),
]


def test_invalid_filters_say_so_and_show_the_defaults(client, manager, project, rows):
    for query, message in INVALID:
        response = page(client, manager, project, **query)
        assert response.status_code == 200, query
        body = text(response)
        assert message in body, query
        assert '<div class="notice" role="status">' in body
        assert "reviewed run" in body  # the figures are still there
    for view in ("quality:audited", "quality:csv"):
        response = client.get(reverse(view, args=[project.slug]), {"start": "x", "stage": "?"})
        assert response.status_code == 200


def test_by_day_charts_every_day_of_the_span(client, manager, project, rows):
    body = text(page(client, manager, project, period="day", start="2026-11-02", end="2026-11-11"))
    assert "Day by day, 2 Nov 2026 – 11 Nov 2026" in body
    assert "<title>First-pass rate, 9 Nov 2026: 75%</title>" in body
    assert "<title>First-pass rate, 4 Nov 2026: 50%</title>" in body
    # Unmeasured days are gaps with no point, and still named in the description.
    assert "First-pass rate, 5 Nov 2026:" not in body.split("</desc>", 1)[1]
    assert "5 Nov 2026: not measured" in body


def test_the_trend_chart_has_a_point_per_measured_week(client, manager, project, rows):
    body = text(page(client, manager, project))
    svg = body[body.index('<svg class="chart line-chart"') :]
    svg = svg[: svg.index("</svg>")]
    assert 'role="img"' in svg and 'aria-label="Quality per week' in svg
    assert "<title>First-pass rate, week of 9 Nov 2026: 75%</title>" in svg
    assert "<title>First-pass rate, week of 2 Nov 2026: 50%</title>" in svg
    assert "<title>Accuracy, week of 2 Nov 2026: 90%</title>" in svg
    assert "<title>Completeness, week of 9 Nov 2026: 90%</title>" in svg
    assert "<title>Consistency, week of 9 Nov 2026: 80%</title>" in svg
    assert "week of 21 Sep 2026: not measured" in svg  # in the <desc>


def test_the_findings_chart_counts_categories(client, manager, project, rows):
    body = text(page(client, manager, project))
    assert "<title>Geometry: 2 errors</title>" in body
    assert "<title>Missing: 1 error</title>" in body


def test_tables_link_to_the_audited_tasks(client, manager, project, rows, bob):
    body = text(page(client, manager, project))
    assert f"/quality/audited/?start=2026-09-21&amp;end=2026-11-11&amp;annotator={bob.pk}" in body
    assert "/quality/audited/?start=2026-09-21&amp;end=2026-11-11&amp;stage=objects" in body
    url = reverse("quality:audited", args=[project.slug])
    response = client.get(url, {"stage": "objects", "start": "2026-11-01"})
    listing = text(response)
    task = rows["tasks"][0]
    assert response.status_code == 200
    assert f'<a href="/tasks/{task.pk}/">Pick 0</a>' in listing and "ravi" in listing
    assert ">3</td>" in listing  # its counted errors
    empty = text(client.get(url, {"start": "2026-11-05"}))
    assert "No completed audits in this span." in empty


def test_the_csv_has_every_section(client, manager, project, rows):
    client.force_login(manager)
    response = client.get(reverse("quality:csv", args=[project.slug]), {"period": "week"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "quality-pick-and-place-2026-09-21-2026-11-11.csv" in response["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(response.content.decode())))
    by = {(r["section"], r["key"]): r for r in table}
    assert by[("project", "2026-09-21..2026-11-11")]["first_pass_rate"] == "0.6667"
    assert by[("stage", "objects")]["reviewed"] == "2"
    assert by[("annotator", "ana")]["accuracy"] == "0.9"
    assert by[("annotator", "bob")]["user_id"]
    assert by[("week", "2026-11-09")]["first_pass_rate"] == "0.75"
    assert by[("category", "geometry")]["count"] == "2"
    assert by[("project", "2026-09-21..2026-11-11")]["consistency"] == "0.8"


def test_an_annotators_csv_is_their_own(client, annotator, project, rows):
    client.force_login(annotator)
    response = client.get(reverse("quality:csv", args=[project.slug]))
    table = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {r["key"] for r in table if r["section"] == "annotator"} == {"ana"}
    assert "bob" not in response.content.decode()


def test_a_username_cannot_become_a_spreadsheet_formula(client, manager, project, rows):
    from core.spreadsheet import csv_cell as _cell

    assert _cell("=HYPERLINK(1)") == "'=HYPERLINK(1)" and _cell("ana") == "ana"
    assert _cell(None) == "" and _cell(0.5) == "0.5"


def test_query_count_stays_small_with_more_people(
    client, manager, project, rows, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(manager)
    url = reverse("quality:page", args=[project.slug])
    client.get(url)  # warm the session and permission caches alike for both runs
    with django_assert_max_num_queries(24), CaptureQueriesContext(connection) as before:
        assert client.get(url, {"period": "day"}).status_code == 200
    task = rows["tasks"][1]
    for i in range(5):
        review(task, UserFactory(username=f"extra{i}"), True, MON, stage="objects")
    quality_refresh(project)  # the same read as before: nothing to rebuild
    with CaptureQueriesContext(connection) as after:
        body = text(client.get(url, {"period": "day"}))
    assert ">extra4<" in body
    assert len(after.captured_queries) == len(before.captured_queries)


def test_the_page_weighs_under_150_kb_of_js_and_css(client, manager, project, rows):
    body = page(client, manager, project).content.decode()
    linked = re.findall(r'<link rel="stylesheet" href="([^"]+)"', body)
    linked += re.findall(r'<script[^>]+src="([^"]+)"', body)
    assert any("quality.css" in url for url in linked)
    total = 0
    for url in linked:
        found = finders.find(url.removeprefix("/static/"))
        assert found, url
        with open(found, "rb") as fh:
            total += len(fh.read())
    assert total < 150 * 1024, f"{total} bytes of JS and CSS"


def test_the_subnav_names_the_page_by_role(client, annotator, manager, project):
    client.force_login(annotator)
    assert ">My quality</a>" in text(client.get(reverse("projects:detail", args=[project.slug])))
    client.force_login(manager)
    assert ">Quality</a>" in text(client.get(reverse("projects:detail", args=[project.slug])))


def test_line_chart_gaps_are_not_zeros():
    svg = charts.line_chart(
        label="Trend",
        x_labels=["a", "b", "c", "d"],
        series=[charts.Series("Accuracy", [0.5, None, 0.25, 1.0])],
    )
    path = re.search(r'<path d="([^"]+)"', svg).group(1)
    assert path.count("M") == 1 and path.count("L") == 1  # only c–d joined: a stands alone
    assert svg.count("<title>Accuracy, ") == 3  # a point per measured period
    assert "b: not measured" in svg and "a: 50%" in svg


def test_charts_escape_their_words():
    svg = charts.bar_chart(label="<x>", bars=[("<b>", 1)])
    assert "<b>" not in svg and "&lt;b&gt;" in svg and 'aria-label="&lt;x&gt;"' in svg
