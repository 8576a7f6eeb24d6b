"""A reviewer audits a delivered task in the browser; the annotator disputes the finding; the
reviewer upholds it; the manager's quality figures count it."""

import re

from playwright.sync_api import expect

from audits.models import Audit, AuditFinding
from audits.selectors import project_quality
from projects.models import Project


def test_audit_a_delivered_task_dispute_and_uphold(login, live_server):
    project = Project.objects.get(slug="pick-and-place")  # delivers whole tasks
    project.settings = {**(project.settings or {}), "audit_percent": 100}
    project.save(update_fields=["settings"])

    # The reviewer presses Audit next beside Review next and lands on the audit page.
    page = login("reviewer")
    page.goto(f"{live_server.url}/workspace/")
    expect(page.locator("#audit-waiting")).to_have_text(re.compile(r"^[1-9]\d* units? waiting"))
    page.get_by_role("button", name="Audit next").click()
    expect(page).to_have_url(re.compile(r"/audits/\d+/$"))
    audit = Audit.objects.get(pk=int(re.search(r"/audits/(\d+)/", page.url).group(1)))
    assert (audit.kind, audit.stage_key, audit.auditor.username) == ("fixless", "", "reviewer")
    page.wait_for_function("() => document.body.dataset.workspaceReady === 'true'")

    # An error pinned to the grasp segment (task-level, so on every sample).
    annotations = page.get_by_role("list", name="Annotations of this sample")
    annotations.get_by_role("button", name=re.compile(r"^Finding on gripper_open")).click()
    expect(page.locator("[data-scope-annotation]")).to_contain_text("gripper_open #")
    panel = page.get_by_role("group", name="Add a finding")
    expect(panel.get_by_role("radio", name=re.compile("gripper_open"))).to_be_checked()
    panel.get_by_label("Type", exact=True).select_option("error")
    panel.get_by_label("Category", exact=True).select_option("geometry")
    panel.get_by_label("Note", exact=True).fill("The grasp starts ten frames earlier.")
    panel.get_by_role("button", name="Add finding").click()
    findings = page.get_by_role("list", name="Findings")
    expect(findings).to_contain_text("Error · Geometry")
    expect(findings).to_contain_text("gripper_open #")
    finding = AuditFinding.objects.get(audit=audit)
    assert finding.annotation.label == "gripper_open" and finding.annotator.username == "annotator"

    page.get_by_role("button", name="Complete audit").click()
    expect(page.get_by_text("Audit completed.")).to_be_visible()
    audit.refresh_from_db()
    assert audit.status == "completed" and audit.current

    # The annotator disputes it on the task's page.
    ana = login("annotator", new_context=True)
    ana.goto(f"{live_server.url}/tasks/{audit.task_id}/")
    card = ana.locator("#task-audits")
    expect(card).to_contain_text("The grasp starts ten frames earlier.")
    card.get_by_text("Dispute…").click()
    card.get_by_label("Why you dispute it").fill("The gripper only opens at frame 20.")
    card.get_by_role("button", name="Dispute", exact=True).click()
    expect(card.locator(".finding-state-disputed")).to_have_text("disputed")
    expect(card.get_by_role("button", name=re.compile("^Accept finding"))).to_have_count(0)

    # The reviewer (the auditor) upholds it: the error counts from now on.
    errors_before = project_quality(project=project)["counts"]["errors"]
    page.goto(f"{live_server.url}/tasks/{audit.task_id}/")
    card = page.locator("#task-audits")
    expect(card).to_contain_text("The gripper only opens at frame 20.")
    card.get_by_role("button", name=f"Uphold finding #{finding.pk}").click()
    expect(card.locator(".finding-state-settled")).to_have_text("upheld")
    finding.refresh_from_db()
    assert (finding.state, finding.upheld, finding.counts) == ("settled", True, True)

    # The manager's quality page counts it: accuracy below 100 %.
    maya = login("manager", new_context=True)
    maya.goto(f"{live_server.url}/projects/{project.slug}/quality/")
    accuracy = maya.locator(".indicator-accuracy")
    expect(accuracy).to_contain_text(f"{errors_before + 1} error")
    assert int(accuracy.locator(".figure").inner_text().rstrip("%")) < 100
