"""Exports at scale, and exports against writing the same arrays directly. Prints JSON.

Default (scale): on PostgreSQL (DEBUG off), builds a project of N tasks (default 90,000; the
default blueprint annotate → review, so 2N stage runs) with a realistic mix — 90 % finished
(review passed, 5 % of them sent to training), each finished task with 4 annotations
(a classification, a segment, a box, a text) by one of 20 annotators and a reviewer — then
VACUUM ANALYZE, requests a JSONL export as the manager, and runs it in a real RQ worker
process (``PausableSimpleWorker`` on ``exports``, burst), which reports its wall time, CPU
time, peak RSS (VmHWM) and the number of SQL queries it sent. Then ``GET /api/v1/exports/``
as the manager (in-process, DEBUG off): bytes, time, queries.

.venv/bin/python bench/export_throughput.py [--tasks 90000] [--format jsonl] [--reuse]

DATABASE_URL defaults to a throw-away database ``stagecraft_bench_export`` (dropped and
created unless ``--reuse``); REDIS_URL to db 11.

``--direct [--episodes 8]``: the older comparison — N synthetic ALOHA episodes in one task,
HDF5 and LeRobot exports timed against writing the same arrays with h5py / pyarrow + PyAV.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DB = "stagecraft_bench_export"
PASSWORD = "bench-password"  # noqa: S105
ANNOTATORS = 20


def build(tasks: int) -> tuple[int, int]:
    """The project, its tasks, runs and annotations; answers (project id, manager id)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.db import connection

    from projects.services import membership_add, project_create
    from tasks.services import task_create_many

    User = get_user_model()
    manager = User.objects.create_user("boss", password=PASSWORD)
    manager.user_permissions.add(
        Permission.objects.get(codename="add_project", content_type__app_label="projects")
    )
    manager = User.objects.get(pk=manager.pk)
    project = project_create(actor=manager, name="Export bench")
    people = [User.objects.create_user(f"ann{i:02}", password=PASSWORD) for i in range(ANNOTATORS)]
    for person in people:
        membership_add(actor=manager, project=project, user=person, role="annotator")
    reviewer = User.objects.create_user("rev", password=PASSWORD)
    membership_add(actor=manager, project=project, user=reviewer, role="reviewer")
    for offset in range(0, tasks, 5000):
        task_create_many(
            actor=manager,
            project=project,
            items=[
                {"name": f"task {i}", "metadata": {"source": "bench", "n": i}}
                for i in range(offset, min(offset + 5000, tasks))
            ],
        )
    params = {"p": project.pk, "ann": [p.pk for p in people], "rev": reviewer.pk}
    statements = [
        "SELECT setseed(0.31)",
        """CREATE TEMP TABLE plan AS
            SELECT t.id, random() AS r, now() - random() * interval '365 days' AS done_at,
                   (%(ann)s::bigint[])[1 + (t.id * 7) %% 20] AS who
            FROM tasks_task t WHERE t.project_id = %(p)s""",
        """UPDATE tasks_stagerun r SET status = 'completed', assignee_id = p.who,
              active_seconds = 600, started_at = p.done_at - interval '2 hours',
              submitted_at = p.done_at - interval '1 hour',
              completed_at = p.done_at - interval '1 hour'
            FROM plan p WHERE r.task_id = p.id AND r.stage_key = 'annotate' AND p.r < 0.9""",
        """UPDATE tasks_stagerun r SET status = 'completed', assignee_id = %(rev)s,
              started_at = p.done_at - interval '10 minutes', completed_at = p.done_at
            FROM plan p WHERE r.task_id = p.id AND r.stage_key = 'review' AND p.r < 0.9""",
        """UPDATE tasks_task t SET status = CASE WHEN p.r < 0.045 THEN 'data_submitted'
                                                 ELSE 'review_passed' END,
              finished_at = p.done_at
            FROM plan p WHERE t.id = p.id AND p.r < 0.9""",
        # Four annotations per finished task, as annotators write them.
        """INSERT INTO tasks_annotation (task_id, stage_key, replica, sample_id, label, kind,
              data, attributes, author_id, version, invalid, invalid_reason, created_at,
              updated_at)
            SELECT p.id, 'annotate', 0, NULL, k.label, k.kind,
                   CASE k.kind
                     WHEN 'classification' THEN jsonb_build_object('value', 'success')
                     WHEN 'segment' THEN jsonb_build_object('start', (p.r * 100)::int,
                                                            'end', 120 + (p.r * 100)::int)
                     WHEN 'box' THEN jsonb_build_object('frame', 3, 'camera', 'cam_high',
                        'x', 10.5, 'y', 12.25, 'w', 40, 'h', 30)
                     ELSE jsonb_build_object('text', 'pick the red cube and place it in the bin')
                   END,
                   CASE k.kind WHEN 'segment'
                     THEN jsonb_build_object('instruction', 'pick up the cube')
                     ELSE '{}'::jsonb END,
                   p.who, 1, false, '', p.done_at - interval '1 hour', p.done_at - interval '1 hour'
            FROM plan p CROSS JOIN (VALUES ('outcome', 'classification'), ('grasp', 'segment'),
                                           ('cube', 'box'), ('note', 'text')) AS k(label, kind)
            WHERE p.r < 0.9""",
        "VACUUM ANALYZE tasks_task",
        "VACUUM ANALYZE tasks_stagerun",
        "VACUUM ANALYZE tasks_annotation",
        "ANALYZE",
    ]
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql, params)
    return project.pk, manager.pk


