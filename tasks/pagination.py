"""Pages of the task list at any depth and any size of project.

``TaskPaginator`` reads a page in two steps: the ids of the page (``ORDER BY … OFFSET …
LIMIT``, served in order by the list's indexes, index-only on PostgreSQL: a deep page skips
index entries, not rows), then those tasks with their details. It counts exactly up to
``EXACT_UP_TO`` tasks (a count stopped there, cheap); beyond, the count is PostgreSQL's
estimate of the rows (the planner's, from the table's statistics) and the page says "about
N". With an estimate, page numbers past the estimated last page are still served (empty
when there is nothing there), and "is there a next page" is known from the page's read (one
row more than a page), not from the count.

The API (``TaskPagination``) keeps ``count`` and adds ``count_exact``: false when ``count``
is such an estimate.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.paginator import EmptyPage, Page, Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property
from rest_framework.response import Response

from core.api import Pagination

EXACT_UP_TO = 10_000


def estimated_count(queryset: QuerySet) -> int | None:
    """PostgreSQL's estimate of the rows ``queryset`` answers (None on other databases)."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        import json

        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class TaskPage(Page):
    more = False

    def has_next(self) -> bool:
        return self.more


class TaskPaginator(Paginator):
    """``rows``, when given, builds the page from its ids (in order) instead of the
    queryset's tasks: the list API and ``/tasks/`` read plain rows
    (``tasks.selectors.task_rows``), not model instances."""

    exact = True
    object_list: QuerySet  # a queryset of tasks, never a list

    def __init__(
        self, object_list, per_page, *args, rows: Callable[[list[int]], list] | None = None, **kw
    ):
        super().__init__(object_list, per_page, *args, **kw)
        self.rows = rows

    @cached_property
    def count(self) -> int:
        tasks = self.object_list.order_by().values("pk")
        counted = tasks[: EXACT_UP_TO + 1].count()
        if counted <= EXACT_UP_TO:
            return counted
        estimate = estimated_count(tasks)
        if estimate is None:
            return tasks.count()
        self.exact = False
        return max(estimate, counted)

    def validate_number(self, number):
        try:
            return super().validate_number(number)
        except EmptyPage:
            if self.exact or int(number) < 1:
                raise
            return int(number)

    def page(self, number) -> TaskPage:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        ids = list(
            self.object_list.prefetch_related(None)
            .select_related(None)
            .values_list("pk", flat=True)[bottom : bottom + self.per_page + 1]
        )
        shown = ids[: self.per_page]
        if self.rows is not None:
            found = self.rows(shown)
        else:
            found = list(self.object_list.filter(pk__in=shown)) if shown else []
        page = TaskPage(found, number, self)
        page.more = len(ids) > self.per_page
        return page


class TaskPagination(Pagination):
    rows: Callable[[list[int]], list] | None = None  # see TaskPaginator

    def django_paginator_class(self, queryset, page_size) -> TaskPaginator:
        return TaskPaginator(queryset, page_size, rows=self.rows)

    def get_paginated_response(self, data):
        return Response(
            {
                "count": self.page.paginator.count,
                "count_exact": self.page.paginator.exact,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        answer = super().get_paginated_response_schema(schema)
        answer["properties"]["count"]["description"] = (
            f"Exact up to {EXACT_UP_TO:,} tasks; beyond, PostgreSQL's estimate (count_exact false)."
        )
        answer["properties"]["count_exact"] = {"type": "boolean"}
        return answer
