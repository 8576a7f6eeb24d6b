"""Each source of notifications tells the right person, never the one who acted, and a
list of events costs a bounded number of queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audits import services as audit_services
from notifications.models import Notification
from notifications.services import notify, notify_export_done, notify_for_events
from tasks import services as task_services
from tasks.services.base import event, save_events

pytestmark = pytest.mark.django_db


def kinds(user) -> list[tuple[str, str]]:
    return list(
        Notification.objects.filter(user=user).order_by("id").values_list("kind", "message")
    )


def test_a_rejected_review_tells_the_annotator_whose_run_went_back(task, annotator, reviewer):
    task_services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    assert not Notification.objects.exists()  # submitting concerns nobody yet
    task_services.stage_review(
        actor=reviewer, task=task, stage_key="review", decision="reject", comment="Boxes too loose"
    )
    [note] = Notification.objects.filter(user=annotator)
    assert note.kind == "review_rejected"
    assert note.message == "ravi sent back annotate of Fixture task: Boxes too loose"
    assert note.url == f"/workspace/{task.pk}/annotate/"
    assert note.task_id == task.pk and note.project_id == task.project_id
    assert not Notification.objects.exclude(user=annotator).exists()  # not the reviewer


def test_an_approval_tells_nobody(task, annotator, reviewer):
    task_services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    task_services.stage_review(actor=reviewer, task=task, stage_key="review", decision="approve")
    assert not Notification.objects.exists()


def test_a_problem_goes_to_managers_reviewers_and_the_stage_annotator(
    task, annotator, reviewer, manager
):
    task_services.comment_create(
        actor=reviewer, task=task, body="Frame 3 is blurred", kind="problem", stage_key="annotate"
    )
    told = set(Notification.objects.values_list("user__username", flat=True))
    assert told == {"maya", "ana"}  # the manager and the stage's annotator; not ravi himself
    note = Notification.objects.get(user=annotator)
    assert note.kind == "problem_reported"
    assert note.message == "ravi reported a problem on annotate of Fixture task: Frame 3 is blurred"
    assert note.url == f"/tasks/{task.pk}/#comments-heading"


def test_a_problem_from_the_annotator_reaches_the_reviewer_and_manager(
    task, annotator, reviewer, manager
):
    task_services.comment_create(actor=annotator, task=task, body="Which cup?", kind="problem")
    assert set(Notification.objects.values_list("user__username", flat=True)) == {"maya", "ravi"}


def test_a_solution_goes_to_the_problem_author_only(task, annotator, reviewer, manager):
    problem = task_services.comment_create(
        actor=annotator, task=task, body="Which cup?", kind="problem"
    )
    Notification.objects.all().delete()
    task_services.comment_create(
        actor=reviewer, task=task, body="The red one", kind="solution", parent=problem.pk
    )
    assert kinds(annotator) == [
        ("problem_answered", "ravi answered your problem on Fixture task: The red one")
    ]
    assert Notification.objects.count() == 1


def test_a_plain_comment_tells_nobody(task, reviewer):
    task_services.comment_create(actor=reviewer, task=task, body="Nice work")
    assert not Notification.objects.exists()


def test_an_audit_finding_tells_the_annotator_whose_work_it_concerns(
    task, annotator, reviewer, manager
):
    task_services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    task_services.stage_review(actor=reviewer, task=task, stage_key="review", decision="approve")
    audit = audit_services.audit_create(actor=manager, task=task, kind="fixless")
    audit_services.finding_add(
        actor=manager,
        audit=audit,
        type="error",
        category="wrong_class",
        annotation=task.first_annotation.pk,
        note="That is a failure",
    )
    audit_services.finding_add(actor=manager, audit=audit, type="confirmation")
    assert kinds(annotator) == [
        (
            "audit_finding",
            "maya found an error (wrong class) in your work on annotate of Fixture task: "
            "That is a failure",
        )
    ]
    note = Notification.objects.get(user=annotator)
    assert note.url == f"/tasks/{task.pk}/#audit-{audit.pk}-title"
    assert not Notification.objects.filter(user=manager).exists()


def test_run_assigned_and_transferred_events_tell_the_new_person(
    task, annotator, reviewer, manager, project
):
    """The shape engineers C1/C2's services write, saved directly through save_events."""
    from tests.factories import UserFactory

    noah = UserFactory(username="noah")
    save_events(
        [
            event(task, "run_assigned", manager, "annotate", replica=0, to="noah", via="auto"),
            event(
                task,
                "run_transferred",
                annotator,
                "annotate",
                replica=0,
                to="noah",
                reason="Going on leave",
                via="handover",
                **{"from": "ana"},
            ),
            event(task, "run_assigned", manager, "annotate", replica=0, to="maya", via="manual"),
            event(task, "run_assigned", manager, "annotate", replica=0, to=None, via="auto"),
        ]
    )
    assert kinds(noah) == [
        ("run_assigned", "maya assigned you annotate of Fixture task."),
        ("run_transferred", "ana handed annotate of Fixture task over to you: Going on leave"),
    ]
    assert Notification.objects.filter(user=noah).first().url == f"/workspace/{task.pk}/annotate/"
    assert not Notification.objects.filter(user=manager).exists()  # she assigned herself


