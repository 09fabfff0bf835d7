"""FILETIME (100 ns ticks since 1601-01-01 UTC) <-> aware datetime."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

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
