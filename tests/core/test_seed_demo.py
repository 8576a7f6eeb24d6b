from datetime import timedelta

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.utils import timezone

from core.access import Action, can_create_project, project_allows
from projects.models import Dataset, Membership, Project

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent_and_logs_everyone_in():
    call_command("seed_demo")
    call_command("seed_demo")
    project = Project.objects.get(slug="pick-and-place")
    assert project.name == "Pick and place"
    roles = set(Membership.objects.values_list("user__username", "role"))
    assert roles == {
        ("manager", "manager"),
        ("reviewer", "reviewer"),
        ("annotator", "annotator"),
        ("annotator2", "annotator"),
    }
    for name in ("admin", "manager", "reviewer", "annotator", "annotator2"):
        assert authenticate(username=name, password="demo") is not None, name
    admin = authenticate(username="admin", password="demo")
    manager = authenticate(username="manager", password="demo")
    reviewer = authenticate(username="reviewer", password="demo")
    assert admin.is_superuser
    assert can_create_project(manager) and not can_create_project(reviewer)
    assert project_allows(reviewer, project, Action.REVIEW)
    assert not project_allows(reviewer, project, Action.CHANGE)


def test_seed_demo_imports_generated_episodes_once():
    call_command("seed_demo")
    call_command("seed_demo")
    datasets = Dataset.objects.filter(project__slug="pick-and-place").order_by("name")
    assert [(d.name, d.format, d.status, d.num_samples) for d in datasets] == [
        ("Sorting blocks", "hdf5", "finished", 3),
        ("Tabletop session 1", "hdf5", "finished", 4),
        ("Tabletop session 2", "hdf5", "finished", 3),
        ("Tabletop snapshots", "images", "finished", 6),
    ]
    episode = datasets[1].samples.first()
    assert [c["name"] for c in episode.cameras] == ["cam_high", "cam_right_wrist"]
    assert episode.cameras[0]["height"] == 96
    assert episode.arrays["qpos"]["shape"][1] == 14
    assert 90 <= episode.num_frames <= 140


def test_seed_demo_keeps_what_a_manager_changed():
    call_command("seed_demo")
    Membership.objects.filter(user__username="annotator").update(capacity=2, skills=["x"])
    call_command("seed_demo")
    membership = Membership.objects.get(user__username="annotator")
    assert (membership.capacity, membership.skills) == (2, ["x"])


def test_seed_demo_makes_tasks_in_every_status_through_the_services():
    from tasks.models import Task, TaskEvent

    call_command("seed_demo")
    call_command("seed_demo")
    statuses = set(Task.objects.values_list("status", flat=True))
    assert statuses == {
        "pending_start",
        "in_progress",
        "pending_review",
        "review_passed",
        "data_submitted",
    }
    assert Task.objects.count() == 8
    rework = Task.objects.get(name="Sent back for rework")
    segments = rework.runs.get(stage_key="segments")
    assert (segments.attempt, segments.feedback) == (2, "The grasp starts ten frames earlier.")
    assert TaskEvent.objects.filter(kind="status_changed").count() >= 10


def test_seed_demo_seeds_the_quality_history_through_the_services(settings):
    from audits.models import AgreementScore, Audit, AuditFinding, ReviewOutcome
    from tasks.models import Delivery, StageRun, Task, TaskEvent

    settings.STAGECRAFT_DEMO_QUALITY = True
    call_command("seed_demo")
    call_command("seed_demo")
    project = Project.objects.get(slug="pick-and-place")
    assert project.settings["audit_percent"] == 30
    assert Task.objects.filter(project=project, name__startswith="QA week").count() == 12
    findings = AuditFinding.objects.filter(project=project)
    assert findings.filter(type="error", state="accepted", counts=True).count() >= 3
    assert findings.filter(state="settled", upheld=True, counts=True).exists()
    assert findings.filter(state="settled", upheld=False, counts=False).exists()
    assert {"error", "flag", "confirmation", "comment"} <= set(
        findings.values_list("type", flat=True)
    )
    assert {"missing", "extraneous", "geometry", "attribute"} <= set(
        findings.filter(type="error").values_list("category", flat=True)
    )
    audits = Audit.objects.filter(project=project, status="completed", kind="fixless")
    assert audits.filter(findings__isnull=True).exists()  # a "no errors" audit
    # Delivered units no audit has looked at yet, for Audit next.
    audited = audits.values_list("task", flat=True)
    assert Delivery.objects.filter(task__project=project).exclude(task__in=audited).exists()

    # The fixed stage: a standard audit of a stage-level project, delivered again, marked.
    fixed = Audit.objects.get(fixed=True)
    assert (fixed.project.delivery, fixed.kind, fixed.decision) == ("stage", "standard", "accept")
    assert fixed.fixes.filter(action="update", before__isnull=False).exists()
    assert Delivery.objects.filter(task=fixed.task, payload__audit__fixed=True).exists()
    rejected = Audit.objects.get(kind="standard", decision="reject")
    assert rejected.task.runs.get(stage_key=rejected.stage_key).attempt == 2

    first = ReviewOutcome.objects.filter(project=project, first=True)
    assert set(first.values_list("accepted", flat=True)) == {True, False}
    assert set(first.values_list("annotator__username", flat=True)) == {"annotator", "annotator2"}
    scores = AgreementScore.objects.filter(project=project)
    assert scores.exists() and all(0 < s < 1 for s in scores.values_list("score", flat=True))
    runs = StageRun.objects.filter(task__project=project, samples_total__gt=0)
    assert runs.exists() and any(r.samples_complete < r.samples_total for r in runs)

    # The history spans weeks, and each task's times moved with its work.
    weeks = {d.isocalendar()[:2] for d in first.values_list("created_at", flat=True)}
    assert len(weeks) >= 4
    task = Task.objects.get(name="QA week 1 · episode 1")
    events = task.events.order_by("created_at", "id")
    assert events.first().created_at >= task.created_at
    assert events.last().created_at < events.first().created_at + timedelta(days=7)
    assert task.created_at < timezone.now() - timedelta(days=35)
    assert not TaskEvent.objects.filter(task__project=project, created_at__gt=timezone.now())
    assert not Audit.objects.filter(completed_at__gt=timezone.now()).exists()

    # Every figure of the quality page has a value, with trends, per stage and annotator.
    try:
        from audits.selectors import project_quality
    except ImportError:  # the figures land with their own issue
        return
    quality = project_quality(project=project, period="week")
    figures = ("first_pass_rate", "accuracy", "consistency", "completeness")
    assert all(quality[f] is not None for f in figures), quality
    assert 0.6 <= quality["first_pass_rate"] <= 0.9
    assert quality["accuracy"] < 1 and quality["consistency"] < 1
    assert quality["completeness"] < 1
    assert len(quality["by_period"]) >= 4
    people = {e["key"]: e for e in quality["by_annotator"]}
    for name in ("annotator", "annotator2"):
        assert all(people[name][f] is not None for f in figures), people[name]
    assert {s["key"] for s in quality["by_stage"]} >= {"segments", "objects"}
