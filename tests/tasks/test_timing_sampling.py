"""Stage parameters that change the work: ``sampling`` (a reproducible share of the task's
samples) and ``time_limit`` (a claimed run goes back to the pool when its time is up)."""

import json

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
    left_out = [s for s in every if s not in chosen]
    for sample in [*chosen[:2], *left_out]:
        label(task, annotator, sample)
    with pytest.raises(ApplicationError) as refused:
        services.stage_submit(actor=annotator, task=task, stage_key="label")
    assert refused.value.extra["checks"] == ["At least 3 outcome needed; there are 2."]


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
