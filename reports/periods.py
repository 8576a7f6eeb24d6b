"""The period a report covers: ``from`` and ``to`` dates (inclusive, in the current time
zone) or a preset (the last 7, 30 or 90 days ending today). One parser for the pages and the
API: a bad value is an ``ApplicationError`` naming its field (the API answers 400, a page
shows the message and the default period)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from django.utils import timezone

from core.exceptions import ApplicationError

PRESETS = (7, 30, 90)
DEFAULT_DAYS = 30
MAX_DAYS = 366  # a report is read day by day: a year at most
EARLIEST, LATEST = dt.date(2000, 1, 1), dt.date(2100, 12, 31)


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date

    @property
    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    @property
    def length(self) -> int:
        return (self.end - self.start).days + 1

    def query(self) -> dict[str, str]:
        """The period as GET parameters (links and CSV downloads keep it)."""
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}

    @property
    def preset(self) -> int | None:
        """7, 30 or 90 when the period is that many days ending today."""
        if self.end == timezone.localdate() and self.length in PRESETS:
            return self.length
        return None


def last_days(days: int, *, today: dt.date | None = None) -> Period:
    today = today or timezone.localdate()
    return Period(start=today - dt.timedelta(days=days - 1), end=today)


def _date(data: Mapping[str, str], name: str) -> dt.date | None:
    raw = (data.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = dt.date.fromisoformat(raw)
    except ValueError:
        raise ApplicationError("Not a date like 2026-11-02.", field=name) from None
    if not EARLIEST <= value <= LATEST:
        raise ApplicationError("Not a date between 2000 and 2100.", field=name)
    return value


def parse_period(data: Mapping[str, str], *, today: dt.date | None = None) -> Period:
    """The period of a query: ``days`` (7, 30 or 90) wins over ``from``/``to``; ``to``
    defaults to today and ``from`` to 30 days before ``to``."""
    today = today or timezone.localdate()
    days = (data.get("days") or "").strip()
    if days:
        if days not in {str(n) for n in PRESETS}:
            raise ApplicationError("Choose 7, 30 or 90 days.", field="days")
        return last_days(int(days), today=today)
    end = _date(data, "to") or today
    start = _date(data, "from") or end - dt.timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise ApplicationError("Must not be before “from”.", field="to")
    if (end - start).days + 1 > MAX_DAYS:
        raise ApplicationError(f"A report covers at most {MAX_DAYS} days.", field="from")
    return Period(start=start, end=end)
