"""The dates, instants and months the API accepts: bounded, so that no
arithmetic on them overflows and PostgreSQL stores what Python sent.

Unbounded, ``9999-12-31T23:00`` plus a 45-minute session overflowed Python's
datetime (a 500), and ``0001-01-01`` went into a ``date`` column as
``-infinity`` (asyncpg's encoding of ``date.min``). A programme runs in the
present: every schema takes its dates through these types, so an odd value is
a 422 naming the field (issue 14).
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime
from functools import cache
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints

EARLIEST_DAY = date(1970, 1, 1)
LATEST_DAY = date(2199, 12, 31)
EARLIEST_INSTANT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(2199, 12, 31, 23, 59, 59, tzinfo=UTC)
RANGE = f"between {EARLIEST_DAY.isoformat()} and {LATEST_DAY.isoformat()}"

#: The bounds in the OpenAPI documents, where a format has no minimum: the
#: year as a pattern. An instant's offset may move it across a new year, so
#: its pattern leaves out the first and last year (narrower than accepted).
DAY_YEARS = r"^(19[7-9][0-9]|2[01][0-9][0-9])-"
INSTANT_YEARS = r"^(197[1-9]|19[89][0-9]|20[0-9][0-9]|21[0-8][0-9]|219[0-8])-"

#: A calendar day (``2026-03-02``) within the bounds.
Day = Annotated[
    date,
    Field(ge=EARLIEST_DAY, le=LATEST_DAY, description=f"A day {RANGE}.", json_schema_extra={"pattern": DAY_YEARS}),
]

#: An instant with its offset (``2026-03-02T09:00:00+01:00``) within the bounds.
Instant = Annotated[
    AwareDatetime,
    Field(
        ge=EARLIEST_INSTANT,
        le=LATEST_INSTANT,
        description=f"An instant with its offset, {RANGE}.",
        json_schema_extra={"pattern": INSTANT_YEARS},
    ),
]


@cache
def time_zones() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


def _known_zone(name: str) -> str:
    if name not in time_zones():
        raise ValueError("Not an IANA time zone (e.g. Europe/Paris).")
    return name


#: An IANA time zone (``Europe/Paris``); the document lists them (``enum``).
TimeZone = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    AfterValidator(_known_zone),
    Field(json_schema_extra={"enum": list(time_zones())}),
]

#: ``YYYY-MM`` with a year within the bounds (1970-2199) and a month 01-12.
MONTH_PATTERN = r"^(19[7-9]\d|2[01]\d\d)-(0[1-9]|1[0-2])$"


def first_day(month: str | None) -> date | None:
    """The first day of a ``YYYY-MM`` that matched ``MONTH_PATTERN``."""
    return None if month is None else date(int(month[:4]), int(month[5:7]), 1)
