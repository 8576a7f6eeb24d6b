"""Audits through the services and the API: who may audit what, findings and their answers,
standard audits (accept, reject to rework, fix and deliver again), the audit queue, and the
measurements the quality figures are made of (first pass, agreement, completeness, QC flags)."""

import krippendorff
import numpy as np
import pytest
from django.core.exceptions import PermissionDenied

from audits import services as audits
from audits.measures import class_alpha
from audits.models import AgreementScore, Audit, AuditFinding, ReviewOutcome
from blueprints import services as blueprint_services
from core.exceptions import ApplicationError, Conflict, InvalidTransition
from tasks import services
from tasks.models import Delivery, StageRun
from tests.tasks.test_flows import activate, annotators

pytestmark = pytest.mark.django_db


def delivered(project, manager, annotator, reviewer, dataset, name="Episodes", boxes=3):
    """A default-blueprint task annotated by ana (``boxes`` boxes), approved by ravi."""
    task = services.task_create(
        actor=manager, project=project, name=name, datasets=[dataset.pk], annotators=["ana"]
    )
    services.stage_start(actor=annotator, task=task, stage_key="annotate")
    sample = dataset.samples.order_by("index").first()
    task.boxes = [
        services.annotation_create(
            actor=annotator,
            task=task,
            stage="annotate",
            label="object",
            sample=sample.pk,
            data={"frame": 0, "x": 1 + i, "y": 1, "w": 4, "h": 4},
        )  # fmt: skip
        for i in range(boxes)
    ]
    services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    services.stage_review(actor=reviewer, task=task, stage_key="review", decision="approve")
    task.refresh_from_db()
    return task


def stage_level(project):
    project.delivery = "stage"
    project.save(update_fields=["delivery"])
    return project


def test_fixless_audit_findings_answers_and_the_current_audit(
    project, manager, annotator, reviewer, dataset
):
    task = delivered(project, manager, annotator, reviewer, dataset)
    audit = audits.audit_create(actor=reviewer, task=task, kind="fixless")
    assert audit.stage_key == "" and audit.status == "open"
    # Opening it again gives the same audit back; another auditor is told who has it.
    assert audits.audit_create(actor=reviewer, task=task, kind="fixless").pk == audit.pk
    with pytest.raises(Conflict, match="ravi is auditing"):
        audits.audit_create(actor=manager, task=task, kind="fixless")

    wrong = audits.finding_add(
        actor=reviewer, audit=audit, type="error", category="geometry",
        annotation=task.boxes[0].pk, note="Too loose",
    )  # fmt: skip
    assert wrong.annotator == annotator and wrong.sample_id == task.boxes[0].sample_id
    flag = audits.finding_add(actor=reviewer, audit=audit, type="flag", note="Check the light")
    missing = audits.finding_add(
        actor=reviewer, audit=audit, type="error", category="missing",
        sample=task.boxes[0].sample_id, frames=[2, 5], note="The cup",
    )  # fmt: skip
    with pytest.raises(ApplicationError, match="cannot be pinned to an annotation"):
        audits.finding_add(
            actor=reviewer, audit=audit, type="error", category="missing",
            annotation=task.boxes[1].pk,
        )  # fmt: skip
    with pytest.raises(ApplicationError, match="within 0"):
        audits.finding_add(
            actor=reviewer, audit=audit, type="error", sample=task.boxes[0].sample_id,
            frames=[5, 999],
        )  # fmt: skip
    with pytest.raises(ApplicationError, match="no attribute"):
        audits.finding_add(
            actor=reviewer, audit=audit, type="error", category="attribute",
            annotation=task.boxes[1].pk, attribute="colour",
        )  # fmt: skip
    # Only the auditor records findings; the annotator cannot.
    with pytest.raises(PermissionDenied):
        audits.finding_add(actor=annotator, audit=audit, type="comment", note="me?")

    done = audits.audit_complete(actor=reviewer, audit=audit)
    assert (done.status, done.decision, done.current, done.annotation_count) == (
        "completed", "accept", True, 3,
    )  # fmt: skip
    with pytest.raises(ApplicationError, match="fixless audit changes nothing"):
        audits.audit_complete(actor=reviewer, audit=audits.audit_create(
            actor=reviewer, task=task, kind="fixless"), decision="reject")  # fmt: skip

    # The annotator accepts one error and disputes the other; the auditor settles.
    with pytest.raises(ApplicationError, match="Say why"):
        audits.finding_respond(actor=annotator, finding=missing, response="dispute")
    with pytest.raises(PermissionDenied):
        audits.finding_respond(actor=reviewer, finding=wrong, response="accept")
    assert audits.finding_respond(actor=annotator, finding=wrong, response="accept").counts
    disputed = audits.finding_respond(
        actor=annotator, finding=missing, response="dispute", note="No cup in this episode"
    )
    assert (disputed.state, disputed.counts) == ("disputed", False)
    with pytest.raises(InvalidTransition):
        audits.finding_settle(actor=reviewer, finding=flag, uphold=True)
    settled = audits.finding_settle(actor=reviewer, finding=missing, uphold=True, note="It is")
    assert (settled.state, settled.upheld, settled.counts) == ("settled", True, True)
    assert not AuditFinding.objects.get(pk=flag.pk).counts  # only errors count
    kinds = list(task.events.filter(kind__startswith="finding_").values_list("kind", flat=True))
    assert kinds == ["finding_accepted", "finding_disputed", "finding_settled"]
    assert task.events.filter(kind="audit_completed").count() == 1


