"""Reports (reports/selectors.py, views.py, api.py): known answers on a constructed history.

The history, every step through the services at a time set with time-machine (UTC):

- Mon 2 Nov 09:00 maya creates T1 and T2 (ana annotates, ravi reviews). ana starts T1 and
  submits it at 09:10 (600 s); starts T2 at 10:00 and submits it at 10:30 (1,800 s).
- Tue 3 Nov 09:00 ravi approves T1; 09:05 rejects T2 ("Box the cup"): T2's annotate run
  goes back to ana, attempt 2, started again at 09:05; she submits it at 09:25 (+1,200 s:
  3,000 s in all, counted on Tuesday, its last submission).
- Wed 4 Nov 10:00 ravi approves T2; 11:00 maya creates T3; 12:00 maya audits T1 (one error
  on ana's annotation, which ana accepts at 12:30) and 13:00 T2 (no errors).

Read on Thu 5 Nov. By hand, over 2–4 Nov:
- ana: started 2 (Mon), submitted 3 (Mon 2, Tue 1), completed 2 (T1 Mon, T2 Tue), active
  3,600 s (Mon 600, Tue 3,000), median of [600, 3000] = 1,800 s, sent back 1 (Tue);
  first-pass rate 1 of 2 first decisions accepted = 0.5; accuracy: 2 audited annotations, 1
  counted error = 0.5.
- ravi: 3 reviews (Tue 2: 1 approved, 1 rejected; Wed 1 approved). maya: 2 audits (Wed).
- project: tasks created Mon 2, Wed 1; tasks completed (last run completed, done now) Tue 1
  (T1's review), Wed 1 (T2's review); runs completed Mon 1 (T1 annotate), Tue 2 (T1 review,
  T2 annotate), Wed 1 (T2 review); tasks by then 2, 2, 3; done 0, 1, 2.
"""

import csv
import datetime as dt
import io

import pytest
from django.urls import reverse

from audits import services as audit_services
from projects import services as project_services
from projects.models import Role
from reports import selectors
from reports.periods import Period, parse_period
from tasks import services as task_services
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

MON, TUE, WED, THU = (dt.date(2026, 11, d) for d in (2, 3, 4, 5))
PERIOD = Period(start=MON, end=WED)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=dt.UTC)


@pytest.fixture
def history(project, manager, reviewer, annotator, time_machine):
    def when(day, hour, minute=0):
        time_machine.move_to(at(day, hour, minute), tick=False)

    def work(task, start, end):
        when(*start)
        task_services.stage_start(actor=annotator, task=task, stage_key="annotate")
        task_services.annotation_create(
            actor=annotator, task=task, stage="annotate", label="outcome", data={"value": "success"}
        )
        when(*end)
        task_services.stage_submit(actor=annotator, task=task, stage_key="annotate")

    def create(name):
        return task_services.task_create(
            actor=manager, project=project, name=name, annotators=["ana"], reviewers=["ravi"]
        )

    def review(task, decision, comment=""):
        task_services.stage_review(
            actor=reviewer, task=task, stage_key="review", decision=decision, comment=comment
        )

    when(MON, 9)
    t1, t2 = create("T1"), create("T2")
    work(t1, (MON, 9), (MON, 9, 10))
    work(t2, (MON, 10), (MON, 10, 30))
    when(TUE, 9)
    review(t1, "approve")
    when(TUE, 9, 5)
    review(t2, "reject", "Box the cup")
    when(TUE, 9, 25)
    task_services.stage_submit(actor=annotator, task=t2, stage_key="annotate")
    when(WED, 10)
    review(t2, "approve")
    when(WED, 11)
    t3 = create("T3")
    when(WED, 12)
    audit = audit_services.audit_create(actor=manager, task=t1, kind="fixless")
    finding = audit_services.finding_add(
        actor=manager, audit=audit, type="error", annotation=t1.annotations.get().pk
    )
    audit_services.audit_complete(actor=manager, audit=audit)
    when(WED, 12, 30)
    audit_services.finding_respond(actor=annotator, finding=finding, response="accept")
    when(WED, 13)
    clean = audit_services.audit_create(actor=manager, task=t2, kind="fixless")
    audit_services.audit_complete(actor=manager, audit=clean)
    when(THU, 12)
    return {"t1": t1, "t2": t2, "t3": t3}


def figures(**values):
    return dict.fromkeys(selectors.ACTIVITY_KEYS, 0) | values


