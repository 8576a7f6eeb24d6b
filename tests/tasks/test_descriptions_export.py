"""The task's segment descriptions as a download: what a spreadsheet opens must not run."""

import csv
import io

import pytest

from tasks.models import Annotation

pytestmark = pytest.mark.django_db


@pytest.fixture
def task_with_descriptions(transactional_db, demo_seeder, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    demo_seeder.seed()
    from django.contrib.auth import get_user_model

    some = Annotation.objects.filter(
        task__project__slug="pick-and-place", sample__isnull=False
    ).first()
    task, sample = some.task, some.sample
    annotator = get_user_model().objects.get(username="manager")
    for start, text in ((1, '=HYPERLINK("http://evil.example","x")'), (5, "gripper opens")):
        Annotation.objects.create(
            task=task,
            sample=sample,
            stage_key="segments",
            label="gripper_open",
            kind="segment",
            data={"start": start, "end": start + 2},
            attributes={"description": text},
            author=annotator,
        )
    return task


def test_csv_cells_that_start_a_formula_are_quoted(client, task_with_descriptions):
    from django.contrib.auth import get_user_model

    task = task_with_descriptions
    client.force_login(get_user_model().objects.get(username="manager"))
    response = client.get(f"/tasks/{task.pk}/descriptions.csv")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    texts = [r["text"] for r in rows if r["label"] == "gripper_open"]
    assert '\'=HYPERLINK("http://evil.example","x")' in texts
    assert "gripper opens" in texts  # ordinary text untouched
    # The JSON download keeps the text as it was typed.
    data = client.get(f"/tasks/{task.pk}/descriptions.json").json()
    assert '=HYPERLINK("http://evil.example","x")' in [r["text"] for r in data]
