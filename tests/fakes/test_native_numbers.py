"""The native fake's few numbers are the Python ones: one table, even where C needs #defines.

``mpupdate/fakes/native/mpfake.c`` holds no behaviour (the Python model decides every answer), so
only three numbers remain in it. It cannot import Python, so it spells them as
``#define MPFAKE_...`` lines; this test reads those lines (no compiler needed) and holds each equal
to the Python value it copies, and any new numeric define must be added here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import mpupdate.fakes
from mpupdate.fakes import dll, native

MPFAKE_C = Path(mpupdate.fakes.__file__).parent / "native" / "mpfake.c"

#: Every numeric #define of mpfake.c, with the Python number it copies.
COPIES = {
    "MPFAKE_ABI_VERSION": native._ABI_VERSION,
    "MPFAKE_E_UNEXPECTED": native._E_UNEXPECTED,
    "MPFAKE_POISON": dll._POISON,
}

_DEFINE = re.compile(
    r"^\s*#\s*define\s+(MPFAKE_\w+)\s+(?:\(\(int32_t\))?(0[xX][0-9A-Fa-f]+|\d+)[uUlL]*\)?\s*"
    r"(?:/\*.*)?$",
    re.MULTILINE,
)


def numeric_defines() -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for name, value in _DEFINE.findall(MPFAKE_C.read_text(encoding="utf-8")):
        found.setdefault(name, []).append(int(value, 0))
    return found


def test_every_numeric_define_of_the_native_fake_is_accounted_for() -> None:
    assert sorted(numeric_defines()) == sorted(COPIES)


@pytest.mark.parametrize("name", sorted(COPIES))
def test_native_fake_define_equals_the_python_number(name: str) -> None:
    assert numeric_defines()[name] == [COPIES[name]]