def test_a_user_id_in_the_event_works_too(task, manager, annotator):
    save_events([event(task, "run_assigned", manager, "annotate", to=annotator.pk)])
    assert kinds(annotator) == [("run_assigned", "maya assigned you annotate of Fixture task.")]


def test_events_that_concern_nobody_cost_no_query(task, manager):
    events = [event(task, "stage_started", manager, "annotate"), event(task, "status_changed")]
    with CaptureQueriesContext(connection) as queries:
        assert notify_for_events(events) == []
    assert len(queries) == 0


def test_a_list_of_events_costs_a_bounded_number_of_queries(project, manager, annotator, reviewer):
    """Forty tasks' worth of assignments, rejects, problems and findings: the same few
    queries as for one (task objects not loaded, actors not loaded)."""
    from tasks.models import Comment, TaskEvent

    tasks = [
        task_services.task_create(actor=manager, project=project, name=f"T{i}") for i in range(40)
    ]
    for t in tasks[:5]:
        task_services.comment_create(actor=reviewer, task=t, body="Hm", kind="problem")
    Notification.objects.all().delete()
    comments = {c.task_id: c.pk for c in Comment.objects.all()}
    events = []
    for t in tasks:
        events += [
            TaskEvent(task_id=t.pk, kind="run_assigned", actor_id=manager.pk,
                      stage_key="annotate", data={"to": "ana"}),
            TaskEvent(task_id=t.pk, kind="stage_reopened", actor_id=reviewer.pk,
                      stage_key="annotate", data={"assignee": "ana"}),
        ]  # fmt: skip
        if t.pk in comments:
            events.append(
                TaskEvent(task_id=t.pk, kind="commented", actor_id=reviewer.pk,
                          data={"comment_id": comments[t.pk], "kind": "problem"})
            )  # fmt: skip
    with CaptureQueriesContext(connection) as queries:
        made = notify_for_events(events)
    assert len(made) == 40 * 2 + 5  # each task: assigned, sent back; five problems → maya
    assert len(queries) <= 9, [q["sql"][:80] for q in queries.captured_queries]


def test_notify_leaves_out_the_actor_and_checks_the_kind(manager, annotator, reviewer):
    made = notify(
        recipients=[manager, annotator.pk, reviewer],
        kind="post_commented",
        message="Hello",
        actor=manager,
    )
    assert {n.user_id for n in made} == {annotator.pk, reviewer.pk}
    with pytest.raises(ValueError):
        notify(recipients=[annotator], kind="nonsense", message="x")


def test_a_finished_export_tells_its_requester(finished_export, manager):
    notify_export_done(export_id=finished_export.pk)
    [note] = Notification.objects.filter(user=manager)
    assert note.kind == "export_finished"
    assert note.message == "Export v1 (JSONL) of Pick and place is ready to download."
    assert note.url == f"/projects/{finished_export.project.slug}/exports/"


def test_the_export_job_tells_the_requester_when_it_fails(
    project, manager, settings, tmp_path, run_jobs, django_capture_on_commit_callbacks
):
    from queues import services as export_services
    from queues.models import Export

    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "exports").write_text("a file where the exports folder should be")
    with django_capture_on_commit_callbacks(execute=True):
        export_services.export_start(actor=manager, project=project, format="jsonl")
    run_jobs("exports")  # a real worker: the job fails, its failure callback tells the requester
    [(kind, message)] = kinds(manager)
    assert kind == "export_failed"
    assert message.startswith("Export v1 (JSONL) of Pick and place failed: ")
    export = Export.objects.get(project=project)  # said on the export, not stuck "started"
    assert export.status == "failed" and "NotADirectoryError" in export.error


def test_the_export_job_tells_the_requester_when_it_is_ready(project, manager, settings, tmp_path):
    from queues import services as export_services
    from queues.jobs import run_export_job

    settings.MEDIA_ROOT = tmp_path
    export, _ = export_services.export_start(
        actor=manager, project=project, format="jsonl", background=False
    )
    assert run_export_job(export.pk) == "finished"
    assert [k for k, _ in kinds(manager)] == ["export_finished"]


def test_through_the_assignment_and_transfer_services(project, manager, annotator):
    """Engineers C1's and C2's services write the events; the people hear of them."""
    from projects import services as project_services
    from tasks.services.assignment import run_assign
    from tasks.services.transfer import run_transfer
    from tests.factories import UserFactory

    noah = UserFactory(username="noah")
    project_services.membership_add(actor=manager, project=project, user=noah, role="annotator")
    task = task_services.task_create(actor=manager, project=project, name="Episode 4")
    run_assign(actor=manager, task=task, stage_key="annotate", user=annotator)
    assert kinds(annotator) == [("run_assigned", "maya assigned you annotate of Episode 4.")]
    task_services.stage_start(actor=annotator, task=task, stage_key="annotate")
    run_transfer(
        actor=annotator, task=task, stage_key="annotate", to_user=noah, reason="Going on leave"
    )
    assert kinds(noah) == [
        ("run_transferred", "ana handed annotate of Episode 4 over to you: Going on leave")
    ]
    assert not Notification.objects.filter(user=manager).exists()
