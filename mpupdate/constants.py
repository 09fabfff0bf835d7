"""Every MpClient number we use, in one place, each with the evidence behind it.

The source of truth is ``MPCLIENT.md`` (shared with the project). Its evidence marks travel with
the numbers: every member of the enumerations below has an ``evidence`` attribute
(:class:`Evidence`) and a ``note``. Several numbers are guesses, the update-source option bits in
particular; the public API therefore also accepts raw integers wherever it takes one of these, so a
wrong guess can be corrected by the caller without waiting for a release.

Raw integers round-trip: ``Notify.coerce(0x9001)`` is ``0x9001``, not an exception.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional, TypeVar, Union, cast


class Evidence(enum.Enum):
    """How sure we are of a number (the marks of MPCLIENT.md)."""

    DOC = "DOC"
    """Stated in Microsoft's documentation."""
    BIN = "BIN"
    """Observed in a shipped MpClient.dll (platform 4.18.1909.6)."""
    BIN_DERIVED = "BIN-derived"
    """Not observed; derived from observed neighbours by assuming a contiguous group."""
    HDR = "HDR"
    """From community reverse-engineered headers only."""
    GUESS = "GUESS"
    """An inference. Never present as certain."""


_E = TypeVar("_E", bound="_MarkedIntEnum")


class _MarkedIntEnum(enum.IntEnum):
    """An IntEnum whose members carry their evidence mark and a short note."""

    evidence: Evidence
    note: str

    def __new__(cls, value: int, evidence: Evidence, note: str = "") -> _MarkedIntEnum:
        member = int.__new__(cls, value)
        member._value_ = value
        member.evidence = evidence
        member.note = note
        return member

    @classmethod
    def coerce(cls: type[_E], value: Union[int, str, _E]) -> Union[_E, int]:
        """Return the member for a name or number, or the plain int for an unknown number.

        Raises ``ValueError`` for an unknown *name* (a typo, not a new number) listing the names.
        """
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            try:
                return cls[value.upper()]
            except KeyError:
                names = ", ".join(cls.__members__)
                raise ValueError(
                    f"{value!r} is not a {cls.__name__} name; use one of {names} or a number"
                ) from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{cls.__name__} must be a name or an int, not {type(value).__name__}")
        member = cls._value2member_map_.get(int(value))
        return int(value) if member is None else cast(_E, member)


class _MarkedIntFlag(enum.IntFlag):
    """An IntFlag whose members carry their evidence mark and a short note."""

    evidence: Evidence
    note: str

    def __new__(cls, value: int, evidence: Evidence, note: str = "") -> _MarkedIntFlag:
        member = int.__new__(cls, value)
        member._value_ = value
        member.evidence = evidence
        member.note = note
        return member


class UpdateOption(_MarkedIntFlag):
    """``MPUPDATE_OPTION_*`` flags for ``MpUpdateStart``'s ``dwUpdateOptions``. Published nowhere.

    The source bits (HTTP, UNC, MANAGED, UNMANAGED) are guesses; at most one may be set
    (the DLL answers E_INVALIDARG otherwise). Unnamed bits seen in the DLL: 0x4, 0x10, 0x40, 0x400.
    """

    NONE = 0x0, Evidence.BIN, "high confidence: the service's configured fallback order is used"
    ASYNC = 0x1, Evidence.BIN, "high confidence: MpUpdateStart returns once the update started"
    PROGRESS = 0x2, Evidence.BIN, "high confidence: without it *_PROGRESS notifications are dropped"
    HTTP = 0x8, Evidence.GUESS, "full package from the Microsoft security portal (MMPC)"
    UNC = 0x20, Evidence.GUESS, "file share"
    MANAGED = 0x80, Evidence.GUESS, "medium confidence: WSUS"
    UNMANAGED = 0x100, Evidence.GUESS, "medium confidence: Microsoft Update / Windows Update"


#: The update-source bits: more than one of them in one call is E_INVALIDARG [BIN].
SOURCE_OPTION_MASK = int(
    UpdateOption.HTTP | UpdateOption.UNC | UpdateOption.MANAGED | UpdateOption.UNMANAGED
)


