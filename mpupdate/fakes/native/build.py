"""Compile the native fake (``mpfake.c``) into a shared library, once per source version.

The library is cached in a directory keyed by a hash of everything that goes into it (the C
sources and headers, the compiler command and its flags), so repeated test runs reuse it and a
changed source gets a fresh build. Builds are atomic: the compiler writes a private temporary
file that is then renamed into place, so parallel test processes never see half a library.

Where the cache lives: ``cache_dir`` if given, else ``$MPUPDATE_NATIVE_FAKE_DIR``, else
``$XDG_CACHE_HOME/mpupdate/native-fake`` (``~/.cache/...``), else a folder in the temporary
directory. The compiler is ``$CC`` if set, else ``cc``, else ``gcc``.

Extra compiler flags: ``$MPUPDATE_NATIVE_FAKE_CFLAGS`` (split as a shell would) is appended to
the command after the built-in flags, for every target, and enters the cache key and so the file
name: a library built with, say, ``-fsanitize=address,undefined -g`` (CI's sanitizer lane,
``.ci/sanitizers``) is never mistaken for a normal one, nor a normal one for it. Unset or empty:
the normal build, with the names it always had.

Windows (``target`` ``"win-amd64"`` or ``"win32"``, the names of :func:`sysconfig.get_platform`):
the library is a DLL built by mingw-w64 (``x86_64-w64-mingw32-gcc`` / ``i686-w64-mingw32-gcc``,
or ``$CC``), with winpthreads linked statically and the exports undecorated. Its file name,
``mpfake-<hash of the sources>-<target>.dll``, does not depend on the compiler, so a DLL
cross-built on Linux serves a Windows Python that has no compiler at all::

    python -m mpupdate.fakes.native --target win-amd64 DIR    # on Linux, with mingw-w64
    set MPUPDATE_NATIVE_FAKE_DIR=DIR                                 # for the Windows Python

This is test tooling: it needs a C compiler (the sources ship with the package, in the wheel
and the sdist) or such a prebuilt DLL, and is not used by the installed package at run time.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import uuid
from pathlib import Path
from typing import Optional, Union

__all__ = [
    "ENV_CFLAGS",
    "ENV_DIR",
    "WINDOWS_TARGETS",
    "NativeFakeBuildError",
    "build_native_fake",
    "host_target",
    "sources",
    "unavailable_reason",
]

ENV_DIR = "MPUPDATE_NATIVE_FAKE_DIR"
#: Extra compiler flags for the native fake (see the module docs); part of the cache key.
ENV_CFLAGS = "MPUPDATE_NATIVE_FAKE_CFLAGS"

#: Windows targets (sysconfig.get_platform() names) and the mingw-w64 compiler for each.
WINDOWS_TARGETS = {"win-amd64": "x86_64-w64-mingw32-gcc", "win32": "i686-w64-mingw32-gcc"}

HERE = Path(__file__).resolve().parent

#: -ffp-contract=off: no fused multiply-add. mpfake.c holds no floating point (FILETIME ticks are
#: integers made, saturating, by mpupdate.fakes.dll._ticks); any that comes back rounds as Python's.
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


#: mingw-w64: a self-contained DLL (winpthreads and libgcc linked in), exports without stdcall
#: decorations (``MpManagerOpen``, not ``_MpManagerOpen@8``), as MpClient.dll exports them.
WINDOWS_FLAGS = (
    "-shared",
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-std=c99",
    "-ffp-contract=off",
    "-static",
    "-pthread",
    "-Wl,--kill-at",
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


def host_target() -> str:
    """The target this Python loads: a :data:`WINDOWS_TARGETS` name on Windows, else "posix"."""
    platform = sysconfig.get_platform()
    return platform if platform.startswith("win") else "posix"


def _find_compiler(target: str) -> Optional[list[str]]:
    configured = os.environ.get("CC", "").strip()
    if configured:
        return shlex.split(configured)
    names: tuple[str, ...] = ("cc", "gcc")
    if target in WINDOWS_TARGETS:
        # A Windows Python uses gcc from its PATH (MSYS2, w64devkit); elsewhere the cross compiler.
        names = ("gcc",) if host_target() == target else (WINDOWS_TARGETS[target],)
    for name in names:
        found = shutil.which(name)
        if found:
            return [found]
    return None


def _extra_flags() -> tuple[str, ...]:
    """``$MPUPDATE_NATIVE_FAKE_CFLAGS``, split as a shell would; () when unset or empty."""
    return tuple(shlex.split(os.environ.get(ENV_CFLAGS, "")))


def _key(parts: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    extra = _extra_flags()
    if extra:  # only then: the normal build keeps the key (and file name) it always had
        parts = (*parts, ENV_CFLAGS, *extra)
    for part in parts:
        digest.update(part.encode("utf-8") + b"\0")
    for name, path in sorted(sources().items()):
        digest.update(name.encode("utf-8") + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def _check_target(target: Optional[str]) -> str:
    target = target or host_target()
    if target != "posix" and target not in WINDOWS_TARGETS:
        raise NativeFakeBuildError(
            f"unknown target {target!r}: use 'posix' or one of {', '.join(WINDOWS_TARGETS)}"
        )
    return target


def _how_to_get_a_windows_dll(target: str) -> str:
    return (
        f"cross-build it on Linux with mingw-w64 (apt-get install gcc-mingw-w64): "
        f"python -m mpupdate.fakes.native --target {target} DIR, then set {ENV_DIR}=DIR "
        "for this Python; or put gcc (MSYS2, w64devkit) on PATH, or set CC"
    )


def unavailable_reason(
    cache_dir: Union[str, os.PathLike[str], None] = None, target: Optional[str] = None
) -> Optional[str]:
    """Why :func:`build_native_fake` cannot give a library here, or None if it can; cheap.

    Checks for the sources and a compiler (or, for Windows, a prebuilt DLL), compiling nothing.
    """
    target = _check_target(target)
    missing = [str(path) for path in sources().values() if not path.is_file()]
    if missing:
        return "the native fake's sources are missing from this installation: " + ", ".join(missing)
    if target in WINDOWS_TARGETS and (_directory(cache_dir) / _windows_name(target)).is_file():
        return None
    if _find_compiler(target) is not None:
        return None
    if target in WINDOWS_TARGETS:
        return (
            f"no prebuilt native fake {_directory(cache_dir) / _windows_name(target)} and no "
            f"C compiler: {_how_to_get_a_windows_dll(target)}"
        )
    return "no C compiler found to build the native fake: install cc or gcc, or set CC"


def _windows_name(target: str) -> str:
    return f"mpfake-{_key((*WINDOWS_FLAGS, target))}-{target}.dll"


def _directory(cache_dir: Union[str, os.PathLike[str], None]) -> Path:
    if cache_dir is None:
        cache_dir = os.environ.get(ENV_DIR) or None
    directory = Path(cache_dir) if cache_dir is not None else _default_dir()
    return directory.expanduser().resolve()


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


def build_native_fake(
    cache_dir: Union[str, os.PathLike[str], None] = None, target: Optional[str] = None
) -> Path:
    """Build (or reuse) the native fake and return the absolute path of the shared library.

    ``target``: ``None`` for this Python, ``"posix"``, or a :data:`WINDOWS_TARGETS` name to
    cross-build a Windows DLL. For a Windows target an existing ``mpfake-<hash>-<target>.dll``
    in the directory is used as it is (a prebuilt library: no compiler needed).

    Raises :class:`NativeFakeBuildError` with the compiler command and its output on failure, or
    saying how to get a library where there is no compiler.
    """
    target = _check_target(target)
    files = sources()
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        raise NativeFakeBuildError(
            "the native fake's sources are missing from this installation: " + ", ".join(missing)
        )
    directory = _directory(cache_dir)
    windows = target in WINDOWS_TARGETS
    if windows:
        target_path = directory / _windows_name(target)
        if target_path.is_file():
            return target_path
    compiler = _find_compiler(target)
    if compiler is None:
        if windows:
            raise NativeFakeBuildError(
                f"no prebuilt native fake {target_path} and no C compiler to build it: "
                + _how_to_get_a_windows_dll(target)
            )
        raise NativeFakeBuildError(
            "no C compiler found to build the native fake: install cc or gcc, or set CC"
        )
    flags: tuple[str, ...]
    if windows:
        flags, suffix = WINDOWS_FLAGS, ".dll"
    else:
        flags, suffix = FLAGS, _suffix()
        target_path = directory / f"libmpfake-{_key((*compiler, *FLAGS, sys.platform))}{suffix}"
        if target_path.is_file():
            return target_path
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NativeFakeBuildError(
            f"cannot create the native fake's cache directory {directory}: {exc.strerror} "
            f"(set {ENV_DIR} to a writable folder)"
        ) from None

    root = _project_root()
    temporary = directory / f".{target_path.stem}-{os.getpid()}-{uuid.uuid4().hex}.tmp{suffix}"
    command = [
        *compiler,
        *flags,
        *_extra_flags(),
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
    os.replace(temporary, target_path)  # atomic: a parallel build of the same key wins or loses
    return target_path


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m mpupdate.fakes.native [--target T] [DIR]``: build, print the path."""
    parser = argparse.ArgumentParser(
        prog="python -m mpupdate.fakes.native",
        description="Build the native fake library (or a Windows DLL of it) and print its path.",
    )
    parser.add_argument(
        "--target",
        choices=["posix", *WINDOWS_TARGETS],
        default=None,
        help="what to build for (default: this Python)",
    )
    parser.add_argument("directory", nargs="?", help=f"where to put it (default: ${ENV_DIR})")
    arguments = parser.parse_args(argv)
    try:
        print(build_native_fake(arguments.directory, target=arguments.target))
    except NativeFakeBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
