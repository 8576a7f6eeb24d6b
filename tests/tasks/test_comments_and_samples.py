"""Comments pinned to samples/frames/annotations, invalid samples, and re-synced samples."""

from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from core.exceptions import ApplicationError, Conflict, InvalidTransition
from projects.dataset_services import dataset_resync_run
from tasks import services
from tasks.models import Comment, InvalidSample
from tests.helpers.hdf5 import write_aloha

pytestmark = pytest.mark.django_db


def box(task, annotator, sample, frame):
    return services.annotation_create(
        actor=annotator,
        task=task,
        stage="annotate",
        label="object",
        sample=sample.pk,
        data={"frame": frame, "x": 1, "y": 1, "w": 4, "h": 4},
    )


def test_a_comment_pinned_to_an_annotation_takes_its_sample(work, annotator, reviewer):
    a = box(work, annotator, work.samples[1], 3)
    comment = services.comment_create(
        actor=reviewer, task=work, kind="problem", body="Too loose", annotation=a.pk, frame=3
    )
    assert (comment.sample, comment.frame, comment.annotation) == (work.samples[1], 3, a)
    assert work.events.filter(kind="commented", data__comment_id=comment.pk).exists()


@pytest.mark.parametrize(
    ("pin", "field"),
    [
        ({"frame": 2}, "frame"),  # a frame needs its sample
        ({"sample": 999999}, "sample"),
        ({"sample": "x"}, "sample"),
        ({"annotation": 999999}, "annotation"),
        ({"sample": "first", "frame": 12}, "frame"),  # the episodes have frames 0–11
        ({"kind": "solution"}, "parent"),  # a solution answers a problem
        ({"kind": "gossip"}, "kind"),
        ({"body": "   "}, "body"),
        ({"stage": "nope"}, "stage"),
    ],
)
def test_bad_comments_are_refused_with_the_field(work, reviewer, pin, field):
    if pin.get("sample") == "first":
        pin["sample"] = work.samples[0].pk
    kwargs = {"body": "Look here"} | pin
    if "stage" in kwargs:
        kwargs["stage_key"] = kwargs.pop("stage")
    with pytest.raises(ApplicationError) as caught:
        services.comment_create(actor=reviewer, task=work, **kwargs)
    assert caught.value.field == field
    assert not Comment.objects.exists()


def test_a_problem_is_answered_and_resolved_by_the_reviewer_not_the_annotator(
    work, annotator, reviewer
):
    problem = services.comment_create(actor=reviewer, task=work, kind="problem", body="Missed one")
    answer = services.comment_create(
        actor=annotator, task=work, kind="solution", body="Added it", parent=problem.pk
    )
    assert answer.parent == problem
    with pytest.raises(PermissionDenied):
        services.comment_resolve(actor=annotator, comment=problem)
    services.comment_resolve(actor=reviewer, comment=problem)
    problem.refresh_from_db()
    assert problem.resolved and problem.resolved_by == reviewer
    assert list(work.events.filter(kind="problem_resolved").values_list("actor", flat=True)) == [
        reviewer.pk
    ]
    with pytest.raises(ApplicationError):
        services.comment_resolve(actor=reviewer, comment=answer)  # only problems


def test_a_reject_keeps_a_problem_pinned_where_the_reviewer_pointed(work, annotator, reviewer):
    a = box(work, annotator, work.samples[0], 5)
    services.stage_submit(actor=annotator, task=work, stage_key="annotate")
    services.stage_review(
        actor=reviewer,
        task=work,
        stage_key="review",
        decision="reject",
        comment="Box misses the gripper",
        annotation=a.pk,
        frame=5,
    )
    problem = Comment.objects.get()
    assert (problem.kind, problem.body, problem.frame) == ("problem", "Box misses the gripper", 5)
    # The stage whose box it is about (its feedback shows there only).
    assert (problem.sample, problem.annotation, problem.stage_key) == (
        work.samples[0],
        a,
        "annotate",
    )
    assert work.runs.get(stage_key="annotate").feedback == "Box misses the gripper"
    event = work.events.get(kind="review_rejected")
    assert event.data["comment_id"] == problem.pk


def test_a_review_pinned_to_a_foreign_sample_changes_nothing(work, annotator, reviewer):
    services.stage_submit(actor=annotator, task=work, stage_key="annotate")
    with pytest.raises(ApplicationError):
        services.stage_review(
            actor=reviewer,
            task=work,
            stage_key="review",
            decision="reject",
            comment="x",
            sample=999999,
        )
    assert work.runs.get(stage_key="review").status == "ready"
    assert not Comment.objects.exists()