def test_a_newer_audit_of_the_unit_becomes_the_one_that_counts(
    project, manager, annotator, reviewer, dataset
):
    task = delivered(project, manager, annotator, reviewer, dataset)
    first = audits.audit_create(actor=reviewer, task=task, kind="fixless")
    error = audits.finding_add(actor=reviewer, audit=first, type="error", note="x")
    audits.audit_complete(actor=reviewer, audit=first)
    second = audits.audit_create(actor=manager, task=task, kind="fixless")
    audits.audit_complete(actor=manager, audit=second)  # no findings: "no errors"
    first.refresh_from_db(), error.refresh_from_db()
    assert not first.current and not error.current
    assert Audit.objects.get(pk=second.pk).current
    assert list(task.audits.order_by("id").values_list("status", flat=True)) == [
        "completed", "completed",
    ]  # fmt: skip


def test_who_may_audit_and_what(project, manager, annotator, reviewer, dataset):
    task = delivered(project, manager, annotator, reviewer, dataset)
    with pytest.raises(PermissionDenied):
        audits.audit_create(actor=annotator, task=task, kind="fixless")
    with pytest.raises(ApplicationError, match="standard audit needs stage-level delivery"):
        audits.audit_create(actor=reviewer, task=task, kind="standard")
    with pytest.raises(ApplicationError, match="without a stage"):
        audits.audit_create(actor=reviewer, task=task, stage="annotate", kind="fixless")
    # A manager who annotated the work may not audit it.
    own = services.task_create(actor=manager, project=project, name="Mine", datasets=[dataset.pk])
    services.stage_start(actor=manager, task=own, stage_key="annotate")
    services.stage_submit(actor=manager, task=own, stage_key="annotate")
    with pytest.raises(InvalidTransition, match="not been delivered"):
        audits.audit_create(actor=reviewer, task=own, kind="fixless")
    services.stage_review(actor=reviewer, task=own, stage_key="review", decision="approve")
    with pytest.raises(PermissionDenied, match="own work"):
        audits.audit_create(actor=manager, task=own, kind="fixless")
    assert audits.audit_create(actor=reviewer, task=own, kind="fixless").auditor == reviewer


