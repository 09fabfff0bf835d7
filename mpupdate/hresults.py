"""HRESULT helpers: signed and unsigned forms, names, and the human text for a code.

HRESULTs are handled as *unsigned* 32-bit ints in Python (``0x80070005``, as written in docs and
logs); the C layer's signed values are converted at the boundary with :func:`to_unsigned`.

The human message comes from the best source that has one (:func:`message_for`):
``MpErrorMessageFormat`` where a manager handle exists (the shipped DLL answers E_INVALIDARG
without one [BIN]), else, on Windows and for system codes, the system's own text
(``FormatMessageW``), else the offline table of :mod:`mpupdate.constants`.

Pure functions over numbers (but for ``FormatMessageW``, loaded through ctypes on first use, on
Windows only). The exceptions built from these live in :mod:`mpupdate.errors`, which re-exports
every name here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from .constants import HRESULTS, Evidence, HResultCategory, HResultInfo

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

__all__ = [
    "SystemFormatter",
    "describe",
    "failed",
    "format_hresult",
    "format_system_message",
    "hresult_name",
    "is_system_hresult",
    "message_for",
    "to_signed",
    "to_unsigned",
]


def to_unsigned(hresult: int) -> int:
    """The unsigned 32-bit form of an HRESULT (``-2147024891`` -> ``0x80070005``)."""
    return int(hresult) & 0xFFFFFFFF


def to_signed(hresult: int) -> int:
    """The signed 32-bit form of an HRESULT, as C's ``HRESULT`` (``int32_t``) holds it."""
    value = int(hresult) & 0xFFFFFFFF
    return value - 0x1_0000_0000 if value & 0x80000000 else value


def failed(hresult: int) -> bool:
    """True for a failure HRESULT (severity bit set), like C's ``FAILED()``."""
    return bool(int(hresult) & 0x80000000)


def hresult_name(hresult: int) -> str:
    """The symbolic name of a known HRESULT, ``HRESULT_FROM_WIN32(n)`` for other Win32 codes,
    else the hex value."""
    code = to_unsigned(hresult)
    info = HRESULTS.get(code)
    if info is not None:
        return info.name
    if code & 0xFFFF0000 == 0x80070000:
        return f"HRESULT_FROM_WIN32({code & 0xFFFF})"
    return f"0x{code:08X}"


def format_hresult(hresult: int) -> str:
    """``0x80070005 E_ACCESSDENIED``; only the hex value when the code has no name."""
    code = to_unsigned(hresult)
    name = hresult_name(code)
    text = f"0x{code:08X}"
    return text if name == text else f"{text} {name}"


def describe(hresult: int) -> HResultInfo:
    """What we know offline about an HRESULT: the table entry, or a generic description."""
    code = to_unsigned(hresult)
    info = HRESULTS.get(code)
    if info is not None:
        return info
    if not failed(code):
        message, category = "Success.", HResultCategory.SUCCESS
    elif code & 0x0FFF0000 == 0x00500000:
        message, category = "An antimalware (facility 0x50) error.", HResultCategory.OTHER
    else:
        message, category = "An error this package has no description for.", HResultCategory.OTHER
    return HResultInfo(code, hresult_name(code), message, None, category, Evidence.GUESS)


# (Optional quoted: typing is imported only by type checkers, for which the alias is the same.)
SystemFormatter = Callable[[int], "Optional[str]"]
"""Gives the operating system's text for an unsigned HRESULT, or None when it has none."""

_CUSTOMER_BIT = 0x20000000
_FACILITY_MASK = 0x0FFF0000
_ANTIMALWARE_FACILITY = 0x00500000


def is_system_hresult(hresult: int) -> bool:
    """True for a failure code whose text the operating system may hold.

    Facility Win32 (``0x8007xxxx``) and the other Microsoft facilities (``0x8000xxxx``,
    ``0x8001xxxx``, ...), but neither customer codes (bit 29 set) nor the antimalware facility
    0x50, whose texts are MpClient's own. Success codes never: the system's text for Win32 code 1
    ("Incorrect function.") is not what S_FALSE means.
    """
    code = to_unsigned(hresult)
    return (
        failed(code) and not code & _CUSTOMER_BIT and code & _FACILITY_MASK != _ANTIMALWARE_FACILITY
    )


_FORMAT_MESSAGE_IGNORE_INSERTS = 0x00000200
_FORMAT_MESSAGE_FROM_SYSTEM = 0x00001000

if sys.platform == "win32":
    import functools

    @functools.lru_cache(maxsize=1)
    def _format_message_w() -> Any:
        """kernel32's FormatMessageW with its prototype (ctypes is imported on first use)."""
        import ctypes
        from ctypes import wintypes

        # kernel32 is a KnownDLL, mapped into every process already: naming it cannot load a
        # planted file (unlike MpClient.dll, which is never loaded by bare name).
        function = ctypes.WinDLL("kernel32", use_last_error=True).FormatMessageW
        function.restype = wintypes.DWORD
        function.argtypes = (
            wintypes.DWORD,  # dwFlags
            wintypes.LPCVOID,  # lpSource
            wintypes.DWORD,  # dwMessageId
            wintypes.DWORD,  # dwLanguageId
            wintypes.LPWSTR,  # lpBuffer
            wintypes.DWORD,  # nSize, in WCHARs
            ctypes.c_void_p,  # Arguments
        )
        return function

    def format_system_message(hresult: int) -> Optional[str]:
        """Windows' own text for an HRESULT (``FormatMessageW`` from the system's message table).

        None when the system has no text for the code (and always off Windows). A facility-Win32
        code is looked up by its Win32 error number. The text is in the user's language, as
        ``MpErrorMessageFormat``'s is; inserts such as ``%1`` are left as they are.
        """
        import ctypes

        code = to_unsigned(hresult)
        message_id = code & 0xFFFF if code & 0xFFFF0000 == 0x80070000 else code
        try:
            function = _format_message_w()
        except (OSError, AttributeError):
            return None
        buffer = ctypes.create_unicode_buffer(4096)
        length = int(
            function(
                _FORMAT_MESSAGE_FROM_SYSTEM | _FORMAT_MESSAGE_IGNORE_INSERTS,
                None,
                message_id,
                0,  # the thread's, then the user's, then the system's language
                buffer,
                len(buffer),
                None,
            )
        )
        text = buffer.value[:length].strip() if length else ""
        return text or None

else:

    def format_system_message(hresult: int) -> Optional[str]:
        """Windows' own text for an HRESULT (``FormatMessageW``): always None off Windows."""
        return None


def message_for(
    hresult: int,
    dll_text: Optional[str] = None,
    system: Optional[SystemFormatter] = format_system_message,
) -> str:
    """The human text for an HRESULT, from the first source that has one.

    1. ``dll_text``: what ``MpErrorMessageFormat`` gave (only with a manager handle);
    2. ``system(code)`` for a system code (:func:`is_system_hresult`): by default
       :func:`format_system_message`, which is FormatMessageW on Windows and None elsewhere;
    3. the offline table (:func:`describe`), whose generic text covers any other code.

    Blank texts count as none; texts are stripped. Pure but for ``system``, which a caller (or a
    test) may replace, or turn off with None.
    """
    if dll_text is not None and dll_text.strip():
        return dll_text.strip()
    code = to_unsigned(hresult)
    if system is not None and is_system_hresult(code):
        text = system(code)
        if text is not None and text.strip():
            return text.strip()
    return describe(code).message
