"""Object storage against the local folder (issue 18): dataset import and export throughput on
each backend (their ratio), and the frame endpoint's latency with a cold and a warm cache.

``.venv/bin/python bench/storage_throughput.py [--episodes 4 --frames 100 --height 240
--width 320 --frames-timed 20]`` prints JSON. It starts moto's S3 server (``python -m
moto.server``, a separate process on 127.0.0.1, as the tests do) and runs the same work twice,
each time in a fresh child process with a throw-away SQLite database: once with the local
storage (``MEDIA_ROOT``), once with ``STAGECRAFT_STORAGE=s3`` on a new bucket. Each child:

- writes N ALOHA HDF5 episodes (raw uint8 frames of two cameras, smooth moving colours) and
  imports them (``dataset_import_start`` / ``dataset_import_run``: what the
  import job runs): seconds and MB/s of source;
- marks a task of that dataset finished and exports it as HDF5 and as LeRobot (``export_run``,
  the export job's body: build in the working folder, zip, publish): seconds and MB/s of
  what was published (folder + zip);
- times ``GET /api/v1/samples/<id>/frames/<camera>/<i>/`` through Django's test client as the
  manager: **cold** — this machine's cache of stored objects emptied before each request
  (``objectstore.evict()``: the episode is fetched from the bucket again), a different frame
  each time — and **warm** — the same frames again, the episode file already cached. On the
  local storage there is no cache: both read the stored file (the OS page cache is warm).

moto keeps objects in its own memory and speaks HTTP on the loopback: the ratios say what
the storage layer costs (requests, copies, multipart), not what a real bucket across a
network costs."""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ACCESS, SECRET, REGION = "bench", "bench-secret", "us-east-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen(  # noqa: S603 (fixed arguments)
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()  # noqa: S310
            return proc, endpoint
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                sys.exit("moto's S3 server did not start")
            time.sleep(0.1)


def child_environ(backend: str, work: Path, endpoint: str) -> dict[str, str]:
    environ = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        "SECRET_KEY": "bench-only",
        "ALLOWED_HOSTS": "testserver,127.0.0.1",
        "DATABASE_URL": f"sqlite:///{work}/bench.sqlite3",
        "MEDIA_ROOT": str(work / "media"),
        "STAGECRAFT_CACHE_DIR": str(work / "cache"),
        "STAGECRAFT_WORK_DIR": str(work / "work"),
        "STAGECRAFT_JOBS_SYNC_FALLBACK": "1",
        "LOG_LEVEL": "WARNING",
        "STAGECRAFT_STORAGE": backend,
    }
    if backend == "s3":
        import boto3

        bucket = f"bench-{uuid.uuid4().hex[:10]}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS,
            aws_secret_access_key=SECRET,
        ).create_bucket(Bucket=bucket)
        environ.update(
            STAGECRAFT_S3_BUCKET=bucket,
            STAGECRAFT_S3_PREFIX="stagecraft",
            STAGECRAFT_S3_ENDPOINT_URL=endpoint,
            STAGECRAFT_S3_REGION=REGION,
            STAGECRAFT_S3_ACCESS_KEY_ID=ACCESS,
            STAGECRAFT_S3_SECRET_ACCESS_KEY=SECRET,
            STAGECRAFT_S3_ADDRESSING_STYLE="path",
        )
    return environ


