"""FILETIME (100 ns ticks since 1601-01-01 UTC) <-> aware datetime; ISO 8601 text -> datetime."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)
_MAX = datetime.max.replace(tzinfo=timezone.utc)
_MAX_FILETIME = (_MAX - EPOCH) // timedelta(microseconds=1) * 10


def filetime_to_datetime(filetime: int) -> datetime:
    """Never raises: values past year 9999 (only garbage reaches them) clamp to ``datetime.max``."""
    if filetime >= _MAX_FILETIME:
        return _MAX
    return EPOCH + timedelta(microseconds=max(0, int(filetime)) // 10)


def datetime_to_filetime(moment: datetime) -> int:
    """An aware datetime as a FILETIME; naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - EPOCH) // timedelta(microseconds=1) * 10


_ISO_MOMENT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"(?:(Z)|([+-])(\d{2})(?::?(\d{2}))?)?",
    re.ASCII,  # 0-9 only: \d would take any script's digits, and int() would read them
)


def moment_text(moment: datetime) -> str:
    """``moment`` in ISO 8601 as :func:`parse_moment` reads it back, UTC written ``Z``."""
    return moment.isoformat().replace("+00:00", "Z")


def parse_moment(text: str) -> datetime:
    """An ISO 8601 time in the extended form, the same on every Python we support (3.9's
    ``datetime.fromisoformat`` takes only its own output: not ``Z``, nor ``08.4`` seconds).

    ``YYYY-MM-DD``, ``T`` or a space, ``HH:MM``, optional ``:SS`` with an optional fraction (``.``
    or ``,``, any number of digits, cut to microseconds), then ``Z``, ``+HH:MM``, ``+HHMM`` or
    ``+HH`` (or ``-``), or nothing: a naive datetime, for the caller to refuse or interpret.
    ValueError otherwise, or for a field out of range (month 13, offset 24:00).
    """
    match = _ISO_MOMENT.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an ISO 8601 time like 2026-01-01T00:00:00Z")
    year, month, day, hour, minute = (int(match.group(i)) for i in range(1, 6))
    second = int(match.group(6) or 0)
    microsecond = int(((match.group(7) or "") + "000000")[:6])
    zone: Optional[timezone] = None
    if match.group(8):
        zone = timezone.utc
    elif match.group(9):
        hours, minutes = int(match.group(10)), int(match.group(11) or 0)
        if hours > 23 or minutes > 59:
            raise ValueError(f"{text!r}: the UTC offset is out of range (at most 23:59)")
        offset = timedelta(hours=hours, minutes=minutes)
        zone = timezone(-offset if match.group(9) == "-" else offset)
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=zone)
