"""The Backend seam, and the secure resolution and loading of the real MpClient.dll.

A backend is anything with the seven exports the binding calls, taking and returning what the
compiled module's functions take and return (cffi objects in, a signed 32-bit HRESULT out). Two
kinds exist: :class:`DllBackend`, the compiled module calling a loaded library (the real DLL on
Windows, or the native fake), and :class:`mpupdate.fakes.FakeMpClient`. Backends are injected,
never monkeypatched.

Loading follows MPCLIENT.md section 5: the DLL is loaded only by an absolute path inside the
Defender folders, found through the ``InstallLocation`` registry value or ``%ProgramFiles%``,
never by bare name and never from the current directory. An explicit override
(``MPUPDATE_MPCLIENT_PATH``, ``backend="dll:<path>"``, ``DllBackend(path)``) is for tests and
unusual installs and is announced with a warning every time it is used.
"""

from __future__ import annotations

import importlib
import logging
import ntpath
import os
import posixpath
import struct
import sys
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol, Union, runtime_checkable

from .constants import DEFENDER_REGISTRY_KEY, DEFENDER_REGISTRY_VALUE, E_NOT_LOADED
from .errors import BackendUnavailableError, format_hresult, to_unsigned

__all__ = [
    "EXPORTS",
    "Backend",
    "DllBackend",
    "LoaderEnvironment",
    "MpClientOverrideWarning",
    "check_override",
    "locate_mpclient",
    "mpclient_candidates",
    "pe_machine",
    "resolve_backend",
]

log = logging.getLogger("mpupdate")

#: The exports a backend provides, in the order the loader reports missing ones.
EXPORTS = (
    "MpManagerOpen",
    "MpUpdateStart",
    "MpUpdateControl",
    "MpHandleClose",
    "MpErrorMessageFormat",
    "MpFreeMemory",
    "MpManagerVersionQuery",
)

ENV_BACKEND = "MPUPDATE_BACKEND"
ENV_PATH = "MPUPDATE_MPCLIENT_PATH"


@runtime_checkable
class Backend(Protocol):
    """What MpClient.dll exports, as the binding calls it. HRESULTs come back signed."""

    def MpManagerOpen(self, dwReserved: int, phMpHandle: Any) -> int: ...

    def MpUpdateStart(
        self, hMpHandle: Any, dwUpdateOptions: int, pCallbackInfo: Any, phUpdateHandle: Any
    ) -> int: ...

    def MpUpdateControl(self, hMpHandle: Any, control: int) -> int: ...

    def MpHandleClose(self, hMpHandle: Any) -> int: ...

    def MpErrorMessageFormat(self, hMpHandle: Any, hr: int, ppszText: Any) -> int: ...

    def MpFreeMemory(self, pMemory: Any) -> None: ...

    def MpManagerVersionQuery(self, hMpHandle: Any, pInfo: Any) -> int: ...


class MpClientOverrideWarning(UserWarning):
    """An MpClient library is being loaded from an explicit path instead of the Defender folders."""


# -- where MpClient.dll may come from ---------------------------------------------------------

#: PE machine types (IMAGE_FILE_MACHINE_*), for the bitness check.
PE_MACHINES = {0x014C: "x86 (32-bit)", 0x8664: "x64 (64-bit)", 0xAA64: "ARM64"}


def pe_machine(header: bytes) -> Optional[int]:
    """The machine type of a PE image from its first bytes (at least 1 KiB), or None if not PE."""
    if len(header) < 0x40 or header[:2] != b"MZ":
        return None
    (offset,) = struct.unpack_from("<I", header, 0x3C)
    if offset + 6 > len(header) or header[offset : offset + 4] != b"PE\0\0":
        return None
    (machine,) = struct.unpack_from("<H", header, offset + 4)
    return int(machine)


