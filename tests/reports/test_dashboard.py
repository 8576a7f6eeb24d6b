"""The annotator's and reviewer's sections of the dashboard (reports/dashboard.py).

Read on Tue 3 Nov 2026 at 12:00 UTC, after (all through the services):
- Mon 09:00–09:10 ana does T1 (its review is ready from 09:10); 10:00–10:30 T2; 11:00–11:20
  T5, which ravi approves at 12:00.
- Tue 10:00 ravi rejects T2 ("Box the cup"): back to ana, attempt 2, in progress.
- Tue 10:30–11:00 ana does T4 (its review ready from 11:00); T3 waits, given to ana.
- Tue 11:30 ravi reports a problem on T1 ("Is frame 3 blurred?"); 11:45 maya, auditing T5,
  finds an error on ana's annotation ("Box too loose"), not answered yet.
So ana's queue holds T2 (rework) and T3: 2 runs; today she submitted 1 run in 30 min, this
week 4 runs (T2's first submission no longer counts its time: it was sent back) in 60 min;
first-pass rate 1 of 2 (T5 approved, T2 rejected).
ravi's queue: T1 and T4, the oldest waiting since Mon 09:10 (1 day 2 h 50 min); he reviewed
1 today.
"""

import datetime as dt

import pytest

from audits import services as audit_services
from reports.dashboard import annotator_section, reviewer_section
from tasks import services as task_services

pytestmark = pytest.mark.django_db

MON, TUE = dt.date(2026, 11, 2), dt.date(2026, 11, 3)


def at(day, hour, minute=0):
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=dt.UTC)


@pytest.fixture
def desk(project, manager, reviewer, annotator, time_machine):
    def when(day, hour, minute=0):
        time_machine.move_to(at(day, hour, minute), tick=False)

    def create(name):
        return task_services.task_create(
            actor=manager, project=project, name=name, annotators=["ana"], reviewers=["ravi"]
        )

    def work(task, start, end):
        when(*start)
        task_services.stage_start(actor=annotator, task=task, stage_key="annotate")
        task_services.annotation_create(
            actor=annotator, task=task, stage="annotate", label="outcome", data={"value": "success"}
        )
        when(*end)
        task_services.stage_submit(actor=annotator, task=task, stage_key="annotate")

    when(MON, 8)
    t1, t2, t3, t4, t5 = (create(name) for name in ("T1", "T2", "T3", "T4", "T5"))
    work(t1, (MON, 9), (MON, 9, 10))
    work(t2, (MON, 10), (MON, 10, 30))
    work(t5, (MON, 11), (MON, 11, 20))
    when(MON, 12)
    task_services.stage_review(actor=reviewer, task=t5, stage_key="review", decision="approve")
    when(TUE, 10)
    task_services.stage_review(
        actor=reviewer, task=t2, stage_key="review", decision="reject", comment="Box the cup"
    )
    work(t4, (TUE, 10, 30), (TUE, 11))
    when(TUE, 11, 30)
    task_services.comment_create(
        actor=reviewer, task=t1, body="Is frame 3 blurred?", kind="problem"
    )
    when(TUE, 11, 45)
    audit = audit_services.audit_create(actor=manager, task=t5, kind="fixless")
    audit_services.finding_add(
        actor=manager,
        audit=audit,
        type="error",
        category="geometry",
        annotation=t5.annotations.get().pk,
        note="Box too loose",
    )
    when(TUE, 12)
    return {"t1": t1, "t2": t2, "t3": t3, "t4": t4, "t5": t5}


def test_the_annotators_section_known_answer(desk, annotator):
    section = annotator_section(user=annotator)
    assert section["queue_count"] == 2
    assert [run.task.name for run in section["queue"]] == ["T2", "T3"]
    assert (section["today"]["submitted"], section["today"]["active_seconds"]) == (1, 1800.0)
    assert (section["week"]["submitted"], section["week"]["active_seconds"]) == (4, 3600.0)
    assert [run.task.name for run in section["reworks"]] == ["T2"]
    assert section["reworks"][0].feedback == "Box the cup"
    # The reviewer's reject is the rework item, not also an open problem.
    assert [c.body for c in section["problems"]] == ["Is frame 3 blurred?"]
    assert [(f.task.name, f.note) for f in section["findings"]] == [("T5", "Box too loose")]
    assert section["feedback_count"] == 3
    assert section["quality"]["combined"]["first_pass_rate"] == 0.5


def test_the_reviewers_section_known_answer(desk, reviewer):
    section = reviewer_section(user=reviewer)
    assert section["queue_count"] == 2
    assert section["oldest_waiting"] == at(MON, 9, 10)
    assert section["oldest_age"] == dt.timedelta(days=1, hours=2, minutes=50)
    assert (section["reviewed_today"], section["audited_today"]) == (1, 0)
    assert section["audit_waiting"] == 0


def test_the_dashboard_shows_each_section_to_its_role(desk, client, annotator, reviewer, manager):
    client.force_login(annotator)
    page = client.get("/").content.decode()
    assert "My queue" in page and "2 stage runs waiting for you." in page
    assert "Box the cup" in page and "Is frame 3 blurred?" in page and "Box too loose" in page
    assert "Start next task" in page and "Reviews waiting" not in page
    client.force_login(reviewer)
    page = client.get("/").content.decode()
    assert "My queue" not in page
    assert "<strong>2</strong><span>reviews waiting" in page
    assert "<strong>1\xa0day, 2\xa0hours</strong><span>oldest waiting" in page
    client.force_login(manager)
    page = client.get("/").content.decode()
    assert "My queue" not in page and "Review next task" not in page


@pytest.mark.parametrize("who", ["annotator", "reviewer"])
def test_the_dashboard_has_bounded_queries(desk, client, users, who, project):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from audits.rollups import quality_refresh

    quality_refresh(project)
    client.force_login(users[who])
    with CaptureQueriesContext(connection) as few:
        assert client.get("/").status_code == 200
    # Ten more tasks of each kind on the desk change nothing.
    for n in range(10):
        task = task_services.task_create(
            actor=users["manager"], project=project, name=f"more {n}", annotators=["ana"]
        )
        task_services.stage_start(actor=users["annotator"], task=task, stage_key="annotate")
    quality_refresh(project)
    with CaptureQueriesContext(connection) as many:
        assert client.get("/").status_code == 200
    assert len(many) == len(few)
    assert len(many) <= 40
