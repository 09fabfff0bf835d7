"""mpupdate.events (MPCALLBACK_DATA * -> Event) and mpupdate.filetime."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Optional

import pytest

from mpupdate._native import ffi
from mpupdate.constants import Notify, SigUpdateType, Stage
from mpupdate.events import MAX_PATH_UNITS, Event, decode, notify_name, read_utf16
from mpupdate.filetime import EPOCH, datetime_to_filetime, filetime_to_datetime

UTC = timezone.utc
#: 2026-01-01T00:00:00Z as a FILETIME: 116444736000000000 (the Unix epoch) + 1767225600 s * 10**7.
FT_2026 = 134_116_992_000_000_000
T_2026 = datetime(2026, 1, 1, tzinfo=UTC)


def _units(text: str) -> list[int]:
    raw = text.encode("utf-16-le", "surrogatepass")
    return [int.from_bytes(raw[i : i + 2], "little") for i in range(0, len(raw), 2)]


class Native:
    """An MPCALLBACK_DATA (and its MPSIGUPDATE_DATA and Path) kept alive for one test."""

    def __init__(
        self,
        notify: int,
        hresult: int = 0,
        filetime: int = FT_2026,
        callback_type: int = 6,
        data: Optional[dict[str, Any]] = None,
        path_units: Optional[list[int]] = None,
    ) -> None:
        self.data = ffi.new("MPCALLBACK_DATA *")
        self.data.Notify = notify
        self.data.hResult = hresult
        self.data.TimeStamp = filetime
        self.data.Type = callback_type
        self.sig: Any = None  # an MPSIGUPDATE_DATA * (cdata), or None
        self.path: Any = None  # a uint16_t[] (cdata), or None
        if data is not None:
            self.sig = ffi.new("MPSIGUPDATE_DATA *")
            self.sig.dwPercentComplete = data.get("percent", 0)
            self.sig.dwTotalUpdates = data.get("total", 0)
            self.sig.dwCurrentUpdateIndex = data.get("index", 0)
            self.sig.eType = data.get("type", 0)
            self.sig.Stage = data.get("stage", 0)
            if path_units is not None:
                self.path = ffi.new("uint16_t[]", path_units)
                self.sig.Path = self.path
            self.data.Data.pSigUpdateData = self.sig

    def decode(self) -> Event:
        """Decode while this object (the owner of every buffer) is certainly alive.

        ``decode(Native(...).data)`` would let the owner die before ``decode`` reads the
        MPSIGUPDATE_DATA and Path it points to: a use-after-free that Linux's allocator hides.
        """
        return decode(self.data)


def _decode_path(units: list[int]) -> Optional[str]:
    native = Native(0x8006, data={"percent": 1, "total": 1}, path_units=units)
    return decode(native.data).path


# -- decode ------------------------------------------------------------------------------------


def test_notification_without_data_has_none_for_the_six_data_fields() -> None:
    native = Native(0x8001)
    assert native.data.Data.pSigUpdateData == ffi.NULL
    event = decode(native.data)
    assert event == Event(Notify.SIGUPDATE_START, 0, T_2026, filetime=FT_2026)
    assert event.notify is Notify.SIGUPDATE_START
    assert event.name == "SIGUPDATE_START"
    fields = (
        event.percent,
        event.total_updates,
        event.current_index,
        event.update_type,
        event.stage,
        event.path,
    )
    assert fields == (None, None, None, None, None, None)
    assert event.has_data is False
    assert event.known is True
    assert event.callback_type == 6


def test_full_data_is_copied_exactly() -> None:
    path = r"C:\ProgramData\Microsoft\Windows Defender\Definition Updates\mpam-fe.exe"
    native = Native(
        0x8006,
        hresult=0,
        filetime=FT_2026 + 12_345_670,
        data={"percent": 42, "total": 3, "index": 1, "type": 2, "stage": 2},
        path_units=[*_units(path), 0],
    )
    event = decode(native.data)
    assert event == Event(
        Notify.SIGUPDATE_DOWNLOAD_PROGRESS,
        0,
        T_2026 + timedelta(microseconds=1_234_567),
        percent=42,
        total_updates=3,
        current_index=1,
        update_type=SigUpdateType.HTTP,
        stage=Stage.DOWNLOAD,
        path=path,
        callback_type=6,
        filetime=FT_2026 + 12_345_670,
    )
    assert event.update_type is SigUpdateType.HTTP
    assert event.stage is Stage.DOWNLOAD
    assert event.has_data is True


def test_data_fields_keep_full_dword_range() -> None:
    native = Native(
        0x8003,
        data={
            "percent": 0xFFFFFFFF,
            "total": 0xFFFFFFFF,
            "index": 0xFFFFFFFE,
            "type": 0xFFFFFFFF,
            "stage": 0xFFFFFFFF,
        },
    )
    event = decode(native.data)
    assert (event.percent, event.total_updates, event.current_index) == (
        0xFFFFFFFF,
        0xFFFFFFFF,
        0xFFFFFFFE,
    )
    assert (event.update_type, event.stage) == (0xFFFFFFFF, 0xFFFFFFFF)


def test_decoded_event_does_not_keep_a_pointer_into_the_callback_data() -> None:
    native = Native(0x8006, data={"percent": 10, "total": 1}, path_units=[*_units("a.exe"), 0])
    event = decode(native.data)
    native.sig.dwPercentComplete = 99
    native.path[0] = ord("z")
    native.data.hResult = 5
    assert (event.percent, event.path, event.hresult) == (10, "a.exe", 0)


def test_unknown_notification_keeps_its_number() -> None:
    event = Native(0x800E).decode()
    assert event.notify == 0x800E
    assert type(event.notify) is int
    assert event.name == "UNKNOWN_0x800E"
    assert event.known is False


def test_unknown_notification_with_data_is_still_decoded() -> None:
    native = Native(0x9001, data={"percent": 7, "total": 2, "index": 1, "type": 5, "stage": 3})
    event = decode(native.data)
    assert event.name == "UNKNOWN_0x9001"
    assert (event.percent, event.total_updates, event.current_index) == (7, 2, 1)
    assert (event.update_type, event.stage) == (SigUpdateType.UNMANAGED, Stage.INSTALL)


@pytest.mark.parametrize("callback_type", [0, 5, 7, 15, 0xFFFFFFFF])
def test_other_callback_type_does_not_read_the_union(callback_type: int) -> None:
    native = Native(0x8006, callback_type=callback_type)
    # An address nothing may read: decode would crash the process if it followed it.
    native.data.Data.pSigUpdateData = ffi.cast("MPSIGUPDATE_DATA *", 1)
    event = decode(native.data)
    assert event == Event(
        Notify.SIGUPDATE_DOWNLOAD_PROGRESS,
        0,
        T_2026,
        callback_type=callback_type,
        filetime=FT_2026,
    )
    assert event.has_data is False


@pytest.mark.parametrize(
    ("signed", "unsigned"),
    [(-2147024891, 0x80070005), (-1, 0xFFFFFFFF), (-2147483648, 0x80000000), (1, 1)],
)
def test_failure_hresult_becomes_unsigned(signed: int, unsigned: int) -> None:
    event = Native(0x800D, hresult=signed).decode()
    assert event.hresult == unsigned


def test_unknown_update_type_and_stage_are_kept_as_ints() -> None:
    event = Native(0x8005, data={"type": 8, "stage": 4}).decode()
    assert event.update_type == 8
    assert type(event.update_type) is int
    assert event.stage == 4
    assert type(event.stage) is int


def test_data_without_path_gives_none_path() -> None:
    event = Native(0x8005, data={"total": 1}).decode()
    assert event.path is None
    assert event.has_data is True


# -- UTF-16 paths ------------------------------------------------------------------------------


def test_path_with_non_ascii_characters() -> None:
    text = r"C:\Données\Ärger\日本語\mpam-fe.exe"
    assert _decode_path([*_units(text), 0]) == text


def test_path_with_a_non_bmp_character_decodes_the_surrogate_pair() -> None:
    units = [ord("a"), 0xD83D, 0xDE00, ord("b"), 0]
    assert _decode_path(units) == "a\U0001f600b"


def test_path_with_a_lone_surrogate_keeps_it() -> None:
    assert _decode_path([0xD800, ord("x"), 0]) == "\ud800x"
    assert _decode_path([ord("x"), 0xDC00, 0]) == "x\udc00"


def test_empty_path_is_an_empty_string_not_none() -> None:
    assert _decode_path([0]) == ""


def test_path_stops_at_the_first_terminator() -> None:
    assert _decode_path([ord("a"), ord("b"), 0, ord("c"), 0]) == "ab"


def test_path_without_terminator_is_capped_at_max_path_units() -> None:
    units = [ord("A")] * (MAX_PATH_UNITS + 5)  # no NUL anywhere in the buffer
    path = _decode_path(units)
    assert path == "A" * MAX_PATH_UNITS
    assert MAX_PATH_UNITS == 32767


def test_read_utf16_caps_at_max_units_without_a_terminator() -> None:
    buffer = ffi.new("uint16_t[]", [ord(c) for c in "abcdefgh"])
    assert read_utf16(buffer, max_units=4) == "abcd"
    assert read_utf16(buffer, max_units=8) == "abcdefgh"
    assert read_utf16(buffer, max_units=0) == ""


def test_read_utf16_of_null_is_none() -> None:
    assert read_utf16(ffi.NULL) is None
    assert read_utf16(ffi.cast("uint16_t *", 0)) is None


# -- FILETIME ----------------------------------------------------------------------------------


def test_filetime_zero_is_the_1601_epoch() -> None:
    assert filetime_to_datetime(0) == datetime(1601, 1, 1, tzinfo=UTC)
    assert datetime(1601, 1, 1, tzinfo=UTC) == EPOCH
    assert datetime_to_filetime(EPOCH) == 0


def test_filetime_of_2026_is_exact() -> None:
    moment = filetime_to_datetime(FT_2026)
    assert moment == T_2026
    assert moment.tzinfo is UTC
    assert datetime_to_filetime(T_2026) == FT_2026


def test_filetime_of_unix_epoch_is_exact() -> None:
    assert filetime_to_datetime(116_444_736_000_000_000) == datetime(1970, 1, 1, tzinfo=UTC)


def test_filetime_sub_microsecond_ticks_are_truncated() -> None:
    assert filetime_to_datetime(FT_2026 + 9) == T_2026
    assert filetime_to_datetime(FT_2026 + 10) == T_2026 + timedelta(microseconds=1)
    assert filetime_to_datetime(FT_2026 + 19) == T_2026 + timedelta(microseconds=1)


def test_filetime_with_fractional_2026_value() -> None:
    # 2026-03-14T15:09:26.535897Z
    moment = datetime(2026, 3, 14, 15, 9, 26, 535897, tzinfo=UTC)
    seconds = (moment - T_2026) // timedelta(seconds=1)
    expected = FT_2026 + seconds * 10_000_000 + 5_358_970
    assert datetime_to_filetime(moment) == expected
    assert filetime_to_datetime(expected) == moment


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1601, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 6, 30, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999998, tzinfo=UTC),
    ],
)
def test_datetime_filetime_round_trip(moment: datetime) -> None:
    assert filetime_to_datetime(datetime_to_filetime(moment)) == moment


def test_filetime_round_trip_drops_only_sub_microsecond_ticks() -> None:
    for value in (0, 1, 10, FT_2026 + 123, 2_650_467_743_999_999_989):
        assert datetime_to_filetime(filetime_to_datetime(value)) == value - value % 10


def test_naive_datetime_is_taken_as_utc() -> None:
    assert datetime_to_filetime(datetime(2026, 1, 1)) == FT_2026


def test_aware_datetime_in_another_zone_is_converted() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert datetime_to_filetime(datetime(2026, 1, 1, 2, 0, tzinfo=plus_two)) == FT_2026


def test_maximum_filetime_clamps_to_datetime_max_without_raising() -> None:
    expected = datetime.max.replace(tzinfo=UTC)
    assert filetime_to_datetime(0xFFFFFFFFFFFFFFFF) == expected
    assert filetime_to_datetime(datetime_to_filetime(expected)) == expected
    assert filetime_to_datetime(datetime_to_filetime(expected) - 10) == expected - timedelta(
        microseconds=1
    )


def test_garbage_timestamp_in_callback_data_decodes_to_datetime_max() -> None:
    event = Native(0x8001, filetime=0xFFFFFFFFFFFFFFFF).decode()
    assert event.timestamp == datetime.max.replace(tzinfo=UTC)
    assert event.filetime == 0xFFFFFFFFFFFFFFFF


def test_negative_filetime_clamps_to_the_epoch() -> None:
    assert filetime_to_datetime(-10) == EPOCH


def test_decoded_timestamp_is_aware_utc_and_keeps_the_raw_filetime() -> None:
    event = Native(0x8002, filetime=FT_2026 + 3_600 * 10_000_000).decode()
    assert event.timestamp == datetime(2026, 1, 1, 1, tzinfo=UTC)
    assert event.timestamp.tzinfo is UTC
    assert event.filetime == FT_2026 + 36_000_000_000


# -- Event -------------------------------------------------------------------------------------


def _event(**changes: Any) -> Event:
    base = Event(
        Notify.SIGUPDATE_DOWNLOAD_PROGRESS,
        0,
        T_2026,
        percent=50,
        total_updates=2,
        current_index=1,
        update_type=SigUpdateType.HTTP,
        stage=Stage.DOWNLOAD,
        path="p",
        callback_type=6,
        filetime=FT_2026,
    )
    return base.replace(**changes)


def test_equal_events_compare_and_hash_equal() -> None:
    assert _event() == _event()
    assert hash(_event()) == hash(_event())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("notify", Notify.SIGUPDATE_INSTALL_PROGRESS),
        ("hresult", 1),
        ("timestamp", T_2026 + timedelta(microseconds=1)),
        ("percent", 51),
        ("total_updates", 3),
        ("current_index", 0),
        ("update_type", SigUpdateType.UNC),
        ("stage", Stage.INSTALL),
        ("path", "q"),
        ("callback_type", 7),
        ("filetime", FT_2026 + 1),
    ],
)
def test_event_equality_compares_every_field_but_name(field: str, value: object) -> None:
    assert _event(**{field: value}) != _event()


def test_event_name_is_derived_from_notify() -> None:
    assert _event().name == "SIGUPDATE_DOWNLOAD_PROGRESS"
    assert _event(notify=0x800E).name == "UNKNOWN_0x800E"


def test_replace_names_unknown_fields() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'percentage'"):
        _event().replace(percentage=1)


def test_event_is_frozen() -> None:
    event = _event()
    with pytest.raises(AttributeError, match="cannot assign to field 'percent'"):
        event.percent = 1
    with pytest.raises(AttributeError, match="cannot assign to field 'name'"):
        event.name = "X"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="cannot delete field 'path'"):
        del event.path
    assert event == _event()


def test_event_name_cannot_be_passed_in() -> None:
    with pytest.raises(TypeError):
        Event(Notify.SIGUPDATE_START, 0, T_2026, name="X")  # type: ignore[call-arg]


def test_notify_name_for_known_and_unknown_numbers() -> None:
    assert notify_name(Notify.SIGUPDATE_COMPLETE) == "SIGUPDATE_COMPLETE"
    assert notify_name(0x800E) == "UNKNOWN_0x800E"
    assert notify_name(0x12) == "UNKNOWN_0x0012"
    assert notify_name(0x123456) == "UNKNOWN_0x123456"


def test_str_of_event_without_data() -> None:
    event = Event(Notify.SIGUPDATE_COMPLETE, 0x80070005, T_2026)
    assert str(event) == "SIGUPDATE_COMPLETE hr=0x80070005"


def test_str_of_event_with_data_and_path() -> None:
    assert str(_event(path="C:\\x.exe")) == (
        "SIGUPDATE_DOWNLOAD_PROGRESS hr=0x00000000 50% package 2/2 type=HTTP stage=DOWNLOAD "
        'path="C:\\x.exe"'
    )


def test_str_of_event_with_data_unknown_values_and_no_path() -> None:
    event = _event(notify=0x800E, update_type=9, stage=4, path=None)
    assert str(event) == "UNKNOWN_0x800E hr=0x00000000 50% package 2/2 type=9 stage=4"