def test_personal_report_known_answer(history, annotator):
    report = selectors.personal_report(user=annotator, period=PERIOD, project_ids=None)
    assert report["totals"] == figures(
        started=2, submitted=3, completed=2, active_seconds=3600.0, rework=1
    ) | {"median_seconds": 1800.0}
    by_day = {row["day"]: row for row in report["by_day"]}
    assert list(by_day) == [MON, TUE, WED]
    assert by_day[MON] == {"day": MON} | figures(
        started=2, submitted=2, completed=1, active_seconds=600.0
    )
    assert by_day[TUE] == {"day": TUE} | figures(
        submitted=1, completed=1, active_seconds=3000.0, rework=1
    )
    assert by_day[WED] == {"day": WED} | figures()
    assert report["quality"]["first_pass_rate"] == 0.5
    assert report["quality"]["accuracy"] == 0.5
    assert report["quality_by_project"][0]["first_pass_rate"] == 0.5


def test_a_reviewers_personal_report_counts_reviews(history, reviewer):
    report = selectors.personal_report(user=reviewer, period=PERIOD, project_ids=None)
    assert report["totals"] == figures(reviews=3, approved=2, rejected=1) | {"median_seconds": None}
    assert [row["reviews"] for row in report["by_day"]] == [0, 2, 1]
    assert report["quality_by_project"] == []  # a reviewer's own work is not measured


def test_the_period_narrows_every_figure(history, annotator):
    report = selectors.personal_report(
        user=annotator, period=Period(start=TUE, end=TUE), project_ids=None
    )
    assert report["totals"] == figures(
        submitted=1, completed=1, active_seconds=3000.0, rework=1
    ) | {"median_seconds": 3000.0}
    # The first decisions were on Tuesday: one of two accepted; the audits were on Wednesday.
    assert report["quality"]["first_pass_rate"] == 0.5
    assert report["quality"]["accuracy"] is None


def test_team_report_known_answer_sorted_with_a_total(history, project):
    report = selectors.team_report(
        projects=[project], period=PERIOD, sort="reviews", descending=True
    )
    people = {row["username"]: row for row in report["people"]}
    assert [row["username"] for row in report["people"]] == ["ravi", "ana", "maya"]
    assert people["ana"]["submitted"] == 3
    assert people["ana"]["median_seconds"] == 1800.0
    assert people["ana"]["first_pass_rate"] == 0.5
    assert people["ana"]["accuracy"] == 0.5
    assert people["ravi"]["reviews"] == 3
    assert people["maya"]["audits"] == 2  # the manager audited: she is in the table
    total = report["total"]
    assert (total["started"], total["submitted"], total["completed"]) == (2, 3, 2)
    assert (total["reviews"], total["audits"], total["rework"]) == (3, 2, 1)
    assert total["active_seconds"] == 3600.0
    assert total["median_seconds"] == 1800.0
    assert total["first_pass_rate"] == 0.5
    assert [d["submitted"] + d["reviews"] + d["audits"] for d in report["by_day"]] == [2, 3, 3]


def test_project_report_known_answer(history, project):
    report = selectors.project_report(project=project, period=PERIOD)
    rows = [
        (d["tasks_created"], d["tasks_completed"], d["runs_completed"], d["tasks"], d["tasks_done"])
        for d in report["by_day"]
    ]
    assert rows == [(2, 0, 1, 2, 0), (0, 1, 2, 2, 1), (1, 1, 1, 3, 2)]
    assert [d["share_done"] for d in report["by_day"]] == [0.0, 0.5, 0.6667]
    assert report["totals"] == {"tasks_created": 3, "tasks_completed": 2, "runs_completed": 4}
    assert (report["tasks_before"], report["done_before"]) == (0, 0)
    # From Wednesday on: T1 was done before, T2 completes in the period.
    later = selectors.project_report(project=project, period=Period(start=WED, end=THU))
    assert (later["tasks_before"], later["done_before"]) == (2, 1)
    assert [d["tasks_done"] for d in later["by_day"]] == [2, 2]


def test_combined_quality_of_one_entry_is_the_selectors_figures():
    entry = {
        "first_pass_rate": 0.3333,
        "accuracy": 0.9,
        "counts": {"reviewed": 3, "first_pass": 1, "audited_annotations": 10, "errors": 1},
    }
    combined = selectors.combined_quality([entry])
    assert (combined["first_pass_rate"], combined["accuracy"]) == (0.3333, 0.9)
    two = selectors.combined_quality([entry, entry | {"counts": {"reviewed": 1, "first_pass": 1}}])
    assert two["first_pass_rate"] == 0.5  # 2 of 4
    assert two["accuracy"] == 0.9  # 9 of 10


