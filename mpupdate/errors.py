"""The exception hierarchy, and :class:`Step`: what an error names as having failed.

Every error names the call, the HRESULT in hex, its symbolic name, a human message and, where
known, the usual fix::

    MpUpdateStart failed: 0x80070005 E_ACCESSDENIED: Access is denied.
    Hint: run from an elevated (administrator) prompt; tamper protection can also refuse

The HRESULT helpers (signed and unsigned forms, names, :func:`message_for`) live in
:mod:`mpupdate.hresults` and are re-exported here, where they have always been importable.

Exception classes follow the *cause* (:class:`AccessDeniedError`, :class:`NetworkError`, ...), so
``except mpupdate.NetworkError`` catches a network failure whether ``MpUpdateStart`` refused at
once or the update reported it at the end. A failed update raises an :class:`UpdateError`
subclass that is also the cause's class, and carries the full :class:`~mpupdate.UpdateResult`.
"""

from __future__ import annotations

import enum

from .constants import HResultCategory
from .hresults import (
    SystemFormatter,
    describe,
    failed,
    format_hresult,
    format_system_message,
    hresult_name,
    is_system_hresult,
    message_for,
    to_signed,
    to_unsigned,
)
from .results import UpdateResult

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional, Union

__all__ = [
    "AccessDeniedError",
    "BackendUnavailableError",
    "InvalidArgumentError",
    "InvalidHandleError",
    "MpError",
    "NetworkError",
    "ProtocolError",
    "ServiceUnavailableError",
    "Step",
    "SystemFormatter",
    "UpdateAccessDeniedError",
    "UpdateError",
    "UpdateNetworkError",
    "UpdateServiceUnavailableError",
    "describe",
    "error_for",
    "failed",
    "format_hresult",
    "format_system_message",
    "hresult_name",
    "is_system_hresult",
    "message_for",
    "to_signed",
    "to_unsigned",
    "update_error_for",
]


class Step(str, enum.Enum):
    """What an :class:`MpError` names as having failed (its ``function``).

    Mostly an MpClient export; also loading the library and the two ways an update fails after it
    started: its own SIGUPDATE_COMPLETE reported a failure, or the wait for it ended without one
    (timed out, or no notification came). A ``str`` whose value is the text errors have always
    carried, so ``error.function == "MpManagerOpen"``, ``str()`` and f-strings are unchanged;
    decide on the member (``error.function is Step.MP_MANAGER_OPEN``), not on the text.
    """

    MP_MANAGER_OPEN = "MpManagerOpen"
    MP_UPDATE_START = "MpUpdateStart"
    MP_UPDATE_CONTROL = "MpUpdateControl"
    MP_HANDLE_CLOSE = "MpHandleClose"
    MP_ERROR_MESSAGE_FORMAT = "MpErrorMessageFormat"
    MP_MANAGER_VERSION_QUERY = "MpManagerVersionQuery"
    LOAD_MPCLIENT = "load MpClient"
    """Finding, vetting or loading MpClient.dll (:class:`BackendUnavailableError`)."""
    UPDATE_COMPLETE = "SIGUPDATE_COMPLETE"
    """The update ran and its SIGUPDATE_COMPLETE reported the failure."""
    UPDATE_WAIT = "UpdateOperation.wait"
    """The update was stopped while waited for (timeout), or ended without a notification."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, format_spec: str) -> str:
        return format(str(self.value), format_spec)

    @classmethod
    def coerce(cls, function: Union[Step, str]) -> Union[Step, str]:
        """The member for a step's text (``"MpManagerOpen"``), else the text as it is."""
        if isinstance(function, cls):
            return function
        try:
            return cls(function)
        except ValueError:
            return function


class MpError(Exception):
    """A call into MpClient failed.

    Attributes: ``function`` (the export or step that failed: a :class:`Step` where it is one of
    ours, which compares equal to its text; any other text as given), ``hresult`` (unsigned int),
    ``name`` (symbolic name), ``message`` (as :func:`message_for` chooses it where the call site
    could ask the DLL or the system; the offline table when none is given) and ``hint`` (the usual
    fix, or None).
    """

    def __init__(
        self,
        function: Union[Step, str],
        hresult: int,
        message: Optional[str] = None,
        hint: Optional[str] = None,
    ) -> None:
        info = describe(hresult)
        self.function: Union[Step, str] = Step.coerce(function)
        self.hresult = to_unsigned(hresult)
        self.name = info.name
        self.message = message if message else info.message
        self.hint = hint if hint is not None else info.hint
        # args keep the plain text, so repr() reads as it always has
        text = function.value if isinstance(function, Step) else function
        super().__init__(text, self.hresult, self.message, self.hint)

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
        function: Union[Step, str],
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
        function: Union[Step, str],
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


def error_for(function: Union[Step, str], hresult: int, message: Optional[str] = None) -> MpError:
    """The exception for a failed call: the class follows the HRESULT's category."""
    cls = _BY_CATEGORY.get(describe(hresult).category, MpError)
    return cls(function, hresult, message)


def update_error_for(
    function: Union[Step, str], hresult: int, message: Optional[str], result: UpdateResult
) -> UpdateError:
    """The exception for a failed update: an :class:`UpdateError`, of the cause's class if known."""
    cls = _UPDATE_BY_CATEGORY.get(describe(hresult).category, UpdateError)
    return cls(function, hresult, message, None, result)
