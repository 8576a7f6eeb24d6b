"""Writing many rows at once on PostgreSQL: ids drawn from a table's sequence in one query,
rows written with COPY (no SQL built per row, no model instance per row).

Rows are dicts of column (attname) → value; the columns a row does not give take the
field's default (``auto_now``/``auto_now_add`` columns: one timestamp for the whole batch),
as Django's ``bulk_create`` would. Callers fall back to ``bulk_create`` when
``copy_available()`` is false (SQLite)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from django.db import connection, models
from django.db.models.expressions import RawSQL
from django.utils import timezone
from psycopg import pq
from psycopg.adapt import Dumper
from psycopg.postgres import types as pg_types

_MISSING = object()  # a column the row does not give


class _DumpedJsonb(Dumper):
    """A jsonb value in COPY's binary format from its JSON text, dumped by ``copy_rows``
    (once per shared object): the format's version byte, then the text."""

    oid = pg_types["jsonb"].oid
    format = pq.Format.BINARY

    def dump(self, obj: str) -> bytes:
        return b"\x01" + obj.encode()


def _binary_types(fields: list[models.Field]) -> list[str] | None:
    """The PostgreSQL type of each column, for a binary COPY; None when one is a type
    psycopg has no binary dumper for (then the COPY is text)."""
    names = []
    for field in fields:
        name = (field.db_type(connection) or "").split("(")[0].strip()
        info = pg_types.get(name)
        if info is None:
            return None
        names.append(info.name)
    return names


def copy_available() -> bool:
    return connection.vendor == "postgresql"


def id_set(ids: Iterable[int]) -> Any:
    """A ``pk__in`` (or ``task_id__in``) value for many ids. On PostgreSQL one array
    parameter, ``IN (SELECT unnest(%s::bigint[]))``: a statement over 10,000 tasks is not
    10,000 placeholders Django builds, psycopg quotes and PostgreSQL parses, each time; the
    planner still knows the array's length. The array goes as its text (``id_array``), built
    once: psycopg adapts a list of 10,000 ints again for every statement that carries it
    (≈ 9 ms each; a string ≈ 2 ms). Elsewhere the list itself."""
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", (id_array(ids),))
    return list(ids)


def id_array(ids: Iterable[int]) -> str:
    """PostgreSQL's text of a ``bigint[]`` holding ``ids`` (pass it as ``%s::bigint[]``)."""
    return "{" + ",".join(str(int(i)) for i in ids) + "}"


def task_events(ids: Sequence[int], kind: str, actor, **data) -> None:
    """One event per task, the same ``data`` for all: on PostgreSQL one INSERT … SELECT over
    the ids (no row built in Python)."""
    from ..models import TaskEvent

    if not copy_available():
        TaskEvent.objects.bulk_create(
            [TaskEvent(task_id=i, kind=kind, actor=actor, data=data) for i in ids],
            batch_size=5000,
        )
        return
    table = TaskEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (task_id, kind, stage_key, actor_id, data, created_at) "  # noqa: S608
            "SELECT unnest(%s::bigint[]), %s, '', %s, %s::jsonb, %s",
            [list(ids), kind, actor.pk if actor else None, json.dumps(data), timezone.now()],
        )


def text_set(values: Iterable[str]) -> Any:
    """A ``field__in`` value for many strings: on PostgreSQL one text array parameter (as
    ``id_set``), elsewhere the list itself."""
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::text[])", (list(values),))
    return list(values)


def reserve_ids(model: type[models.Model], count: int) -> list[int]:
    """``count`` new primary keys of ``model``'s table, in ascending order, one query."""
    if count <= 0:
        return []
    table = model._meta.db_table
    with connection.cursor() as cursor:
        # The sequence looked up once (OFFSET 0 keeps the subquery from being pulled up into
        # a lookup per id), not by pg_get_serial_sequence for every id.
        cursor.execute(
            "SELECT nextval(s.seq) FROM (SELECT pg_get_serial_sequence(%s, %s)::regclass "
            "AS seq OFFSET 0) AS s, generate_series(1, %s)",
            [connection.ops.quote_name(table), model._meta.pk.column, count],
        )
        return sorted(row[0] for row in cursor.fetchall())


def _columns(model: type[models.Model], given: Iterable[str], now: datetime):
    """(column names, [(attname, default, is_json)]) for every concrete column written."""
    given = set(given)
    columns, plan = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key and field.attname not in given:
            continue  # the sequence numbers it
        default: Any
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            default = now
        else:
            default = field.get_default()
        is_json = isinstance(field, models.JSONField)
        if is_json:
            default = json.dumps(default, cls=getattr(field, "encoder", None))
        columns.append(field.column)
        plan.append((field.attname, default, is_json, field))
    return columns, plan