def test_period_parsing():
    assert parse_period({"days": "7"}, today=THU) == Period(start=dt.date(2026, 10, 30), end=THU)
    assert parse_period({}, today=THU).length == 30
    assert parse_period({"from": "2026-11-02", "to": "2026-11-04"}) == PERIOD
    from core.exceptions import ApplicationError

    for bad, field in (
        ({"from": "2026-13-01"}, "from"),
        ({"from": "2026-11-05", "to": "2026-11-01"}, "to"),
        ({"days": "5"}, "days"),
        ({"from": "1900-01-01"}, "from"),
        ({"from": "2024-01-01", "to": "2026-01-01"}, "from"),
    ):
        with pytest.raises(ApplicationError) as caught:
            parse_period(bad, today=THU)
        assert caught.value.field == field


# --- pages -------------------------------------------------------------------------------


def test_personal_page_shows_the_figures_and_charts(history, client, annotator):
    client.force_login(annotator)
    response = client.get(reverse("reports:personal"), {"from": "2026-11-02", "to": "2026-11-04"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "My work" in page
    assert 'role="img" aria-label="Work of ana per day"' in page
    assert "1 h 00 min" in page  # 3,600 s of active time
    assert "median 30 min per run" in page
    assert "Tue 3 Nov 2026" in page


def test_personal_csv(history, client, annotator):
    client.force_login(annotator)
    response = client.get(
        reverse("reports:personal"), {"from": "2026-11-02", "to": "2026-11-04", "format": "csv"}
    )
    assert response["Content-Type"].startswith("text/csv")
    assert "personal-ana-2026-11-02-2026-11-04.csv" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["day", *selectors.ACTIVITY_KEYS]
    assert rows[1] == ["2026-11-02", "2", "2", "1", "600.0", "0", "0", "0", "0", "0"]
    assert rows[-1] == ["total", "2", "3", "2", "3600.0", "1", "0", "0", "0", "0"]


def test_team_csv_has_a_row_per_person_and_a_total(history, client, manager, project):
    client.force_login(manager)
    response = client.get(
        reverse("reports:team"),
        {"project": project.pk, "from": "2026-11-02", "to": "2026-11-04", "format": "csv"},
    )
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:3] == ["username", "started", "submitted"]
    assert [r[0] for r in rows[1:]] == ["ana", "maya", "ravi", "total"]
    assert rows[1][:4] == ["ana", "2", "3", "2"]


def test_project_csv(history, client, manager, project):
    client.force_login(manager)
    response = client.get(
        reverse("reports:project", args=[project.slug]),
        {"from": "2026-11-02", "to": "2026-11-04", "format": "csv"},
    )
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["day", "tasks_created", "tasks_completed", "runs_completed", "tasks",
                       "tasks_done", "share_done"]  # fmt: skip
    assert rows[2] == ["2026-11-03", "0", "1", "2", "2", "1", "0.5"]


def test_a_bad_period_on_a_page_is_named_and_the_default_shown(client, annotator, project):
    client.force_login(annotator)
    response = client.get(reverse("reports:personal"), {"from": "someday"})
    assert response.status_code == 200
    assert "from “someday” left out: Not a date like 2026-11-02." in response.content.decode()
    assert response.context["period"].length == 30


def test_who_reads_whose_personal_report(client, project, annotator, reviewer, manager, outsider):
    """Yourself always; the manager their members; a fellow member sees you but may not
    read your report (403); someone who shares no project with you gets 404, as for a
    user who does not exist."""
    url = reverse("reports:personal")
    cases = [
        (annotator, "ravi", 403),
        (reviewer, "ana", 403),
        (manager, "ana", 200),
        (outsider, "ana", 404),
        (annotator, "nobody", 404),
        (annotator, "ana", 200),
    ]
    for viewer, username, status in cases:
        client.force_login(viewer)
        assert client.get(url, {"user": username}).status_code == status, (viewer, username)


def test_a_manager_reads_a_members_report_over_their_own_projects_only(
    client, project, manager, annotator
):
    other_manager = UserFactory(username="otto")
    other = project_services.project_create(actor=manager, name="Other")
    project_services.membership_add(
        actor=manager, project=other, user=other_manager, role=Role.MANAGER
    )
    project_services.membership_add(actor=manager, project=other, user=annotator, role="annotator")
    found = selectors.personal_subject(viewer=other_manager, username="ana")
    assert found == (annotator, [other.pk])


# --- API -------------------------------------------------------------------------------


def test_api_personal_shape(history, api_as, annotator):
    response = api_as(annotator).get(
        "/api/v1/reports/personal/", {"from": "2026-11-02", "to": "2026-11-04"}
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "user", "user_id", "start", "end", "totals", "quality", "quality_by_project", "by_day"
    }  # fmt: skip
    assert body["totals"]["submitted"] == 3
    assert body["totals"]["median_seconds"] == 1800.0
    assert body["by_day"][0] == {"day": "2026-11-02"} | figures(
        started=2, submitted=2, completed=1, active_seconds=600.0
    )
    assert body["quality"] == {
        "first_pass_rate": 0.5,
        "accuracy": 0.5,
        "quality_counts": {
            "reviewed": 2, "first_pass": 1, "audited_annotations": 2, "errors": 1, "missing": 0
        },
    }  # fmt: skip


def test_api_team_and_project_shapes(history, api_as, manager, project):
    client = api_as(manager)
    team = client.get(
        "/api/v1/reports/team/",
        {"project": project.pk, "from": "2026-11-02", "to": "2026-11-04", "sort": "submitted"},
    ).json()
    assert [p["username"] for p in team["people"]] == ["maya", "ravi", "ana"]
    assert team["total"]["submitted"] == 3
    assert team["projects"] == [{"id": project.pk, "name": project.name, "slug": project.slug}]
    progress = client.get(
        "/api/v1/reports/project/",
        {"project": project.pk, "from": "2026-11-02", "to": "2026-11-04"},
    ).json()
    assert progress["totals"] == {"tasks_created": 3, "tasks_completed": 2, "runs_completed": 4}
    assert progress["by_day"][2] == {
        "day": "2026-11-04", "tasks_created": 1, "tasks_completed": 1, "runs_completed": 1,
        "tasks": 3, "tasks_done": 2, "share_done": 0.6667,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("personal", {"from": "2026-02-30"}, "from"),
        ("personal", {"from": "2026-11-05", "to": "2026-11-01"}, "to"),
        ("personal", {"days": "14"}, "days"),
        ("personal", {"to": "x" * 500}, "to"),
        ("team", {"project": "abc"}, "project"),
        ("team", {"sort": "password"}, "sort"),
        ("project", {}, "project"),
        ("project", {"project": "-1"}, "project"),
    ],
)
def test_api_bad_queries_answer_400_with_the_field(api_as, manager, project, path, query, field):
    response = api_as(manager).get(f"/api/v1/reports/{path}/", query)
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_api_a_person_you_cannot_see_is_404(api_as, manager, outsider):
    for name in ("nobody", manager.username):  # no such user; nobody the outsider shares
        response = api_as(outsider).get("/api/v1/reports/personal/", {"user": name})
        assert response.status_code == 404, response.content