def test_mark_a_sample_invalid_with_a_reason_and_restore_it(work, annotator, manager):
    sample = work.samples[1]
    with pytest.raises(ApplicationError) as caught:
        services.sample_mark_invalid(
            actor=annotator, task=work, sample=sample.pk, stage="annotate", reason=" "
        )
    assert caught.value.field == "reason"
    flag = services.sample_mark_invalid(
        actor=annotator, task=work, sample=sample.pk, stage="annotate", reason="Camera blocked"
    )
    assert (flag.sample, flag.reason, flag.author) == (sample, "Camera blocked", annotator)
    with pytest.raises(Conflict):
        services.sample_mark_invalid(
            actor=annotator, task=work, sample=sample.pk, stage="annotate", reason="again"
        )
    services.sample_restore(actor=manager, task=work, sample=sample.pk)
    assert not InvalidSample.objects.exists()
    kinds = list(work.events.filter(kind__startswith="sample_").values_list("kind", flat=True))
    assert kinds == ["sample_invalid", "sample_restored"]


def test_only_the_stages_annotator_marks_a_sample_invalid_while_it_is_open(
    work, annotator, reviewer
):
    sample = work.samples[0]
    with pytest.raises(PermissionDenied):
        services.sample_mark_invalid(
            actor=reviewer, task=work, sample=sample.pk, stage="annotate", reason="blur"
        )
    services.stage_submit(actor=annotator, task=work, stage_key="annotate")
    with pytest.raises(InvalidTransition):
        services.sample_mark_invalid(
            actor=annotator, task=work, sample=sample.pk, stage="annotate", reason="blur"
        )
    assert not InvalidSample.objects.exists()


def test_a_resynced_sample_shows_up_until_the_task_syncs(work, annotator, dataset):
    late = box(work, annotator, work.samples[1], 10)  # frame 10 of 12
    early = box(work, annotator, work.samples[1], 2)
    assert not services.changed_samples(work).exists()
    folder = Path(dataset.source_path)
    write_aloha(folder / "episode_1.hdf5", T=8, seed=7)  # trimmed upstream
    write_aloha(folder / "episode_2.hdf5", T=6, seed=8)  # a new repeat
    result = dataset_resync_run(dataset_id=dataset.pk)
    assert result == {"changed": ["episode_1"], "added": ["episode_2"]}
    dataset.refresh_from_db()
    assert (dataset.num_samples, dataset.total_frames) == (3, 12 + 8 + 6)
    assert [s.name for s in services.changed_samples(work)] == ["episode_1", "episode_2"]

    outcome = services.task_samples_sync(actor=annotator, task=work)
    assert outcome == {"samples": ["episode_1", "episode_2"], "invalidated": 1}
    late.refresh_from_db()
    early.refresh_from_db()
    assert late.invalid and "now ends at frame 7" in late.invalid_reason
    assert not early.invalid
    work.refresh_from_db()
    assert not services.changed_samples(work).exists()
    assert work.events.filter(kind="samples_synced").count() == 1


def test_a_resync_that_would_lose_a_sample_changes_nothing(dataset):
    from projects.dataset_selectors import sample_frame

    before = list(dataset.samples.values_list("name", "num_frames", "checksum"))
    (Path(dataset.source_path) / "episode_0.hdf5").unlink()
    result = dataset_resync_run(dataset_id=dataset.pk)
    assert "no longer in" in result["error"] and "episode_0" in result["error"]
    assert list(dataset.samples.values_list("name", "num_frames", "checksum")) == before
    dataset.refresh_from_db()
    assert dataset.error.startswith("Re-sync failed")
    first = dataset.samples.get(name="episode_0")
    camera = first.cameras[0]["name"]
    assert sample_frame(sample=first, camera=camera, index=0)[:2] == b"\xff\xd8"  # still readable


def test_only_someone_working_on_the_task_or_a_manager_syncs_it(work, reviewer, manager, users):
    with pytest.raises(PermissionDenied):
        services.task_samples_sync(actor=reviewer, task=work)
    assert services.task_samples_sync(actor=manager, task=work)["samples"] == []


def test_resync_matches_samples_by_file_not_by_name(project, manager, tmp_path):
    from projects.dataset_services import dataset_import_run, dataset_import_start

    folder = tmp_path / "days"
    write_aloha(folder / "day1" / "ep.hdf5", T=6, seed=1)
    write_aloha(folder / "day2" / "ep.hdf5", T=6, seed=2)
    dataset = dataset_import_start(
        actor=manager, project=project, name="Days", format="hdf5", source_path=folder,
        background=False,
    )  # fmt: skip
    dataset = dataset_import_run(dataset_id=dataset.pk)
    before = {s.source["file"]: (s.pk, s.num_frames) for s in dataset.samples.all()}
    write_aloha(folder / "day2" / "ep.hdf5", T=9, seed=3)
    assert dataset_resync_run(dataset_id=dataset.pk)["added"] == []
    after = {s.source["file"]: (s.pk, s.num_frames) for s in dataset.samples.all()}
    assert after == before | {"day2/ep.hdf5": (before["day2/ep.hdf5"][0], 9)}


