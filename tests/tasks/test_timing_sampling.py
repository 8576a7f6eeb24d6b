"""Stage parameters that change the work: ``sampling`` (a reproducible share of the task's
samples) and ``time_limit`` (a claimed run goes back to the pool when its time is up)."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from blueprints import services as blueprint_services
from blueprints.engine import stage_sample_ids
from core.exceptions import ApplicationError
from tasks import services
from tasks.selectors import task_statistics

pytestmark = pytest.mark.django_db


def blueprint(project, manager, *, sampling=None, time_limit=None, checks=None):
    params = {"instructions": "Say how each episode ended."}
    if sampling is not None:
        params["sampling"] = sampling
    if time_limit is not None:
        params["time_limit"] = time_limit
    definition = {
        "name": "sampled",
        "taxonomy": [{"key": "outcome", "kind": "classification", "choices": ["ok", "bad"]}],
        "stages": [
            {
                "key": "label",
                "kind": "annotate",
                "classes": ["outcome"],
                "params": params,
                "checks": checks if checks is not None else [{"rule": "all_samples_annotated"}],
            },
            {"key": "review", "kind": "review", "depends_on": ["label"], "reviews": ["label"]},
        ],
    }
    saved, _ = blueprint_services.blueprint_save(
        actor=manager, project=project, definition=definition
    )
    blueprint_services.blueprint_activate(actor=manager, blueprint=saved)
    return saved


@pytest.fixture
def six(project, manager, tmp_path):
    """A finished dataset of six short episodes."""
    from projects.dataset_services import dataset_import_run, dataset_import_start
    from tests.helpers.hdf5 import write_aloha

    folder = tmp_path / "six"
    for i in range(6):
        write_aloha(folder / f"episode_{i}.hdf5", T=4, seed=i)
    dataset = dataset_import_start(
        actor=manager, project=project, name="Six", format="hdf5", source_path=folder,
        background=False,
    )  # fmt: skip
    dataset = dataset_import_run(dataset_id=dataset.pk)
    assert dataset.status == "finished", dataset.error
    return dataset


def sampled_task(project, manager, annotator, dataset, name="t", **params):
    blueprint(project, manager, **params)
    task = services.task_create(
        actor=manager, project=project, name=name, datasets=[dataset.pk], annotators=["ana"]
    )
    services.stage_start(actor=annotator, task=task, stage_key="label")
    return task


def label(task, annotator, sample):
    return services.annotation_create(
        actor=annotator, task=task, stage="label", label="outcome", sample=sample.pk,
        data={"value": "ok"},
    )  # fmt: skip


def drawn(task):
    from projects.models import Sample

    spec = services.spec_for(task.blueprint)
    every = list(Sample.objects.filter(dataset__tasks=task).order_by("dataset__name", "index"))
    return every, services.stage_samples(task=task, stage=spec.by_key["label"], samples=every)


# --- sampling ----------------------------------------------------------------------------


def test_the_draw_is_reproducible_takes_the_share_and_never_nothing():
    ids = list(range(1, 41))
    first = stage_sample_ids("task-7", "label", ids, 25)
    assert first == stage_sample_ids("task-7", "label", ids, 25)
    assert len(first) == 10 and first == sorted(first)
    assert stage_sample_ids("task-8", "label", ids, 25) != first  # another task, another draw
    assert len(stage_sample_ids("task-7", "label", ids, 0)) == 1
    assert stage_sample_ids("task-7", "label", ids, 100) == ids
    assert stage_sample_ids("task-7", "label", ids, None) == ids
    assert stage_sample_ids("task-7", "label", [], 50) == []
    # A sample added later leaves the others' draws as they were.
    assert set(stage_sample_ids("task-7", "label", ids[:-1], 25)) & set(first) >= set(first[:-1])


def test_a_sampled_stage_submits_once_its_sample_is_annotated(project, manager, annotator, six):
    task = sampled_task(project, manager, annotator, six, sampling=50)
    every, chosen = drawn(task)
    assert len(chosen) == 3
    assert drawn(task)[1] == chosen  # the same every time
    for sample in chosen[:2]:
        label(task, annotator, sample)
    with pytest.raises(ApplicationError) as refused:
        services.stage_submit(actor=annotator, task=task, stage_key="label")
    # Only the missing sample of the stage's sample is named, not the three left out.
    assert refused.value.extra["checks"] == [
        f"1 sample(s) have no annotation yet: {chosen[2].name}."
    ]
    label(task, annotator, chosen[2])
    run = services.stage_submit(actor=annotator, task=task, stage_key="label")
    assert run.status == "completed"


def test_counting_checks_count_only_the_stages_sample(project, manager, annotator, six):
    checks = [{"rule": "min_count", "class": "outcome", "count": 3}]
    task = sampled_task(project, manager, annotator, six, sampling=50, checks=checks)
    every, chosen = drawn(task)
    for sample in chosen[:2]:
        label(task, annotator, sample)
    with pytest.raises(ApplicationError) as refused:
        services.stage_submit(actor=annotator, task=task, stage_key="label")
    assert refused.value.extra["checks"] == ["At least 3 outcome needed; there are 2."]


def test_samples_outside_the_stages_draw_take_no_annotation(project, manager, annotator, six):
    task = sampled_task(project, manager, annotator, six, sampling=50)
    every, chosen = drawn(task)
    left_out = next(s for s in every if s not in chosen)
    with pytest.raises(ApplicationError, match="is not among the samples “label” annotates") as e:
        label(task, annotator, left_out)
    assert e.value.field == "sample"
    assert not task.annotations.exists()


def workspace_samples(client, task, stage_key) -> tuple[str, set[str]]:
    page = client.get(f"/workspace/{task.pk}/{stage_key}/").content.decode()
    data = json.loads(page.split('id="workspace-data" type="application/json">')[1].split("<")[0])
    return page, {s["name"] for s in data["samples"] if s["in_stage"]}


def test_the_workspace_marks_the_stages_sample_and_counts_progress_over_it(
    client, project, manager, annotator, reviewer, six
):
    task = sampled_task(project, manager, annotator, six, sampling=50)
    every, chosen = drawn(task)
    client.force_login(annotator)
    page, marked = workspace_samples(client, task, "label")
    assert marked == {s.name for s in chosen}
    assert f'max="{len(chosen)}"' in page
    assert "annotates 3 of 6 samples (50 %)" in page
    for sample in chosen:
        label(task, annotator, sample)
    services.stage_submit(actor=annotator, task=task, stage_key="label")
    client.force_login(reviewer)  # the review looks at the same samples
    page, marked = workspace_samples(client, task, "review")
    assert marked == {s.name for s in chosen}
    assert "reviews 3 of 6 samples" in page


def test_task_statistics_count_the_samples_the_stages_annotate(project, manager, annotator, six):
    task = sampled_task(project, manager, annotator, six, sampling=50)
    every, chosen = drawn(task)
    label(task, annotator, chosen[0])
    stats = task_statistics(task=task)
    assert (stats["samples"], stats["annotated_samples"], stats["percent_annotated"]) == (3, 1, 33)


# --- time limit --------------------------------------------------------------------------

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def limited(project, manager, annotator, time_machine):
    """A task whose label stage has a 10-minute limit, started by ana at START."""
    time_machine.move_to(START, tick=False)
    blueprint(project, manager, time_limit=600, checks=[])
    task = services.task_create(actor=manager, project=project, name="t", annotators=["ana"])
    services.stage_start(actor=annotator, task=task, stage_key="label")
    services.annotation_create(
        actor=annotator, task=task, stage="label", label="outcome", data={"value": "ok"}
    )
    return task


def at(time_machine, seconds):
    time_machine.move_to(START + timedelta(seconds=seconds), tick=False)


def test_a_run_past_its_time_limit_goes_back_to_the_pool_keeping_its_annotations(
    limited, time_machine
):
    at(time_machine, 599)
    assert services.stage_release_expired() == 0
    at(time_machine, 601)
    assert services.stage_release_expired() == 1
    run = limited.runs.get(stage_key="label")
    assert (run.status, run.assignee, run.started_at) == ("ready", None, None)
    assert limited.annotations.count() == 1  # the work stays for whoever takes it
    event = limited.events.get(kind="stage_released")
    assert (event.stage_key, event.actor) == ("label", None)
    assert event.data["reason"] == "time limit" and event.data["assignee"] == "ana"
    assert services.stage_release_expired() == 0  # twice is harmless


def test_someone_still_working_keeps_the_run_past_the_limit(limited, annotator, time_machine):
    at(time_machine, 590)
    services.stage_activity(actor=annotator, task=limited, stage_key="label")
    at(time_machine, 700)  # past the limit, pinged 110 s ago: still working
    assert services.stage_release_expired() == 0
    services.stage_activity(actor=annotator, task=limited, stage_key="label")
    at(time_machine, 700 + 119)
    assert services.stage_release_expired() == 0
    at(time_machine, 700 + 121)  # quiet for over two minutes
    assert services.stage_release_expired() == 1
    assert limited.runs.get(stage_key="label").status == "ready"


def test_claiming_releases_lazily_and_someone_else_gets_it(
    client, limited, project, manager, time_machine
):
    from projects.services import membership_add
    from tests.factories import UserFactory

    limited.annotators.clear()
    other = UserFactory(username="noah")
    membership_add(actor=manager, project=project, user=other, role="annotator")
    at(time_machine, 601)
    client.force_login(other)
    response = client.post("/workspace/next/")  # no scheduler needed
    assert response.status_code == 302 and response.url == f"/workspace/{limited.pk}/label/"
    assert limited.events.filter(kind="stage_released").count() == 1
    run = limited.runs.get(stage_key="label")
    assert (run.status, run.assignee) == ("in_progress", other)


def test_the_workspace_counts_down_and_its_ping_keeps_the_run(
    client, limited, annotator, time_machine
):
    at(time_machine, 120)
    client.force_login(annotator)
    page = client.get(f"/workspace/{limited.pk}/label/").content.decode()
    data = json.loads(page.split('id="workspace-data" type="application/json">')[1].split("<")[0])
    assert data["timing"]["remaining"] == 480 and data["timing"]["warn_when_left"] == 120
    assert 'role="timer"' in page and "workspace-timer.js" in page
    assert client.post(data["activity"]).json()["timing"]["remaining"] == 480  # on load
    at(time_machine, 560)  # and every minute with input
    assert client.post(data["activity"]).status_code == 200
    at(time_machine, 650)
    pinged = client.post(data["activity"])
    assert pinged.status_code == 200 and pinged.json()["timing"]["remaining"] == 0
    at(time_machine, 650 + 100)
    client.get("/workspace/")
    assert limited.runs.get(stage_key="label").status == "in_progress"


def test_a_ping_after_the_release_says_so_and_the_workspace_too(
    client, limited, annotator, time_machine
):
    at(time_machine, 900)  # away since the start: the ping itself finds the time up
    client.force_login(annotator)
    refused = client.post(f"/workspace/{limited.pk}/label/activity/")
    assert refused.status_code == 409
    assert "time limit passed while you were away" in refused.json()["stage"][0]
    page = client.get(f"/workspace/{limited.pk}/label/").content.decode()
    assert "This stage went back to the pool" in page and 'role="timer"' not in page


def test_stages_without_a_limit_are_never_released(project, manager, annotator, time_machine):
    time_machine.move_to(START, tick=False)
    blueprint(project, manager, checks=[])
    task = services.task_create(actor=manager, project=project, name="t", annotators=["ana"])
    services.stage_start(actor=annotator, task=task, stage_key="label")
    at(time_machine, 86400 * 30)
    assert services.stage_release_expired() == 0


def test_the_sweep_job_runs_once_a_minute_and_schedules_the_next(limited, redis_conn, time_machine):
    import django_rq

    from tasks.jobs import release_expired_runs_job, schedule_release_expired

    queue = django_rq.get_queue("default")
    schedule_release_expired()
    schedule_release_expired()  # however many processes ask: one sweep per minute
    assert len(queue.scheduled_job_registry.get_job_ids()) == 1
    at(time_machine, 601)
    assert release_expired_runs_job() == 1
    assert limited.runs.get(stage_key="label").status == "ready"
    assert len(queue.scheduled_job_registry.get_job_ids()) == 2  # the next minute's sweep


def test_an_api_claim_releases_lazily_too(api_as, limited, project, manager, time_machine):
    from projects.services import membership_add
    from tests.factories import UserFactory

    limited.annotators.clear()
    other = UserFactory(username="noah")
    membership_add(actor=manager, project=project, user=other, role="annotator")
    at(time_machine, 601)
    claimed = api_as(other).post("/api/v1/tasks/next/", {}, format="json")
    assert claimed.status_code == 200, claimed.content
    run = limited.runs.get(stage_key="label")
    assert (run.status, run.assignee) == ("in_progress", other)
