"""One page's queries and its CPU per call, in-process (read-only: GET requests only).

DATABASE_URL=postgres://…/stagecraft_bench_side_1m DEBUG=0 SECRET_KEY=… \\
ALLOWED_HOSTS=testserver STATIC_ROOT=/tmp/static \\
.venv/bin/python bench/page_queries.py [/projects/list-bench/] [--user boss] [--calls 10]
    [--explain-over 0.0]

As ``--user`` (the manager ``boss`` of the ``task_list.py``/``side_by_side.py`` data), DEBUG
off, one connection kept across requests: prints each query of one call with its EXPLAIN
(ANALYZE, BUFFERS) execution time and shared buffers (and its plan when it took more than
``--explain-over`` ms), then one JSON line: queries,
the Django process's and the PostgreSQL backend's CPU per call (parallel workers off so the
backend's ``/proc`` counters hold all of the database's work) and the wall time per call.
Run ``manage.py collectstatic`` into STATIC_ROOT first (DEBUG off serves the manifest).
"""

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", nargs="?", default="/projects/list-bench/")
    parser.add_argument("--user", default="boss")
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--explain-over", type=float, default=1e9)
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core import signals
    from django.db import close_old_connections, connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.common import cpu_per_call

    # One connection for every request (the backend's CPU counters are read by its pid).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    client = Client()
    client.force_login(get_user_model().objects.get(username=args.user))
    for _ in range(2):  # warm caches
        assert client.get(args.path).status_code == 200, args.path
    with CaptureQueriesContext(connection) as captured:
        assert client.get(args.path).status_code == 200
    queries = list(captured.captured_queries)  # the next request resets the log
    for query in queries:
        if query["sql"].startswith("EXPLAIN"):  # the list's estimated count: itself a plan
            print(f"{'':>9}    {'':>8}           {query['sql'][:100]}")
            continue
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
            plan = "\n".join(row[0] for row in cursor.fetchall())
        ms = float(re.search(r"Execution Time: ([\d.]+)", plan).group(1))
        buffers = re.search(r"Buffers: shared hit=(\d+)", plan)
        print(f"{ms:9.3f} ms {buffers.group(1) if buffers else 0:>8} buffers  {query['sql'][:100]}")
        if ms > args.explain_over:
            print(plan)
    started = time.perf_counter()
    cpu = cpu_per_call(client, args.path, connection, calls=args.calls)
    wall = (time.perf_counter() - started) / args.calls * 1000
    print(
        json.dumps(
            {
                "path": args.path,
                "queries": len(queries),
                **cpu,
                "wall_ms": round(wall, 1),
                "load": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
