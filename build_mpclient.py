"""The only FFI builder: compiles ``mpupdate._mpclient`` (cffi out-of-line, API mode).

The declarations come from ``mpupdate/_cdef/*.h`` (ours, never an SDK header); the C source is the
prelude, the same type declarations, and the run-time loader in ``mpupdate/_csrc/loader.c``.
Used by setuptools through ``cffi_modules`` in setup.py;
``python build_mpclient.py`` builds in place.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
CDEF = HERE / "mpupdate" / "_cdef"
CSRC = HERE / "mpupdate" / "_csrc"


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


types = _read(CDEF / "mpclient_types.h") + _read(CDEF / "mpupdate_capture_types.h")

ffibuilder = FFI()
ffibuilder.cdef(
    types
    + _read(CDEF / "mpclient_exports.h")
    + _read(CDEF / "mpupdate_loader.h")
    + _read(CDEF / "mpupdate_callback.h")
)
ffibuilder.set_source(
    "mpupdate._mpclient",
    _read(CSRC / "prelude.h") + types + _read(CSRC / "loader.c") + _read(CSRC / "capture.c"),
    libraries=["dl", "pthread"] if sys.platform.startswith("linux") else [],
)

if __name__ == "__main__":
    ffibuilder.compile(
        tmpdir=str(HERE / "build" / "cffi"),
        target=str(HERE / "mpupdate" / "_mpclient.*"),
        verbose=True,
    )