def copy_rows(
    model: type[models.Model],
    rows: Sequence[dict[str, Any]] | Sequence[tuple],
    now=None,
    fields: Sequence[str] | None = None,
) -> None:
    """COPY ``rows`` into ``model``'s table in one statement (PostgreSQL only). Rows are
    dicts (attname → value), or tuples of the ``fields`` named (attnames, in that order):
    no dict built per row by a caller that has the values in order."""
    if not rows:
        return
    now = now or timezone.now()
    keys: set[str] = set()
    if fields is not None:
        keys = set(fields)
        position = {name: i for i, name in enumerate(fields)}
    else:
        for row in rows:
            keys |= row.keys()  # type: ignore[union-attr]  # dicts without fields
    columns, plan = _columns(model, keys, now)
    # The columns the rows give first (a tuple's in its order), then those none gives (the
    # same defaults for all).
    if fields is not None:
        order = sorted(range(len(plan)), key=lambda i: position.get(plan[i][0], len(fields)))
    else:
        order = sorted(range(len(plan)), key=lambda i: plan[i][0] not in keys)
    columns = [columns[i] for i in order]
    plan = [plan[i] for i in order]
    given = [step for step in plan if step[0] in keys]
    tail = tuple(step[1] for step in plan if step[0] not in keys)
    if fields is not None and len(given) != len(fields):
        unknown = set(fields) - {step[0] for step in given}
        raise ValueError(f"{model.__name__} has no column {', '.join(sorted(unknown))}.")
    quote = connection.ops.quote_name
    sql = f"COPY {quote(model._meta.db_table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    # JSON values by identity: rows often share one object (an event's data), dumped once.
    # The rows hold every object for the whole call, so an id is not reused meanwhile.
    dumped: dict[int, str] = {}

    def dump(value: Any, encoder: Any) -> str:
        text = dumped.get(id(value))
        if text is None:
            text = dumped[id(value)] = json.dumps(value, cls=encoder)
        return text

    jsons = [(i, getattr(step[3], "encoder", None)) for i, step in enumerate(given) if step[2]]
    if fields is not None:

        def values(row: Any) -> tuple:
            if jsons:
                found = list(row)
                for i, encoder in jsons:
                    found[i] = dump(found[i], encoder)
                return (*found, *tail)
            return (*row, *tail) if tail else row

    elif all(len(row) == len(keys) for row in rows):  # every row gives every column: one
        get = itemgetter(*(step[0] for step in given))  # C call reads a row's values

        def values(row: Any) -> tuple:
            found = get(row)
            if len(given) == 1:
                found = (found,)
            if jsons:
                found = list(found)
                for i, encoder in jsons:
                    found[i] = dump(found[i], encoder)
            return (*found, *tail)

    else:
        encoders = {i: encoder for i, encoder in jsons}

        def values(row: Any) -> tuple:
            found = []
            for i, (attname, default, _, _) in enumerate(given):
                value = row.get(attname, _MISSING)
                if value is _MISSING:
                    value = default
                elif i in encoders:
                    value = dump(value, encoders[i])
                found.append(value)
            return (*found, *tail)

    # Binary when every column allows it: PostgreSQL parses no text (timestamps, numbers)
    # and psycopg formats the values in C — about a third of each side's cost of a row.
    types = _binary_types([step[3] for step in plan])
    if types is not None:
        sql += " (FORMAT BINARY)"
    connection.ensure_connection()
    # Database errors as Django's (a unique row taken meanwhile is an IntegrityError).
    with connection.wrap_database_errors, connection.cursor() as wrapper:
        if types is not None:  # this cursor's own adapters: JSON goes as the text dumped
            wrapper.cursor.adapters.register_dumper(None, _DumpedJsonb)
        with wrapper.cursor.copy(sql) as copy:
            if types is not None:
                copy.set_types(types)
            write = copy.write_row
            for row in rows:
                write(values(row))
    # Count the statement where Django counts queries (tests bound them; DEBUG shows them).
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": "0.000"})


def update_rows(model: type[models.Model], objs: Sequence[models.Model], fields: list[str]) -> int:
    """Write ``fields`` of ``objs`` (saved rows of ``model``) in one UPDATE … FROM unnest(…)
    (PostgreSQL only): one array per column, no statement growing with the rows (Django's
    ``bulk_update`` writes a CASE per field with a branch per row, 1,000 rows a statement).
    Returns the rows updated."""
    if not objs:
        return 0
    quote = connection.ops.quote_name
    meta = model._meta
    columns: list[models.Field] = [meta.pk, *(meta.get_field(name) for name in fields)]  # type: ignore[list-item]
    arrays = [
        [field.get_db_prep_value(getattr(obj, field.attname), connection) for obj in objs]
        for field in columns
    ]
    names = [f"c{i}" for i in range(len(columns))]
    casts = ", ".join(f"%s::{field.db_type(connection)}[]" for field in columns)
    assignments = ", ".join(
        f"{quote(str(field.column))} = v.{name}"
        for field, name in zip(columns[1:], names[1:], strict=True)
    )
    table, key = quote(meta.db_table), quote(str(meta.pk.column))
    sql = (
        f"UPDATE {table} SET {assignments} "  # noqa: S608
        f"FROM unnest({casts}) AS v({', '.join(names)}) WHERE {table}.{key} = v.{names[0]}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, arrays)
        return cursor.rowcount
