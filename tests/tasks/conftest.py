import pytest


@pytest.fixture
def work(project, manager, annotator, dataset):
    """A task on the two-episode dataset, its annotate stage in progress for ana.

    ``work.samples`` are the dataset's samples in order; ``work.sample`` the first."""
    from tasks import services

    task = services.task_create(
        actor=manager,
        project=project,
        name="Episodes",
        datasets=[dataset.pk],
        annotators=["ana"],
        reviewers=["ravi"],
    )
    services.stage_start(actor=annotator, task=task, stage_key="annotate")
    task.samples = list(dataset.samples.order_by("index"))
    task.sample = task.samples[0]
    return task
