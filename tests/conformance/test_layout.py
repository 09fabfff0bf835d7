"""The compiled declarations have the layouts of MPCLIENT.md section 2, for this host.

On 64-bit hosts the sizes and offsets are the x64 column (Linux x86_64 and aarch64 lay these
structs out as Windows x64 does); on 32-bit hosts the x86 column. The Windows layouts themselves
are pinned at compile time by windows_layout.c, which CI cross-compiles with mingw-w64.
"""

from __future__ import annotations

import re
import struct
from importlib import resources

import pytest

from mpupdate._native import CALLBACK, RECORD_FORMAT, ffi

POINTER = ffi.sizeof("void *")
X64 = POINTER == 8

SIZES = {
    "MPCALLBACK_INFO": 16 if X64 else 8,
    "MPCALLBACK_DATA": 32 if X64 else 24,
    "MPSIGUPDATE_DATA": 32 if X64 else 24,
    "MPCOMPONENT_VERSION": 16,
    "MPVERSION_INFO": 192,
    "MPHANDLE": POINTER,
}

OFFSETS = [
    ("MPCALLBACK_INFO", "pfnCallbackFunction", 0),
    ("MPCALLBACK_INFO", "CallbackContext", 8 if X64 else 4),
    ("MPCALLBACK_DATA", "Notify", 0),
    ("MPCALLBACK_DATA", "hResult", 4),
    ("MPCALLBACK_DATA", "TimeStamp", 8),
    ("MPCALLBACK_DATA", "Type", 16),
    ("MPCALLBACK_DATA", "Data", 24 if X64 else 20),
    ("MPSIGUPDATE_DATA", "dwPercentComplete", 0),
    ("MPSIGUPDATE_DATA", "dwTotalUpdates", 4),
    ("MPSIGUPDATE_DATA", "dwCurrentUpdateIndex", 8),
    ("MPSIGUPDATE_DATA", "eType", 12),
    ("MPSIGUPDATE_DATA", "Stage", 16),
    ("MPSIGUPDATE_DATA", "Path", 24 if X64 else 20),
    ("MPCOMPONENT_VERSION", "Version", 0),
    ("MPCOMPONENT_VERSION", "UpdateTime", 8),
    *(
        ("MPVERSION_INFO", name, 16 * index)
        for index, name in enumerate(
            [
                "Product",
                "Service",
                "FileSystemFilter",
                "Engine",
                "ASSignature",
                "AVSignature",
                "NISEngine",
                "NISSignature",
                "Reserved",
            ]
        )
    ),
]


@pytest.mark.parametrize(("struct", "size"), sorted(SIZES.items()))
def test_struct_sizes_match_the_dll(struct: str, size: int) -> None:
    assert ffi.sizeof(struct) == size


@pytest.mark.parametrize(("struct", "field", "offset"), OFFSETS)
def test_field_offsets_match_the_dll(struct: str, field: str, offset: int) -> None:
    assert ffi.offsetof(struct, field) == offset


def _field_types(struct: str) -> list[tuple[str, str]]:
    """(name, C type) of each field of ``struct``, in order."""
    fields = ffi.typeof(struct).fields
    assert fields is not None  # None only for a type that is not a struct or union
    return [(name, field.type.cname) for name, field in fields]


def test_field_types_have_the_dll_widths_and_signedness() -> None:
    fields = {
        struct: _field_types(struct)
        for struct in ("MPCALLBACK_DATA", "MPSIGUPDATE_DATA", "MPCALLBACK_INFO")
    }
    assert fields["MPCALLBACK_DATA"][:4] == [
        ("Notify", "uint32_t"),
        ("hResult", "int32_t"),  # HRESULT is signed
        ("TimeStamp", "uint64_t"),
        ("Type", "uint32_t"),
    ]
    assert fields["MPSIGUPDATE_DATA"][-1] == ("Path", "uint16_t *")  # UTF-16, never wchar_t
    assert fields["MPCALLBACK_INFO"][1] == ("CallbackContext", "uintptr_t")  # ULONG_PTR
    data = ffi.new("MPCALLBACK_DATA *")
    with pytest.raises(OverflowError):
        data.hResult = 0x80070005


def test_the_compiled_callback_has_exactly_the_callback_type() -> None:
    # Same ctype object: same arguments, result and calling convention (stdcall on x86 Windows).
    callback = ffi.typeof(CALLBACK)
    assert callback is ffi.typeof("MPCALLBACK_FUNCTION")
    assert [arg.cname for arg in callback.args] == ["uintptr_t", "struct _MPCALLBACK_DATA *"]
    assert callback.result.cname == "int32_t"


def test_the_compiled_callback_is_defined_stdcall() -> None:
    # MpClient calls the callback as WINAPI (stdcall on x86): the C definition says so, and the
    # mingw check (.ci/mingw-check) assigns it to MPCALLBACK_FUNCTION, which must compile on x86.
    source = resources.files("mpupdate._csrc").joinpath("capture.c").read_text(encoding="utf-8")
    assert re.search(
        r"^static int32_t WINAPI mpupdate_callback\(uintptr_t context, MPCALLBACK_DATA \*pData\)$",
        source,
        re.M,
    )


def test_the_capture_record_is_what_the_consumer_unpacks() -> None:
    # mpupdate._native reads the C queue's records with struct: same size, same field offsets.
    assert ffi.sizeof("mpupdate_record") == struct.calcsize(RECORD_FORMAT) == 64
    record = ffi.typeof("mpupdate_record")
    assert record.fields is not None
    offsets = [ffi.offsetof("mpupdate_record", name) for name, _ in record.fields]
    sizes = [ffi.sizeof(field.type) for _, field in record.fields]
    codes = RECORD_FORMAT.lstrip("=")
    assert [struct.calcsize("=" + code) for code in codes] == sizes
    assert offsets == [struct.calcsize("=" + codes[:i]) for i in range(len(codes))]
    assert [name for name, _ in record.fields][-1] == "thread"
