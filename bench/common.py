"""What the benches over HTTP share: the latency summary, the CPU one call costs Django and
PostgreSQL, and a real server (gunicorn when installed, else runserver) on a port."""

import cProfile
import io
import os
import pstats
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def summary(times: list[float]) -> dict:
    ordered = sorted(times)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[max(int(len(ordered) * 0.95) - 1, 0)] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def cpu_per_call(client, path: str, connection, calls: int = 10) -> dict:
    """CPU milliseconds one call costs, Django and PostgreSQL together (the database runs on
    this machine): unlike wall time, this does not grow while other processes hold the
    cores, so it says what a request costs on an idle machine."""

    def get() -> None:
        for _ in range(calls):
            assert client.get(path).status_code == 200

    cpu = cpu_of(get, connection)[1]
    return {key: round(value / calls, 1) for key, value in cpu.items()}


def cpu_of(call, connection, profile: bool = False) -> tuple[str, dict, object]:
    """Run ``call()`` once in this process; answers (its cProfile, top 30 by cumulative
    time, when ``profile``; the CPU milliseconds it cost Django and the PostgreSQL backend;
    what it returned). Parallel query workers are off meanwhile so the backend's own
    counters see all of the database's work."""
    ticks = os.sysconf("SC_CLK_TCK")
    with connection.cursor() as cursor:
        cursor.execute("SET max_parallel_workers_per_gather = 0")
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    stat = Path(f"/proc/{backend}/stat")

    def backend_seconds() -> float:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime

    profiler = cProfile.Profile() if profile else None
    db_before, py_before = backend_seconds(), time.process_time()
    if profiler:
        profiler.enable()
    answer = call()
    if profiler:
        profiler.disable()
    db, py = backend_seconds() - db_before, time.process_time() - py_before
    with connection.cursor() as cursor:
        cursor.execute("RESET max_parallel_workers_per_gather")
    shown = ""
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        shown = out.getvalue()
    cpu = {"django_ms": py * 1000, "postgres_ms": db * 1000, "total_ms": (py + db) * 1000}
    return shown, {key: round(value, 1) for key, value in cpu.items()}, answer


def serve(port: int) -> subprocess.Popen:
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    if gunicorn:
        command = [gunicorn, "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2"]
    else:
        command = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    server = subprocess.Popen(
        command, cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    for _ in range(1200):  # system checks take a while on a busy machine
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            if server.poll() is not None:
                error = server.stderr.read().decode() if server.stderr else "no server"
                raise SystemExit(error) from None
            time.sleep(0.1)
    server.terminate()
    raise SystemExit("the server did not start")