def test_one_resync_at_a_time_and_an_interrupted_swap_is_repaired(dataset):
    from projects.dataset_services import dataset_dir, datasets_root
    from projects.models import Dataset

    Dataset.objects.filter(pk=dataset.pk).update(resync_started_at=timezone.now())
    assert dataset_resync_run(dataset_id=dataset.pk) == {"skipped": True}
    Dataset.objects.filter(pk=dataset.pk).update(resync_started_at=None)

    # A worker died between the two renames: the live folder is missing.
    dataset_dir(dataset).replace(datasets_root() / f".previous-{dataset.pk}")
    write_aloha(Path(dataset.source_path) / "episode_0.hdf5", T=5, seed=11)
    assert dataset_resync_run(dataset_id=dataset.pk) == {"changed": ["episode_0"], "added": []}
    assert (dataset_dir(dataset) / "episode_1.hdf5").is_file()
    assert not (datasets_root() / f".previous-{dataset.pk}").exists()
    assert Dataset.objects.get(pk=dataset.pk).resync_started_at is None


def test_a_pin_to_an_annotation_on_another_sample_is_refused(work, annotator, reviewer):
    a = box(work, annotator, work.samples[1], 3)
    with pytest.raises(ApplicationError) as caught:
        services.comment_create(
            actor=reviewer, task=work, body="x", annotation=a.pk, sample=work.samples[0].pk
        )
    assert caught.value.field == "sample"
    with pytest.raises(ApplicationError):
        services.comment_create(
            actor=reviewer, task=work, body="x", sample=work.samples[0].pk, frame="²"
        )


def test_consensus_annotators_neither_see_nor_pin_each_others_annotations(project, manager, api_as):
    from tests.tasks.test_flows import activate, annotators

    activate(project, manager, "driving-scene")
    a, b = annotators(project, manager, "c1", "c2", skills=["driving"])
    task = services.task_create(actor=manager, project=project, name="clip")
    for user in (a, b):
        services.stage_start(actor=user, task=task, stage_key="weather")
    mine = services.annotation_create(
        actor=a, task=task, stage="weather", label="weather", data={"value": "rain"}
    )
    services.comment_create(actor=a, task=task, body="unsure: rain or fog", annotation=mine.pk)
    with pytest.raises(ApplicationError):
        services.comment_create(actor=b, task=task, body="peek", annotation=mine.pk)
    assert api_as(b).get(f"/api/v1/tasks/{task.pk}/comments/").json() == []
    assert len(api_as(manager).get(f"/api/v1/tasks/{task.pk}/comments/").json()) == 1


def test_a_failed_submit_names_the_samples_and_skips_invalid_ones(
    project, manager, annotator, dataset, api_as
):
    from blueprints import services as blueprint_services

    blueprint = blueprint_services.blueprint_create_from_example(
        actor=manager, project=project, example="pick-and-place"
    )
    blueprint_services.blueprint_activate(actor=manager, blueprint=blueprint)
    task = services.task_create(
        actor=manager, project=project, name="t", datasets=[dataset.pk], annotators=["ana"]
    )
    services.stage_start(actor=annotator, task=task, stage_key="objects")
    samples = list(dataset.samples.order_by("index"))
    # The stage boxes half the samples (sampling: 50): one of the two, drawn for the task.
    stage = services.spec_for(task.blueprint).by_key["objects"]
    (drawn,) = services.stage_samples(task=task, stage=stage, samples=samples)
    url = f"/api/v1/tasks/{task.pk}/stages/objects/submit/"
    refused = api_as(annotator).post(url)
    assert refused.status_code == 400
    assert refused.json()["checks"] == [f"1 sample(s) have no annotation yet: {drawn.name}."]
    assert refused.json()["by_sample"] == {str(drawn.pk): ["No annotation yet."]}
    services.sample_mark_invalid(
        actor=annotator, task=task, sample=drawn.pk, stage="objects", reason="no objects seen"
    )
    assert api_as(annotator).post(url).status_code == 200


def test_required_attributes_hold_even_without_the_blueprints_check(work, annotator):
    services.annotation_create(
        actor=annotator, task=work, stage="annotate", label="segment", data={"start": 1, "end": 4}
    )  # the default blueprint's stage lists no checks; description is required
    with pytest.raises(ApplicationError) as caught:
        services.stage_submit(actor=annotator, task=work, stage_key="annotate")
    assert "lacks the required description" in str(caught.value.extra["checks"])


def test_frames_past_a_samples_end_are_refused(work, annotator):
    with pytest.raises(ApplicationError) as caught:
        services.annotation_create(
            actor=annotator, task=work, stage="annotate", label="segment",
            sample=work.sample.pk, data={"start": 2, "end": 9999},
            attributes={"description": "grasp"},
        )  # fmt: skip
    assert caught.value.field == "data.end" and "frames 0–11" in caught.value.message
    a = box(work, annotator, work.sample, 11)
    with pytest.raises(ApplicationError):
        services.annotation_update(
            actor=annotator, annotation=a, version=a.version,
            data={"frame": 12, "x": 1, "y": 1, "w": 2, "h": 2},
        )  # fmt: skip