class Source(enum.Enum):
    """Where signatures come from, named as admins know them from ``Update-MpSignature``.

    Each maps to one update-source option bit (:attr:`option`); those bits are guesses (see
    :class:`UpdateOption`). To correct one, pass ``source=Source.DEFAULT, options=<raw int>``.
    """

    DEFAULT = "Default"
    """No source bit: the machine's configured fallback order."""
    MMPC = "MMPC"
    """The Microsoft Malware Protection Center (option HTTP)."""
    FILE_SHARES = "FileShares"
    """UNC file shares (option UNC)."""
    WSUS = "InternalDefinitionUpdateServer"
    """WSUS (option MANAGED)."""
    MICROSOFT_UPDATE = "MicrosoftUpdateServer"
    """Microsoft Update (option UNMANAGED)."""

    @property
    def option(self) -> UpdateOption:
        """The ``dwUpdateOptions`` bit that selects this source."""
        return _SOURCE_OPTIONS[self]

    @classmethod
    def parse(cls, text: str) -> Source:
        """A member name (``file_shares``) or an ``Update-MpSignature`` name (``FileShares``)."""
        folded = text.replace("-", "_").upper()
        for member in cls:
            if folded in (member.name, member.value.upper()):
                return member
        names = ", ".join(m.name for m in cls)
        raise ValueError(f"unknown update source {text!r}; use one of {names}")


_SOURCE_OPTIONS = {
    Source.DEFAULT: UpdateOption.NONE,
    Source.MMPC: UpdateOption.HTTP,
    Source.FILE_SHARES: UpdateOption.UNC,
    Source.WSUS: UpdateOption.MANAGED,
    Source.MICROSOFT_UPDATE: UpdateOption.UNMANAGED,
}


class Notify(_MarkedIntEnum):
    """``MPNOTIFY`` values the update path uses.

    The docs list names without values, and one community header gives 0x1001-style groups; the
    shipped DLL uses neither for updates. Values marked BIN were seen; BIN_DERIVED ones assume the
    0x8001 group is contiguous in documented order. Any other number is kept as a plain int.
    """

    CALL_COMPLETE = 0x1002, Evidence.BIN, "seen"
    INTERNAL_FAILURE = 0x2001, Evidence.BIN, "seen; the code is in hResult"
    SIGUPDATE_START = 0x8001, Evidence.BIN, "seen; synthesized by MpClient, no data"
    SIGUPDATE_SEARCH_START = 0x8002, Evidence.BIN_DERIVED
    SIGUPDATE_SEARCH_COMPLETE = 0x8003, Evidence.BIN_DERIVED, "carries MPSIGUPDATE_DATA"
    SIGUPDATE_SOFTWARE_UPDATE_AVAILABLE = 0x8004, Evidence.BIN_DERIVED
    SIGUPDATE_DOWNLOAD_START = 0x8005, Evidence.BIN_DERIVED, "carries MPSIGUPDATE_DATA"
    SIGUPDATE_DOWNLOAD_PROGRESS = 0x8006, Evidence.BIN, "seen; dropped without PROGRESS"
    SIGUPDATE_DOWNLOAD_COMPLETE = 0x8007, Evidence.BIN_DERIVED, "carries MPSIGUPDATE_DATA"
    SIGUPDATE_INSTALL_START = 0x8008, Evidence.BIN_DERIVED, "carries MPSIGUPDATE_DATA"
    SIGUPDATE_INSTALL_PROGRESS = 0x8009, Evidence.BIN, "seen; dropped without PROGRESS"
    SIGUPDATE_INSTALL_COMPLETE = 0x800A, Evidence.BIN_DERIVED, "carries MPSIGUPDATE_DATA"
    SIGUPDATE_REBOOT_REQUIRED = 0x800B, Evidence.BIN_DERIVED, "result in hResult"
    SIGUPDATE_REQUEST_PROCESSED = 0x800C, Evidence.BIN_DERIVED, "result in hResult"
    SIGUPDATE_COMPLETE = 0x800D, Evidence.BIN, "seen; hResult is the outcome (S_FALSE: none needed)"


#: Notifications that MpClient drops unless the PROGRESS option is set [BIN].
PROGRESS_NOTIFICATIONS = frozenset(
    {Notify.SIGUPDATE_DOWNLOAD_PROGRESS, Notify.SIGUPDATE_INSTALL_PROGRESS}
)


class CallbackType(_MarkedIntEnum):
    """``MPCALLBACK_TYPE`` (explicit values in the docs; we use only SIGUPDATE; others 0-15)."""

    SIGUPDATE = 6, Evidence.DOC, "the union member is MPSIGUPDATE_DATA *"


