"""mpupdate.constants: every number of MPCLIENT.md section 3, with its evidence mark."""

from __future__ import annotations

from typing import Optional, Union

import pytest

from mpupdate.constants import (
    DEFENDER_REGISTRY_VALUE,
    OPTION_0X200,
    OPTIONS_REFUSED_WITH_0X200,
    PROGRESS_NOTIFICATIONS,
    SOURCE_OPTION_MASK,
    CallbackType,
    Control,
    Evidence,
    Notify,
    SigUpdateType,
    Source,
    Stage,
    UpdateOption,
    _MarkedIntEnum,
    _MarkedIntFlag,
    options_refused,
)

E = Evidence

# MPCLIENT.md section 3, MPNOTIFY: "seen" is BIN, "derived" is BIN_DERIVED.
NOTIFICATIONS = [
    ("CALL_COMPLETE", 0x1002, E.BIN),
    ("INTERNAL_FAILURE", 0x2001, E.BIN),
    ("SIGUPDATE_START", 0x8001, E.BIN),
    ("SIGUPDATE_SEARCH_START", 0x8002, E.BIN_DERIVED),
    ("SIGUPDATE_SEARCH_COMPLETE", 0x8003, E.BIN_DERIVED),
    ("SIGUPDATE_SOFTWARE_UPDATE_AVAILABLE", 0x8004, E.BIN_DERIVED),
    ("SIGUPDATE_DOWNLOAD_START", 0x8005, E.BIN_DERIVED),
    ("SIGUPDATE_DOWNLOAD_PROGRESS", 0x8006, E.BIN),
    ("SIGUPDATE_DOWNLOAD_COMPLETE", 0x8007, E.BIN_DERIVED),
    ("SIGUPDATE_INSTALL_START", 0x8008, E.BIN_DERIVED),
    ("SIGUPDATE_INSTALL_PROGRESS", 0x8009, E.BIN),
    ("SIGUPDATE_INSTALL_COMPLETE", 0x800A, E.BIN_DERIVED),
    ("SIGUPDATE_REBOOT_REQUIRED", 0x800B, E.BIN_DERIVED),
    ("SIGUPDATE_REQUEST_PROCESSED", 0x800C, E.BIN_DERIVED),
    ("SIGUPDATE_COMPLETE", 0x800D, E.BIN),
]

# MPUPDATE_OPTION_*: all BIN (MPCLIENT.md section 3); UNC, MANAGED and UNMANAGED with medium
# confidence, which their notes say.
OPTIONS = [
    ("NONE", 0x0, E.BIN),
    ("ASYNC", 0x1, E.BIN),
    ("PROGRESS", 0x2, E.BIN),
    ("HTTP", 0x8, E.BIN),
    ("UNC", 0x20, E.BIN),
    ("MANAGED", 0x80, E.BIN),
    ("UNMANAGED", 0x100, E.BIN),
]

CALLBACK_TYPES = [("SIGUPDATE", 6, E.DOC)]
CONTROLS = [("ABORT", 0, E.HDR), ("PAUSE", 1, E.HDR), ("RESUME", 2, E.HDR)]
SIGUPDATE_TYPES = [
    ("NONE", 0, E.DOC),
    ("MANAGED", 1, E.DOC),
    ("HTTP", 2, E.DOC),
    ("HTTP_SRV", 3, E.DOC),
    ("UNC", 4, E.DOC),
    ("UNMANAGED", 5, E.DOC),
    ("MANAGED_PLATFORM", 6, E.DOC),
    ("UNMANAGED_PLATFORM", 7, E.DOC),
]
STAGES = [
    ("UNKNOWN", 0, E.DOC),
    ("SEARCH", 1, E.DOC),
    ("DOWNLOAD", 2, E.DOC),
    ("INSTALL", 3, E.DOC),
]

TABLES = [
    (Notify, NOTIFICATIONS),
    (UpdateOption, OPTIONS),
    (CallbackType, CALLBACK_TYPES),
    (Control, CONTROLS),
    (SigUpdateType, SIGUPDATE_TYPES),
    (Stage, STAGES),
]

