"""A worker killed in the middle of a job (SIGKILL, as the OOM killer or a lost machine
does): its export is failed as "worker lost" within the detection window, nothing is
published, and "retry failed" runs it again — or it is retried once by itself when
``STAGECRAFT_RETRY_LOST_JOBS`` is on. Real worker processes, a real export."""

import time
from pathlib import Path

import django_rq
import h5py
import numpy as np
import pytest

from queues import control, services
from queues.models import Export

pytestmark = pytest.mark.django_db(transaction=True)
LOST = 5  # seconds without a heartbeat before a worker is lost (45 by default)
FAST = {"STAGECRAFT_WORKER_LOST_SECONDS": str(LOST)}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STAGECRAFT_WORKER_LOST_SECONDS = LOST


def write_noisy_episode(path: Path, T: int = 200, h: int = 240, w: int = 320) -> None:
    """An ALOHA episode whose camera frames are noise: gzip takes its time on them."""
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["sim"] = False
        qpos = rng.normal(size=(T, 14)).astype(np.float32)
        f.create_dataset("observations/qpos", data=qpos)
        f.create_dataset("observations/qvel", data=np.zeros_like(qpos))
        f.create_dataset("action", data=rng.normal(size=(T, 14)).astype(np.float32))
        for camera in ("cam_high", "cam_low"):
            frames = rng.integers(0, 256, size=(T, h, w, 3), dtype=np.uint8)
            f.create_dataset(f"observations/images/{camera}", data=frames, chunks=(1, h, w, 3))


@pytest.fixture
def long_export(project, manager, tmp_path):
    """``long_export()``: an HDF5 export of a task with a long noisy episode, queued."""
    from projects.dataset_services import dataset_import_run, dataset_import_start
    from tasks.models import Task
    from tasks.services import task_create

    def make() -> Export:
        folder = tmp_path / "noisy"
        write_noisy_episode(folder / "episode_0.hdf5")
        dataset = dataset_import_start(
            actor=manager,
            project=project,
            name="Noisy",
            format="hdf5",
            source_path=folder,
            background=False,
        )
        dataset = dataset_import_run(dataset_id=dataset.pk)
        assert dataset.status == "finished", dataset.error
        task = task_create(actor=manager, project=project, name="long", datasets=[dataset.pk])
        Task.objects.filter(pk=task.pk).update(status="review_passed")
        export, _ = services.export_start(actor=manager, project=project, format="hdf5")
        return export

    return make


def wait_mid_export(export: Export, timeout: float = 120, *, waiting=("queued",)) -> None:
    """Until the running export has written something into its temporary folder."""
    tmp = services.exports_root() / f".tmp-{export.pk}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = Export.objects.values_list("status", flat=True).get(pk=export.pk)
        written = tmp.is_dir() and any(p.is_file() and p.stat().st_size > 0 for p in tmp.rglob("*"))
        if status == "started" and written:
            return
        assert status in {*waiting, "started"}, Export.objects.get(pk=export.pk).error
        time.sleep(0.02)
    pytest.fail("the export never got going")


