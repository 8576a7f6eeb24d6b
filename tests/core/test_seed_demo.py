import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

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