def _read_header(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as stream:
            return stream.read(4096)
    except OSError:
        return None


if sys.platform == "win32":

    def _read_registry(key: str, value: str) -> Optional[str]:
        """HKLM\\<key>\\<value> from the 64-bit view (Defender's), or None."""
        import winreg

        try:
            with winreg.OpenKey(
                winreg.HKEY_LOCAL_MACHINE, key, 0, winreg.KEY_READ | winreg.KEY_WOW64_64KEY
            ) as handle:
                data, kind = winreg.QueryValueEx(handle, value)
        except OSError:
            return None
        if kind in (winreg.REG_SZ, winreg.REG_EXPAND_SZ) and isinstance(data, str):
            return data
        return None

else:

    def _read_registry(key: str, value: str) -> Optional[str]:
        """There is no registry here."""
        return None


def _process_machine() -> int:
    """The PE machine a DLL must have to load into this Python process."""
    if struct.calcsize("P") == 4:
        return 0x014C
    import platform

    return 0xAA64 if platform.machine().lower() in ("arm64", "aarch64") else 0x8664


@dataclass(frozen=True)
class LoaderEnvironment:
    """Everything :func:`locate_mpclient` looks at, injectable so the logic is tested anywhere."""

    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    read_registry: Callable[[str, str], Optional[str]] = _read_registry
    read_header: Callable[[str], Optional[bytes]] = _read_header
    cwd: str = field(default_factory=os.getcwd)
    machine: int = field(default_factory=_process_machine)
    windows: bool = sys.platform == "win32"


def _trusted_roots(env: Mapping[str, str]) -> list[str]:
    """The folders MpClient.dll may legitimately live in (MPCLIENT.md section 5)."""
    roots = []
    for variable, tail in (
        ("ProgramFiles", r"Windows Defender"),
        ("ProgramFiles(x86)", r"Windows Defender"),
        ("ProgramW6432", r"Windows Defender"),
        ("ProgramData", r"Microsoft\Windows Defender\Platform"),
        ("ProgramFiles", r"Microsoft Security Client"),
        ("SystemRoot", r"WinSxS"),
    ):
        base = env.get(variable)
        if base and ntpath.isabs(base):
            roots.append(ntpath.normpath(ntpath.join(base, tail)))
    return roots


def _inside(path: str, root: str) -> bool:
    path, root = ntpath.normcase(path), ntpath.normcase(root)
    return path.startswith(root.rstrip("\\") + "\\")


def _rejection(path: str, environment: LoaderEnvironment, trusted: bool) -> Optional[str]:
    """Why ``path`` must not be loaded, or None if it may; ``trusted``: in a Defender folder."""
    if not path:
        return "empty path"
    if environment.windows and not (ntpath.isabs(path) and ntpath.splitdrive(path)[0]):
        return (
            "not an absolute path with a drive or UNC share "
            "(a bare or relative name could be planted)"
        )
    if not environment.windows and not posixpath.isabs(path):
        return "not an absolute path (a relative name could be planted)"
    if ".." in path.replace("/", "\\").split("\\"):
        return "contains '..'"
    normalized = (ntpath if environment.windows else posixpath).normpath(path)
    if trusted:
        if ntpath.basename(normalized).lower() != "mpclient.dll":
            return "not named MpClient.dll"
        roots = _trusted_roots(environment.environ)
        if not any(_inside(normalized, root) for root in roots):
            return "outside the Defender folders (" + "; ".join(roots or ["none known"]) + ")"
    header = environment.read_header(normalized)
    if header is None:
        return "no such file, or it cannot be read"
    if environment.windows:
        machine = pe_machine(header)
        if machine is None:
            return "not a Windows DLL (no PE header)"
        if machine != environment.machine:
            return (
                f"bitness mismatch: the DLL is {PE_MACHINES.get(machine, hex(machine))}, this "
                f"Python is {PE_MACHINES.get(environment.machine, hex(environment.machine))}; "
                "use a Python of the DLL's bitness"
            )
    return None


def mpclient_candidates(environment: LoaderEnvironment) -> list[str]:
    """Where to look, in order: InstallLocation (the current platform), then ``%ProgramFiles%``."""
    candidates = []
    location = environment.read_registry(DEFENDER_REGISTRY_KEY, DEFENDER_REGISTRY_VALUE)
    if location:
        location = ntpath.normpath(location)
        if environment.machine == 0x014C:
            # [GUESS] updated platform folders keep their 32-bit DLLs in an x86 subfolder.
            candidates.append(ntpath.join(location, "x86", "MpClient.dll"))
        candidates.append(ntpath.join(location, "MpClient.dll"))
    program_files = environment.environ.get("ProgramFiles")
    if program_files:
        candidates.append(ntpath.join(program_files, "Windows Defender", "MpClient.dll"))
    return candidates


def locate_mpclient(
    environment: Optional[LoaderEnvironment] = None,
) -> tuple[Optional[str], tuple[tuple[str, str], ...]]:
    """Find the MpClient.dll to load. Returns ``(path or None, ((tried path, why rejected), ...))``.

    Pure over ``environment``: no DLL is loaded. Only the candidates of
    :func:`mpclient_candidates` are considered, each an absolute path that must lie inside the
    Defender folders: neither the current directory nor PATH is ever searched. The override
    variable is not consulted here (see :func:`check_override`).
    """
    environment = environment or LoaderEnvironment()
    tried: list[tuple[str, str]] = []
    if not environment.windows:
        return None, (("MpClient.dll", "MpClient.dll exists only on Windows"),)
    candidates = mpclient_candidates(environment)
    if not candidates:
        return None, (("MpClient.dll", "neither InstallLocation nor %ProgramFiles% is set"),)
    for candidate in candidates:
        reason = _rejection(candidate, environment, trusted=True)
        if reason is None:
            return ntpath.normpath(candidate), tuple(tried)
        tried.append((candidate, reason))
    return None, tuple(tried)


def check_override(
    path: str, environment: Optional[LoaderEnvironment] = None
) -> tuple[Optional[str], list[str]]:
    """Vet an explicit path: ``(reason it is refused or None, warnings to announce)``."""
    environment = environment or LoaderEnvironment()
    reason = _rejection(path, environment, trusted=False)
    if reason is not None:
        return reason, []
    notes = [f"loading MpClient from an explicit path: {path}"]
    if environment.windows and _rejection(path, environment, trusted=True) is not None:
        notes.append("that path is outside the Defender folders; only do this for tests")
    pathmod = ntpath if environment.windows else posixpath
    folder = pathmod.normcase(pathmod.dirname(pathmod.normpath(path)))
    if folder == pathmod.normcase(pathmod.normpath(environment.cwd)):
        notes.append("that path is in the current directory, where planted DLLs are put")
    return None, notes


# -- the compiled module as a backend -----------------------------------------------------------

_load_lock = threading.Lock()
_loaded_path: Optional[str] = None


class DllBackend:
    """The compiled binding calling a loaded library: the real MpClient.dll, or the native fake.

    ``DllBackend()`` finds MpClient.dll as described above (Windows only). ``DllBackend(path)``
    loads ``path`` as an override, with a :class:`MpClientOverrideWarning`. One library is loaded
    per process; asking for a different one while it is loaded raises BackendUnavailableError.
    """

    def __init__(
        self, path: Optional[str] = None, environment: Optional[LoaderEnvironment] = None
    ) -> None:
        from ._native import lib

        environment = environment or LoaderEnvironment()
        if path is None:
            path = environment.environ.get(ENV_PATH) or None
        if path is None:
            found, tried = locate_mpclient(environment)
            if found is None:
                raise _unavailable(tried, environment.windows)
            path = found
        else:
            reason, notes = check_override(path, environment)
            if reason is not None:
                raise BackendUnavailableError(
                    "load MpClient",
                    E_NOT_LOADED,
                    "the MpClient path override was refused",
                    f"pass an absolute path to an existing file ({ENV_PATH} or dll:<path>)",
                    tried=((path, reason),),
                )
            for note in notes:
                warnings.warn(note, MpClientOverrideWarning, stacklevel=3)
                log.warning("mpupdate: %s", note)
        _load(lib, path)
        self.path = path
        self._lib = lib
        for name in EXPORTS:
            setattr(self, name, getattr(lib, name))

    def __repr__(self) -> str:
        return f"DllBackend({self.path!r})"

    # The exports are bound per instance in __init__; these keep type checkers informed.
    MpManagerOpen: Callable[[int, Any], int]
    MpUpdateStart: Callable[[Any, int, Any, Any], int]
    MpUpdateControl: Callable[[Any, int], int]
    MpHandleClose: Callable[[Any], int]
    MpErrorMessageFormat: Callable[[Any, int, Any], int]
    MpFreeMemory: Callable[[Any], None]
    MpManagerVersionQuery: Callable[[Any, Any], int]


def _load(lib: Any, path: str) -> None:
    global _loaded_path
    with _load_lock:
        if _loaded_path is not None:
            if os.path.normcase(_loaded_path) == os.path.normcase(path):
                return
            raise BackendUnavailableError(
                "load MpClient",
                E_NOT_LOADED,
                f"another MpClient library is already loaded in this process: {_loaded_path}",
                "use one MpClient library per process",
                tried=((path, "one library per process"),),
            )
        hr = to_unsigned(lib.mpupdate_load(os.fsencode(path)))
        if hr:
            detail = lib.mpupdate_load_error()
            from ._native import ffi

            text = ffi.string(detail).decode("utf-8", "replace") if detail != ffi.NULL else ""
            reason = f"{format_hresult(hr)}" + (f": {text}" if text else "")
            if hr == 0x800700C1:  # ERROR_BAD_EXE_FORMAT
                reason += " (bitness mismatch: the DLL and this Python differ)"
            raise BackendUnavailableError(
                "load MpClient", hr, "the library could not be loaded", None, ((path, reason),)
            )
        missing = int(lib.mpupdate_missing_exports())
        if missing:
            names = [name for bit, name in enumerate(EXPORTS) if missing & (1 << bit)]
            lib.mpupdate_unload()
            raise BackendUnavailableError(
                "load MpClient",
                0x8007007F,
                "the library lacks exports MpClient.dll has: " + ", ".join(names),
                "is it really MpClient.dll?",
                ((path, "missing " + ", ".join(names)),),
            )
        _loaded_path = path


def _unavailable(tried: tuple[tuple[str, str], ...], windows: bool) -> BackendUnavailableError:
    if not windows:
        message = "MpClient.dll exists only on Windows with Microsoft Defender"
    else:
        message = "MpClient.dll was not found in the Defender folders"
    return BackendUnavailableError(
        "load MpClient",
        E_NOT_LOADED,
        message,
        "to run against the simulated DLL instead, pass backend='fake' (or 'fake:<scenario>', "
        f"e.g. 'fake:already-current'), or set {ENV_BACKEND}=fake:updated",
        tried=tried,
    )


def resolve_backend(spec: Union[Backend, str, None] = None) -> Backend:
    """Turn a ``backend=`` argument into a backend.

    - ``None``: ``$MPUPDATE_BACKEND`` if set, else the real DLL (:class:`DllBackend`).
    - ``"fake"`` / ``"fake:<scenario name or .json path>"``: a FakeMpClient delivering from its
      own thread, as ASYNC does.
    - ``"dll"``: the real DLL; ``"dll:<path>"``: a library at an explicit path (warned).
    - an object with the exports: used as it is.
    """
    if spec is None:
        spec = os.environ.get(ENV_BACKEND) or "dll"
    if isinstance(spec, str):
        kind, _, argument = spec.partition(":")
        if kind == "fake":
            # Imported by name: in a source checkout the fakes live in ./fakes, mapped to
            # mpupdate.fakes only by the installed package.
            fakes = importlib.import_module("mpupdate.fakes")
            backend: Backend = fakes.FakeMpClient(argument or "updated", delivery="thread")
            return backend
        if kind == "dll":
            return DllBackend(argument or None)
        raise ValueError(
            f"unknown backend {spec!r}: use 'fake', 'fake:<scenario>', 'dll' or 'dll:<path>'"
        )
    missing = [name for name in EXPORTS if not callable(getattr(spec, name, None))]
    if missing:
        raise TypeError(
            f"{type(spec).__name__} is not a backend: it lacks {', '.join(missing)} "
            "(pass None, a backend string, a DllBackend or a FakeMpClient)"
        )
    return spec
