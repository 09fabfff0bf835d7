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

import os
import sys
import threading
from collections.abc import Mapping

from . import _log
from ._classes import Frozen
from .clock import SYSTEM_CLOCK
from .constants import DEFENDER_REGISTRY_KEY, DEFENDER_REGISTRY_VALUE, E_NOT_LOADED
from .errors import BackendUnavailableError, format_hresult, to_unsigned

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any, Optional, Protocol, Union, runtime_checkable

    from .clock import Clock
else:  # typing's would import re (and typing); these answer isinstance() the same way
    from ._classes import Protocol, runtime_checkable

# Path handling imports ntpath, posixpath, struct, warnings and importlib where it needs them:
# importing the package must not pay for what only loading the real DLL uses.

__all__ = [
    "EXPORTS",
    "Backend",
    "ClockedBackend",
    "DllBackend",
    "LoaderEnvironment",
    "MpClientOverrideWarning",
    "backend_clock",
    "check_override",
    "locate_mpclient",
    "mpclient_candidates",
    "pe_machine",
    "resolve_backend",
    "set_real_dll_guard",
    "use_backend",
]

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
    """What MpClient.dll exports, as the binding calls it. HRESULTs come back signed.

    Time is part of the contract too, optionally: a backend that delivers notifications on a
    clock of its own (the fakes' virtual time) is a :class:`ClockedBackend`, with a ``clock``
    attribute, and the client waits and stamps its results on that clock. Any other backend runs
    on the system's clock. The client asks :func:`backend_clock`, never the attribute itself.
    """

    def MpManagerOpen(self, dwReserved: int, phMpHandle: Any) -> int: ...

    def MpUpdateStart(
        self, hMpHandle: Any, dwUpdateOptions: int, pCallbackInfo: Any, phUpdateHandle: Any
    ) -> int: ...

    def MpUpdateControl(self, hMpHandle: Any, control: int) -> int: ...

    def MpHandleClose(self, hMpHandle: Any) -> int: ...

    def MpErrorMessageFormat(self, hMpHandle: Any, hr: int, ppszText: Any) -> int: ...

    def MpFreeMemory(self, pMemory: Any) -> None: ...

    def MpManagerVersionQuery(self, hMpHandle: Any, pInfo: Any) -> int: ...


@runtime_checkable
class ClockedBackend(Backend, Protocol):
    """A :class:`Backend` that names the :class:`~mpupdate.clock.Clock` the client must wait on.

    :class:`DllBackend` has the system clock; :class:`mpupdate.fakes.FakeMpClient` its virtual
    clock in ``immediate`` and ``timed`` delivery (where ``wait`` advances virtual time instead of
    sleeping) and the system clock in ``thread`` delivery.
    """

    clock: Clock


def backend_clock(backend: Backend) -> Clock:
    """The clock to wait on with ``backend``: its ``clock`` if it is a :class:`ClockedBackend`
    (and the clock is set), else :data:`~mpupdate.clock.SYSTEM_CLOCK`."""
    if isinstance(backend, ClockedBackend):
        clock: Optional[Clock] = backend.clock
        if clock is not None:
            return clock
    return SYSTEM_CLOCK


class MpClientOverrideWarning(UserWarning):
    """An MpClient library is being loaded from an explicit path instead of the Defender folders."""


# -- where MpClient.dll may come from ---------------------------------------------------------

#: PE machine types (IMAGE_FILE_MACHINE_*), for the bitness check.
PE_MACHINES = {0x014C: "x86 (32-bit)", 0x8664: "x64 (64-bit)", 0xAA64: "ARM64"}


def pe_machine(header: bytes) -> Optional[int]:
    """The machine type of a PE image from its first bytes (at least 1 KiB), or None if not PE."""
    if len(header) < 0x40 or header[:2] != b"MZ":
        return None
    import struct

    (offset,) = struct.unpack_from("<I", header, 0x3C)
    if offset + 6 > len(header) or header[offset : offset + 4] != b"PE\0\0":
        return None
    (machine,) = struct.unpack_from("<H", header, offset + 4)
    return int(machine)