def test_standard_audit_fixes_are_recorded_and_delivered_again(
    project, manager, annotator, reviewer, dataset
):
    stage_level(project)
    task = delivered(project, manager, annotator, reviewer, dataset)
    assert task.deliveries.filter(stage_key="annotate").count() == 1
    with pytest.raises(ApplicationError, match="name the annotate stage"):
        audits.audit_create(actor=reviewer, task=task, kind="standard")
    audit = audits.audit_create(actor=reviewer, task=task, stage="annotate", kind="standard")
    box = task.boxes[0]
    # Without the audit the delivered stage is closed; the fix goes through the audit.
    with pytest.raises(InvalidTransition):
        services.annotation_update(actor=reviewer, annotation=box, version=1, data={**box.data})
    fixed = services.annotation_update(
        actor=reviewer, annotation=box, version=1, audit=audit.pk,
        data={**box.data, "w": 6},
    )  # fmt: skip
    services.annotation_delete(actor=reviewer, annotation=task.boxes[1], audit=audit.pk)
    with pytest.raises(PermissionDenied):
        services.annotation_update(
            actor=annotator, annotation=fixed, version=2, audit=audit.pk, data=box.data
        )
    done = audits.audit_complete(actor=reviewer, audit=audit, decision="accept")
    assert done.fixed
    fixes = list(done.fixes.order_by("id"))
    assert [(f.action, f.before["data"]["w"], (f.after or {}).get("data", {}).get("w"))
            for f in fixes] == [("update", 4, 6), ("delete", 4, None)]  # fmt: skip
    again = task.deliveries.filter(stage_key="annotate").order_by("id").last()
    assert again.payload["audit"]["fixed"] is True and len(again.payload["audit"]["fixes"]) == 2
    marked = {a["id"]: a["fixed"] for a in again.payload["annotations"]}
    assert marked == {box.pk: True, task.boxes[2].pk: False}
    outcome = ReviewOutcome.objects.get(task=task, source="audit")
    assert outcome.accepted and not outcome.first  # the review decided the first attempt


def test_standard_audit_reject_sends_the_stage_back_to_its_annotator(
    project, manager, annotator, reviewer, dataset
):
    stage_level(project)
    task = delivered(project, manager, annotator, reviewer, dataset)
    assert task.status == "review_passed"
    audit = audits.audit_create(actor=reviewer, task=task, stage="annotate", kind="standard")
    audits.finding_add(actor=reviewer, audit=audit, type="error", category="geometry",
                       annotation=task.boxes[0].pk, note="Box the whole cup")  # fmt: skip
    audits.audit_complete(actor=reviewer, audit=audit, decision="reject", note="Redo the boxes")
    task.refresh_from_db()
    run = task.runs.get(stage_key="annotate")
    review = task.runs.get(stage_key="review")
    assert task.status == "in_progress"
    assert (run.status, run.attempt, run.assignee) == ("in_progress", 2, annotator)
    assert "Redo the boxes" in run.feedback and "Box the whole cup" in run.feedback
    assert (review.status, review.attempt) == ("blocked", 2)
    assert task.events.filter(kind="stage_reopened", stage_key="annotate").exists()
    # The rework is delivered again as attempt 2 once reviewed.
    services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    services.stage_review(actor=reviewer, task=task, stage_key="review", decision="approve")
    attempts = list(
        task.deliveries.filter(stage_key="annotate").values_list("payload__attempt", flat=True)
    )
    assert attempts == [1, 2]


def test_audit_queue_draws_delivered_units_and_audit_next_claims_them(
    project, manager, annotator, reviewer, dataset
):
    tasks = [
        delivered(project, manager, annotator, reviewer, dataset, name=f"t{i}", boxes=1)
        for i in range(6)
    ]
    assert audits.audit_queue(actor=reviewer).count() == 0  # audit sampling is off
    project.settings = {"audit_percent": 100}
    project.save(update_fields=["settings"])
    assert audits.audit_queue(actor=reviewer).count() == 6
    assert audits.audit_queue(actor=annotator).count() == 0  # their own work, not auditors
    draws = sorted(Delivery.objects.values_list("audit_draw", flat=True))
    project.settings = {"audit_percent": 50}
    project.save(update_fields=["settings"])
    expected = sum(d < 50 for d in draws)
    assert audits.audit_queue(actor=reviewer).count() == expected
    # Reproducible: delivering again never re-rolls a unit.
    assert sorted(Delivery.objects.values_list("audit_draw", flat=True)) == draws
    project.settings = {"audit_percent": 100}
    project.save(update_fields=["settings"])
    first = audits.audit_claim_next(actor=reviewer)
    second = audits.audit_claim_next(actor=manager)
    assert first.sampled and first.kind == "fixless" and first.task_id != second.task_id
    assert audits.audit_queue(actor=reviewer).count() == 4
    assert {t.pk for t in tasks} >= {first.task_id, second.task_id}


