"""mpupdate.versions: dotted version strings, packed ints and MPVERSION_INFO."""

from __future__ import annotations

import pickle
from datetime import datetime, timezone

import pytest

from mpupdate._native import ffi
from mpupdate.versions import (
    COMPONENTS,
    ComponentVersion,
    VersionInfo,
    version_from_string,
    version_to_string,
)

UTC = timezone.utc
FT_2026 = 134_116_992_000_000_000  # 2026-01-01T00:00:00Z
T_2026 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (0x0001_0193_0064_0000, "1.403.100.0"),
        (0x0004_0012_5E1E_0006, "4.18.24094.6"),
        (0x0001_0001_5E1A_000B, "1.1.24090.11"),
        (0, "0.0.0.0"),
        (0xFFFF_FFFF_FFFF_FFFF, "65535.65535.65535.65535"),
        (0x0001_0002_0003_0004, "1.2.3.4"),
    ],
)
def test_version_string_and_packed_int_round_trip(raw: int, text: str) -> None:
    assert version_to_string(raw) == text
    assert version_from_string(text) == raw


def test_version_to_string_keeps_only_64_bits() -> None:
    assert version_to_string(0x1_0001_0002_0003_0004) == "1.2.3.4"
    assert version_to_string(-1) == "65535.65535.65535.65535"


def test_version_from_string_strips_whitespace_and_leading_zeros() -> None:
    assert version_from_string("  1.403.100.0\n") == 0x0001_0193_0064_0000
    assert version_from_string("01.0403.00100.0") == 0x0001_0193_0064_0000


@pytest.mark.parametrize(
    "text",
    [
        *("1.2.3", "1.2.3.4.5", "", "1..3.4", "1.2.3.x", "1.2.3.-4", "1.2.3.+4", "1. 2.3.4"),
        *("v1.2.3.4", "1.2\n.3.4", "1.2.3.4_0"),
        *("1.2.3.\u0663", "1.2.3.\uff14"),  # digits, but not ASCII ones
    ],
)
def test_version_from_string_rejects_malformed_text(text: str) -> None:
    with pytest.raises(ValueError) as info:
        version_from_string(text)
    assert str(info.value) == (
        f"version {text!r} must be four dot-separated numbers, like 1.403.100.0"
    )


@pytest.mark.parametrize("text", ["65536.0.0.0", "1.2.3.65536", "1.2.3.99999999999999999999"])
def test_version_from_string_rejects_parts_over_65535(text: str) -> None:
    with pytest.raises(ValueError) as info:
        version_from_string(text)
    assert str(info.value) == f"version {text!r}: each part must be at most 65535"


def test_version_from_string_accepts_65535_parts() -> None:
    assert version_from_string("65535.65535.65535.65535") == 0xFFFF_FFFF_FFFF_FFFF


def test_version_from_string_rejects_superscript_digits_with_its_own_message() -> None:
    with pytest.raises(ValueError) as info:
        version_from_string("1.2.3.\u00b2")
    assert str(info.value) == (
        "version '1.2.3.\u00b2' must be four dot-separated numbers, like 1.403.100.0"
    )


# -- ComponentVersion / VersionInfo ------------------------------------------------------------


def test_component_version_str_is_the_dotted_version() -> None:
    component = ComponentVersion(0x0001_0193_0064_0000, T_2026)
    assert component.version == "1.403.100.0"
    assert str(component) == "1.403.100.0"
    assert ComponentVersion(5).updated_at is None


def test_components_are_mpversion_info_fields_in_declaration_order() -> None:
    assert COMPONENTS == (
        ("product", "Product"),
        ("service", "Service"),
        ("file_system_filter", "FileSystemFilter"),
        ("engine", "Engine"),
        ("as_signature", "ASSignature"),
        ("av_signature", "AVSignature"),
        ("nis_engine", "NISEngine"),
        ("nis_signature", "NISSignature"),
    )
    # VersionInfo's fields, in order: its __init__'s (__match_args__) and declared attributes
    assert VersionInfo.__match_args__ == tuple(a for a, _ in COMPONENTS)
    assert list(VersionInfo.__annotations__) == [a for a, _ in COMPONENTS]
    assert ffi.sizeof("MPVERSION_INFO") == 192