#: UpdateOption is a flag, not a _MarkedIntEnum: it has no coerce().
COERCIBLE = [(cls, table) for cls, table in TABLES if cls is not UpdateOption]


Table = list[tuple[str, int, Evidence]]


def _members(
    cls: type[Union[_MarkedIntEnum, _MarkedIntFlag]],
) -> list[tuple[Optional[str], int, Evidence]]:  # a Flag's name is Optional (composite members)
    return [(m.name, int(m.value), m.evidence) for m in cls.__members__.values()]


@pytest.mark.parametrize(("cls", "table"), TABLES, ids=[cls.__name__ for cls, _ in TABLES])
def test_enumeration_matches_mpclient_md_exactly(
    cls: type[Union[_MarkedIntEnum, _MarkedIntFlag]], table: Table
) -> None:
    # Same names, same values, same evidence, same (documented) order, nothing more.
    assert _members(cls) == table


@pytest.mark.parametrize(("name", "value", "evidence"), NOTIFICATIONS)
def test_notify_member_value_and_evidence(name: str, value: int, evidence: Evidence) -> None:
    member = Notify[name]
    assert member == value
    assert member.value == value
    assert member.evidence is evidence
    # At run time Notify(value) looks the member up; mypy checks the call against
    # _MarkedIntEnum.__new__(value, evidence, note), which only builds the members.
    assert Notify(value) is member


def test_evidence_marks_have_the_md_spelling() -> None:
    assert [(m.name, m.value) for m in Evidence] == [
        ("DOC", "DOC"),
        ("BIN", "BIN"),
        ("BIN_DERIVED", "BIN-derived"),
        ("HDR", "HDR"),
        ("GUESS", "GUESS"),
    ]


def test_source_option_notes_give_the_binary_evidence_and_its_confidence() -> None:
    assert UpdateOption.HTTP.note == (
        "MMPC, the full package from the Microsoft security portal: MpClient_ForceHttpUpdate "
        "rewrites the options to (opts & ~0x1F0) | 0x8, and the fallback-order name MMPC maps here"
    )
    assert UpdateOption.UNC.note == (
        "medium confidence: file share (fallback-order name FileShares)"
    )
    assert UpdateOption.MANAGED.note == (
        "medium confidence: WSUS (fallback-order name InternalDefinitionUpdateServer)"
    )
    assert UpdateOption.UNMANAGED.note == (
        "medium confidence: Microsoft Update / Windows Update "
        "(fallback-order name MicrosoftUpdateServer)"
    )


def test_confidence_of_bin_options_is_stated_only_where_mpclient_md_grades_it() -> None:
    members = UpdateOption.__members__.values()  # iterating a flag skips NONE
    prefixes = {m.name: m.note.split(":", 1)[0] for m in members}
    graded = {name: prefix for name, prefix in prefixes.items() if prefix.endswith(" confidence")}
    assert graded == {
        "NONE": "high confidence",
        "ASYNC": "high confidence",
        "PROGRESS": "high confidence",
        "UNC": "medium confidence",
        "MANAGED": "medium confidence",
        "UNMANAGED": "medium confidence",
    }


def test_no_update_option_is_a_guess_any_more() -> None:
    assert [m.name for m in UpdateOption.__members__.values() if m.evidence is not E.BIN] == []


def test_the_registry_value_naming_the_defender_folder() -> None:
    assert DEFENDER_REGISTRY_VALUE == "InstallLocation"


def test_members_carry_notes_and_derived_members_may_have_none() -> None:
    assert Notify.SIGUPDATE_COMPLETE.note == ("seen; hResult is the outcome (S_FALSE: none needed)")
    assert Notify.SIGUPDATE_SEARCH_START.note == ""
    assert Control.ABORT.note == "BIN treats 0 as abort"
    assert Stage.INSTALL.note == ""


def test_progress_notifications_are_exactly_the_two_progress_ones() -> None:
    assert frozenset({0x8006, 0x8009}) == PROGRESS_NOTIFICATIONS
    assert all(isinstance(n, Notify) for n in PROGRESS_NOTIFICATIONS)