def worker_main() -> None:
    """Inside the worker process: count queries, run the queue in burst, report."""
    import django

    django.setup()
    import django_rq
    from django.db import connection

    from queues.worker import PausableSimpleWorker

    counted = {"queries": 0}

    def count(execute, sql, params, many, context):
        counted["queries"] += 1
        return execute(sql, params, many, context)

    queue = django_rq.get_queue("exports")
    started = time.perf_counter()
    cpu = time.process_time()
    with connection.execute_wrapper(count):
        PausableSimpleWorker([queue], connection=queue.connection).work(burst=True)
    status = Path("/proc/self/status").read_text()
    hwm = next(line for line in status.splitlines() if line.startswith("VmHWM"))
    print(
        json.dumps(
            {
                "job_wall_seconds": round(time.perf_counter() - started, 2),
                "job_cpu_seconds": round(time.process_time() - cpu, 2),
                "queries": counted["queries"],
                "peak_rss_mb": round(int(hwm.split()[1]) / 1024, 1),
            }
        )
    )


def scale_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=90_000)
    parser.add_argument("--format", default="jsonl")
    parser.add_argument("--reuse", action="store_true", help="export the project already built")
    parser.add_argument(
        "--all", action="store_true", help="every task (include_unfinished), not the finished 90 %"
    )
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{DEFAULT_DB}")
    name = url.rsplit("/", 1)[1]
    if not args.reuse:
        for sql in (f"drop database if exists {name}", f"create database {name}"):
            subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", sql], check=True)
    media = Path(tempfile.mkdtemp(prefix="stagecraft-bench-export-"))
    os.environ.update(
        DATABASE_URL=url, DJANGO_SETTINGS_MODULE="config.settings", DEBUG="0",
        SECRET_KEY="bench-only-secret-key-not-for-production", LOG_LEVEL="WARNING",
        ALLOWED_HOSTS="127.0.0.1,testserver", MEDIA_ROOT=str(media),
        REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/11"),
    )  # fmt: skip
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from projects.models import Project
    from queues import services as exports
    from queues.models import Export

    assert not settings.DEBUG
    results: dict = {"tasks": args.tasks, "format": args.format, "database": name}
    if args.reuse:
        project = Project.objects.get(name="Export bench")
        manager = get_user_model().objects.get(username="boss")
    else:
        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        project_id, manager_id = build(args.tasks)
        results["build_seconds"] = round(time.perf_counter() - started, 1)
        project = Project.objects.get(pk=project_id)
        manager = get_user_model().objects.get(pk=manager_id)
    import django_rq

    # A clean Redis database (job ids restart with a new database: export-1 again).
    django_rq.get_queue("exports").connection.flushdb()
    Export.objects.filter(status__in=["queued", "started"]).update(status="cancelled")
    options = {"include_unfinished": True} if args.all else {}
    export, _ = exports.export_start(
        actor=manager, project=project, format=args.format, options=options
    )
    results["load_before"] = os.getloadavg()
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker = subprocess.run(
        [sys.executable, __file__, "--worker"],
        cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    results["worker_process_wall_seconds"] = round(time.perf_counter() - started, 2)
    results["worker_process_cpu_seconds"] = round(
        after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2
    )
    results["worker_peak_rss_mb_getrusage"] = round(after.ru_maxrss / 1024, 1)
    results["worker"] = json.loads(worker.stdout.strip().splitlines()[-1])
    results["load_after"] = os.getloadavg()
    export.refresh_from_db()
    assert export.status == "finished", (export.status, export.error, worker.stderr[-2000:])
    results["export_wall_seconds"] = round(
        (export.finished_at - export.started_at).total_seconds(), 2
    )
    results["exported_tasks"] = export.manifest["counts"]["tasks"]
    results["size_mb"] = round(export.size_bytes / 1e6, 1)
    client = Client()
    client.force_login(manager)
    for _ in range(2):  # the second call is the one reported (warm)
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get("/api/v1/exports/")
            seconds = time.perf_counter() - started
    assert response.status_code == 200, response.status_code
    results["exports_list_api"] = {
        "bytes": len(response.content),
        "ms": round(seconds * 1000, 1),
        "queries": len(queries),
        "exports": Export.objects.count(),
    }
    print(json.dumps(results, indent=2))
    import shutil

    shutil.rmtree(media, ignore_errors=True)


def direct_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=8)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="stagecraft-bench-"))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="1",
        LOG_LEVEL="WARNING",
        DATABASE_URL=f"sqlite:///{work}/bench.sqlite3",
        MEDIA_ROOT=str(work / "media"),
    )
    import django

    django.setup()
    import h5py
    import pyarrow as pa
    import pyarrow.parquet as pq
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from core.synthetic import write_aloha_folder
    from projects.dataset_services import dataset_import_run, dataset_import_start
    from projects.services import project_create
    from queues import services as exports
    from queues.exporters.lerobot import _Video
    from tasks import services as tasks
    from tasks.models import Task

    call_command("migrate", verbosity=0)
    admin = get_user_model().objects.create_superuser("bench", "b@example.com", "x")
    project = project_create(actor=admin, name="Bench")
    episodes = write_aloha_folder(work / "episodes", episodes=args.episodes, seed=7, frames=200)
    dataset = dataset_import_start(
        actor=admin,
        project=project,
        name="eps",
        format="hdf5",
        source_path=work / "episodes",
        background=False,
    )
    dataset_import_run(dataset_id=dataset.pk)
    task = tasks.task_create(actor=admin, project=project, name="t", datasets=[dataset.pk])
    Task.objects.filter(pk=task.pk).update(status="review_passed", finished_at=timezone.now())

    results = {"episodes": args.episodes, "frames": sum(len(e.qpos) for e in episodes)}
    for fmt in ("hdf5", "lerobot"):
        export, _ = exports.export_start(actor=admin, project=project, format=fmt, background=False)
        started = time.perf_counter()
        export = exports.export_run(export_id=export.pk)
        results[f"{fmt}_export_seconds"] = round(time.perf_counter() - started, 3)
        assert export.status == "finished", export.error

    direct = work / "direct"
    direct.mkdir()
    started = time.perf_counter()
    for n, e in enumerate(episodes):
        with h5py.File(direct / f"episode_{n}.hdf5", "w") as f:
            f.create_dataset("observations/qpos", data=e.qpos)
            f.create_dataset("action", data=e.action)
            for name, frames in (("cam_high", e.top), ("cam_right_wrist", e.wrist)):
                f.create_dataset(
                    f"observations/images/{name}",
                    data=frames,
                    chunks=(1, *frames.shape[1:]),
                    compression="gzip",
                    compression_opts=4,
                )
    results["hdf5_direct_seconds"] = round(time.perf_counter() - started, 3)

    started = time.perf_counter()
    videos = {
        "top": _Video(direct / "top.mp4", 96, 96, 25.0),
        "wrist": _Video(direct / "wrist.mp4", 64, 64, 25.0),
    }
    tables = []
    for e in episodes:
        for frame in e.top:
            videos["top"].add(frame)
        for frame in e.wrist:
            videos["wrist"].add(frame)
        tables.append(
            pa.table(
                {
                    "observation.state": pa.FixedSizeListArray.from_arrays(
                        pa.array(e.qpos.ravel()), 14
                    ),
                    "action": pa.FixedSizeListArray.from_arrays(pa.array(e.action.ravel()), 14),
                }
            )
        )
    for v in videos.values():
        v.close()
    pq.write_table(pa.concat_tables(tables), direct / "data.parquet")
    results["lerobot_direct_seconds"] = round(time.perf_counter() - started, 3)
    for fmt in ("hdf5", "lerobot"):
        results[f"{fmt}_ratio_export_to_direct"] = round(
            results[f"{fmt}_export_seconds"] / results[f"{fmt}_direct_seconds"], 2
        )
    results["note"] = (
        "export includes reading the source, validation (frames decoded and compared) and sha256"
    )
    print(json.dumps(results, indent=2))
    import shutil

    shutil.rmtree(work, ignore_errors=True)