def _info() -> VersionInfo:
    return VersionInfo(
        product=ComponentVersion(version_from_string("4.18.24090.11"), T_2026),
        service=ComponentVersion(version_from_string("4.18.24090.11"), None),
        file_system_filter=ComponentVersion(version_from_string("4.18.24090.11")),
        engine=ComponentVersion(
            version_from_string("1.1.24090.11"), datetime(2026, 2, 3, 4, 5, 6, 789, tzinfo=UTC)
        ),
        as_signature=ComponentVersion(version_from_string("1.419.135.0"), T_2026),
        av_signature=ComponentVersion(version_from_string("1.419.135.0"), T_2026),
        nis_engine=ComponentVersion(0),
        nis_signature=ComponentVersion(
            0xFFFF_FFFF_FFFF_FFFF, datetime(1601, 1, 1, 0, 0, 1, tzinfo=UTC)
        ),
    )


def test_from_struct_copies_each_component() -> None:
    struct = ffi.new("MPVERSION_INFO *")
    struct.Engine.Version = 0x0001_0001_5E1A_000B
    struct.Engine.UpdateTime = FT_2026
    struct.AVSignature.Version = 0x0001_01A3_0087_0000
    struct.AVSignature.UpdateTime = FT_2026 + 10
    struct.NISSignature.Version = 0xFFFF_FFFF_FFFF_FFFF
    struct.Reserved[0].Version = 0x1234  # ignored
    info = VersionInfo.from_struct(struct)
    assert info.engine == ComponentVersion(0x0001_0001_5E1A_000B, T_2026)
    assert info.av_signature.version == "1.419.135.0"
    assert info.av_signature.updated_at == datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    assert info.nis_signature == ComponentVersion(0xFFFF_FFFF_FFFF_FFFF, None)
    assert info.product == ComponentVersion(0, None)


def test_from_struct_zero_update_time_is_none() -> None:
    info = VersionInfo.from_struct(ffi.new("MPVERSION_INFO *"))
    for attr, _ in COMPONENTS:
        assert getattr(info, attr) == ComponentVersion(0, None)


def test_from_struct_garbage_update_time_clamps_instead_of_raising() -> None:
    struct = ffi.new("MPVERSION_INFO *")
    struct.Product.UpdateTime = 0xFFFF_FFFF_FFFF_FFFF
    assert VersionInfo.from_struct(struct).product.updated_at == datetime.max.replace(tzinfo=UTC)


def test_to_struct_writes_versions_and_filetimes() -> None:
    struct = ffi.new("MPVERSION_INFO *")
    _info().to_struct(struct)
    assert struct.Product.Version == 0x0004_0012_5E1A_000B
    assert struct.Product.UpdateTime == FT_2026
    assert struct.Service.UpdateTime == 0
    assert struct.Engine.UpdateTime == FT_2026 + (((33 * 24 + 4) * 60 + 5) * 60 + 6) * 10**7 + 7890
    assert struct.NISSignature.Version == 0xFFFF_FFFF_FFFF_FFFF
    assert struct.NISSignature.UpdateTime == 10**7


def test_to_struct_zeroes_the_reserved_part() -> None:
    struct = ffi.new("MPVERSION_INFO *")
    for reserved in struct.Reserved:
        reserved.Version = 0xDEADBEEF
        reserved.UpdateTime = 0xFEEDFACE
    _info().to_struct(struct)
    assert [(r.Version, r.UpdateTime) for r in struct.Reserved] == [(0, 0)] * 4
    assert ffi.buffer(struct)[128:] == bytes(64)


def test_version_info_round_trips_through_the_struct() -> None:
    info = _info()
    struct = ffi.new("MPVERSION_INFO *")
    info.to_struct(struct)
    assert VersionInfo.from_struct(struct) == info


def test_versions_are_immutable_hashable_values() -> None:
    info = _info()
    with pytest.raises(AttributeError, match="cannot assign to field 'engine'"):
        info.engine = ComponentVersion(1)
    with pytest.raises(AttributeError, match="cannot assign to field 'raw'"):
        info.engine.raw = 1
    assert info == _info() and hash(info) == hash(_info())
    assert info != info.replace(engine=ComponentVersion(1))
    assert info.replace(engine=ComponentVersion(1)).engine == ComponentVersion(1)
    assert pickle.loads(pickle.dumps(info)) == info
    assert repr(ComponentVersion(5)) == "ComponentVersion(raw=5, updated_at=None)"
    assert repr(info).startswith("VersionInfo(product=ComponentVersion(raw=")


def test_as_dict_gives_dotted_versions_by_attribute() -> None:
    assert _info().as_dict() == {
        "product": "4.18.24090.11",
        "service": "4.18.24090.11",
        "file_system_filter": "4.18.24090.11",
        "engine": "1.1.24090.11",
        "as_signature": "1.419.135.0",
        "av_signature": "1.419.135.0",
        "nis_engine": "0.0.0.0",
        "nis_signature": "65535.65535.65535.65535",
    }
