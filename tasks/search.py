"""Name and description search (``?search=``) that stays fast at 1,000,000 tasks (issue 15).

The trigram indexes (``task_name_trgm_idx``, ``task_description_trgm_idx``: pg_trgm GIN on
``UPPER(column)``) answer ``icontains`` by reading the posting list of every trigram of the
search text. A trigram that most names share ("SCE", "CEN", "ENE" of "scene 4242" when every
task is a "… scene N …") has a posting list of every task: at 1,000,000 tasks reading three
of them took 117 ms a query, twice a page (its count and its rows), and a text made only of
such trigrams ("ene sce") took a second.

So the search asks the index only for the text's **rare** trigrams and checks the whole text
with ``STRPOS`` (which no index answers, so the planner cannot add the common trigrams back):

- ``sample`` reads about ``SAMPLE_ROWS`` live tasks by random ids (kept ``CACHE_SECONDS``
  per process; drawn again, more, where most ids are of deleted tasks) and calls a trigram
  common when the index would list it for more than ``COMMON_POSTINGS`` tasks (its share
  of the ids drawn times the ids there are: deleted tasks and gaps count for nothing, as
  in the indexes, which hold live tasks only). The indexes span every project, so the
  sample does too: a posting list's length is the table's, not a project's. Random ids,
  not ``TABLESAMPLE SYSTEM``'s random pages: a page holds tasks made together, whose
  shared digits looked common — a worker whose sample held the page of "scene 42400…42460"
  read "scene 4242" without the index.
- ``search_q``: per column, the rarest (at most ``MOST_TRIGRAMS``) of the text's uncommon
  trigrams — three letters or digits in a row, as pg_trgm reads a ``LIKE '%abc%'`` — each an
  ``icontains`` the index answers, AND ``STRPOS(UPPER(column), UPPER(text)) > 0``. A column
  with no uncommon trigram (every one common, or a text shorter than three characters) gets
  the ``STRPOS`` test alone: the list walks its order's index and stops at a page of matches
  (a common text matches many tasks; a text of common trigrams that matches nothing costs a
  scan of the project, the one case left slow).

Results are exactly ``icontains``'s on either column: every condition added is implied by the
text being in the column (only ASCII letters and digits make the trigrams, so upper-casing is
the same in Python and SQL; a database whose UPPER of the ASCII letters differs — a Turkish
collation's UPPER('i') is 'İ' — keeps plain ``icontains``). Tables of fewer than
``COMMON_POSTINGS`` tasks (nothing can be common) and SQLite keep plain ``icontains``.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from dataclasses import dataclass
from functools import cached_property

from django.db import connection
from django.db.models import Q, Value
from django.db.models.functions import StrIndex, Upper
from django.db.models.lookups import GreaterThan

SAMPLE_ROWS = 2000
# A trigram listed for more tasks than this is common: reading 20,000 postings costs ~1 ms;
# at 1,000,000 tasks that is a trigram in 2% of the names, at 100,000 in 20%. A table with
# fewer tasks has none (no sample: plain icontains).
COMMON_POSTINGS = 20_000
MOST_IDS = 50_000  # a second draw's bound where most ids are of deleted tasks
CACHE_SECONDS = 300.0
MOST_TRIGRAMS = 4
COLUMNS = ("name", "description")
_WORD = re.compile(r"[A-Za-z0-9]{3,}")


@dataclass(frozen=True)
class Sample:
    """Trigram counts of each column over the live tasks of ``rows`` random ids."""

    rows: int  # ids drawn (some of them found no live task)
    tasks: float  # ids there are, from the lowest to the highest
    counts: dict[str, Counter]

    def common(self, column: str) -> frozenset[str]:
        """Trigrams the index would list for more than ``COMMON_POSTINGS`` tasks (worked out
        once a sample, not on each search)."""
        return self._common[column]

    @cached_property
    def _common(self) -> dict[str, frozenset[str]]:
        least = COMMON_POSTINGS * self.rows / self.tasks
        return {
            column: frozenset(t for t, n in counts.items() if n > least)
            for column, counts in self.counts.items()
        }


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
        cursor.execute(
            "SELECT reltuples, (SELECT id FROM tasks_task WHERE deleted_at IS NULL "
            "ORDER BY id LIMIT 1), (SELECT id FROM tasks_task WHERE deleted_at IS NULL "
            "ORDER BY id DESC LIMIT 1), upper('abcdefghijklmnopqrstuvwxyz') "
            "FROM pg_class WHERE oid = 'tasks_task'::regclass"
        )
        estimate, low, high, upper = cursor.fetchone()  # reltuples -1: never analyzed
        if estimate < COMMON_POSTINGS or low is None:
            return None
        if upper != "ABCDEFGHIJKLMNOPQRSTUVWXYZ":  # e.g. a Turkish collation: UPPER('i') = 'İ'
            return None  # the trigrams upper-cased here would not be the database's
        # Random ids, not random pages: a page holds tasks made together ("scene 42400" to
        # "scene 42460"), whose shared digits would look common in a sample of pages. Ids of
        # deleted tasks find nothing: where most do, draw again, more (the share of ids that
        # found a live task says how many).
        span = range(low, high + 1)
        drawn = 0
        rows: list[tuple] = []
        for _ in range(2):
            wanted = SAMPLE_ROWS * drawn // max(len(rows), 1) if drawn else SAMPLE_ROWS
            drawn = min(len(span), MOST_IDS, wanted)
            ids = random.sample(span, drawn)  # noqa: S311 - not a secret
            cursor.execute(
                "SELECT name, description FROM tasks_task "
                "WHERE id = ANY(%s) AND deleted_at IS NULL",
                [ids],
            )
            rows = cursor.fetchall()
            if len(rows) * 2 >= SAMPLE_ROWS or drawn == len(span):
                break
    if not rows:
        return None
    counts = {column: _count([row[i] for row in rows]) for i, column in enumerate(COLUMNS)}
    # A trigram's share of the ids drawn times the ids there are: its live tasks' number.
    return Sample(drawn, float(len(span)), counts)


def search_q(text: str) -> Q:
    """Tasks whose name or description holds ``text`` (case-insensitive), read through the
    trigram indexes by the text's uncommon trigrams only (see the module docstring)."""
    known = sample()
    if known is None:
        return Q(name__icontains=text) | Q(description__icontains=text)
    wanted = Upper(Value(text))  # both sides upper-cased by PostgreSQL, as icontains does
    found, words = Q(), trigrams(text)
    for column in COLUMNS:
        counts, common = known.counts[column], known.common(column)
        rare = sorted((t for t in words if t not in common), key=lambda t: counts[t])
        test = Q(GreaterThan(StrIndex(Upper(column), wanted), 0))
        for trigram in rare[:MOST_TRIGRAMS]:
            test &= Q(**{f"{column}__icontains": trigram})
        found |= test
    return found
