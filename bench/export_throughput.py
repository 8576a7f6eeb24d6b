"""Export throughput against writing the same arrays directly (a ratio).

Imports N synthetic ALOHA episodes, creates one finished task over them, then times the
HDF5 and LeRobot exports (the whole job: reading, writing, validation, checksums) against
writing the same arrays with h5py / pyarrow + PyAV directly. Prints JSON.
.venv/bin/python bench/export_throughput.py [--episodes 8]
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=8)
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