def wait_status(export: Export, wanted: str, timeout: float, poll=None) -> float:
    """Seconds until the export reaches ``wanted`` (``poll()`` called meanwhile)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if poll is not None:
            poll()
        export.refresh_from_db()
        if export.status == wanted:
            return time.monotonic() - start
        time.sleep(0.2)
    pytest.fail(f"export still {export.status} after {timeout} s: {export.error}")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def assert_nothing_published(project) -> None:
    root = services.exports_root()
    assert not list(root.glob(".tmp-*"))
    assert not list(root.rglob("manifest.json"))
    assert not (root / project.slug).exists() or not any((root / project.slug).iterdir())


def test_a_killed_workers_export_fails_as_worker_lost_and_retry_finishes_it(
    admin_user, client, project, long_export, worker_process
):
    export = long_export()
    worker = worker_process("exports", env=FAST)
    wait_mid_export(export)
    horses = worker.children()
    assert horses  # the export runs in the worker's work horse
    worker.kill()

    # No worker is left: the queue page finds the lost job on its own.
    client.force_login(admin_user)
    pages = []
    took = wait_status(
        export, "failed", LOST + 15, poll=lambda: pages.append(client.get("/queues/"))
    )
    assert took <= LOST + 10
    assert "worker lost" in export.error and export.path == ""
    assert "A worker was lost while running 1 job" in pages[-1].content.decode()
    assert not any(alive(pid) for pid in horses)  # the work horse died with its worker
    time.sleep(1)
    assert_nothing_published(project)
    queue = django_rq.get_queue("exports")
    assert queue.started_job_registry.count == 0
    (failed,) = control.failed_jobs("exports")
    assert failed["id"] == export.job_id and "Worker lost" in failed["error"]

    result = control.queue_action(actor=admin_user, name="exports", action="retry-failed")
    assert result["count"] == 1
    worker_process("exports", env=FAST)  # a fresh worker
    wait_status(export, "finished", 180)
    assert (services.export_dir(export) / "manifest.json").is_file()
    assert export.error == ""


def test_a_lost_job_is_retried_once_by_itself_when_so_configured(
    project, long_export, worker_process
):
    env = {**FAST, "STAGECRAFT_RETRY_LOST_JOBS": "1"}
    worker_process("default", env=env)  # a worker of another queue finds lost jobs too
    export = long_export()
    queue = django_rq.get_queue("exports")

    first = worker_process("exports", env=env)
    wait_mid_export(export)
    first.kill()
    wait_status(export, "failed", LOST + 15)
    assert "worker lost" in export.error
    deadline = time.monotonic() + 10
    while queue.count == 0 and time.monotonic() < deadline:  # put back on its queue
        time.sleep(0.05)
    assert queue.job_ids == [export.job_id]

    second = worker_process("exports", env=env)  # runs it again, and is killed too
    wait_mid_export(export, waiting=("failed",))  # failed until the job runs again
    second.kill()
    wait_status(export, "failed", LOST + 15)
    time.sleep(1)
    assert "worker lost" in export.error
    # Once only: now it waits in the failed registry for an administrator.
    assert queue.count == 0 and queue.started_job_registry.count == 0
    assert queue.failed_job_registry.get_job_ids() == [export.job_id]
    assert_nothing_published(project)


def test_a_dead_workers_import_fails_as_worker_lost_and_retry_imports_it(
    admin_user, project, manager, tmp_path, redis_conn, run_jobs
):
    """The import's job was taken by one of our workers that is gone (its name known, its
    heartbeat key expired): the queue page's check fails it; retry imports it."""
    from rq.executions import Execution

    from projects.dataset_services import dataset_import_start
    from queues.recovery import WORKERS_KEY
    from tests.helpers.hdf5 import write_aloha

    folder = tmp_path / "episodes"
    write_aloha(folder / "episode_0.hdf5", T=12)
    dataset = dataset_import_start(
        actor=manager, project=project, name="Episodes", format="hdf5", source_path=folder
    )
    queue = django_rq.get_queue("imports")
    job = queue.fetch_job(dataset.job_id)
    queue.remove(job)
    type(dataset).objects.filter(pk=dataset.pk).update(status="started")
    redis_conn.sadd(WORKERS_KEY, "gone-worker")
    with redis_conn.pipeline() as pipe:
        Execution.create(job, ttl=3600, pipeline=pipe, worker_name="gone-worker")
        pipe.execute()
    assert control.recover_lost_jobs() == {"failed": 1, "retried": 0}
    assert control.recover_lost_jobs() == {"failed": 0, "retried": 0}  # handled once
    dataset.refresh_from_db()
    assert dataset.status == "failed" and "worker lost" in dataset.error
    assert queue.failed_job_registry.get_job_ids() == [job.id]

    assert (
        control.queue_action(actor=admin_user, name="imports", action="retry-failed")["count"] == 1
    )
    run_jobs("imports")
    dataset.refresh_from_db()
    assert dataset.status == "finished", dataset.error
    assert dataset.samples.count() == 1


def test_a_living_workers_job_is_left_alone(project, redis_conn):
    from rq.executions import Execution

    from core.jobs import ping_job
    from queues.recovery import mark_alive

    job = django_rq.get_queue("default", commit_mode="auto").enqueue(ping_job, "x")
    mark_alive(redis_conn, "busy-worker")
    with redis_conn.pipeline() as pipe:
        Execution.create(job, ttl=3600, pipeline=pipe, worker_name="busy-worker")
        pipe.execute()
    assert control.recover_lost_jobs() == {"failed": 0, "retried": 0}
    assert django_rq.get_queue("default").started_job_registry.count == 1