# -- coerce ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cls", "table"), COERCIBLE, ids=[cls.__name__ for cls, _ in COERCIBLE])
def test_coerce_maps_every_name_and_number_to_its_member(
    cls: type[_MarkedIntEnum], table: Table
) -> None:
    for name, value, _ in table:
        member = cls[name]
        assert cls.coerce(name) is member
        assert cls.coerce(name.lower()) is member
        assert cls.coerce(value) is member
        assert cls.coerce(member) is member


def test_coerce_unknown_notification_number_returns_the_plain_int() -> None:
    value = Notify.coerce(0x800E)
    assert value == 0x800E
    assert type(value) is int


def test_coerce_unknown_numbers_for_every_enumeration_are_plain_ints() -> None:
    for cls, number in ((Stage, 4), (SigUpdateType, 8), (Control, 3), (CallbackType, 0)):
        value = cls.coerce(number)
        assert type(value) is int
        assert value == number


def test_coerce_huge_and_negative_numbers_are_kept_as_ints() -> None:
    assert Notify.coerce(0xFFFFFFFF) == 0xFFFFFFFF
    assert type(Notify.coerce(0xFFFFFFFF)) is int
    assert Notify.coerce(-1) == -1


def test_coerce_accepts_an_int_of_another_enum_by_value() -> None:
    # SigUpdateType.HTTP is 2, which is Stage.DOWNLOAD.
    assert Stage.coerce(SigUpdateType.HTTP) is Stage.DOWNLOAD


def test_coerce_unknown_name_raises_valueerror_listing_the_names() -> None:
    with pytest.raises(ValueError) as info:
        Stage.coerce("downlaod")
    assert str(info.value) == (
        "'downlaod' is not a Stage name; use one of UNKNOWN, SEARCH, DOWNLOAD, INSTALL or a number"
    )


def test_coerce_unknown_notify_name_lists_all_fifteen_names() -> None:
    with pytest.raises(ValueError) as info:
        Notify.coerce("SIGUPDATE_BOGUS")
    names = ", ".join(name for name, _, _ in NOTIFICATIONS)
    assert str(info.value) == (
        f"'SIGUPDATE_BOGUS' is not a Notify name; use one of {names} or a number"
    )


def test_coerce_does_not_accept_a_number_written_as_a_string() -> None:
    with pytest.raises(ValueError, match=r"^'0x8001' is not a Notify name"):
        Notify.coerce("0x8001")


@pytest.mark.parametrize(
    ("value", "kind"), [(True, "bool"), (False, "bool"), (1.0, "float"), (None, "NoneType")]
)
def test_coerce_rejects_bool_float_and_none_with_typeerror(value: object, kind: str) -> None:
    with pytest.raises(TypeError) as info:
        Notify.coerce(value)  # type: ignore[arg-type]  # deliberately neither name nor int
    assert str(info.value) == f"Notify must be a name or an int, not {kind}"


def test_coerce_on_callback_type_names_the_enumeration_in_errors() -> None:
    with pytest.raises(TypeError) as info:
        CallbackType.coerce(6.0)  # type: ignore[arg-type]  # deliberately neither name nor int
    assert str(info.value) == "CallbackType must be a name or an int, not float"


# -- options and sources -----------------------------------------------------------------------


def test_option_check_masks_are_the_dll_s() -> None:
    # [BIN] 4.18.1909.6: the source bits are 0x1F8 (the four named ones plus 0x10 and 0x40);
    # 0x200 may not be combined with any of 0x78.
    assert SOURCE_OPTION_MASK == 0x8 | 0x10 | 0x20 | 0x40 | 0x80 | 0x100 == 0x1F8
    assert OPTION_0X200 == 0x200
    assert OPTIONS_REFUSED_WITH_0X200 == 0x8 | 0x10 | 0x20 | 0x40 == 0x78
    for value in (SOURCE_OPTION_MASK, OPTION_0X200, OPTIONS_REFUSED_WITH_0X200):
        assert type(value) is int
    assert not SOURCE_OPTION_MASK & (UpdateOption.ASYNC | UpdateOption.PROGRESS)
    named = UpdateOption.HTTP | UpdateOption.UNC | UpdateOption.MANAGED | UpdateOption.UNMANAGED
    assert int(named) & SOURCE_OPTION_MASK == int(named)