def _read_header(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as stream:
            return stream.read(4096)
    except (OSError, ValueError):  # ValueError: a path the file system cannot spell
        return None


#: Where Windows itself records its folders (HKLM, 64-bit view; REG_SZ values).
CURRENT_VERSION_KEY = r"SOFTWARE\Microsoft\Windows\CurrentVersion"
NT_CURRENT_VERSION_KEY = r"SOFTWARE\Microsoft\Windows NT\CurrentVersion"

#: Known folders asked of SHGetKnownFolderPath, by the names this module uses.
KNOWN_FOLDERS = {
    "ProgramData": "{62AB5D82-FDC1-4DC3-A9DD-070D1D495D97}",  # FOLDERID_ProgramData
    "Windows": "{F38BF404-1D43-42F2-9305-67DE0B28FC23}",  # FOLDERID_Windows
}

if sys.platform == "win32":

    def _read_registry(key: str, value: str) -> Optional[str]:
        """HKLM\\<key>\\<value> from the 64-bit view, only if it is a REG_SZ; else None.

        As Microsoft's own loader reads InstallLocation (``RRF_RT_REG_SZ |
        RRF_SUBKEY_WOW6464KEY``): an expandable or other kind of value is not taken.
        """
        import winreg

        try:
            with winreg.OpenKey(
                winreg.HKEY_LOCAL_MACHINE, key, 0, winreg.KEY_READ | winreg.KEY_WOW64_64KEY
            ) as handle:
                data, kind = winreg.QueryValueEx(handle, value)
        except OSError:
            return None
        if kind == winreg.REG_SZ and isinstance(data, str):
            return data
        return None

    def _known_folder(name: str) -> Optional[str]:
        """A folder from the known-folder API (SHGetKnownFolderPath), or None."""
        import ctypes
        import uuid
        from ctypes import wintypes

        guid = uuid.UUID(KNOWN_FOLDERS[name])
        folder_id = (ctypes.c_ubyte * 16).from_buffer_copy(guid.bytes_le)
        out = ctypes.c_wchar_p()
        shell32 = ctypes.WinDLL("shell32", use_last_error=True)
        ole32 = ctypes.WinDLL("ole32")
        get = shell32.SHGetKnownFolderPath
        get.argtypes = [ctypes.c_void_p, wintypes.DWORD, wintypes.HANDLE, ctypes.c_void_p]
        get.restype = ctypes.c_long
        try:
            if get(ctypes.byref(folder_id), 0, None, ctypes.byref(out)) != 0:
                return None
            return out.value or None
        finally:
            ole32.CoTaskMemFree(out)

else:

    def _read_registry(key: str, value: str) -> Optional[str]:
        """There is no registry here."""
        return None

    def _known_folder(name: str) -> Optional[str]:
        """There are no known folders here."""
        return None


#: sysconfig.get_platform() of a Windows Python -> the PE machine its DLLs must have.
PLATFORM_MACHINES = {"win32": 0x014C, "win-amd64": 0x8664, "win-arm64": 0xAA64}


def process_machine(platform: Optional[str] = None) -> int:
    """The PE machine a DLL must have to load into this Python process.

    Taken from the interpreter's own platform (:func:`sysconfig.get_platform`), never from
    :func:`platform.machine`, which names the OS's machine: an x64 Python on ARM64 Windows runs
    emulated and must load the x64 DLL. (``platform.machine`` also queries WMI on Python 3.12+.)
    """
    if platform is None:
        import sysconfig

        platform = sysconfig.get_platform()
    machine = PLATFORM_MACHINES.get(platform)
    if machine is not None:
        return machine
    import struct

    return 0x014C if struct.calcsize("P") == 4 else 0x8664  # only consulted on Windows


def _process_machine() -> int:
    return process_machine()


class _CaseInsensitiveEnviron(Mapping[str, str]):
    """Environment variables as Windows looks them up: ``ProgramFiles`` finds ``PROGRAMFILES``.

    ``os.environ`` on Windows keeps its keys upper-cased, so ``dict(os.environ)`` is
    case-sensitive and misses every mixed-case name.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._items = {key.upper(): value for key, value in environ.items()}

    def __getitem__(self, key: str) -> str:
        return self._items[key.upper()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"_CaseInsensitiveEnviron({self._items!r})"


class LoaderEnvironment(Frozen):
    """Everything :func:`locate_mpclient` looks at, injectable so the logic is tested anywhere.

    Each field left out (or None) is this process's: ``environ`` a copy of ``os.environ``,
    ``cwd`` the current directory, ``machine`` :func:`process_machine`'s; the registry, file and
    known-folder readers are the real ones (answering None off Windows).

    ``environ`` is looked up case-insensitively when ``windows`` is true, as Windows does.
    ``read_registry(key, value)`` answers HKLM's 64-bit view, REG_SZ values only;
    ``known_folder(name)`` the known-folder API for the names in :data:`KNOWN_FOLDERS`.
    Immutable; equal when the fields are.
    """

    __match_args__ = (
        "environ",
        "read_registry",
        "read_header",
        "cwd",
        "machine",
        "windows",
        "known_folder",
    )
    __slots__ = __match_args__

    environ: Mapping[str, str]
    read_registry: Callable[[str, str], Optional[str]]
    read_header: Callable[[str], Optional[bytes]]
    cwd: str
    machine: int
    windows: bool
    known_folder: Callable[[str], Optional[str]]

    def __init__(
        self,
        environ: Optional[Mapping[str, str]] = None,
        read_registry: Callable[[str, str], Optional[str]] = _read_registry,
        read_header: Callable[[str], Optional[bytes]] = _read_header,
        cwd: Optional[str] = None,
        machine: Optional[int] = None,
        windows: bool = sys.platform == "win32",
        known_folder: Callable[[str], Optional[str]] = _known_folder,
    ) -> None:
        if environ is None:
            environ = dict(os.environ)
        if windows and not isinstance(environ, _CaseInsensitiveEnviron):
            environ = _CaseInsensitiveEnviron(environ)
        field = object.__setattr__
        field(self, "environ", environ)
        field(self, "read_registry", read_registry)
        field(self, "read_header", read_header)
        field(self, "cwd", os.getcwd() if cwd is None else cwd)
        field(self, "machine", _process_machine() if machine is None else machine)
        field(self, "windows", windows)
        field(self, "known_folder", known_folder)

    def os_is_64_bit(self) -> bool:
        """Whether Windows itself is 64-bit: it has a ``Program Files (x86)`` (in the registry's
        64-bit view, or failing that the environment)."""
        return bool(
            self.read_registry(CURRENT_VERSION_KEY, "ProgramFilesDir (x86)")
            or self.environ.get("ProgramFiles(x86)")
        )

    def folder(self, name: str) -> Optional[str]:
        """A system folder by its environment-variable name, from the best evidence there is.

        The registry (``ProgramFilesDir``, ``ProgramFilesDir (x86)``, ``ProgramW6432Dir``,
        ``SystemRoot``) and the known-folder API (ProgramData, Windows) first: environment
        variables are weak evidence, since any process of the same user can set them for an
        elevated one (``HKCU\\Environment``). The environment is the fallback where those
        say nothing. ``ProgramFiles`` is this process's view: ``Program Files (x86)`` for a
        32-bit Python on 64-bit Windows, as ``%ProgramFiles%`` is there.
        """
        import ntpath

        found: Optional[str] = None
        if name == "ProgramFiles":
            if self.machine == 0x014C:
                found = self.read_registry(CURRENT_VERSION_KEY, "ProgramFilesDir (x86)")
            found = found or self.read_registry(CURRENT_VERSION_KEY, "ProgramFilesDir")
        elif name == "ProgramFiles(x86)":
            found = self.read_registry(CURRENT_VERSION_KEY, "ProgramFilesDir (x86)")
        elif name == "ProgramW6432":
            # Read in the 64-bit view, ProgramFilesDir is the native Program Files too (Wine
            # has no ProgramW6432Dir; 32-bit Windows has one Program Files).
            found = self.read_registry(
                CURRENT_VERSION_KEY, "ProgramW6432Dir"
            ) or self.read_registry(CURRENT_VERSION_KEY, "ProgramFilesDir")
        elif name == "ProgramData":
            found = self.known_folder("ProgramData")
        elif name == "SystemRoot":
            found = self.known_folder("Windows") or self.read_registry(
                NT_CURRENT_VERSION_KEY, "SystemRoot"
            )
        if found and ntpath.isabs(found):
            return found
        fallback = self.environ.get(name)
        return fallback if fallback and ntpath.isabs(fallback) else None


def _trusted_roots(environment: LoaderEnvironment) -> list[str]:
    """The folders MpClient.dll may legitimately live in (MPCLIENT.md section 5)."""
    import ntpath

    roots = []
    for variable, tail in (
        ("ProgramFiles", r"Windows Defender"),
        ("ProgramFiles(x86)", r"Windows Defender"),
        ("ProgramW6432", r"Windows Defender"),
        ("ProgramData", r"Microsoft\Windows Defender\Platform"),
        ("ProgramFiles", r"Microsoft Security Client"),
        ("SystemRoot", r"WinSxS"),
    ):
        base = environment.folder(variable)
        if base:
            root = ntpath.normpath(ntpath.join(base, tail))
            if root not in roots:
                roots.append(root)
    return roots


def _inside(path: str, root: str) -> bool:
    import ntpath

    path, root = ntpath.normcase(path), ntpath.normcase(root)
    return path.startswith(root.rstrip("\\") + "\\")


def _rejection(path: str, environment: LoaderEnvironment, trusted: bool) -> Optional[str]:
    """Why ``path`` must not be loaded, or None if it may; ``trusted``: in a Defender folder."""
    import ntpath
    import posixpath

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
        roots = _trusted_roots(environment)
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


def _same_folder(a: str, b: str) -> bool:
    import ntpath

    return ntpath.normcase(ntpath.normpath(a)) == ntpath.normcase(ntpath.normpath(b))


def mpclient_candidates(environment: LoaderEnvironment) -> list[str]:
    """Where to look, in order: InstallLocation (the current platform), then ``%ProgramFiles%``.

    As Microsoft's own loader does [BIN]: a 64-bit process loads ``InstallLocation +
    MpClient.dll``; a 32-bit one on 64-bit Windows ``InstallLocation + X86\\MpClient.dll``, unless
    InstallLocation is ``%ProgramW6432%\\Windows Defender\\``, when it loads
    ``%ProgramFiles%\\Windows Defender\\MpClient.dll`` (its own, 32-bit, Program Files).
    The inbox folder comes last, as this package's fallback when InstallLocation's DLL is absent.
    """
    import ntpath

    candidates = []
    program_files = environment.folder("ProgramFiles")
    inbox = (
        ntpath.join(program_files, "Windows Defender", "MpClient.dll") if program_files else None
    )
    location = environment.read_registry(DEFENDER_REGISTRY_KEY, DEFENDER_REGISTRY_VALUE)
    if location:
        location = ntpath.normpath(location)
        if environment.machine == 0x014C and environment.os_is_64_bit():
            w6432 = environment.folder("ProgramW6432")
            if w6432 and _same_folder(location, ntpath.join(w6432, "Windows Defender")):
                if inbox:
                    candidates.append(inbox)
            else:
                candidates.append(ntpath.join(location, "X86", "MpClient.dll"))
        else:
            candidates.append(ntpath.join(location, "MpClient.dll"))
    if inbox and not any(_same_folder(inbox, seen) for seen in candidates):
        candidates.append(inbox)
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
    import ntpath

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
    import ntpath
    import posixpath

    environment = environment or LoaderEnvironment()
    reason = _rejection(path, environment, trusted=False)
    if reason is not None:
        return reason, []
    notes = [f"loading MpClient from an explicit path: {path}"]
    if environment.windows and _rejection(path, environment, trusted=True) is not None:
        notes.append(
            "that path is outside the Defender folders; only do this for tests (a copied "
            "MpClient.dll also needs its sibling files: MpManagerOpen looks for MsMpLics.dll "
            "beside it and fails with 0x80070002 without it)"
        )
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

        guard = _real_dll_guard
        if guard is not None and path is None and environment is None:
            guard()  # this process's own search for the real DLL: the guard may refuse it
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
                    f"pass an absolute path to an existing file ({ENV_PATH} or dll:<path>); "
                    "a real MpClient.dll works only beside its sibling files (MsMpLics.dll "
                    "and the rest of its Defender folder), so name it where Defender installed "
                    "it rather than a copy",
                    tried=((path, reason),),
                )
            import warnings

            for note in notes:
                warnings.warn(note, MpClientOverrideWarning, stacklevel=3)
                _log.warning("mpupdate: %s", note)
        _load(lib, path)
        self.path = path
        self._lib = lib
        for name in EXPORTS:
            setattr(self, name, getattr(lib, name))

    def __repr__(self) -> str:
        return f"DllBackend({self.path!r})"

    #: The library delivers in real time.
    clock: Clock = SYSTEM_CLOCK

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
        from ._native import ffi

        hr = to_unsigned(lib.mpupdate_load(_path_bytes(path)))
        if hr:
            detail = lib.mpupdate_load_error()

            text = ffi.string(detail).decode("utf-8", "replace") if detail != ffi.NULL else ""
            reason = f"{format_hresult(hr)}" + (f": {text}" if text else "")
            if hr == 0x800700C1:  # ERROR_BAD_EXE_FORMAT
                reason += " (bitness mismatch: the DLL and this Python differ)"
            raise BackendUnavailableError(
                "load MpClient", hr, "the library could not be loaded", None, ((path, reason),)
            )
        missing = int(lib.mpupdate_missing_exports())
        if missing:
            names = [
                ffi.string(lib.mpupdate_export_name(bit)).decode("ascii")
                for bit in range(32)
                if missing & (1 << bit)
            ]
            lib.mpupdate_unload()
            raise BackendUnavailableError(
                "load MpClient",
                0x8007007F,
                "the library lacks exports MpClient.dll has: " + ", ".join(names),
                "is it really MpClient.dll?",
                ((path, "missing " + ", ".join(names)),),
            )
        _loaded_path = path


_WINDOWS = sys.platform == "win32"  # a bool, so the POSIX branch stays reachable for mypy


def _path_bytes(path: str) -> bytes:
    """The path as the loader takes it: UTF-8 on Windows (it converts to UTF-16 for
    ``LoadLibraryExW``), never the ANSI code page; the file system's bytes elsewhere."""
    if not _WINDOWS:
        return os.fsencode(path)
    try:
        return path.encode("utf-8")
    except UnicodeEncodeError:
        raise BackendUnavailableError(
            "load MpClient",
            E_NOT_LOADED,
            "the path is not valid Unicode (it holds a lone surrogate)",
            "name the DLL by a path Windows can spell",
            tried=((path, "not valid Unicode"),),
        ) from None


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


# -- seams for test harnesses (the pytest plugin of mpupdate.fakes) ------------------------------

_default_lock = threading.Lock()
_default_backends: list[Backend] = []  # use_backend's stack; the last one is the default
_real_dll_guard: Optional[Callable[[], None]] = None


class use_backend:  # a class named as the function its callers see: ``with use_backend(x):``
    """Make ``backend`` what ``backend=None`` means while the ``with`` block runs.

    ``with use_backend(FakeMpClient("reboot-required")) as fake:``: ``mpupdate.update()`` and
    ``mpupdate.Client()`` without a backend use ``fake``, ahead of ``$MPUPDATE_BACKEND``. The
    default is process-wide (every thread sees it: code under test may start its own), so it is
    meant for test harnesses, not for libraries. Blocks nest; leaving one restores what was the
    default before it. ``backend`` is anything :func:`resolve_backend` takes except None (a
    string is resolved once, on entry).
    """

    def __init__(self, backend: Union[Backend, str]) -> None:
        self.backend = resolve_backend(backend)

    def __enter__(self) -> Backend:
        with _default_lock:
            _default_backends.append(self.backend)
        return self.backend

    def __exit__(self, *exc_info: object) -> None:
        with _default_lock:
            for index in range(len(_default_backends) - 1, -1, -1):
                if _default_backends[index] is self.backend:
                    del _default_backends[index]
                    break


def set_real_dll_guard(
    guard: Optional[Callable[[], None]],
) -> Optional[Callable[[], None]]:
    """Install ``guard`` (None removes it); returns the guard it replaces.

    While installed, ``guard()`` is called whenever this process is about to search for and load
    the real MpClient.dll itself: ``DllBackend()`` with neither a path nor a
    :class:`LoaderEnvironment` (what ``backend=None`` and ``backend="dll"`` come to). It refuses
    by raising. An explicit path (``DllBackend(path)``, ``"dll:<path>"``, announced with a
    warning) and an injected environment are not guarded. The pytest plugin of ``mpupdate.fakes``
    installs one so that no test loads Defender's DLL by accident.
    """
    global _real_dll_guard
    with _default_lock:
        previous, _real_dll_guard = _real_dll_guard, guard
    return previous


def resolve_backend(spec: Union[Backend, str, None] = None) -> Backend:
    """Turn a ``backend=`` argument into a backend.

    - ``None``: the innermost :class:`use_backend` block's backend if one is active, else
      ``$MPUPDATE_BACKEND`` if set, else the real DLL (:class:`DllBackend`).
    - ``"fake"`` / ``"fake:<scenario name or .json path>"``: a FakeMpClient delivering from its
      own thread, as ASYNC does.
    - ``"dll"``: the real DLL; ``"dll:<path>"``: a library at an explicit path (warned).
    - an object with the exports: used as it is.
    """
    if spec is None:
        with _default_lock:
            default = _default_backends[-1] if _default_backends else None
        if default is not None:
            return default
        spec = os.environ.get(ENV_BACKEND) or "dll"
    if isinstance(spec, str):
        kind, _, argument = spec.partition(":")
        if kind == "fake":
            # Imported on use only: the fakes are test tooling, never loaded by the real path.
            import importlib

            fakes = importlib.import_module("mpupdate.fakes")
            backend: Backend = fakes.FakeMpClient(argument or "updated", delivery="thread")
            return backend
        if kind == "dll":
            return DllBackend(argument or None)
        raise ValueError(
            f"unknown backend {spec!r}: use 'fake', 'fake:<scenario>', 'dll' or 'dll:<path>'"
        )
    if isinstance(spec, type):  # FakeMpClient rather than FakeMpClient("updated"): say so
        raise TypeError(
            f"backend must be a backend object, not the class {spec.__name__}: pass an instance "
            f"(for example {spec.__name__}(...)), a backend string or None"
        )
    missing = [name for name in EXPORTS if not callable(getattr(spec, name, None))]
    if missing:
        raise TypeError(
            f"{type(spec).__name__} is not a backend: it lacks {', '.join(missing)} "
            "(pass None, a backend string, a DllBackend or a FakeMpClient)"
        )
    return spec
