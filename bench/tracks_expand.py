"""Tracks in exports: the CPU to expand keyframes into every frame (tasks.tracks.expand_tracks,
on the exporters' AnnotationRow), and the peak memory of a chunk's tracks expanded all at once
against one task at a time (queues.exporters.base.TrackFrames, what the exports do).

    .venv/bin/python bench/tracks_expand.py
"""

import os
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rows(row_class, tracks: int, keys: int, gap: int, task: int = 1) -> list:
    return [
        row_class(
            task * 100_000 + t * keys + k,
            task,
            "objects",
            0,
            task,
            "object",
            "box",
            {"frame": k * gap, "camera": "cam", "x": 1.0 + k, "y": 2.0, "w": 3.0, "h": 4.0},
            {"category": "block"},
            1,
            False,
            "",
            "drawn",
            "",
            f"t{t}",
        )  # fmt: skip
        for t in range(tracks)
        for k in range(keys)
    ]


def main() -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY=os.environ.get("SECRET_KEY", "bench-only-secret-key-" + "x" * 40),
    )
    import django

    django.setup()
    from queues.exporters.base import AnnotationRow, TrackFrames
    from tasks.tracks import expand_tracks

    print("| keyframes | rows exported | CPU (best of 3) | per row |\n|---|---|---|---|")
    for tracks, keys, gap in ((100, 3, 50), (1000, 3, 50), (100, 11, 100)):
        source = rows(AnnotationRow, tracks, keys, gap)
        best, out = float("inf"), []
        for _ in range(3):
            start = time.process_time()
            out = expand_tracks(source)
            best = min(best, time.process_time() - start)
        print(
            f"| {tracks} tracks × {keys}, {gap} frames apart | {len(out):,} | "
            f"{best * 1000:.0f} ms | {best / len(out) * 1e6:.1f} µs |"
        )
    # A 200-task chunk (the episode formats' chunk), one 1,000-frame track per task.
    chunk = {pk: rows(AnnotationRow, 1, 2, 999, task=pk) for pk in range(200)}
    for name, read in (
        ("whole chunk expanded", lambda: {pk: expand_tracks(r) for pk, r in chunk.items()}),
        ("one task at a time (TrackFrames)", lambda: [len(TrackFrames(chunk)[pk]) for pk in chunk]),
    ):
        tracemalloc.start()
        kept = read()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        del kept
        print(f"{name}: peak {peak / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