def test_a_dead_workers_webhook_attempt_counts_as_failed_and_backs_off(
    project, manager, redis_conn, django_capture_on_commit_callbacks
):
    from rq.executions import Execution

    from queues.recovery import WORKERS_KEY
    from tasks.models import Delivery
    from tasks.services import task_create
    from tasks.webhooks import queue_callback

    task = task_create(
        actor=manager, project=project, name="t", callback_url="http://127.0.0.1:9/hook"
    )
    delivery = Delivery.objects.create(task=task, payload={}, callback="pending")
    with django_capture_on_commit_callbacks(execute=True):
        queue_callback(delivery)
    queue = django_rq.get_queue("webhooks")
    job = queue.fetch_job(f"delivery-{delivery.pk}")
    queue.remove(job)
    redis_conn.sadd(WORKERS_KEY, "gone-worker")
    with redis_conn.pipeline() as pipe:
        Execution.create(job, ttl=3600, pipeline=pipe, worker_name="gone-worker")
        pipe.execute()

    assert control.recover_lost_jobs() == {"failed": 1, "retried": 0}
    (attempt,) = delivery.attempts.all()
    assert attempt.error == "the attempt stopped (worker lost)"
    delivery.refresh_from_db()
    assert delivery.callback == "pending"  # the next attempt after the first interval
    assert queue.scheduled_job_registry.count == 1
    assert queue.failed_job_registry.get_job_ids() == [job.id]


def test_a_work_horse_killed_under_a_living_worker_fails_its_export_at_once(
    admin_user, project, long_export, worker_process
):
    """Out of memory, the kernel kills the job's process, not the worker: RQ moved the job
    to the failed registry but left the export "started" (retry then skipped it)."""
    import os
    import signal

    export = long_export()
    worker = worker_process("exports", env=FAST)
    wait_mid_export(export)
    (horse,) = worker.children()
    os.kill(horse, signal.SIGKILL)
    wait_status(export, "failed", 30)
    assert "worker lost" in export.error
    assert_nothing_published(project)
    registry = django_rq.get_queue("exports").failed_job_registry
    deadline = time.monotonic() + 10
    while registry.count == 0 and time.monotonic() < deadline:  # the worker moves it next
        time.sleep(0.05)
    (failed,) = control.failed_jobs("exports")
    assert failed["id"] == export.job_id

    control.queue_action(actor=admin_user, name="exports", action="retry-failed")
    wait_status(export, "finished", 180)  # the same worker runs it again
    assert (services.export_dir(export) / "manifest.json").is_file()


def lose(job, redis_conn, worker: str = "gone-worker") -> None:
    """The job was taken by one of our workers that is gone (name known, no heartbeat)."""
    from rq.executions import Execution

    from queues.recovery import WORKERS_KEY

    django_rq.get_queue(job.origin).remove(job)
    redis_conn.sadd(WORKERS_KEY, worker)
    with redis_conn.pipeline() as pipe:
        Execution.create(job, ttl=3600, pipeline=pipe, worker_name=worker)
        pipe.execute()


@pytest.fixture
def lost_delivery(project, manager, redis_conn, django_capture_on_commit_callbacks):
    """A webhook delivery whose first attempt's worker was lost (the receiver refuses)."""
    from tasks.models import Delivery
    from tasks.services import task_create
    from tasks.webhooks import queue_callback

    task = task_create(
        actor=manager, project=project, name="t", callback_url="http://127.0.0.1:9/hook"
    )
    delivery = Delivery.objects.create(task=task, payload={}, callback="pending")
    with django_capture_on_commit_callbacks(execute=True):
        queue_callback(delivery)
    lose(django_rq.get_queue("webhooks").fetch_job(f"delivery-{delivery.pk}"), redis_conn)
    return delivery


