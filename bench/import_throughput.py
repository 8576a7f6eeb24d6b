"""Dataset import throughput: episodes/s and MB/s through the real import service.

Writes ALOHA HDF5 episodes (raw frames, two cameras) and one robomimic file with many
small demos into a temporary folder, imports them into a throw-away SQLite database,
and prints JSON. Usage: .venv/bin/python bench/import_throughput.py [--episodes N]
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
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--demos", type=int, default=1000)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="stagecraft-bench-"))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="1",
        DATABASE_URL=f"sqlite:///{work}/bench.sqlite3",
        MEDIA_ROOT=str(work / "media"),
        LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    import h5py
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from projects.dataset_services import dataset_import_run, dataset_import_start
    from projects.models import Project

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_superuser("bench", "b@example.com", "x")
    project = Project.objects.create(name="Bench", slug="bench")

    rng = np.random.default_rng(0)
    aloha = work / "aloha"
    aloha.mkdir()
    for i in range(args.episodes):
        with h5py.File(aloha / f"episode_{i}.hdf5", "w") as f:
            f.create_dataset("observations/qpos", data=rng.normal(size=(args.frames, 14)))
            f.create_dataset("observations/qvel", data=rng.normal(size=(args.frames, 14)))
            f.create_dataset("action", data=rng.normal(size=(args.frames, 14)))
            for cam in ("cam_high", "cam_left_wrist"):
                frames = rng.integers(
                    0, 255, (args.frames, args.height, args.width, 3), dtype=np.uint8
                )
                f.create_dataset(
                    f"observations/images/{cam}",
                    data=frames,
                    chunks=(1, args.height, args.width, 3),
                )
    robomimic = work / "robomimic.hdf5"
    with h5py.File(robomimic, "w") as f:
        for i in range(args.demos):
            f.create_dataset(f"data/demo_{i}/actions", data=rng.normal(size=(50, 7)))
            f.create_dataset(f"data/demo_{i}/states", data=rng.normal(size=(50, 32)))

    results = {}
    for label, path, fmt in (
        ("aloha_hdf5", aloha, "hdf5"),
        ("robomimic_hdf5", robomimic, "robomimic"),
    ):
        size = sum(p.stat().st_size for p in ([path] if path.is_file() else path.iterdir()))
        dataset = dataset_import_start(
            actor=user, project=project, name=label, format=fmt, source_path=path, background=False
        )
        started = time.perf_counter()
        dataset = dataset_import_run(dataset_id=dataset.pk)
        seconds = time.perf_counter() - started
        assert dataset.status == "finished", dataset.error
        results[label] = {
            "samples": dataset.num_samples,
            "megabytes": round(size / 1e6, 1),
            "seconds": round(seconds, 3),
            "samples_per_second": round(dataset.num_samples / seconds, 1),
            "megabytes_per_second": round(size / 1e6 / seconds, 1),
        }
    results["setup"] = {
        "aloha": f"{args.episodes} episodes × {args.frames} frames × 2 cameras "
        f"{args.width}×{args.height}, raw",
        "robomimic": f"{args.demos} demos × 50 frames, no images",
        "database": "SQLite (throw-away)",
    }
    print(json.dumps(results, indent=2))
    import shutil

    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