SOURCE_BITS = [0x8, 0x10, 0x20, 0x40, 0x80, 0x100]


@pytest.mark.parametrize("extra", [0x0, 0x1, 0x2, 0x3, 0x4, 0x400, 0xFFFFF800])
def test_options_refused_exactly_as_the_dll_s_option_check(extra: int) -> None:
    # Bits outside 0x1F8 | 0x200 never matter, whatever else is set.
    for a in SOURCE_BITS:
        assert options_refused(extra | a) is False, hex(extra | a)
        for b in SOURCE_BITS:
            if b != a:
                assert options_refused(extra | a | b) is True, hex(extra | a | b)
        with_0x200 = extra | a | 0x200
        assert options_refused(with_0x200) is bool(a & 0x78), hex(with_0x200)
    assert options_refused(extra) is False
    assert options_refused(extra | 0x200) is False
    assert options_refused(extra | 0x1F8) is True
    assert options_refused(extra | 0x1F8 | 0x200) is True


def test_options_refused_takes_update_option_flags_and_raw_ints() -> None:
    assert options_refused(UpdateOption.HTTP | UpdateOption.UNC) is True
    assert options_refused(UpdateOption.ASYNC | UpdateOption.PROGRESS | UpdateOption.HTTP) is False
    assert options_refused(0x208) is True
    assert options_refused(0x280) is False


def test_update_options_combine_as_raw_integers() -> None:
    assert int(UpdateOption.ASYNC | UpdateOption.PROGRESS | UpdateOption.HTTP) == 0xB


@pytest.mark.parametrize(
    ("source", "value", "option"),
    [
        (Source.DEFAULT, "Default", UpdateOption.NONE),
        (Source.MMPC, "MMPC", UpdateOption.HTTP),
        (Source.FILE_SHARES, "FileShares", UpdateOption.UNC),
        (Source.WSUS, "InternalDefinitionUpdateServer", UpdateOption.MANAGED),
        (Source.MICROSOFT_UPDATE, "MicrosoftUpdateServer", UpdateOption.UNMANAGED),
    ],
)
def test_source_maps_to_its_update_mpsignature_name_and_option_bit(
    source: Source, value: str, option: UpdateOption
) -> None:
    assert source.value == value
    assert source.option is option


def test_sources_are_exactly_the_five_admin_names() -> None:
    assert [s.name for s in Source] == [
        "DEFAULT",
        "MMPC",
        "FILE_SHARES",
        "WSUS",
        "MICROSOFT_UPDATE",
    ]


def test_every_non_default_source_sets_exactly_one_source_bit() -> None:
    for source in Source:
        bits = int(source.option) & SOURCE_OPTION_MASK
        assert bin(bits).count("1") == (0 if source is Source.DEFAULT else 1)
        assert int(source.option) == bits


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("DEFAULT", Source.DEFAULT),
        ("default", Source.DEFAULT),
        ("Default", Source.DEFAULT),
        ("mmpc", Source.MMPC),
        ("file_shares", Source.FILE_SHARES),
        ("file-shares", Source.FILE_SHARES),
        ("FileShares", Source.FILE_SHARES),
        ("fileshares", Source.FILE_SHARES),
        ("wsus", Source.WSUS),
        ("InternalDefinitionUpdateServer", Source.WSUS),
        ("microsoft-update", Source.MICROSOFT_UPDATE),
        ("MicrosoftUpdateServer", Source.MICROSOFT_UPDATE),
    ],
)
def test_source_parse_accepts_member_and_update_mpsignature_names(
    text: str, expected: Source
) -> None:
    assert Source.parse(text) is expected


@pytest.mark.parametrize("text", ["http", "", "windows update", "MMPC "])
def test_source_parse_unknown_text_lists_the_member_names(text: str) -> None:
    with pytest.raises(ValueError) as info:
        Source.parse(text)
    assert str(info.value) == (
        f"unknown update source {text!r}; "
        "use one of DEFAULT, MMPC, FILE_SHARES, WSUS, MICROSOFT_UPDATE"
    )
