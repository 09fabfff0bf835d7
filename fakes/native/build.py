"""Compile the native fake (``mpfake.c``) into a shared library, once per source version.

The library is cached in a directory keyed by a hash of everything that goes into it (the C
sources and headers, the compiler command and its flags), so repeated test runs reuse it and a
changed source gets a fresh build. Builds are atomic: the compiler writes a private temporary
file that is then renamed into place, so parallel test processes never see half a library.

Where the cache lives: ``cache_dir`` if given, else ``$MPUPDATE_NATIVE_FAKE_DIR``, else
``$XDG_CACHE_HOME/mpupdate/native-fake`` (``~/.cache/...``), else a folder in the temporary
directory. The compiler is ``$CC`` if set, else ``cc``, else ``gcc``.

This is test tooling: it needs a C compiler (the sources ship with the package, in the wheel
and the sdist) and is not used by the installed package at run time.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Union

__all__ = ["ENV_DIR", "NativeFakeBuildError", "build_native_fake", "sources"]

ENV_DIR = "MPUPDATE_NATIVE_FAKE_DIR"
# A plain bool rather than a sys.platform test inline: the code after the check must stay
# reachable for type checkers that analyse the Windows platform.
_WINDOWS = sys.platform == "win32"

HERE = Path(__file__).resolve().parent

#: -ffp-contract=off: no fused multiply-add, so ticks(s) rounds exactly as Python's float does.
FLAGS = (
    "-shared",
    "-fPIC",
    "-pthread",
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-std=c99",
    "-ffp-contract=off",
)


class NativeFakeBuildError(RuntimeError):
    """The native fake could not be compiled; the message names the command and its output."""


def _project_root() -> Path:
    """The folder holding the ``mpupdate`` package (mpfake.c includes ``mpupdate/...`` from it)."""
    import mpupdate

    return Path(mpupdate.__file__).resolve().parent.parent


def sources() -> dict[str, Path]:
    """Every file the library is built from, by the name it is hashed under."""
    root = _project_root()
    return {
        "mpfake.c": HERE / "mpfake.c",
        "mpfake_control.h": HERE / "mpfake_control.h",
        "prelude.h": root / "mpupdate" / "_csrc" / "prelude.h",
        "mpclient_types.h": root / "mpupdate" / "_cdef" / "mpclient_types.h",
    }


def _compiler() -> list[str]:
    configured = os.environ.get("CC", "").strip()
    if configured:
        return shlex.split(configured)
    for name in ("cc", "gcc"):
        found = shutil.which(name)
        if found:
            return [found]
    raise NativeFakeBuildError(
        "no C compiler found to build the native fake: install cc or gcc, or set CC"
    )


def _default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    candidate = Path(base) / "mpupdate" / "native-fake"
    try:
        candidate.mkdir(parents=True, exist_ok=True)
        if os.access(candidate, os.W_OK):
            return candidate
    except OSError:
        pass
    user = getattr(os, "getuid", lambda: "user")()
    return Path(tempfile.gettempdir()) / f"mpupdate-native-fake-{user}"


def _suffix() -> str:
    return ".dylib" if sys.platform == "darwin" else ".so"


def build_native_fake(cache_dir: Union[str, os.PathLike[str], None] = None) -> Path:
    """Build (or reuse) the native fake and return the absolute path of the shared library.

    Raises :class:`NativeFakeBuildError` with the compiler command and its output on failure.
    """
    if _WINDOWS:
        raise NativeFakeBuildError(
            "the native fake is built with a POSIX C compiler and pthreads; on Windows use the "
            "Python FakeMpClient (or the real MpClient.dll)"
        )
    files = sources()
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        raise NativeFakeBuildError(
            "the native fake's sources are missing from this installation: " + ", ".join(missing)
        )
    compiler = _compiler()
    root = _project_root()
    digest = hashlib.sha256()
    for part in (*compiler, *FLAGS, sys.platform):
        digest.update(part.encode("utf-8") + b"\0")
    for name, path in sorted(files.items()):
        digest.update(name.encode("utf-8") + b"\0" + path.read_bytes() + b"\0")
    key = digest.hexdigest()[:20]

    if cache_dir is None:
        cache_dir = os.environ.get(ENV_DIR) or None
    directory = Path(cache_dir) if cache_dir is not None else _default_dir()
    directory = directory.expanduser().resolve()
    target = directory / f"libmpfake-{key}{_suffix()}"
    if target.is_file():
        return target
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NativeFakeBuildError(
            f"cannot create the native fake's cache directory {directory}: {exc.strerror} "
            f"(set {ENV_DIR} to a writable folder)"
        ) from None

    temporary = directory / f".libmpfake-{key}-{os.getpid()}-{uuid.uuid4().hex}.tmp{_suffix()}"
    command = [
        *compiler,
        *FLAGS,
        "-I",
        str(root),
        "-I",
        str(HERE),
        "-o",
        str(temporary),
        str(files["mpfake.c"]),
    ]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise NativeFakeBuildError(
            f"could not run the C compiler: {shlex.join(command)}\n{exc}"
        ) from None
    if completed.returncode != 0:
        temporary.unlink(missing_ok=True)
        output = (completed.stderr + completed.stdout).strip()
        raise NativeFakeBuildError(
            f"building the native fake failed (exit status {completed.returncode}):\n"
            f"  {shlex.join(command)}\n{output}"
        )
    os.replace(temporary, target)  # atomic: a parallel build of the same key just wins or loses
    return target


if __name__ == "__main__":
    print(build_native_fake())
