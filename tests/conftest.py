"""Shared fixtures: one user per role (admin, manager, reviewer, annotator) and an outsider.

Everything talks to the real PostgreSQL and Redis (config/test_settings.py).
"""

import django_rq
import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from projects import services as project_services
from projects.models import Role
from tests.factories import UserFactory
from tests.helpers.s3 import s3_server, s3_storage  # noqa: F401 (fixtures)

ROLES = ("anonymous", "outsider", "annotator", "reviewer", "manager", "admin")


# The fixtures' objects, made by plain functions so that a wider-scoped setup (the
# permission matrix builds them once per group of cases) makes exactly the same ones.
def make_admin_user():
    return UserFactory(username="root", is_superuser=True, is_staff=True)


def make_manager():
    user = UserFactory(username="maya")
    user.user_permissions.add(
        Permission.objects.get(codename="add_project", content_type__app_label="projects")
    )
    return user


def make_project(manager, reviewer, annotator):
    project = project_services.project_create(actor=manager, name="Pick and place")
    project_services.membership_add(
        actor=manager, project=project, user=reviewer, role=Role.REVIEWER
    )
    project_services.membership_add(
        actor=manager, project=project, user=annotator, role=Role.ANNOTATOR, skills=["robotics"]
    )
    return project


def make_users() -> dict:
    """``users``: admin, manager, reviewer, annotator, outsider, anonymous (None)."""
    return {
        "admin": make_admin_user(),
        "manager": make_manager(),
        "reviewer": UserFactory(username="ravi"),
        "annotator": UserFactory(username="ana"),
        "outsider": UserFactory(username="olga"),
        "anonymous": None,
    }


@pytest.fixture
def admin_user(db):
    return make_admin_user()


@pytest.fixture
def manager(db):
    return make_manager()


@pytest.fixture
def reviewer(db):
    return UserFactory(username="ravi")


@pytest.fixture
def annotator(db):
    return UserFactory(username="ana")


@pytest.fixture
def outsider(db):
    return UserFactory(username="olga")


@pytest.fixture
def project(manager, reviewer, annotator):
    return make_project(manager, reviewer, annotator)


@pytest.fixture
def users(admin_user, manager, reviewer, annotator, outsider):
    return {
        "admin": admin_user,
        "manager": manager,
        "reviewer": reviewer,
        "annotator": annotator,
        "outsider": outsider,
        "anonymous": None,
    }


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def api_as(api_client):
    """``api_as(user)``: an API client authenticated with the user's token."""
    from rest_framework.authtoken.models import Token

    def login(user):
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return login


@pytest.fixture
def redis_conn():
    """The suite's own Redis database, emptied before and after the test."""
    conn = django_rq.get_connection("default")
    conn.flushdb()
    yield conn
    conn.flushdb()


@pytest.fixture(scope="session", autouse=True)
def _media_root_cleanup():
    """The suite's MEDIA_ROOT is a temporary folder (config/test_settings.py); remove it."""
    import shutil

    from django.conf import settings

    yield
    shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)
    shutil.rmtree(settings.STAGECRAFT_CACHE_DIR, ignore_errors=True)


@pytest.fixture
def run_jobs(redis_conn):
    """``run_jobs("imports")``: a real RQ worker takes every waiting job, then stops."""
    from queues.worker import PausableSimpleWorker

    def run(*queues: str) -> None:
        names = queues or ("default", "exports", "imports", "webhooks")
        worker = PausableSimpleWorker(
            [django_rq.get_queue(name) for name in names], connection=redis_conn
        )
        with _process_signals_kept():
            worker.work(burst=True)

    return run


_STOP_SIGNALS = ("SIGINT", "SIGTERM")


class _process_signals_kept:  # noqa: N801 — used as a context manager
    """An RQ worker's ``work()`` makes SIGINT and SIGTERM call its ``request_stop`` (a second
    signal: its "cold shut down", SystemExit) and never puts the old handlers back, so after
    a burst the test process no longer stops as pytest (or pytest-xdist, or CI) asks: a
    stopped run hung at teardown. Put back whatever was there."""

    def __enter__(self):
        import signal

        self.saved = {name: signal.getsignal(getattr(signal, name)) for name in _STOP_SIGNALS}

    def __exit__(self, *exc):
        import signal

        for name, handler in self.saved.items():
            if handler is not None:
                signal.signal(getattr(signal, name), handler)


