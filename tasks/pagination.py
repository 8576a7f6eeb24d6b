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

Keyset pages (``?cursor=``): every page also says ``next_cursor`` and ``previous_cursor``,
opaque signed tokens naming the list's order and the sort key and id of the page's last (or
first) task. A page read from a cursor asks for the tasks after that key in the index's
order (``WHERE (key, id) < (…)``, or for a key sorted ascending — the id always descends —
``key = … AND id < …`` then ``key > …``, and the NULL due dates after the others), each
part an index range read with ``LIMIT``, never an ``OFFSET``: the same cost at any depth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from django.core import signing
from django.core.paginator import EmptyPage, Page, Paginator
from django.db import connections
from django.db.models import F, Q, QuerySet, Value
from django.db.models.expressions import OrderBy
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan
from django.utils.functional import cached_property
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from core.api import Pagination
from core.exceptions import ApplicationError

EXACT_UP_TO = 10_000
# Pages reached by their number (?page=, an OFFSET of at most this many pages' index
# entries); Next beyond them, and Previous back to them on /tasks/, follow keyset cursors
# (?cursor=), which cost the same at any depth: the API's ``next`` link from this page on,
# and the pager of /tasks/ (``tasks.views``).
NUMBERED_PAGES = 20


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


CURSOR_SALT = "tasks.list.cursor"
BAD_CURSOR = (
    "cursor is not one this list gave (altered, cut, or from another list): "
    "start again from the first page (no cursor) and follow next_cursor."
)


@dataclass(frozen=True)
class ListOrder:
    """The task list's order as a keyset read needs it: one sort key (a field or an
    annotation, e.g. ``priority_rank``), its direction, whether its NULLs come last (the due
    dates), then the id, descending — the tie-breaker of every order the list accepts
    (``tasks.selectors.task_list_for_user``)."""

    key: str
    descending: bool
    nullable: bool

    @property
    def word(self) -> str:  # what a cursor is bound to
        return ("-" if self.descending else "") + self.key

    @classmethod
    def of(cls, queryset: QuerySet) -> ListOrder | None:
        """The order of ``queryset`` (None when it is not ``key, -pk``)."""
        order = list(queryset.query.order_by)
        if len(order) != 2 or order[1] != "-pk":
            return None
        first = order[0]
        if isinstance(first, str):
            return cls(first.lstrip("-"), first.startswith("-"), nullable=False)
        if isinstance(first, OrderBy) and isinstance(first.expression, F):
            name = first.expression.name  # type: ignore[attr-defined]  # F's stubs lack it
            return cls(name, first.descending, nullable=bool(first.nulls_last))
        return None

    def parts(self, value: Any, pk: int, back: bool) -> list[tuple[Any, list[str]]]:
        """The tasks after (``back``: before, read towards the start) the task with sort
        key ``value`` and id ``pk``: one ``(condition, ORDER BY)`` per index range, in the
        list's (reverse) order. A part holds non-NULL keys only or NULL keys only, so its
        ORDER BY needs no NULLS placement and is the index's; where the key is one value
        (equal to the cursor's, or NULL) it is the id alone — PostgreSQL does not take
        ``IS NULL`` as one value and would sort every NULL row for a key order."""
        key, pair = self.key, Tuple(F(self.key), F("pk"))
        by_key = [("-" if self.descending != back else "") + key, "pk" if back else "-pk"]
        by_id = ["pk" if back else "-pk"]
        if value is None:  # among the NULL keys, last in the list
            if back:
                return [
                    (Q(**{f"{key}__isnull": True, "pk__gt": pk}), by_id),
                    (Q(**{f"{key}__isnull": False}), by_key),
                ]
            return [(Q(**{f"{key}__isnull": True, "pk__lt": pk}), by_id)]
        if self.descending:  # key and id both descend: one row comparison
            after = (
                TupleGreaterThan(pair, (value, pk)) if back else TupleLessThan(pair, (value, pk))
            )
            parts: list[tuple[Any, list[str]]] = [(after, by_key)]
        elif back:
            parts = [(Q(**{key: value, "pk__gt": pk}), by_id), (Q(**{f"{key}__lt": value}), by_key)]
        else:
            parts = [(Q(**{key: value, "pk__lt": pk}), by_id), (Q(**{f"{key}__gt": value}), by_key)]
        if self.nullable and not back:
            parts.append((Q(**{f"{key}__isnull": True}), by_id))
        return parts


