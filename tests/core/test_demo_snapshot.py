"""The suite's DemoSeeder (tests/conftest.py): a restored demo is the seeded demo, row for
row and file for file, and what a test changed or added is gone."""

import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from tests.conftest import DemoSeeder


def _everything() -> dict:
    """Every row of every table (ids included), and the media files under datasets/."""
    rows = {}
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.django_table_names(only_existing=True)):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)} ORDER BY 1")  # noqa: S608
            rows[table] = cursor.fetchall()
    root = Path(settings.MEDIA_ROOT)
    files = {
        str(p.relative_to(root)): p.read_bytes() for p in root.glob("datasets/**/*") if p.is_file()
    }
    return {"rows": rows, "files": files}


@pytest.mark.django_db(transaction=True)
def test_a_restored_demo_is_the_seeded_one_and_new_ids_are_new(tmp_path, settings):
    from projects.models import Dataset
    from tasks.models import Task
    from tests.factories import UserFactory

    settings.MEDIA_ROOT = tmp_path / "media"
    seeder = DemoSeeder(tmp_path / "snapshots")
    seeder.seed()
    assert (seeder.seeded, seeder.restored) == (1, 0)
    seeded = _everything()
    assert len(seeded["rows"]["tasks_task"]) == 8 and seeded["files"]

    # What a test might do: change rows, add some, delete a dataset's files, add a file.
    highest_task = Task.objects.order_by("-pk").first().pk
    Task.objects.filter(name="Reach and grasp").delete()
    stranger = UserFactory(username="stranger")
    dataset = Dataset.objects.order_by("pk").first()
    folder = Path(settings.MEDIA_ROOT) / "datasets" / str(dataset.pk)
    (folder / "stray.bin").write_bytes(b"x")
    shutil.rmtree(Path(settings.MEDIA_ROOT) / "datasets" / str(Dataset.objects.last().pk))
    call_command("flush", interactive=False, verbosity=0, reset_sequences=False)  # a test's end

    seeder.seed()
    assert (seeder.seeded, seeder.restored) == (1, 1)
    assert _everything() == seeded
    # Sequences move on: a new row does not take an id one had before the restore.
    assert UserFactory(username="later").pk > stranger.pk
    assert Task.objects.order_by("-pk").first().pk == highest_task


@pytest.mark.django_db(transaction=True)
def test_rows_made_before_the_seed_or_other_settings_mean_a_real_seed(tmp_path, settings):
    from django.contrib.auth import get_user_model

    from tests.factories import UserFactory

    settings.MEDIA_ROOT = tmp_path / "media"
    seeder = DemoSeeder(tmp_path / "snapshots")
    seeder.seed()
    call_command("flush", interactive=False, verbosity=0, reset_sequences=False)
    UserFactory(username="early")
    seeder.seed()  # the database is not as empty as the first time: seed_demo runs
    assert (seeder.seeded, seeder.restored) == (2, 0)
    assert get_user_model().objects.filter(username__in=["early", "manager"]).count() == 2

    # A setting the demo may read (a test turns on a history, say) is another demo.
    call_command("flush", interactive=False, verbosity=0, reset_sequences=False)
    settings.STAGECRAFT_DEMO_SOMETHING = True
    seeder.seed()
    assert (seeder.seeded, seeder.restored) == (3, 0)