def test_retrying_a_lost_webhook_attempt_starts_no_second_chain(
    admin_user, lost_delivery, run_jobs
):
    """The lost attempt's failure callback scheduled the next attempt: "retry failed" on the
    lost job must not make another attempt now (a duplicate POST) and another chain."""
    queue = django_rq.get_queue("webhooks")
    assert control.recover_lost_jobs() == {"failed": 1, "retried": 0}
    assert queue.failed_job_registry.get_job_ids() == [f"delivery-{lost_delivery.pk}"]

    control.queue_action(actor=admin_user, name="webhooks", action="retry-failed")
    run_jobs("webhooks")
    (attempt,) = lost_delivery.attempts.all()  # no second attempt was made
    assert attempt.error == "the attempt stopped (worker lost)"
    assert queue.scheduled_job_registry.count == 1  # one next attempt, one chain
    lost_delivery.refresh_from_db()
    assert lost_delivery.callback == "pending"


def test_a_lost_webhook_attempt_is_not_retried_by_itself(settings, lost_delivery, run_jobs):
    """With STAGECRAFT_RETRY_LOST_JOBS the webhook's own backoff is still the only retry."""
    settings.STAGECRAFT_RETRY_LOST_JOBS = True
    queue = django_rq.get_queue("webhooks")
    assert control.recover_lost_jobs() == {"failed": 1, "retried": 0}
    assert queue.count == 0 and queue.scheduled_job_registry.count == 1
    run_jobs("webhooks")
    assert lost_delivery.attempts.count() == 1


def interrupted_once(job, connection, exc_type, exc_value, traceback) -> None:
    """A failure callback stopped half-way the first time, as a gunicorn timeout stops the
    queue page's check (SIGABRT: SystemExit); it completes the next time."""
    if connection.incr(f"test:calls:{job.id}") == 1:
        raise SystemExit(1)
    connection.set(f"test:done:{job.id}", str(exc_value))


def test_an_interrupted_recovery_leaves_the_job_failed_and_owes_its_callback(
    admin_user, settings, redis_conn, run_jobs
):
    from rq import Callback

    from core.jobs import ping_job

    settings.STAGECRAFT_WORKER_LOST_SECONDS = 2
    queue = django_rq.get_queue("default", commit_mode="auto")
    job = queue.enqueue(ping_job, "x", on_failure=Callback(interrupted_once))
    lose(job, redis_conn)

    with pytest.raises(SystemExit):
        control.recover_lost_jobs()
    # Claimed and failed before the callback ran: in the failed registry, "worker lost".
    assert queue.started_job_registry.count == 0
    (failed,) = control.failed_jobs("default")
    assert failed["id"] == job.id and "Worker lost" in failed["error"]
    assert redis_conn.get(f"test:done:{job.id}") is None

    # A later check runs the callback it was owed (once its claim's lease ran out), once.
    assert control.recover_lost_jobs() == {"failed": 0, "retried": 0}
    assert redis_conn.get(f"test:done:{job.id}") is None  # still within the lease
    time.sleep(2.2)
    assert control.recover_lost_jobs() == {"failed": 0, "retried": 0}
    assert redis_conn.get(f"test:done:{job.id}").decode().startswith("worker lost")
    control.recover_lost_jobs()
    assert int(redis_conn.get(f"test:calls:{job.id}")) == 2

    assert (
        control.queue_action(actor=admin_user, name="default", action="retry-failed")["count"] == 1
    )
    run_jobs("default")
    assert queue.fetch_job(job.id).get_status() == "finished"


def test_a_worker_stopped_by_its_process_manager_finishes_the_running_export(
    project, long_export, worker_process
):
    """SIGTERM to every process of the service, as systemd's default
    ``KillMode=control-group`` sends it (RQ runs the job in a session of its own, so a
    signal to the worker's process group alone would not reach it): the worker stops
    taking jobs, the running export finishes and is published, then the worker exits.
    Before, the job's process died of the signal and the export failed as "worker lost"."""
    import os
    import signal

    export = long_export()
    worker = worker_process("exports", env=FAST)
    wait_mid_export(export)
    (horse,) = worker.children()
    os.kill(worker.pid, signal.SIGTERM)
    os.kill(horse, signal.SIGTERM)
    wait_status(export, "finished", 180)
    assert (services.export_dir(export) / "manifest.json").is_file()
    assert worker.proc.wait(timeout=30) == 0
    queue = django_rq.get_queue("exports")
    assert queue.failed_job_registry.count == 0 and queue.started_job_registry.count == 0