def _encode(value: Any) -> Any:
    return {"t": value.isoformat()} if isinstance(value, datetime) else value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        return datetime.fromisoformat(value["t"])
    return value


def cursor_make(
    order: ListOrder, pk: int, value: Any, *, back: bool = False, number: int | None = None
) -> str:
    """An opaque, signed cursor: the page after (``back``: before) the task ``pk`` whose
    sort key is ``value``; ``number``, when known, is the number of the page it leads to
    (what ``/tasks/`` says in its pager: a walk from page 1 counts its steps)."""
    payload = {"o": order.word, "k": _encode(value), "i": pk}
    if back:
        payload["b"] = 1
    if number is not None:
        payload["n"] = number
    return signing.dumps(payload, salt=CURSOR_SALT, compress=False)


def cursor_read(cursor: str, order: ListOrder) -> tuple[Any, int, bool, int | None]:
    """``(key value, id, back, page number or None)`` of a cursor made by ``cursor_make``
    for ``order``; a cursor altered, cut or made for another order is a 400 saying so."""
    try:
        payload = signing.loads(cursor, salt=CURSOR_SALT)
        if payload["o"] != order.word:
            raise ApplicationError(
                f"cursor was made for the order “{payload['o']}”, not this list's "
                f"“{order.word}”: keep the list's ordering while following its cursors.",
                field="cursor",
            )
        value, pk, back = _decode(payload["k"]), payload["i"], bool(payload.get("b"))
        number = payload.get("n")
        if not isinstance(pk, int) or isinstance(pk, bool):
            raise TypeError
        if number is not None and (not isinstance(number, int) or number < 1):
            raise TypeError
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise ApplicationError(BAD_CURSOR, field="cursor") from None
    return value, pk, back, number


class TaskPage(Page):
    """A page of tasks; ``number`` is None for a page read from a cursor that did not say
    its number (one of the API's pages, say)."""

    more = False
    next_cursor: str | None = None
    previous_cursor: str | None = None

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

    @cached_property
    def order(self) -> ListOrder | None:
        return ListOrder.of(self.object_list)

    def _ids(self) -> QuerySet:
        return self.object_list.prefetch_related(None).select_related(None)

    def _keyed(self, queryset: QuerySet) -> QuerySet:
        """(id, sort key) rows: the key is in the list's indexes (still index-only)."""
        if self.order is None:
            return queryset.values_list("pk", Value(None))
        return queryset.values_list("pk", self.order.key)

    def _page(self, keyed: list, number: int, *, more: bool) -> TaskPage:
        shown = [pk for pk, _ in keyed]
        if self.rows is not None:
            found = self.rows(shown)
        else:
            found = list(self.object_list.filter(pk__in=shown)) if shown else []
        page = TaskPage(found, number, self)
        page.more = more
        return page

    def page(self, number) -> TaskPage:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        keyed = list(self._keyed(self._ids())[bottom : bottom + self.per_page + 1])
        page = self._page(keyed[: self.per_page], number, more=len(keyed) > self.per_page)
        if self.order is not None and keyed:
            if page.more:
                page.next_cursor = cursor_make(
                    self.order, *keyed[self.per_page - 1], number=number + 1
                )
            if number > 1:
                page.previous_cursor = cursor_make(
                    self.order, *keyed[0], back=True, number=number - 1
                )
        return page

    def cursor_page(self, cursor: str) -> TaskPage:
        """The page after (or before) a cursor: one index range read per part of the
        keyset condition (one to three parts, in one query), never an OFFSET."""
        if self.order is None:
            raise ApplicationError("This list's order cannot be read by cursor.", field="cursor")
        order = self.order
        value, pk, back, number = cursor_read(cursor, order)
        limit = self.per_page + 1
        parts = [
            self._ids()
            .filter(condition)
            .annotate(cursor_part=Value(i))
            .order_by(*ordering)
            .values_list("pk", order.key, "cursor_part")[:limit]
            for i, (condition, ordering) in enumerate(order.parts(value, pk, back))
        ]
        keyed = [(row[0], row[1]) for row in _union_in_order(parts, order, back, limit)]
        more = len(keyed) > self.per_page  # more in the direction read
        keyed = keyed[: self.per_page]
        if back:
            keyed.reverse()
        # Forward, the page came from one before it; backward, from one after it.
        has_next, has_previous = (True, more) if back else (more, True)
        page = self._page(keyed, 2, more=has_next and bool(keyed))
        page.number = number  # type: ignore[assignment]  # None: a number the cursor did not say
        after = before = None
        if number is not None:
            after, before = number + 1, (number - 1 if number > 1 else None)
        if keyed:
            if has_next:
                page.next_cursor = cursor_make(order, *keyed[-1], number=after)
            if has_previous:
                page.previous_cursor = cursor_make(order, *keyed[0], back=True, number=before)
        return page


