"""Queries compiled once: the hot reads of a service call, where building and compiling the
ORM query costs more than PostgreSQL's answer (≈ 1 ms of Python per query against a few
tenths of a millisecond in the database).

The ORM still writes every query: ``build(*arguments)`` returns the queryset, called once per
``key`` with stand-in numbers for the arguments; the SQL and the parameters it compiles to are
kept, and each call puts its own arguments where the stand-ins were (as numbers, or as text
where the ORM made text of them, e.g. a generic object id). Only for arguments that are ids;
every other value the query carries is kept as compiled, so ``key`` must name whatever may
change it (e.g. a content type's id, which a test database's flush may renumber).

PostgreSQL only: ``available()`` says whether to use it (elsewhere run the queryset)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import Model, QuerySet

# Stand-ins: within a 32-bit integer column's range (the ORM refuses values beyond it), and
# far from any constant a query carries.
_STAND_IN = 2_100_000_001
_SQL: dict[Hashable, tuple[str, tuple, tuple]] = {}
_READERS: dict[Hashable, tuple[str, tuple, tuple, Any]] = {}


def available() -> bool:
    return connection.vendor == "postgresql"


def _slots(params: Sequence[Any], count: int) -> tuple:
    stand_ins = [_STAND_IN + i for i in range(count)]
    slots = []
    for value in params:
        slot: tuple[int, type] | None = None
        for i, stand_in in enumerate(stand_ins):
            if isinstance(value, int) and not isinstance(value, bool) and value == stand_in:
                slot = (i, int)
            elif isinstance(value, str) and value == str(stand_in):
                slot = (i, str)
        slots.append(slot)
    missing = set(range(count)) - {slot[0] for slot in slots if slot}
    if missing:  # an argument inlined in the SQL: it cannot be replaced
        raise ValueError(f"arguments {sorted(missing)} are not parameters of the query")
    return tuple(slots)


def _fill(params: tuple, slots: tuple, arguments: Sequence[int]) -> list:
    return [
        value if slot is None else slot[1](arguments[slot[0]])
        for value, slot in zip(params, slots, strict=True)
    ]


def compiled_sql(
    key: Hashable, build: Callable[..., QuerySet], arguments: Sequence[int]
) -> tuple[str, list]:
    """The SQL and parameters of ``build(*arguments)``, compiled once per ``key``."""
    found = _SQL.get(key)
    if found is None:
        query = build(*(_STAND_IN + i for i in range(len(arguments)))).query
        sql, params = query.get_compiler(DEFAULT_DB_ALIAS).as_sql()
        found = _SQL[key] = (sql, tuple(params), _slots(params, len(arguments)))
    sql, params, slots = found
    return sql, _fill(params, slots, arguments)


def compiled_rows(
    key: Hashable, build: Callable[..., QuerySet], arguments: Sequence[int]
) -> list[tuple]:
    """The rows of ``build(*arguments)`` (a ``values_list`` query), compiled once per
    ``key``; values as the database driver gives them (no ORM converters)."""
    sql, params = compiled_sql(key, build, arguments)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def compiled_objects[M: Model](
    key: Hashable, build: Callable[..., QuerySet[M]], arguments: Sequence[int]
) -> list[M]:
    """The model instances of ``build(*arguments)`` — a queryset of model rows, with its
    ``select_related`` objects attached as the ORM would — compiled once per ``key``."""
    found = _READERS.get(key)
    if found is None:
        query = build(*(_STAND_IN + i for i in range(len(arguments)))).query
        compiler = query.get_compiler(DEFAULT_DB_ALIAS)
        sql, params = compiler.as_sql()
        converters = compiler.get_converters([column for column, _, _ in compiler.select])
        reader = (compiler, converters, compiler.klass_info)
        found = _READERS[key] = (sql, tuple(params), _slots(params, len(arguments)), reader)
    sql, params, slots, (compiler, converters, info) = found
    with connection.cursor() as cursor:
        cursor.execute(sql, _fill(params, slots, arguments))
        rows: Iterator = iter(cursor.fetchall())
    if converters:
        rows = compiler.apply_converters(rows, converters)
    select = compiler.select
    return [_instance(DEFAULT_DB_ALIAS, list(row), info, select) for row in rows]


def _instance(db: str, row: list, info: dict, select: list) -> Any:
    indexes = info["select_fields"]
    names = [select[i][0].target.attname for i in indexes]
    obj = info["model"].from_db(db, names, [row[i] for i in indexes])
    for related in info.get("related_klass_infos", ()):
        other = _instance(db, row, related, select)
        if other.pk is None:  # a nullable relation without a row
            other = None
        related["local_setter"](obj, other)
        if other is not None:
            related["remote_setter"](other, obj)
    return obj