@pytest.fixture(autouse=True)
def _signal_handlers_unchanged():
    """A test that runs an RQ worker itself (``SimpleWorker(...).work(burst=True)``) leaves
    the process's stop signals as they were (see ``_process_signals_kept``)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with _process_signals_kept():
        yield


def make_dataset(project, manager, folder):
    """A finished dataset of two raw ALOHA episodes written to ``folder``."""
    from projects.dataset_services import dataset_import_run, dataset_import_start
    from tests.helpers.hdf5 import write_aloha

    source = [write_aloha(folder / f"episode_{i}.hdf5", T=12, seed=i) for i in range(2)]
    dataset = dataset_import_start(
        actor=manager,
        project=project,
        name="Fixture episodes",
        format="hdf5",
        source_path=folder,
        background=False,
    )
    dataset = dataset_import_run(dataset_id=dataset.pk)
    assert dataset.status == "finished", dataset.error
    dataset.source = source
    return dataset


@pytest.fixture
def dataset(project, manager, tmp_path):
    """A finished dataset of two raw ALOHA episodes in ``project`` (``dataset.source`` data)."""
    return make_dataset(project, manager, tmp_path / "fixture-episodes")


def make_task(project, manager, annotator):
    from tasks import services as task_services

    task = task_services.task_create(
        actor=manager, project=project, name="Fixture task", annotators=["ana"], reviewers=["ravi"]
    )
    task_services.stage_start(actor=annotator, task=task, stage_key="annotate")
    task.first_annotation = task_services.annotation_create(
        actor=annotator, task=task, stage="annotate", label="outcome", data={"value": "success"}
    )
    return task


@pytest.fixture
def task(project, manager, annotator):
    """A default-blueprint task given to ana (annotate stage started, one annotation)."""
    return make_task(project, manager, annotator)


def make_finished_export(project, manager):
    """A finished JSONL export of the project, in the current MEDIA_ROOT."""
    from queues import services as export_services

    export, _ = export_services.export_start(
        actor=manager, project=project, format="jsonl", background=False
    )
    export = export_services.export_run(export_id=export.pk)
    assert export.status == "finished", export.error
    return export


@pytest.fixture
def finished_export(project, manager, settings, tmp_path):
    """A finished JSONL export of the project (no tasks), in a media folder of its own."""
    settings.MEDIA_ROOT = tmp_path / "export-media"
    return make_finished_export(project, manager)


class DemoSeeder:
    """``seed()``: what ``manage.py seed_demo`` makes, in an empty (transactional) database.

    The first call in a process runs the command for real and keeps a copy of every row it
    left (PostgreSQL ``COPY``, binary) and of the media files it wrote. Later calls that find
    the database in the same state as the first one did (the same row counts in every
    table, the same settings — every overridden one and every STAGECRAFT_* one — and the
    same day) restore that copy instead: each table is emptied and
    refilled, the sequences only move forward (new objects never reuse an id), the dataset
    folders the demo wrote are put back as they were. ~0.1 s instead of 6–9 s. Anything
    else (rows made before the seed, other settings) seeds for real, as does
    ``STAGECRAFT_TEST_SEED_EVERY_TIME=1``.
    """

    def __init__(self, folder):
        from pathlib import Path

        self.folder = Path(folder)
        self.snapshots: dict = {}
        self.seeded = self.restored = 0

    # What the demo depends on besides the rows already there: the settings (every one a
    # test has overridden, and the STAGECRAFT_* ones however they were set), the day.
    @staticmethod
    def _key():
        from django.conf import UserSettingsHolder, settings
        from django.db import connection
        from django.utils import timezone

        overridden: dict = {}
        holder = settings._wrapped
        while isinstance(holder, UserSettingsHolder):
            for name, value in vars(holder).items():
                if name.isupper():
                    overridden.setdefault(name, repr(value))
            holder = holder.default_settings
        own = {
            name: repr(getattr(settings, name))
            for name in dir(settings)
            if name.startswith("STAGECRAFT_")
        }
        return (
            connection.settings_dict["NAME"],
            str(settings.MEDIA_ROOT),
            tuple(sorted({**overridden, **own}.items())),
            timezone.localdate(),
        )

    @staticmethod
    def _tables() -> list[str]:
        from django.db import connection

        return sorted(connection.introspection.django_table_names(only_existing=True))

    @staticmethod
    def _counts(cursor, tables) -> tuple:
        qn = cursor.db.ops.quote_name
        cursor.execute(
            # Table names from Django's introspection, quoted.
            " UNION ALL ".join(f"SELECT %s, count(*) FROM {qn(t)}" for t in tables),  # noqa: S608
            tables,
        )
        return tuple(sorted((t, n) for t, n in cursor.fetchall() if n))

    @staticmethod
    def _media_files(root) -> dict:
        from pathlib import Path

        root = Path(root)
        if not root.exists():
            return {}
        return {
            p.relative_to(root): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else None
            for p in root.rglob("*")
        }

    def seed(self) -> None:
        import os

        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection

        tables = self._tables()
        with connection.cursor() as cursor:
            before = self._counts(cursor, tables)
        key = (*self._key(), before)
        snapshot = self.snapshots.get(key)
        if snapshot is not None and not os.environ.get("STAGECRAFT_TEST_SEED_EVERY_TIME"):
            self._restore(snapshot)
            self.restored += 1
            return
        media_before = self._media_files(settings.MEDIA_ROOT)
        call_command("seed_demo")
        self.seeded += 1
        if key not in self.snapshots:
            self.snapshots[key] = self._take(tables, media_before)

    def _take(self, tables, media_before) -> dict:
        import shutil
        from pathlib import Path

        from django.conf import settings
        from django.db import connection

        qn = connection.ops.quote_name
        rows = {}
        with connection.cursor() as cursor:
            for table in tables:
                with cursor.copy(f"COPY {qn(table)} TO STDOUT (FORMAT BINARY)") as copy:
                    data = b"".join(bytes(block) for block in copy)
                rows[table] = data
            cursor.execute(
                """
                SELECT c.relname, a.attname,
                       pg_get_serial_sequence(quote_ident(c.relname), a.attname)
                FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                WHERE c.relname = ANY(%s) AND c.relkind = 'r' AND pg_table_is_visible(c.oid)
                  AND a.attnum > 0 AND NOT a.attisdropped
                  AND pg_get_serial_sequence(quote_ident(c.relname), a.attname) IS NOT NULL
                """,
                [tables],
            )
            sequences = []
            for table, column, sequence in cursor.fetchall():
                cursor.execute(f"SELECT max({qn(column)}) FROM {qn(table)}")  # noqa: S608
                highest = cursor.fetchone()[0]
                if highest is not None:
                    sequences.append((sequence, highest))
        # The media the seed wrote: whole new folders (a dataset's), and single new or
        # changed files in folders that were there before.
        root = Path(settings.MEDIA_ROOT)
        changed = {
            path
            for path, stat in self._media_files(root).items()
            if stat is not None and (path not in media_before or media_before[path] != stat)
        }
        old_dirs = {path for path, stat in media_before.items() if stat is None}
        new_dirs, files = set(), set()
        for path in changed:
            top = next(
                (p for p in reversed(path.parents) if p != p.parent and p not in old_dirs), None
            )
            if top is None:
                files.add(path)
            else:
                new_dirs.add(top)
        where = self.folder / f"snapshot-{len(self.snapshots)}"
        for relative in sorted(new_dirs):
            shutil.copytree(root / relative, where / relative)
        for relative in sorted(files):
            (where / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / relative, where / relative)
        return {
            "tables": tables,
            "rows": rows,
            "sequences": sequences,
            "media": where,
            "dirs": sorted(new_dirs),
            "files": sorted(files),
        }

    def _restore(self, snapshot) -> None:
        import shutil
        from pathlib import Path

        from django.conf import settings
        from django.contrib.contenttypes.models import ContentType
        from django.db import connection, transaction

        qn = connection.ops.quote_name
        with transaction.atomic(), connection.cursor() as cursor:
            # Foreign keys are DEFERRABLE INITIALLY DEFERRED: checked at the commit.
            # DELETE, not TRUNCATE: a few hundred rows (tests/db_backend/base.py says why).
            # No triggers: the snapshot holds the dashboards' kept counts already (the count
            # triggers would add the restored tasks and runs again).
            cursor.execute("SET LOCAL session_replication_role = replica")
            for table in snapshot["tables"]:
                cursor.execute(f"DELETE FROM {qn(table)}")  # noqa: S608
            for table, data in snapshot["rows"].items():
                if data:
                    with cursor.copy(f"COPY {qn(table)} FROM STDIN (FORMAT BINARY)") as copy:
                        copy.write(data)
            for sequence, highest in snapshot["sequences"]:
                # The names come from pg_get_serial_sequence, quoted as needed.
                cursor.execute(
                    f"SELECT setval(%s, GREATEST(%s, (SELECT last_value FROM {sequence})))",  # noqa: S608
                    [sequence, highest],
                )
        # Content types were made again after the last flush, with other ids.
        ContentType.objects.clear_cache()
        root = Path(settings.MEDIA_ROOT)
        for relative in snapshot["dirs"]:
            shutil.rmtree(root / relative, ignore_errors=True)
            shutil.copytree(snapshot["media"] / relative, root / relative)
        for relative in snapshot["files"]:
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(snapshot["media"] / relative, root / relative)


@pytest.fixture(scope="session")
def demo_seeder(tmp_path_factory):
    """The session's DemoSeeder: ``demo_seeder.seed()`` in a transactional test."""
    return DemoSeeder(tmp_path_factory.mktemp("demo-snapshots"))