def test_review_outcomes_mark_the_first_decision_of_a_first_attempt(
    project, manager, annotator, reviewer, dataset
):
    task = services.task_create(actor=manager, project=project, name="t", datasets=[dataset.pk])
    services.stage_start(actor=annotator, task=task, stage_key="annotate")
    services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    services.stage_review(actor=reviewer, task=task, stage_key="review", decision="reject")
    services.stage_submit(actor=annotator, task=task, stage_key="annotate")
    services.stage_review(actor=reviewer, task=task, stage_key="review", decision="approve")
    rows = list(ReviewOutcome.objects.filter(task=task).values_list("attempt", "accepted", "first"))
    assert rows == [(1, False, True), (2, True, False)]
    assert ReviewOutcome.objects.filter(task=task).first().annotator == annotator


def test_completeness_and_warn_checks_are_measured_on_submit(project, manager, annotator, dataset):
    definition = {
        "name": "qc",
        "taxonomy": [
            {"key": "object", "kind": "box",
             "attributes": [{"key": "colour", "type": "text", "required": False}]},
            {"key": "outcome", "kind": "classification", "choices": ["ok", "bad"]},
        ],
        "stages": [
            {"key": "label", "kind": "annotate", "classes": ["object", "outcome"],
             "checks": [{"rule": "min_count", "class": "object", "count": 3,
                         "severity": "warn"}]},
        ],
    }  # fmt: skip
    blueprint_services.blueprint_save(actor=manager, project=project, definition=definition)
    task = services.task_create(
        actor=manager, project=project, name="t", datasets=[dataset.pk], blueprint="qc"
    )
    first, second = dataset.samples.order_by("index")
    services.stage_start(actor=annotator, task=task, stage_key="label")
    for sample in (first, second):
        services.annotation_create(
            actor=annotator, task=task, stage="label", label="object", sample=sample.pk,
            data={"frame": 0, "x": 1, "y": 1, "w": 2, "h": 2},
        )  # fmt: skip
    # Only the first sample has its outcome: one of two samples is complete.
    services.annotation_create(
        actor=annotator, task=task, stage="label", label="outcome", sample=first.pk,
        data={"value": "ok"},
    )  # fmt: skip
    run = services.stage_submit(actor=annotator, task=task, stage_key="label")
    run = StageRun.objects.get(pk=run.pk)
    assert (run.status, run.samples_total, run.samples_complete) == ("completed", 2, 1)
    assert run.qc_flags == ["At least 3 object needed; there are 2."]
    assert task.events.get(kind="stage_submitted").data["qc_flags"] == run.qc_flags


def test_consensus_agreement_is_stored_per_pair_and_measure(project, manager):
    activate(project, manager, "driving-scene")
    a, b, c = annotators(project, manager, "a1", "a2", "a3", skills=["driving"])
    task = services.task_create(actor=manager, project=project, name="clip")
    for user, value in ((a, "rain"), (b, "rain"), (c, "fog")):
        services.stage_start(actor=user, task=task, stage_key="weather")
        services.annotation_create(
            actor=user, task=task, stage="weather", label="weather", data={"value": value}
        )
        services.stage_submit(actor=user, task=task, stage_key="weather")
    scores = {
        (s.annotator_a.username, s.annotator_b.username): s.score
        for s in AgreementScore.objects.filter(task=task, measure="class_alpha")
    }
    # One unit each: two annotators that agree have alpha 1 (no disagreement at all);
    # a disagreement on a single unit is alpha below 0, stored as 0 (no agreement).
    assert scores[("a1", "a2")] == 1.0
    assert scores[("a1", "a3")] == 0 and scores[("a2", "a3")] == 0


def test_class_alpha_is_the_libraries_krippendorff_alpha():
    class A:
        kind = "classification"

        def __init__(self, label, sample, value):
            self.label, self.sample_id, self.data = label, sample, {"value": value}

    left = [A("o", s, v) for s, v in enumerate(["a", "a", "b", "b", "c"], start=1)]
    right = [A("o", s, v) for s, v in enumerate(["a", "b", "b", "b", "c"], start=1)]
    # By hand (nominal, 2 coders, 5 units, 10 values): observed disagreement 2/10 pairs
    # weighted, expected from the marginals a:3 b:5 c:2 → alpha = 1 - Do/De.
    n = 10
    do = 2 / n  # one unit disagrees: 2 ordered pairs of the 10 pairable values
    de = (n * n - (3 * 3 + 5 * 5 + 2 * 2)) / (n * (n - 1))
    assert class_alpha([left, right]) == pytest.approx(1 - do / de)
    library = krippendorff.alpha(
        reliability_data=np.array([[0, 0, 1, 1, 2], [0, 1, 1, 1, 2]], dtype=float),
        level_of_measurement="nominal",
    )
    assert class_alpha([left, right]) == pytest.approx(library)


