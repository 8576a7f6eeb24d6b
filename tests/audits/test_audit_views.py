"""The audit pages: Audit next, the audit page, the list, completing, answering findings."""

import pytest
from django.urls import reverse

from audits import services as audit_services
from audits.models import Audit, AuditFinding
from tasks import services as task_services

pytestmark = pytest.mark.django_db


def deliver(project, manager, annotator, reviewer, name="Delivered"):
    """A default-blueprint task annotated by ana, approved by ravi: delivered."""
    task = task_services.task_create(
        actor=manager, project=project, name=name, annotators=["ana"], reviewers=["ravi"]
    )
    task_services.stage_start(actor=annotator, task=task, stage_key="annotate")
    task.box = task_services.annotation_create(
        actor=annotator, task=task, stage="annotate", label="outcome", data={"value": "success"}
    )
    task_services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    task_services.stage_review(actor=reviewer, task=task, stage_key="review", decision="approve")
    task.refresh_from_db()
    assert task.status == "review_passed"
    return task


@pytest.fixture
def delivered(project, manager, annotator, reviewer):
    return deliver(project, manager, annotator, reviewer)


@pytest.fixture
def audit(delivered, manager):
    return audit_services.audit_create(actor=manager, task=delivered)


@pytest.fixture
def finding(audit, manager, delivered):
    return audit_services.finding_add(
        actor=manager,
        audit=audit,
        type="error",
        category="wrong_class",
        annotation=delivered.box.pk,
        note="It failed",
    )


def drawn(project, percent=100):
    project.settings = {**(project.settings or {}), "audit_percent": percent}
    project.save(update_fields=["settings"])


# --- Audit next -------------------------------------------------------------------------


def test_it_shows_audit_next_with_the_queue_count(client, project, manager, delivered):
    drawn(project)
    client.force_login(manager)
    body = client.get(reverse("workspace:mine")).content.decode()
    assert "Audit next" in body and "1 unit waiting for audit" in body


def test_it_hides_audit_next_from_annotators(client, project, annotator, delivered):
    drawn(project)
    client.force_login(annotator)
    assert "Audit next" not in client.get(reverse("workspace:mine")).content.decode()


def test_audit_next_claims_the_unit_and_redirects_to_its_page(client, project, manager, delivered):
    drawn(project)
    client.force_login(manager)
    response = client.post(reverse("audits:next"))
    audit = Audit.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("audits:detail", args=[audit.pk])
    assert (audit.task, audit.auditor, audit.sampled, audit.kind) == (
        delivered,
        manager,
        True,
        "fixless",
    )


