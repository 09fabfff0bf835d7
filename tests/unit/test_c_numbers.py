"""The run-time loader's HRESULTs are the table's: C cannot import ``mpupdate.constants``, so
``loader.c`` spells them as ``#define MPUPDATE_...``; this test holds each equal to the Python
number it copies, and finds no HRESULT written as a bare literal elsewhere in the file."""

from __future__ import annotations

import re
from importlib import resources

from mpupdate.constants import (
    E_FAIL,
    E_INVALIDARG,
    E_NOT_LOADED,
    E_PROC_NOT_FOUND,
    ERROR_INVALID_OPERATION,
)

LOADER = resources.files("mpupdate._csrc").joinpath("loader.c").read_text(encoding="utf-8")

#: Every numeric #define of loader.c that copies a number of mpupdate.constants.
COPIES = {
    "MPUPDATE_E_NOT_LOADED": E_NOT_LOADED,
    "MPUPDATE_E_PROC_NOT_FOUND": E_PROC_NOT_FOUND,
    "MPUPDATE_E_INVALID_OPERATION": ERROR_INVALID_OPERATION,
    "MPUPDATE_E_INVALIDARG": E_INVALIDARG,
    "MPUPDATE_E_FAIL": E_FAIL,
}
#: Numbers only C needs: malloc failing, and the facility HRESULT_FROM_WIN32 sets.
C_ONLY = {"MPUPDATE_E_OUTOFMEMORY": 0x8007000E, "MPUPDATE_FACILITY_WIN32": 0x80070000}

_DEFINE = re.compile(
    r"^#define (MPUPDATE_\w+) (?:\(\(int32_t\))?(0x[0-9A-Fa-f]+)[uUlL]*\)?", re.MULTILINE
)


def test_every_numeric_define_of_the_loader_is_the_table_s() -> None:
    found = {name: int(value, 16) for name, value in _DEFINE.findall(LOADER)}
    assert found == {**COPIES, **C_ONLY}


def test_no_hresult_is_written_as_a_bare_literal() -> None:
    body = _DEFINE.sub("", LOADER)
    assert re.findall(r"0x8[0-9A-Fa-f]{7}", body) == []