class Control(_MarkedIntEnum):
    """``MPCONTROL`` for ``MpUpdateControl``: only ABORT is allowed for updates."""

    ABORT = 0, Evidence.HDR, "BIN treats 0 as abort"
    PAUSE = 1, Evidence.HDR, "BIN: refused with 0x800710DD"
    RESUME = 2, Evidence.HDR, "BIN: refused with 0x800710DD"


class SigUpdateType(_MarkedIntEnum):
    """``MPSIGUPDATE_TYPE``: the source a package comes from (docs' order, values implicit)."""

    NONE = 0, Evidence.DOC
    MANAGED = 1, Evidence.DOC
    HTTP = 2, Evidence.DOC
    HTTP_SRV = 3, Evidence.DOC
    UNC = 4, Evidence.DOC
    UNMANAGED = 5, Evidence.DOC
    MANAGED_PLATFORM = 6, Evidence.DOC
    UNMANAGED_PLATFORM = 7, Evidence.DOC


class Stage(_MarkedIntEnum):
    """``MP_UPDATE_STAGE`` (docs' order, values implicit)."""

    UNKNOWN = 0, Evidence.DOC
    SEARCH = 1, Evidence.DOC
    DOWNLOAD = 2, Evidence.DOC
    INSTALL = 3, Evidence.DOC


class HResultCategory(enum.Enum):
    """What kind of trouble an HRESULT means, used to choose an exception class."""

    SUCCESS = "success"
    ACCESS_DENIED = "access denied"
    SERVICE_UNAVAILABLE = "service unavailable"
    NETWORK = "network"
    INVALID_ARGUMENT = "invalid argument"
    INVALID_HANDLE = "invalid handle"
    ABORTED = "aborted"
    BACKEND = "backend"
    OTHER = "other"


@dataclass(frozen=True)
class HResultInfo:
    """One known HRESULT: its symbolic name, what it means, the usual fix and its category.

    ``evidence`` is GUESS where the symbolic name is ours (antimalware-facility codes, which no
    public header names); the code and its meaning come from MPCLIENT.md section 6.
    """

    code: int
    name: str
    message: str
    hint: Optional[str]
    category: HResultCategory
    evidence: Evidence


def _hr(
    code: int,
    name: str,
    message: str,
    hint: Optional[str],
    category: HResultCategory,
    evidence: Evidence = Evidence.DOC,
) -> tuple[int, HResultInfo]:
    return code, HResultInfo(code, name, message, hint, category, evidence)


_C = HResultCategory

