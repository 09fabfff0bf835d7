"""HRESULT helpers and the exception hierarchy.

Every error names the call, the HRESULT in hex, its symbolic name, a human message and, where
known, the usual fix::

    MpUpdateStart failed: 0x80070005 E_ACCESSDENIED: Access is denied.
    Hint: run from an elevated (administrator) prompt; tamper protection can also refuse

HRESULTs are handled as *unsigned* 32-bit ints in Python (``0x80070005``, as written in docs and
logs); the C layer's signed values are converted at the boundary with :func:`to_unsigned`.

Exception classes follow the *cause* (:class:`AccessDeniedError`, :class:`NetworkError`, ...), so
``except mpupdate.NetworkError`` catches a network failure whether ``MpUpdateStart`` refused at
once or the update reported it at the end. A failed update raises an :class:`UpdateError`
subclass that is also the cause's class, and carries the full :class:`~mpupdate.UpdateResult`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from .constants import HRESULTS, HResultCategory, HResultInfo

if TYPE_CHECKING:
    from .machine import UpdateResult

__all__ = [
    "AccessDeniedError",
    "BackendUnavailableError",
    "InvalidArgumentError",
    "InvalidHandleError",
    "MpError",
    "NetworkError",
    "ProtocolError",
    "ServiceUnavailableError",
    "UpdateAccessDeniedError",
    "UpdateError",
    "UpdateNetworkError",
    "UpdateServiceUnavailableError",
    "describe",
    "error_for",
    "failed",
    "format_hresult",
    "hresult_name",
    "to_signed",
    "to_unsigned",
    "update_error_for",
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
    from .constants import Evidence

    if not failed(code):
        message, category = "Success.", HResultCategory.SUCCESS
    elif code & 0x0FFF0000 == 0x00500000:
        message, category = "An antimalware (facility 0x50) error.", HResultCategory.OTHER
    else:
        message, category = "An error this package has no description for.", HResultCategory.OTHER
    return HResultInfo(code, hresult_name(code), message, None, category, Evidence.GUESS)


class MpError(Exception):
    """A call into MpClient failed.

    Attributes: ``function`` (the export or step that failed), ``hresult`` (unsigned int),
    ``name`` (symbolic name), ``message`` (from ``MpErrorMessageFormat`` where available, else the
    offline table) and ``hint`` (the usual fix, or None).
    """

    def __init__(
        self,
        function: str,
        hresult: int,
        message: Optional[str] = None,
        hint: Optional[str] = None,
    ) -> None:
        info = describe(hresult)
        self.function = function
        self.hresult = to_unsigned(hresult)
        self.name = info.name
        self.message = message if message else info.message
        self.hint = hint if hint is not None else info.hint
        super().__init__(function, self.hresult, self.message, self.hint)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.function, self.hresult, self.message, self.hint))

    def __str__(self) -> str:
        text = f"{self.function} failed: {format_hresult(self.hresult)}: {self.message}"
        if self.hint:
            text += f"\nHint: {self.hint}"
        return text


class AccessDeniedError(MpError):
    """E_ACCESSDENIED: not elevated, or refused by tamper protection."""


class ServiceUnavailableError(MpError):
    """The Defender service (WinDefend) could not be reached."""


class NetworkError(MpError):
    """The update source could not be reached (DNS, proxy, firewall, no connection)."""


class InvalidArgumentError(MpError):
    """The DLL rejected an argument (E_INVALIDARG, or PAUSE/RESUME of an update)."""


class InvalidHandleError(MpError):
    """A handle of the wrong kind, or one already closed (E_HANDLE)."""


class BackendUnavailableError(MpError):
    """No MpClient backend could be loaded here; the message says what to do instead.

    ``tried`` lists ``(path, reason)`` for every location considered, when a search was made.
    """

    def __init__(
        self,
        function: str,
        hresult: int,
        message: Optional[str] = None,
        hint: Optional[str] = None,
        tried: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(function, hresult, message, hint)
        self.tried = tuple(tried)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.function, self.hresult, self.message, self.hint, self.tried))

    def __str__(self) -> str:
        text = f"{self.function}: {self.message}"
        for path, reason in self.tried:
            text += f"\n  tried {path}: {reason}"
        if self.hint:
            text += f"\nHint: {self.hint}"
        return text


class ProtocolError(Exception):
    """In strict mode, a notification broke the update grammar of MPCLIENT.md section 4.

    ``event`` is the offending event, ``position`` its index in the update's event list,
    ``expected`` what the grammar allowed there.
    """

    def __init__(self, message: str, event: Any = None, position: int = -1, expected: str = ""):
        super().__init__(message)
        self.event = event
        self.position = position
        self.expected = expected


class UpdateError(MpError):
    """The update ended FAILED, CANCELLED or TIMED_OUT (raised when ``check=True``).

    ``result`` is the :class:`~mpupdate.UpdateResult`, events and anomalies included. Where the
    failure has a known cause the instance is also of that cause's class, for example
    :class:`UpdateAccessDeniedError` is both an ``UpdateError`` and an ``AccessDeniedError``.
    """

    def __init__(
        self,
        function: str,
        hresult: int,
        message: Optional[str] = None,
        hint: Optional[str] = None,
        result: Optional[UpdateResult] = None,
    ) -> None:
        super().__init__(function, hresult, message, hint)
        self.result = result

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.function, self.hresult, self.message, self.hint, self.result))

    def __str__(self) -> str:
        outcome = self.result.outcome.name if self.result is not None else "FAILED"
        text = f"signature update {outcome}"
        text += f" ({self.function}): {format_hresult(self.hresult)}: {self.message}"
        if self.hint:
            text += f"\nHint: {self.hint}"
        return text


class UpdateAccessDeniedError(UpdateError, AccessDeniedError):
    """The update failed with access denied."""


class UpdateServiceUnavailableError(UpdateError, ServiceUnavailableError):
    """The update failed because the Defender service could not be reached."""


class UpdateNetworkError(UpdateError, NetworkError):
    """The update failed because the update source could not be reached."""


_BY_CATEGORY: dict[HResultCategory, type[MpError]] = {
    HResultCategory.ACCESS_DENIED: AccessDeniedError,
    HResultCategory.SERVICE_UNAVAILABLE: ServiceUnavailableError,
    HResultCategory.NETWORK: NetworkError,
    HResultCategory.INVALID_ARGUMENT: InvalidArgumentError,
    HResultCategory.INVALID_HANDLE: InvalidHandleError,
    HResultCategory.BACKEND: BackendUnavailableError,
}

_UPDATE_BY_CATEGORY: dict[HResultCategory, type[UpdateError]] = {
    HResultCategory.ACCESS_DENIED: UpdateAccessDeniedError,
    HResultCategory.SERVICE_UNAVAILABLE: UpdateServiceUnavailableError,
    HResultCategory.NETWORK: UpdateNetworkError,
}


def error_for(function: str, hresult: int, message: Optional[str] = None) -> MpError:
    """The exception for a failed call: the class follows the HRESULT's category."""
    cls = _BY_CATEGORY.get(describe(hresult).category, MpError)
    return cls(function, hresult, message)


def update_error_for(
    function: str, hresult: int, message: Optional[str], result: UpdateResult
) -> UpdateError:
    """The exception for a failed update: an :class:`UpdateError`, of the cause's class if known."""
    cls = _UPDATE_BY_CATEGORY.get(describe(hresult).category, UpdateError)
    return cls(function, hresult, message, None, result)
