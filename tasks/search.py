"""Name and description search (``?search=``) that stays fast at 1,000,000 tasks (issue 15).

The trigram indexes (``task_name_trgm_idx``, ``task_description_trgm_idx``: pg_trgm GIN on
``UPPER(column)``) answer ``icontains`` by reading the posting list of every trigram of the
search text. A trigram that most names share ("SCE", "CEN", "ENE" of "scene 4242" when every
task is a "… scene N …") has a posting list of every task: at 1,000,000 tasks reading three
of them took 117 ms a query, twice a page (its count and its rows), and a text made only of
such trigrams ("ene sce") took a second.

So the search asks the index only for the text's **rare** trigrams and checks the whole text
with ``STRPOS`` (which no index answers, so the planner cannot add the common trigrams back):

- ``common_trigrams`` samples about ``SAMPLE_ROWS`` live tasks (``TABLESAMPLE SYSTEM``, a
  few pages; kept ``CACHE_SECONDS`` per process) and calls a trigram common when more than
  ``COMMON_FRACTION`` of the sampled names (descriptions) hold it. The indexes span every
  project, so the sample does too: a posting list's length is the table's, not a project's.
- ``search_q``: per column, the rarest (at most ``MOST_TRIGRAMS``) of the text's uncommon
  trigrams — three letters or digits in a row, as pg_trgm reads a ``LIKE '%abc%'`` — each an
  ``icontains`` the index answers, AND ``STRPOS(UPPER(column), UPPER(text)) > 0``. A column
  with no uncommon trigram (every one common, or a text shorter than three characters) gets
  the ``STRPOS`` test alone: the list walks its order's index and stops at a page of matches
  (a common text matches many tasks; a text of common trigrams that matches nothing costs a
  scan of the project, the one case left slow).

Results are exactly ``icontains``'s on either column: every condition added is implied by the
text being in the column (only ASCII letters and digits make the trigrams, so upper-casing is
the same in Python and SQL). Small tables (``SMALL_TABLE`` rows) and SQLite keep plain
``icontains``.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q, Value
from django.db.models.functions import StrIndex, Upper
from django.db.models.lookups import GreaterThan

SAMPLE_ROWS = 2000
COMMON_FRACTION = 0.01  # a trigram in 1% of 1,000,000 names: 10,000 postings (~1 ms)
CACHE_SECONDS = 300.0
SMALL_TABLE = 20_000  # below this the whole posting lists cost little: plain icontains
MOST_TRIGRAMS = 4
COLUMNS = ("name", "description")
_WORD = re.compile(r"[A-Za-z0-9]{3,}")


@dataclass(frozen=True)
class Sample:
    """Trigram counts of each column over ``rows`` sampled tasks (None: no sample — the table
    is small, or not PostgreSQL)."""

    rows: int
    counts: dict[str, Counter]

    def common(self, column: str) -> set[str]:
        least = max(1, int(self.rows * COMMON_FRACTION))
        return {t for t, n in self.counts[column].items() if n > least}


_cached: tuple[float, Sample | None] | None = None


def trigrams(text: str) -> list[str]:
    """The trigrams of ``text`` that pg_trgm would read for ``LIKE '%text%'`` inside runs of
    ASCII letters and digits, upper-cased, each once, in order."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text):
        word = word.upper()  # ASCII only: the same as PostgreSQL's UPPER
        for i in range(len(word) - 2):
            seen.setdefault(word[i : i + 3], None)
    return list(seen)


def _count(values: list[str]) -> Counter:
    counts: Counter = Counter()
    for value in values:
        counts.update(set(trigrams(value or "")))
    return counts


def sample(*, refresh: bool = False) -> Sample | None:
    """The trigram sample of the live tasks (cached per process for ``CACHE_SECONDS``)."""
    global _cached
    now = time.monotonic()
    if not refresh and _cached is not None and _cached[0] > now:
        return _cached[1]
    found: Sample | None = None
    if connection.vendor == "postgresql":
        found = _sample_postgres()
    _cached = (now + CACHE_SECONDS, found)
    return found


def _sample_postgres() -> Sample | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'tasks_task'::regclass")
        estimate = float(cursor.fetchone()[0])  # -1: never analyzed
        if estimate < SMALL_TABLE:
            return None
        percent = min(100.0, 100.0 * 2 * SAMPLE_ROWS / max(estimate, 1.0))
        cursor.execute(
            "SELECT name, description FROM tasks_task TABLESAMPLE SYSTEM (%s) "
            "WHERE deleted_at IS NULL LIMIT %s",
            [percent, SAMPLE_ROWS],
        )
        rows = cursor.fetchall()
    if not rows:
        return None
    counts = {column: _count([row[i] for row in rows]) for i, column in enumerate(COLUMNS)}
    return Sample(len(rows), counts)


def search_q(text: str) -> Q:
    """Tasks whose name or description holds ``text`` (case-insensitive), read through the
    trigram indexes by the text's uncommon trigrams only (see the module docstring)."""
    known = sample()
    if known is None:
        return Q(name__icontains=text) | Q(description__icontains=text)
    wanted = Upper(Value(text))  # both sides upper-cased by PostgreSQL, as icontains does
    found = Q()
    for column in COLUMNS:
        counts = known.counts[column]
        common = known.common(column)
        rare = sorted((t for t in trigrams(text) if t not in common), key=lambda t: counts[t])
        test = Q(GreaterThan(StrIndex(Upper(column), wanted), 0))
        for trigram in rare[:MOST_TRIGRAMS]:
            test &= Q(**{f"{column}__icontains": trigram})
        found |= test
    return found
