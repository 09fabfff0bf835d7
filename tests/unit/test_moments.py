"""``filetime.parse_moment``: one ISO 8601 grammar on every Python (3.9's ``fromisoformat`` reads
only its own output, so a scenario file that loaded on 3.11 failed on 3.9)."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpupdate.filetime import parse_moment

UTC = timezone.utc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01T00:00:08.4Z", datetime(2026, 1, 1, 0, 0, 8, 400000, tzinfo=UTC)),
        ("2026-01-01T00:00:08,25Z", datetime(2026, 1, 1, 0, 0, 8, 250000, tzinfo=UTC)),
        ("2026-01-01T00:00:00.123456789Z", datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)),
        ("2026-01-01 12:30Z", datetime(2026, 1, 1, 12, 30, tzinfo=UTC)),
        ("2026-01-01T01:00:00+01:00", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T01:00:00+0100", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T01:00:00+01", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2025-12-31T23:00:00-01:00", datetime(2026, 1, 1, tzinfo=UTC)),
        ("9999-12-31T23:59:59.999999Z", datetime.max.replace(tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", datetime.min.replace(tzinfo=UTC)),
    ],
)
def test_accepted(text: str, expected: datetime) -> None:
    moment = parse_moment(text)
    assert moment == expected and moment.utcoffset() is not None


def test_no_offset_is_naive() -> None:
    assert parse_moment("2026-01-01T00:00:00").tzinfo is None


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-01",
        "2026-01-01T00",
        "20260101T000000Z",
        "2026-01-01T00:00:00.Z",
        "2026-01-01T00:00:00z",
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T00:60:00Z",
        "2026-01-01T00:00:00+24:00",
        "2026-01-01T00:00:00+01:60",
        " 2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00Z ",
        "2026-01-01T00:00:00ZZ",
        "\uff12\uff10\uff12\uff16-01-01T00:00:00Z",  # fullwidth digits: int() would read them
        "",
    ],
)
def test_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_moment(text)


@given(
    st.datetimes(
        timezones=st.one_of(
            st.just(UTC),
            st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m))),
        )
    )
)
def test_reads_what_isoformat_writes(moment: datetime) -> None:
    for text in (moment.isoformat(), moment.isoformat().replace("+00:00", "Z")):
        parsed = parse_moment(text)
        assert parsed == moment and parsed.utcoffset() == moment.utcoffset()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="3.11's fromisoformat is the reference")
@given(
    st.from_regex(
        r"\d{4}-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d(:[0-5]\d(\.\d{1,9})?)?(Z|[+-][01]\d:[0-5]\d)?",
        fullmatch=True,
    )
)
def test_agrees_with_fromisoformat_of_311_on_the_extended_form(text: str) -> None:
    try:
        expected = datetime.fromisoformat(text)
    except ValueError:
        with pytest.raises(ValueError):
            parse_moment(text)
        return
    assert parse_moment(text) == expected