def _union_in_order(parts: list[QuerySet], order: ListOrder, back: bool, limit: int) -> list:
    """The rows of the parts (each ordered and limited, an index range), in the list's order:
    the parts one after the other, each in its order (a sort of at most ``limit`` rows a
    part). One part is read as it is."""
    if len(parts) == 1:
        return list(parts[0])
    from django.core.exceptions import EmptyResultSet

    sqls: list[str] = []
    params: list[Any] = []
    for part in parts:
        try:
            sql, more = part.query.sql_with_params()
        except EmptyResultSet:
            continue
        sqls.append(f"({sql})")
        params.extend(more)
    if not sqls:
        return []
    descending = order.descending != back
    key = f"2 {'DESC' if descending else 'ASC'} NULLS {'FIRST' if back else 'LAST'}"
    # The ORM's own SQL and parameters, united: column 3 is the part, 2 the key, 1 the id.
    sql = (
        f"SELECT * FROM ({' UNION ALL '.join(sqls)}) parts "  # noqa: S608
        f"ORDER BY 3, {key}, 1 {'ASC' if back else 'DESC'} LIMIT {int(limit)}"
    )
    connection = connections[parts[0].db]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


class TaskPagination(Pagination):
    """Page numbers (``?page=``) as ever, or keyset pages (``?cursor=``): both answers
    carry ``next_cursor`` and ``previous_cursor``."""

    rows: Callable[[list[int]], list] | None = None  # see TaskPaginator
    cursor_query_param = "cursor"
    by_cursor = False

    def django_paginator_class(self, queryset, page_size) -> TaskPaginator:
        return TaskPaginator(queryset, page_size, rows=self.rows)

    def paginate_queryset(self, queryset, request, view=None):
        cursor = request.query_params.get(self.cursor_query_param)
        if not cursor:
            return super().paginate_queryset(queryset, request, view)
        if request.query_params.get(self.page_query_param):
            raise ApplicationError("Give page or cursor, not both.", field="cursor")
        self.by_cursor = True
        self.request = request
        paginator = self.django_paginator_class(queryset, self.get_page_size(request))
        self.page = paginator.cursor_page(cursor)
        return list(self.page)

    def _cursor_link(self, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        url = remove_query_param(self.request.build_absolute_uri(), self.page_query_param)
        return replace_query_param(url, self.cursor_query_param, cursor)

    def get_next_link(self):
        """By cursor from a cursor's page, and from the ``NUMBERED_PAGES``-th page on: a
        client that follows ``next`` through a million tasks reads each page at page 1's
        cost, not an OFFSET that grows with the page."""
        deep = self.page.next_cursor and (self.page.number or 0) >= NUMBERED_PAGES
        if self.by_cursor or deep:
            return self._cursor_link(self.page.next_cursor)
        return super().get_next_link()

    def get_previous_link(self):
        if self.by_cursor:
            return self._cursor_link(self.page.previous_cursor)
        return super().get_previous_link()

    def get_paginated_response(self, data):
        paginator = cast(TaskPaginator, self.page.paginator)
        return Response(
            {
                "count": paginator.count,
                "count_exact": paginator.exact,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "next_cursor": self.page.next_cursor,
                "previous_cursor": self.page.previous_cursor,
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        answer = super().get_paginated_response_schema(schema)
        answer["properties"]["count"]["description"] = (
            f"Exact up to {EXACT_UP_TO:,} tasks; beyond, PostgreSQL's estimate (count_exact false)."
        )
        answer["properties"]["count_exact"] = {"type": "boolean"}
        for word in ("next_cursor", "previous_cursor"):
            answer["properties"][word] = {
                "type": "string",
                "nullable": True,
                "description": "Give it as ?cursor= for the adjacent page, read from the "
                "index at the same cost at any depth (null: no such page).",
            }
        return answer