def test_audit_next_with_an_empty_queue_says_so(client, project, reviewer, delivered):
    client.force_login(reviewer)  # audit_percent is 0: nothing drawn
    response = client.post(reverse("audits:next"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("workspace:mine")
    assert "Nothing is waiting for audit right now." in response.content.decode()
    assert not Audit.objects.exists()


# --- the audit page ---------------------------------------------------------------------


def test_the_audit_page_renders_for_the_auditor(client, manager, audit, finding):
    client.force_login(manager)
    response = client.get(reverse("audits:detail", args=[audit.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Audit #" in body and "Complete audit" in body and "Add a finding" in body
    data = response.context["workspace_data"]
    assert data["editable"] is False and data["stages"] == ["annotate"]
    assert data["audit"]["id"] == audit.pk and data["audit"]["can_fix"] is False
    assert [f["id"] for f in data["audit"]["findings"]] == [finding.pk]


def test_another_reviewer_sees_the_audit_read_only(client, reviewer, audit):
    client.force_login(reviewer)
    response = client.get(reverse("audits:detail", args=[audit.pk]))
    assert response.status_code == 200
    assert response.context["workspace_data"]["audit"]["can_add"] is False
    assert "Complete audit" not in response.content.decode()


def test_outsiders_get_404(client, outsider, audit):
    client.force_login(outsider)
    assert client.get(reverse("audits:detail", args=[audit.pk])).status_code == 404


def test_the_annotator_cannot_open_the_audit_page(client, annotator, audit):
    client.force_login(annotator)
    assert client.get(reverse("audits:detail", args=[audit.pk])).status_code == 403


def test_complete_from_the_page(client, manager, audit, finding):
    client.force_login(manager)
    response = client.post(reverse("audits:complete", args=[audit.pk]), follow=True)
    assert "Audit completed." in response.content.decode()
    audit.refresh_from_db()
    assert (audit.status, audit.decision, audit.current) == ("completed", "accept", True)


def test_a_refused_completion_is_a_message_not_a_500(client, manager, audit):
    client.force_login(manager)
    response = client.post(
        reverse("audits:complete", args=[audit.pk]), {"decision": "reject"}, follow=True
    )
    assert response.status_code == 200
    assert "A fixless audit changes nothing" in response.content.decode()
    audit.refresh_from_db()
    assert audit.status == "open"


# --- the list ---------------------------------------------------------------------------


def test_the_list_shows_open_and_completed_audits_in_bounded_queries(
    client, project, manager, annotator, reviewer, django_assert_max_num_queries
):
    for i in range(4):
        task = deliver(project, manager, annotator, reviewer, name=f"Delivered {i}")
        audit = audit_services.audit_create(actor=manager, task=task)
        audit_services.finding_add(actor=manager, audit=audit, type="comment", note="ok")
        if i % 2:
            audit_services.audit_complete(actor=manager, audit=audit)
    client.force_login(reviewer)
    client.get(reverse("audits:list"))  # warm caches
    with django_assert_max_num_queries(14):
        response = client.get(reverse("audits:list"))
    body = response.content.decode()
    assert len(response.context["open_audits"]) == 2 and len(response.context["completed"]) == 2
    assert "Delivered 3" in body and reverse("audits:detail", args=[audit.pk]) in body


def test_the_list_links_annotators_to_the_task_page(client, annotator, audit):
    client.force_login(annotator)
    response = client.get(reverse("audits:list"))
    assert response.status_code == 200
    body = response.content.decode()
    assert reverse("audits:detail", args=[audit.pk]) not in body
    assert reverse("tasks:detail", args=[audit.task_id]) + "#task-audits" in body


# --- answering findings on the task page ----------------------------------------------------


def answer(client, audit, finding, answer, note="", htmx=False):
    url = reverse("audits:finding-answer", args=[audit.pk, finding.pk])
    extra = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(url, {"answer": answer, "note": note}, **extra)


def test_the_task_page_lists_the_audits_with_answers_for_the_annotator(
    client, annotator, delivered, finding
):
    client.force_login(annotator)
    body = client.get(reverse("tasks:detail", args=[delivered.pk])).content.decode()
    assert 'id="task-audits"' in body and "It failed" in body
    assert "Accept finding" in body and "Dispute" in body
    assert "Uphold" not in body


def test_the_annotator_accepts(client, annotator, audit, finding):
    client.force_login(annotator)
    response = answer(client, audit, finding, "accept")
    assert response.status_code == 302 and response["Location"].endswith("#task-audits")
    finding.refresh_from_db()
    assert (finding.state, finding.counts) == ("accepted", True)


def test_a_dispute_needs_a_reason_and_the_htmx_fragment_says_so(client, annotator, audit, finding):
    client.force_login(annotator)
    response = answer(client, audit, finding, "dispute", htmx=True)
    body = response.content.decode()
    assert response.status_code == 200 and body.lstrip().startswith('<section id="task-audits"')
    assert "Say why you dispute it." in body
    finding.refresh_from_db()
    assert finding.state == "open"


def test_an_unknown_answer_is_a_bad_request_and_changes_nothing(client, annotator, audit, finding):
    client.force_login(annotator)
    response = answer(client, audit, finding, "ignore")
    assert response.status_code == 400
    finding.refresh_from_db()
    assert finding.state == "open"


def test_dispute_then_the_auditor_upholds(client, annotator, manager, audit, finding):
    client.force_login(annotator)
    answer(client, audit, finding, "dispute", note="It succeeded")
    finding.refresh_from_db()
    assert finding.state == "disputed"
    client.force_login(manager)
    body = client.get(reverse("tasks:detail", args=[audit.task_id])).content.decode()
    assert "Uphold finding" in body and "It succeeded" in body
    response = answer(client, audit, finding, "uphold", note="The cup fell", htmx=True)
    assert "Finding upheld." in response.content.decode()
    finding.refresh_from_db()
    assert (finding.state, finding.upheld, finding.counts) == ("settled", True, True)


def test_a_reviewer_who_is_not_the_auditor_cannot_settle(
    client, annotator, reviewer, audit, finding
):
    audit_services.finding_respond(actor=annotator, finding=finding, response="dispute", note="No")
    client.force_login(reviewer)
    assert (
        "Uphold" not in client.get(reverse("tasks:detail", args=[audit.task_id])).content.decode()
    )
    response = answer(client, audit, finding, "withdraw")
    assert response.status_code == 302
    finding.refresh_from_db()
    assert finding.state == AuditFinding.State.DISPUTED


def test_outsiders_cannot_answer(client, outsider, audit, finding):
    client.force_login(outsider)
    assert answer(client, audit, finding, "accept").status_code == 404


def test_an_unknown_finding_is_404(client, annotator, audit, finding):
    client.force_login(annotator)
    url = reverse("audits:finding-answer", args=[audit.pk, finding.pk + 1000])
    assert client.post(url, {"answer": "accept"}).status_code == 404


# --- a standard audit that rejects: the annotator sees why ----------------------------------


def test_a_rejecting_standard_audit_shows_its_findings_in_the_workspace(
    client, project, manager, annotator
):
    project.delivery = "stage"
    project.save(update_fields=["delivery"])
    task = task_services.task_create(
        actor=manager, project=project, name="Staged", annotators=["ana"]
    )
    task_services.stage_start(actor=annotator, task=task, stage_key="annotate")
    task_services.annotation_create(
        actor=annotator, task=task, stage="annotate", label="outcome", data={"value": "success"}
    )
    task_services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    audit = audit_services.audit_create(actor=manager, task=task, stage="annotate", kind="standard")
    client.force_login(manager)
    page = client.get(reverse("audits:detail", args=[audit.pk]))
    assert page.context["workspace_data"]["audit"]["can_fix"] is True
    assert "Fix annotations" in page.content.decode() and "Reject" in page.content.decode()
    audit_services.finding_add(
        actor=manager, audit=audit, type="error", category="other", note="The cup fell"
    )
    client.post(
        reverse("audits:complete", args=[audit.pk]), {"decision": "reject", "note": "Redo it"}
    )
    audit.refresh_from_db()
    assert audit.decision == "reject"
    client.force_login(annotator)
    body = client.get(reverse("workspace:run", args=[task.pk, "annotate"])).content.decode()
    assert f"Audit #{audit.pk} sent this back for rework." in body
    assert "Redo it" in body and "The cup fell" in body