def _rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    hwm = next(line for line in status.splitlines() if line.startswith("VmHWM"))
    return round(int(hwm.split()[1]) / 1024, 1)


LONG_CAMERAS = ("cam_high", "cam_left_wrist")


def _long_frames(start: int, count: int, h: int, w: int, seed: int):
    """Frames ``start`` … ``start + count`` of a smooth moving gradient (H.264 keeps it)."""
    import numpy as np

    t = np.arange(start, start + count)[:, None, None]
    y = np.arange(h)[None, :, None]
    x = np.arange(w)[None, None, :]
    out = np.empty((count, h, w, 3), dtype=np.uint8)
    out[..., 0] = (x // 3 + t + seed * 31) % 256
    out[..., 1] = (y // 2 + 2 * t + seed * 17) % 256
    out[..., 2] = ((x + y) // 4 + 3 * t + seed * 13) % 256
    return out


def _write_long_source(path: Path, frames: int, h: int, w: int) -> None:
    """A mobile ALOHA episode (every array ACT and mobile ALOHA write), frames stored raw."""
    import h5py
    import numpy as np

    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f.attrs["sim"] = False
        for name, width in (
            ("observations/qpos", 14),
            ("observations/qvel", 14),
            ("observations/effort", 14),
            ("action", 14),
            ("base_action", 2),
        ):
            f.create_dataset(name, data=rng.normal(size=(frames, width)).astype(np.float32))
        for c, cam in enumerate(LONG_CAMERAS):
            ds = f.create_dataset(
                f"observations/images/{cam}", (frames, h, w, 3), np.uint8, chunks=(1, h, w, 3)
            )
            for start in range(0, frames, 64):
                ds[start : start + 64] = _long_frames(start, min(64, frames - start), h, w, c)


def _direct_write(kind: str, source: Path, out: Path, fps: float) -> None:
    """The same arrays written straight from the source file with h5py / pyarrow + PyAV,
    a window of frames at a time (what the export is compared with)."""
    import h5py
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from queues.exporters.lerobot import _Video

    out.mkdir(parents=True, exist_ok=True)
    with h5py.File(source, "r") as src:
        arrays = {
            k: src[k][...]
            for k in (
                "observations/qpos",
                "observations/qvel",
                "observations/effort",
                "action",
                "base_action",
            )
        }
        T, h, w = src[f"observations/images/{LONG_CAMERAS[0]}"].shape[:3]
        window = max(1, (32 << 20) // (h * w * 3))
        if kind == "hdf5-jpeg":
            _direct_jpeg(src, out / "episode_0.hdf5", arrays, window)
            return
        if kind == "hdf5":
            with h5py.File(out / "episode_0.hdf5", "w") as f:
                f.attrs["sim"] = False
                for k, v in arrays.items():
                    f.create_dataset(k, data=v)
                for cam in LONG_CAMERAS:
                    ds = f.create_dataset(
                        f"observations/images/{cam}",
                        (T, h, w, 3),
                        np.uint8,
                        chunks=(1, h, w, 3),
                        compression="gzip",
                        compression_opts=4,
                    )
                    images = src[f"observations/images/{cam}"]
                    for start in range(0, T, window):
                        ds[start : start + window] = images[start : start + window]
            return
        videos = {cam: _Video(out / f"{cam}.mp4", w, h, fps) for cam in LONG_CAMERAS}
        for start in range(0, T, window):
            for cam in LONG_CAMERAS:
                for frame in src[f"observations/images/{cam}"][start : start + window]:
                    videos[cam].add(frame)
        for v in videos.values():
            v.close()
        table = pa.table(
            {
                k: pa.FixedSizeListArray.from_arrays(pa.array(v.ravel()), v.shape[1])
                for k, v in arrays.items()
            }
        )
        pq.write_table(table, out / "data.parquet")


def _direct_jpeg(src, path: Path, arrays: dict, window: int) -> None:
    """ALOHA's compressed layout written straight: Pillow JPEGs (quality 50, channels as
    OpenCV stores them), zero-padded rows and /compress_len."""
    import io

    import h5py
    import numpy as np
    from PIL import Image

    T = len(arrays["action"])
    with h5py.File(path, "w") as f:
        f.attrs.update(sim=False, compress=True)
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
        lengths = np.zeros((len(LONG_CAMERAS), T), np.float32)
        for c, cam in enumerate(LONG_CAMERAS):
            ds = None
            for start in range(0, T, window):
                encoded = []
                for frame in src[f"observations/images/{cam}"][start : start + window]:
                    buffer = io.BytesIO()
                    Image.fromarray(frame[..., ::-1]).save(buffer, "JPEG", quality=50)
                    encoded.append(np.frombuffer(buffer.getvalue(), np.uint8))
                if ds is None:  # a chunk about one row wide (a wider one is stored whole)
                    chunk = (max(len(e) for e in encoded) * 5 // 4 // 1024 + 1) * 1024
                    ds = f.create_dataset(
                        f"observations/images/{cam}", (T, 0), np.uint8, maxshape=(T, None),
                        chunks=(1, chunk),
                    )  # fmt: skip
                width = max(ds.shape[1], max(len(e) for e in encoded))
                ds.resize(width, axis=1)
                rows = np.zeros((len(encoded), width), np.uint8)
                for i, e in enumerate(encoded):
                    rows[i, : len(e)] = e
                    lengths[c, start + i] = len(e)
                ds[start : start + len(encoded)] = rows
        f.create_dataset("compress_len", data=lengths)


def long_child(argv: list[str]) -> None:
    """One measured run in its own process (its own peak RSS): ``export <id>`` or
    ``direct <hdf5|lerobot> <source> <out>``."""
    import django

    django.setup()
    started, cpu = time.perf_counter(), time.process_time()
    if argv[0] == "export":
        from queues import services as exports

        export = exports.export_run(export_id=int(argv[1]))
        assert export is not None and export.status == "finished", export and export.error
    else:
        _direct_write(argv[1], Path(argv[2]), Path(argv[3]), 50.0)
    print(
        json.dumps(
            {
                "wall_seconds": round(time.perf_counter() - started, 2),
                "cpu_seconds": round(time.process_time() - cpu, 2),
                "peak_rss_mb": _rss_mb(),
            }
        )
    )


def long_main(argv: list[str]) -> None:
    """``--long``: one episode of 2,000 frames with two 480x640 cameras, exported to HDF5 and
    LeRobot by ``export_run`` against the direct streamed write of the same arrays; each run in
    its own process (wall, CPU, peak RSS = VmHWM)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--formats", default="hdf5,lerobot")
    parser.add_argument("--zip", action="store_true", help="the job also builds the zip")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="stagecraft-bench-long-"))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="1",
        LOG_LEVEL="WARNING",
        DATABASE_URL=f"sqlite:///{work}/bench.sqlite3",
        MEDIA_ROOT=str(work / "media"),
    )
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from projects.dataset_services import dataset_import_run, dataset_import_start
    from projects.services import project_create
    from queues import services as exports
    from tasks import services as tasks
    from tasks.models import Task

    call_command("migrate", verbosity=0)
    admin = get_user_model().objects.create_superuser("bench", "b@example.com", "x")
    project = project_create(actor=admin, name="Bench long")
    (work / "episodes").mkdir()
    source = work / "episodes" / "episode_0.hdf5"
    _write_long_source(source, args.frames, args.height, args.width)
    dataset = dataset_import_start(
        actor=admin,
        project=project,
        name="long",
        format="hdf5",
        source_path=work / "episodes",
        background=False,
        options={"fps": 50},
    )
    dataset = dataset_import_run(dataset_id=dataset.pk)
    assert dataset.status == "finished", dataset.error
    task = tasks.task_create(actor=admin, project=project, name="t", datasets=[dataset.pk])
    Task.objects.filter(pk=task.pk).update(status="review_passed", finished_at=timezone.now())

    def child(*extra: str) -> dict:
        done = subprocess.run(
            [sys.executable, __file__, "--long-child", *extra],
            capture_output=True,
            text=True,
            env=os.environ,
        )
        if done.returncode:
            raise SystemExit(done.stderr[-3000:])
        return json.loads(done.stdout.strip().splitlines()[-1])

    results: dict = {
        "frames": args.frames,
        "cameras": f"2 x {args.height}x{args.width}",
        "source_mb": round(source.stat().st_size / 2**20),
        "load_before": os.getloadavg()[0],
    }
    for fmt in args.formats.split(","):
        # "hdf5-jpeg": HDF5 with ALOHA's JPEG layout; robomimic is compared with the direct
        # HDF5 write (the same arrays and gzip frames, in one file).
        export, _ = exports.export_start(
            actor=admin,
            project=project,
            format=fmt.removesuffix("-jpeg"),
            background=False,
            options={"zip": args.zip, **({"compress": "jpeg"} if fmt == "hdf5-jpeg" else {})},
        )
        got = child("export", str(export.pk))
        export.refresh_from_db()
        kind = "hdf5" if fmt == "robomimic" else fmt
        direct = child("direct", kind, str(source), str(work / f"direct-{fmt}"))
        results[fmt] = {
            "export": got,
            "direct": direct,
            "export_mb": round(export.size_bytes / 2**20),
            "direct_mb": round(
                sum(p.stat().st_size for p in (work / f"direct-{fmt}").rglob("*") if p.is_file())
                / 2**20
            ),
            "wall_ratio": round(got["wall_seconds"] / direct["wall_seconds"], 2),
            "rss_ratio": round(got["peak_rss_mb"] / direct["peak_rss_mb"], 2),
        }
        shutil.rmtree(work / f"direct-{fmt}", ignore_errors=True)
        shutil.rmtree(exports.export_dir(export), ignore_errors=True)
    results["load_after"] = os.getloadavg()[0]
    results["note"] = (
        "export = read source + write + validate (arrays compared, last/first frames decoded) "
        "+ sha256 of every file" + (" + zip" if args.zip else "")
    )
    print(json.dumps(results, indent=2))
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["--worker"]:
        worker_main()
    elif argv[:1] == ["--direct"]:
        direct_main(argv[1:])
    elif argv[:1] == ["--long"]:
        long_main(argv[1:])
    elif argv[:1] == ["--long-child"]:
        long_child(argv[1:])
    else:
        scale_main(argv)


if __name__ == "__main__":
    main()
