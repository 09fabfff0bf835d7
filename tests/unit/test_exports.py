"""The seven exports are listed once, in ``mpupdate.backends.EXPORTS``; every other list of them is
generated from one list or checked against it here. Adding an export fails these tests until
each place has it, and each failure names the place."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import mpupdate.fakes
from mpupdate._native import ffi, lib
from mpupdate.backends import EXPORTS, Backend, DllBackend
from mpupdate.fakes import FakeMpClient

TESTS = Path(__file__).resolve().parents[1]


def text(package: str, name: str) -> str:
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


def test_the_one_list_is_the_seven_exports_of_mpclient_md() -> None:
    assert EXPORTS == (
        "MpManagerOpen",
        "MpUpdateStart",
        "MpUpdateControl",
        "MpHandleClose",
        "MpErrorMessageFormat",
        "MpFreeMemory",
        "MpManagerVersionQuery",
    )


def test_the_cffi_declarations_declare_them_in_order() -> None:
    declared = re.findall(r"^\w+ (Mp\w+)\(", text("mpupdate._cdef", "mpclient_exports.h"), re.M)
    assert tuple(declared) == EXPORTS


def test_the_loader_s_x_macro_lists_them_in_order() -> None:
    names = []
    index = 0
    while lib.mpupdate_export_name(index) != ffi.NULL:
        names.append(ffi.string(lib.mpupdate_export_name(index)).decode("ascii"))
        index += 1
    assert tuple(names) == EXPORTS
    source = text("mpupdate._csrc", "loader.c")
    listed = re.findall(r"X\((?:HR|VOID), (Mp\w+),", source)
    assert tuple(listed) == EXPORTS


def test_the_compiled_module_exposes_each() -> None:
    assert [name for name in EXPORTS if not callable(getattr(lib, name, None))] == []


def test_the_backend_protocol_and_dll_backend_declare_each_in_order() -> None:
    protocol = [name for name in vars(Backend) if name.startswith("Mp")]
    assert tuple(protocol) == EXPORTS
    annotated = [name for name in DllBackend.__annotations__ if name.startswith("Mp")]
    assert tuple(annotated) == EXPORTS


def test_the_fake_model_implements_each() -> None:
    from mpupdate.fakes.native import _ARGUMENTS, NativeFakeMpClient

    assert [name for name in EXPORTS if not callable(getattr(FakeMpClient, name, None))] == []
    assert tuple(_ARGUMENTS) == EXPORTS  # how the native library's calls reach the model
    overridden = [name for name in EXPORTS if name in vars(NativeFakeMpClient)]
    assert tuple(overridden) == EXPORTS  # the binding's side goes through the library


def test_the_native_library_lists_and_exports_each_in_order() -> None:
    source = (Path(mpupdate.fakes.__file__).parent / "native" / "mpfake.c").read_text("utf-8")
    listed = re.findall(r"^\s*X\((Mp\w+)\)", source, re.M)
    assert tuple(listed) == EXPORTS
    defined = re.findall(r"^(?:int32_t|void) WINAPI (Mp\w+)\(", source, re.M)
    assert tuple(defined) == EXPORTS


def test_the_windows_layout_check_pins_each() -> None:
    source = (TESTS / "conformance" / "windows_layout.c").read_text("utf-8")
    for name in EXPORTS:
        assert f"mpupdate_{name}_fn mpupdate_check_" in source, f"no WINAPI pin of {name}"
        assert f"(void *)(uintptr_t){name}," in source, f"{name}'s stub is not used"