#: HRESULTs users meet (MPCLIENT.md section 6), unsigned. The offline fallback for messages; where
#: ``MpErrorMessageFormat`` is available its text wins. Shared by the fakes.
HRESULTS: dict[int, HResultInfo] = dict(
    [
        _hr(0x00000000, "S_OK", "The operation completed successfully.", None, _C.SUCCESS),
        _hr(0x00000001, "S_FALSE", "No update was needed.", None, _C.SUCCESS),
        _hr(
            0x80070005,
            "E_ACCESSDENIED",
            "Access is denied.",
            "run from an elevated (administrator) prompt; tamper protection can also refuse",
            _C.ACCESS_DENIED,
        ),
        _hr(
            0x80070057,
            "E_INVALIDARG",
            "The parameter is incorrect.",
            "check the options: at most one update-source bit, and callback info is required",
            _C.INVALID_ARGUMENT,
            Evidence.BIN,
        ),
        _hr(
            0x80070006,
            "E_HANDLE",
            "The handle is invalid.",
            "a handle of the wrong kind or one already closed was passed",
            _C.INVALID_HANDLE,
            Evidence.BIN,
        ),
        _hr(
            0x800710DD,
            "ERROR_INVALID_OPERATION",
            "The operation identifier is not valid.",
            "only ABORT is supported for updates; PAUSE and RESUME are refused",
            _C.INVALID_ARGUMENT,
            Evidence.BIN,
        ),
        _hr(0x80004004, "E_ABORT", "Operation aborted.", None, _C.ABORTED),
        _hr(
            0x80004005,
            "E_FAIL",
            "Unspecified error.",
            None,
            _C.OTHER,
        ),
        _hr(
            0x800106BA,
            "RPC_S_SERVER_UNAVAILABLE",  # in facility 1, as MpClient reports it
            "The RPC server is unavailable.",
            "the Microsoft Defender Antivirus service (WinDefend) is not running; start it, "
            "or check that Defender is not disabled by another antivirus product",
            _C.SERVICE_UNAVAILABLE,
        ),
        _hr(
            0x80070652,
            "ERROR_INSTALL_ALREADY_RUNNING",
            "Another installation is already in progress.",
            "another update is running; wait for it to finish and try again",
            _C.OTHER,
        ),
        _hr(
            0x80070643,
            "ERROR_INSTALL_FAILURE",
            "Fatal error during installation.",
            "reset the definitions cache (MpCmdRun -RemoveDefinitions -DynamicSignatures) or "
            "finish a pending reboot, then retry",
            _C.OTHER,
        ),
        _hr(
            0x8024402C,
            "WU_E_PT_WINHTTP_NAME_NOT_RESOLVED",
            "The proxy or host name could not be resolved.",
            "check DNS and the WinHTTP proxy (netsh winhttp show proxy)",
            _C.NETWORK,
        ),
        _hr(
            0x80072EFD,
            "WININET_E_CANNOT_CONNECT",
            "A connection with the server could not be established.",
            "check the firewall and the WinHTTP proxy (netsh winhttp show proxy)",
            _C.NETWORK,
        ),
        _hr(
            0x80072EE2,
            "WININET_E_TIMEOUT",
            "The operation timed out.",
            "check the firewall and the WinHTTP proxy (netsh winhttp show proxy)",
            _C.NETWORK,
        ),
        _hr(
            0x80240022,
            "WU_E_ALL_UPDATES_FAILED",
            "Operation failed for all the updates.",
            "try the MMPC source (source=Source.MMPC)",
            _C.OTHER,
        ),
        _hr(
            0x8024002E,
            "WU_E_WU_DISABLED",
            "Access to an unmanaged server is not allowed.",
            "policy blocks Microsoft Update; use WSUS, file shares or MMPC",
            _C.OTHER,
        ),
        # Facility 0x50 (antimalware): no public header names these codes; the names are ours.
        _hr(
            0x8050800C,
            "MP_E_BAD_INPUT_DATA",
            "The antimalware definitions are invalid (bad input data).",
            "the definitions look corrupt; remove them "
            "(MpCmdRun -RemoveDefinitions -All) and update again",
            _C.OTHER,
            Evidence.GUESS,
        ),
        _hr(
            0x80501004,
            "MP_E_NO_INTERNET_CONNECTION",
            "No internet connection.",
            "check the network connection and the WinHTTP proxy",
            _C.NETWORK,
            Evidence.GUESS,
        ),
        *(
            _hr(
                code,
                name,
                f"The antimalware definitions database is unusable ({what}).",
                "the package is corrupt or unsigned; retry from another source",
                _C.OTHER,
                Evidence.GUESS,
            )
            for code, name, what in (
                (0x8050A001, "MP_E_BAD_DATABASE_OPEN", "cannot open"),
                (0x8050A002, "MP_E_BAD_DATABASE_HEADER", "bad header"),
                (0x8050A003, "MP_E_BAD_DATABASE_OLD_ENGINE", "needs a newer engine"),
                (0x8050A004, "MP_E_BAD_DATABASE_CONTENT", "bad content"),
                (0x8050A005, "MP_E_BAD_DATABASE_NOT_SIGNED", "not signed"),
            )
        ),
        _hr(
            0x8007007E,
            "ERROR_MOD_NOT_FOUND",
            "The specified module could not be found.",
            "no MpClient library is loaded (see mpupdate.backends)",
            _C.BACKEND,
        ),
        _hr(
            0x8007007F,
            "ERROR_PROC_NOT_FOUND",
            "The specified procedure could not be found.",
            "the loaded library lacks this export; is it really MpClient.dll?",
            _C.BACKEND,
        ),
        _hr(
            0x800705B4,
            "ERROR_TIMEOUT",
            "This operation returned because the timeout period expired.",
            "raise the timeout, or check the network if updates are usually faster",
            _C.OTHER,
        ),
    ]
)

S_OK = 0x00000000
S_FALSE = 0x00000001
E_ABORT = 0x80004004
E_FAIL = 0x80004005
E_ACCESSDENIED = 0x80070005
E_HANDLE = 0x80070006
E_INVALIDARG = 0x80070057
E_NOT_LOADED = 0x8007007E
E_PROC_NOT_FOUND = 0x8007007F
E_TIMEOUT = 0x800705B4
ERROR_INVALID_OPERATION = 0x800710DD

#: Where MpClient.dll lives (MPCLIENT.md section 5). Relative to the environment's folders.
DEFENDER_REGISTRY_KEY = r"SOFTWARE\Microsoft\Windows Defender"
DEFENDER_REGISTRY_VALUE = "InstallLocation"  # not in official docs [GUESS until verified]