def test_api_an_unknown_project_is_404(api_as, manager):
    response = api_as(manager).get("/api/v1/reports/project/", {"project": 999999})
    assert response.status_code == 404


# --- query counts --------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["annotator", "manager"])
def test_report_pages_have_bounded_queries(
    history, client, users, project, who, django_assert_max_num_queries
):
    from audits.rollups import quality_refresh

    quality_refresh(project)  # the quality rollups' one-off rebuild is not the reports' cost
    client.force_login(users[who])
    period = {"from": "2026-10-01", "to": "2026-11-05"}
    urls = [reverse("reports:index"), reverse("reports:personal")]
    if who == "manager":
        urls += [
            reverse("reports:team"),
            reverse("reports:project", args=[project.slug]),
            reverse("reports:personal") + "?user=ana",
        ]
    for url in urls:
        with django_assert_max_num_queries(20):
            assert client.get(url, period).status_code == 200


def test_count_chart_stacks_or_groups_and_states_its_figures():
    from audits import charts

    stacked = charts.count_chart(
        label="Work per day",
        x_labels=["1 Nov", "2 Nov"],
        series=[charts.Series("Submitted", [3, 0]), charts.Series("Reviews", [4, 0])],
    )
    assert 'role="img" aria-label="Work per day"' in stacked
    assert "Submitted: 1 Nov: 3 runs." in stacked and "Reviews: 1 Nov: 4 runs." in stacked
    assert ">8</text>" in stacked  # 3 + 4 stacked: the axis goes to 8 in steps of 2
    grouped = charts.count_chart(
        label="Tasks",
        x_labels=["1 Nov"],
        series=[charts.Series("Created", [3]), charts.Series("Completed", [4])],
        stacked=False,
        unit=("task", "tasks"),
    )
    assert ">4</text>" in grouped and ">8</text>" not in grouped  # side by side: up to 4
    empty = charts.count_chart(
        label="Nothing", x_labels=["1 Nov"], series=[charts.Series("A", [0])]
    )
    assert "Nothing in this period." in empty