def test_audit_api_shapes_and_errors(api_as, project, manager, annotator, reviewer, dataset):
    task = delivered(project, manager, annotator, reviewer, dataset)
    client = api_as(reviewer)
    bad = client.post("/api/v1/audits/", {"task": task.pk, "kind": "standard"}, format="json")
    assert bad.status_code == 400 and "kind" in bad.json()
    made = client.post("/api/v1/audits/", {"task": task.pk, "kind": "fixless"}, format="json")
    assert made.status_code == 201, made.content
    audit = made.json()
    assert {k: audit[k] for k in ("task", "stage", "kind", "status", "decision")} == {
        "task": task.pk, "stage": None, "kind": "fixless", "status": "open", "decision": "",
    }  # fmt: skip
    url = f"/api/v1/audits/{audit['id']}/"
    finding = client.post(
        url + "findings/",
        {"type": "error", "category": "wrong_class", "annotation": task.boxes[0].pk,
         "note": "A cup, not a block"},
        format="json",
    )  # fmt: skip
    assert finding.status_code == 201, finding.content
    assert finding.json()["state"] == "open" and finding.json()["annotator"] == "ana"
    assert client.post(url + "findings/", {"type": "oops"}, format="json").status_code == 400
    assert client.post(url + "complete/", {"decision": "reject"}, format="json").status_code == 400
    assert client.post(url + "complete/", {}, format="json").json()["status"] == "completed"
    fid = finding.json()["id"]
    mine = api_as(annotator)
    listed = mine.get("/api/v1/audits/", {"task": task.pk})
    assert listed.status_code == 200 and listed.json()["count"] == 1  # their own work's audit
    disputed = mine.post(f"{url}findings/{fid}/dispute/", {"note": "It is a block"}, format="json")
    assert disputed.json()["state"] == "disputed"
    settle = client.post(f"{url}findings/{fid}/settle/", {"uphold": False}, format="json")
    assert settle.json()["state"] == "settled" and settle.json()["counts"] is False
    assert api_as(annotator).post("/api/v1/audits/next/").status_code == 204
    assert client.get("/api/v1/audits/?status=done").status_code == 400


def test_double_annotation_outside_consensus_is_measured(project, manager, annotator, dataset):
    """Two annotate stages that add the same class to the same samples are two annotators'
    work on the same samples: their boxes' IoU is a consistency row."""
    definition = {
        "name": "twice",
        "taxonomy": [{"key": "object", "kind": "box"}],
        "stages": [
            {"key": "first", "kind": "annotate", "classes": ["object"]},
            {"key": "second", "kind": "annotate", "classes": ["object"]},
        ],
    }
    blueprint_services.blueprint_save(actor=manager, project=project, definition=definition)
    (other,) = annotators(project, manager, "a2")
    task = services.task_create(
        actor=manager, project=project, name="t", datasets=[dataset.pk], blueprint="twice"
    )
    sample = dataset.samples.order_by("index").first()
    for user, stage, x in ((annotator, "first", 0), (other, "second", 5)):
        services.stage_start(actor=user, task=task, stage_key=stage)
        services.annotation_create(
            actor=user, task=task, stage=stage, label="object", sample=sample.pk,
            data={"frame": 0, "x": x, "y": 0, "w": 10, "h": 10},
        )  # fmt: skip
        services.stage_submit(actor=user, task=task, stage_key=stage)
    (score,) = AgreementScore.objects.filter(task=task)
    # Overlap 5×10 = 50 of a union of 150: IoU 1/3, both ways.
    assert (score.stage_key, score.measure, score.score) == ("second", "box_iou", 0.3333)
    assert {score.annotator_a, score.annotator_b} == {annotator, other}
    from audits.selectors import project_quality

    assert project_quality(project=project)["consistency"] == 0.3333
