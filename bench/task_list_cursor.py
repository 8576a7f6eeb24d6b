"""A page deep in a big project by number (``OFFSET``) and by cursor (keyset), in-process, on
a database an earlier run built (read only: nothing is written). Prints JSON.

For each order the list accepts (``--orderings``), in the project with the most tasks, as
``--user`` (a manager): page ``--page`` by number and the page after it by cursor (the
number page's ``next_cursor``), each with its rows as the list API reads them
(``task_rows``), ``--repeat`` times; the p50 wall and CPU milliseconds, whether the cursor
page holds the tasks of page ``--page`` + 1, its query count and, with ``--explain``, the
plan of its keyset read (EXPLAIN ANALYZE, BUFFERS). The count is read once and given to
both (the API reads it the same way on either).

    DATABASE_URL=postgres://…/stagecraft_bench_side_1m SECRET_KEY=… \\
        .venv/bin/python bench/task_list_cursor.py [--page 5000] [--explain]
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--user", default="boss")
    parser.add_argument("--page", type=int, default=5000)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--orderings", default="-created_at,due_at,-due_at,priority,name")
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.db.models import Count
    from django.test.utils import CaptureQueriesContext

    from tasks.filters import task_filter
    from tasks.models import Task
    from tasks.pagination import TaskPaginator
    from tasks.selectors import TASK_LIST_FIELDS, TASK_RELATED, task_list_for_user, task_rows

    user = get_user_model().objects.get(username=args.user)
    top = Task.objects.values("project").annotate(n=Count("id")).order_by("-n")[0]
    limit = f"LIMIT {args.page_size + 1}"

    def rows(ids):
        return task_rows(ids, fields=TASK_LIST_FIELDS, related=TASK_RELATED)

    def timed(call) -> dict:
        walls, cpus = [], []
        for _ in range(args.repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            call()
            walls.append((time.perf_counter() - wall) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
        return {
            "p50_ms": round(statistics.median(walls), 1),
            "cpu_ms": round(statistics.median(cpus), 1),
        }

    report = {"project": top["project"], "tasks": top["n"], "page": args.page, "orders": {}}
    for ordering in args.orderings.split(","):
        filters = task_filter({"project": top["project"], "ordering": ordering})
        tasks = task_list_for_user(user=user, filters=filters)
        counted = TaskPaginator(tasks, args.page_size)
        count, exact = counted.count, counted.exact

        def paginator(tasks=tasks, count=count, exact=exact):
            made = TaskPaginator(tasks, args.page_size, rows=rows)
            made.count, made.exact = count, exact
            return made

        cursor = paginator().page(args.page).next_cursor
        by_number = timed(lambda: paginator().page(args.page))  # noqa: B023
        by_cursor = timed(lambda: paginator().cursor_page(cursor))  # noqa: B023
        with CaptureQueriesContext(connection) as queries:
            page = paginator().cursor_page(cursor)
        following = paginator().page(args.page + 1)
        entry = {
            "by_number": by_number,
            "by_cursor": by_cursor,
            "same_tasks_as_the_next_number_page": [r["id"] for r in page.object_list]
            == [r["id"] for r in following.object_list],
            "cursor_page_queries": len(queries),
        }
        if args.explain:
            read = next(q["sql"] for q in queries if limit in q["sql"])
            with connection.cursor() as db:
                db.execute("EXPLAIN (ANALYZE, BUFFERS) " + read)
                entry["plan"] = [line for (line,) in db.fetchall()]
        report["orders"][ordering] = entry
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
