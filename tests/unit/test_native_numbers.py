"""The native fake's numbers are the Python ones: one table, even where C needs its own #defines.

``mpupdate/fakes/native/mpfake.c`` cannot import ``mpupdate.constants``, so it spells its numbers as
``#define MPF_...`` lines. This test reads those lines (no compiler needed) and holds every one of
them equal to the Python value it copies, so a number changed on one side only fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import mpupdate.fakes
from mpupdate.constants import (
    E_ABORT,
    E_FAIL,
    E_HANDLE,
    E_INVALIDARG,
    ERROR_INVALID_OPERATION,
    OPTION_0X200,
    OPTIONS_REFUSED_WITH_0X200,
    S_FALSE,
    S_OK,
    SOURCE_OPTION_MASK,
    CallbackType,
    Control,
    Notify,
    UpdateOption,
)
from mpupdate.fakes import dll
from mpupdate.fakes.clock import DEFAULT_START
from mpupdate.filetime import datetime_to_filetime

MPFAKE_C = Path(mpupdate.fakes.__file__).parent / "native" / "mpfake.c"

#: Every numeric #define of mpfake.c that copies a Python number, with that number.
COPIES = {
    "MPF_S_OK": S_OK,
    "MPF_S_FALSE": S_FALSE,
    "MPF_E_ABORT": E_ABORT,
    "MPF_E_FAIL": E_FAIL,
    "MPF_E_HANDLE": E_HANDLE,
    "MPF_E_INVALIDARG": E_INVALIDARG,
    "MPF_ERROR_INVALID_OPERATION": ERROR_INVALID_OPERATION,
    "MPF_OPTION_ASYNC": int(UpdateOption.ASYNC),
    "MPF_OPTION_PROGRESS": int(UpdateOption.PROGRESS),
    "MPF_SOURCE_MASK": SOURCE_OPTION_MASK,
    "MPF_OPTION_0X200": OPTION_0X200,
    "MPF_OPTIONS_REFUSED_WITH_0X200": OPTIONS_REFUSED_WITH_0X200,
    "MPF_CONTROL_ABORT": int(Control.ABORT),
    "MPF_CONTROL_PAUSE": int(Control.PAUSE),
    "MPF_CONTROL_RESUME": int(Control.RESUME),
    "MPF_NOTIFY_START": int(Notify.SIGUPDATE_START),
    "MPF_NOTIFY_DOWNLOAD_PROGRESS": int(Notify.SIGUPDATE_DOWNLOAD_PROGRESS),
    "MPF_NOTIFY_INSTALL_PROGRESS": int(Notify.SIGUPDATE_INSTALL_PROGRESS),
    "MPF_NOTIFY_COMPLETE": int(Notify.SIGUPDATE_COMPLETE),
    "MPF_CALLBACK_SIGUPDATE": int(CallbackType.SIGUPDATE),
    "MPF_FIRST_HANDLE": dll._FIRST_HANDLE,
    "MPF_HANDLE_STEP": dll._HANDLE_STEP,
    "MPF_POISON": dll._POISON,
    "MPF_DEFAULT_BASE_FILETIME": datetime_to_filetime(DEFAULT_START),
}

#: Numbers only the C fake has (FakeMpClient raises FakeHang where it answers this).
C_ONLY = {"MPF_E_WOULD_HANG": 0x8007046B}

_DEFINE = re.compile(
    r"^\s*#\s*define\s+(MPF_\w+)\s+(0[xX][0-9A-Fa-f]+|\d+)[uUlL]*\s*(?:/\*.*)?$", re.MULTILINE
)


def numeric_defines() -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for name, value in _DEFINE.findall(MPFAKE_C.read_text(encoding="utf-8")):
        found.setdefault(name, []).append(int(value, 0))
    return found


def test_every_numeric_define_of_the_native_fake_is_accounted_for() -> None:
    assert sorted(numeric_defines()) == sorted({**COPIES, **C_ONLY})


@pytest.mark.parametrize("name", sorted({**COPIES, **C_ONLY}))
def test_native_fake_define_equals_the_python_number(name: str) -> None:
    assert numeric_defines()[name] == [{**COPIES, **C_ONLY}[name]]


def test_the_option_check_defines_are_the_dll_s_masks() -> None:
    # [BIN] 4.18.1909.6: any of 0x78 with 0x200, or more than one bit of 0x1F8, is E_INVALIDARG
    found = numeric_defines()
    assert found["MPF_SOURCE_MASK"] == [0x1F8]
    assert found["MPF_OPTION_0X200"] == [0x200]
    assert found["MPF_OPTIONS_REFUSED_WITH_0X200"] == [0x78]