def moving_gradient(frames: int, height: int, width: int, seed: int):
    """Smooth moving colours (H.264 keeps them close to the source, as the LeRobot export's
    validation requires; random noise would not survive it)."""
    import numpy as np

    t = np.arange(frames)[:, None, None]
    y = np.arange(height)[None, :, None]
    x = np.arange(width)[None, None, :]
    out = np.empty((frames, height, width, 3), dtype=np.uint8)
    out[..., 0] = (x + t + seed * 31) % 256
    out[..., 1] = (y + 2 * t + seed * 17) % 256
    out[..., 2] = ((x + y) // 2 + 3 * t + seed * 13) % 256
    return out


def child(args) -> dict:
    """One backend's run (in its own process: the storage is chosen at start)."""
    import django

    django.setup()
    import h5py
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    from core import objectstore
    from projects.dataset_services import dataset_import_run, dataset_import_start
    from projects.models import Sample
    from projects.services import project_create
    from queues import services as exports
    from tasks.models import Task
    from tasks.services import task_create

    call_command("migrate", verbosity=0)
    manager = get_user_model().objects.create_superuser("bench", "b@example.com", "x")
    project = project_create(actor=manager, name="Storage bench")
    source = Path(args.work) / "episodes"
    source.mkdir()
    rng = np.random.default_rng(0)
    for i in range(args.episodes):
        with h5py.File(source / f"episode_{i}.hdf5", "w") as f:
            for name in ("observations/qpos", "observations/qvel", "action"):
                f.create_dataset(name, data=rng.normal(size=(args.frames, 14)))
            for c, cam in enumerate(("cam_high", "cam_left_wrist")):
                f.create_dataset(
                    f"observations/images/{cam}",
                    data=moving_gradient(args.frames, args.height, args.width, i * 2 + c),
                    chunks=(1, args.height, args.width, 3),
                )
    source_bytes = sum(p.stat().st_size for p in source.iterdir())
    out: dict = {"backend": objectstore.is_remote() and "s3" or "local"}

    started = time.perf_counter()
    dataset = dataset_import_start(
        actor=manager,
        project=project,
        name="bench",
        format="hdf5",
        source_path=source,
        background=False,
    )
    dataset = dataset_import_run(dataset_id=dataset.pk)
    took = time.perf_counter() - started
    assert dataset.status == "finished", dataset.error
    out["import"] = {
        "seconds": round(took, 3),
        "source_mb": round(source_bytes / 1e6, 1),
        "mb_per_s": round(source_bytes / 1e6 / took, 1),
    }

    task = task_create(actor=manager, project=project, name="bench", datasets=[dataset.pk])
    Task.objects.filter(pk=task.pk).update(status="review_passed", finished_at=timezone.now())
    for fmt in ("hdf5", "lerobot"):
        export, _ = exports.export_start(
            actor=manager, project=project, format=fmt, background=False
        )
        started = time.perf_counter()
        done = exports.export_run(export_id=export.pk)
        took = time.perf_counter() - started
        assert done.status == "finished", done.error
        key = exports.export_key(done.path)
        published = sum(size for _key, size in objectstore.list_keys(key))
        published += objectstore.size(f"{key}.zip") if objectstore.exists(f"{key}.zip") else 0
        out[f"export_{fmt}"] = {
            "seconds": round(took, 3),
            "published_mb": round(published / 1e6, 1),
            "mb_per_s": round(published / 1e6 / took, 1),
        }

    client = Client()
    client.force_login(manager)
    sample = Sample.objects.filter(dataset=dataset).order_by("pk").first()
    camera = "cam_high"
    frames = [
        int(i * (args.frames - 1) / max(1, args.frames_timed - 1)) for i in range(args.frames_timed)
    ]

    def get(index: int) -> float:
        t0 = time.perf_counter()
        response = client.get(f"/api/v1/samples/{sample.pk}/frames/{camera}/{index}/")
        elapsed = (time.perf_counter() - t0) * 1000
        assert response.status_code == 200, response.content[:200]
        return elapsed

    get(0)  # the first request pays Django's own warm-up
    cold = []
    for index in frames:
        objectstore.evict()
        cold.append(get(index))
    warm = [get(index) for index in frames]
    out["frame_ms"] = {
        "cold_p50": round(statistics.median(cold), 1),
        "cold_max": round(max(cold), 1),
        "warm_p50": round(statistics.median(warm), 1),
        "warm_max": round(max(warm), 1),
        "requests": len(frames),
        "episode_mb": round(source_bytes / args.episodes / 1e6, 1),
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--frames-timed", type=int, default=20)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return

    moto, endpoint = start_moto()
    results = {}
    try:
        for backend in ("local", "s3"):
            work = Path(tempfile.mkdtemp(prefix=f"stagecraft-bench-{backend}-"))
            command = [sys.executable, __file__, "--child", backend, "--work", str(work)]
            for name in ("episodes", "frames", "height", "width", "frames_timed"):
                command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
            done = subprocess.run(  # noqa: S603
                command,
                env=child_environ(backend, work, endpoint),
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode:
                sys.exit(f"{backend} run failed:\n{done.stderr[-3000:]}")
            results[backend] = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        moto.terminate()
        moto.wait(timeout=10)
    local, s3 = results["local"], results["s3"]
    results["s3_vs_local_mb_per_s"] = {
        work: round(s3[work]["mb_per_s"] / local[work]["mb_per_s"], 2)
        for work in ("import", "export_hdf5", "export_lerobot")
    }
    results["settings"] = vars(args) | {"child": None, "work": None}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
