"""A published export's key can name another export later: a project deleted and made again
under its slug numbers its exports from v1 again (the old objects went with the project). A
machine that cached the old export's files must not answer them for the new one (a copy to
an export target, manage.py export --out read that folder)."""

import pytest

from core import objectstore
from queues import services
from queues.models import Export

from .test_export_episodes import export, finished_tasks
from .test_export_s3 import demos, stored

pytestmark = pytest.mark.django_db


def test_export_dir_never_answers_an_older_export_cached_under_the_same_key(
    project, manager, tmp_path, s3_storage
):
    dataset = demos(project, manager, tmp_path)
    first, folder, _ = export(project, manager, "jsonl")
    assert len((folder / "tasks.jsonl").read_text().splitlines()) == 1  # now in the cache
    services.export_delete_project_files(project.slug)  # as when the project is deleted
    Export.objects.filter(pk=first.pk).delete()
    finished_tasks(project, manager, dataset, 2, start=1)

    second, folder, _ = export(project, manager, "jsonl")

    assert (second.version, second.path) == (first.version, first.path)
    key = objectstore.join("exports", second.path, "tasks.jsonl")
    assert len(stored(s3_storage, key).splitlines()) == 3
    assert (folder / "tasks.jsonl").read_bytes() == stored(s3_storage, key)
