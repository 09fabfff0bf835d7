"""Every MpClient number we use, in one place, each with the evidence behind it.

The source of truth is ``MPCLIENT.md`` (shared with the project). Its evidence marks travel with
the numbers: every member of the enumerations below has an ``evidence`` attribute
(:class:`Evidence`) and a ``note``; where MPCLIENT.md grades a BIN observation, the note begins
with its confidence ("high confidence: ...", "medium confidence: ..."). Several numbers are
derived or inferred rather than seen, and three of the update-source option bits are seen only
with medium confidence; the public API therefore also accepts raw integers wherever it takes one
of these, so a wrong number can be corrected by the caller without waiting for a release.

Raw integers round-trip: ``Notify.coerce(0x9001)`` is ``0x9001``, not an exception.
"""

from __future__ import annotations

import enum

from ._classes import Frozen

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional, TypeVar, Union


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


if TYPE_CHECKING:
    _E = TypeVar("_E", bound="_MarkedIntEnum")
    _M = TypeVar("_M", "_MarkedIntEnum", "_MarkedIntFlag")


def _new_marked(cls: type[_M], value: int, evidence: Evidence, note: str = "") -> _M:
    """The members' ``__new__``: an int carrying its evidence mark and a short note."""
    member = int.__new__(cls, value)
    member._value_ = value
    member.evidence = evidence
    member.note = note
    return member


class _MarkedIntEnum(enum.IntEnum):
    """An IntEnum whose members carry their evidence mark and a short note."""

    evidence: Evidence
    note: str

    if not TYPE_CHECKING:  # checkers see IntEnum's __new__(value): Cls(0x8001) looks a member up
        __new__ = _new_marked

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
        members: dict[int, Any] = cls._value2member_map_  # typeshed: dict[Any, Enum]
        member: Optional[_E] = members.get(int(value))
        return int(value) if member is None else member


class _MarkedIntFlag(enum.IntFlag):
    """An IntFlag whose members carry their evidence mark and a short note."""

    evidence: Evidence
    note: str

    if not TYPE_CHECKING:  # checkers see IntFlag's __new__(value): Cls(0x8001) looks a member up
        __new__ = _new_marked


class UpdateOption(_MarkedIntFlag):
    """``MPUPDATE_OPTION_*`` flags for ``MpUpdateStart``'s ``dwUpdateOptions``. Published nowhere.

    The source bits (HTTP, UNC, MANAGED, UNMANAGED) are read from the shipped DLL [BIN]: HTTP from
    the ``MpClient_ForceHttpUpdate`` setting, which rewrites the options to
    ``(opts & ~0x1F0) | 0x8``, and all four from the names of the service's fallback order (MMPC,
    FileShares, InternalDefinitionUpdateServer, MicrosoftUpdateServer); the last three with medium
    confidence. Unnamed bits seen in the DLL: 0x4, 0x10, 0x40, 0x200, 0x400. Which combinations
    the DLL refuses: :func:`options_refused`.
    """

    NONE = 0x0, Evidence.BIN, "high confidence: the service's configured fallback order is used"
    ASYNC = 0x1, Evidence.BIN, "high confidence: MpUpdateStart returns once the update started"
    PROGRESS = 0x2, Evidence.BIN, "high confidence: without it *_PROGRESS notifications are dropped"
    HTTP = (
        0x8,
        Evidence.BIN,
        "MMPC, the full package from the Microsoft security portal: MpClient_ForceHttpUpdate "
        "rewrites the options to (opts & ~0x1F0) | 0x8, and the fallback-order name MMPC maps here",
    )
    UNC = 0x20, Evidence.BIN, "medium confidence: file share (fallback-order name FileShares)"
    MANAGED = (
        0x80,
        Evidence.BIN,
        "medium confidence: WSUS (fallback-order name InternalDefinitionUpdateServer)",
    )
    UNMANAGED = (
        0x100,
        Evidence.BIN,
        "medium confidence: Microsoft Update / Windows Update "
        "(fallback-order name MicrosoftUpdateServer)",
    )


# The option check of MpUpdateStart in the shipped DLL [BIN, 4.18.1909.6]. The fakes refuse
# exactly what it refuses: mpupdate/fakes/dll.py through options_refused(),
# mpupdate/fakes/native/mpfake.c with its own #defines, which a test holds equal to these.

#: The update-source bits as the DLL's option check counts them [BIN]: more than one of them in
#: one call is E_INVALIDARG. The four named sources plus the unnamed bits 0x10 and 0x40.
SOURCE_OPTION_MASK = 0x1F8

#: An unnamed option bit seen in the DLL [BIN]; what it selects is unknown.
OPTION_0X200 = 0x200

#: Bits the DLL refuses together with :data:`OPTION_0X200` [BIN]: HTTP, 0x10, UNC, 0x40.
OPTIONS_REFUSED_WITH_0X200 = 0x78


def options_refused(options: int) -> bool:
    """True where ``MpUpdateStart`` answers E_INVALIDARG for these ``dwUpdateOptions`` [BIN].

    As the option check of 4.18.1909.6: any bit of 0x78 combined with 0x200 is refused;
    otherwise more than one bit of 0x1F8 (the source bits) is refused. Nothing else is.
    """
    value = int(options) & 0xFFFFFFFF
    if value & OPTION_0X200 and value & OPTIONS_REFUSED_WITH_0X200:
        return True
    return bin(value & SOURCE_OPTION_MASK).count("1") > 1


class Source(enum.Enum):
    """Where signatures come from, named as admins know them from ``Update-MpSignature``.

    Each maps to one update-source option bit (:attr:`option`), read from the shipped DLL, three
    of them with medium confidence (see :class:`UpdateOption`). To correct one, pass
    ``source=Source.DEFAULT, options=<raw int>``.
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


class HResultInfo(Frozen):
    """One known HRESULT: its symbolic name, what it means, the usual fix and its category.

    ``evidence`` is GUESS where the symbolic name is ours (antimalware-facility codes, which no
    public header names); the code and its meaning come from MPCLIENT.md sections 5 and 6, and
    Windows' own wording (as FormatMessageW gives it in English) where Windows has one.
    Immutable; equal when the fields are.
    """

    __match_args__ = ("code", "name", "message", "hint", "category", "evidence")
    __slots__ = __match_args__

    code: int
    name: str
    message: str
    hint: Optional[str]
    category: HResultCategory
    evidence: Evidence

    def __init__(
        self,
        code: int,
        name: str,
        message: str,
        hint: Optional[str],
        category: HResultCategory,
        evidence: Evidence,
    ) -> None:
        field = object.__setattr__
        field(self, "code", code)
        field(self, "name", name)
        field(self, "message", message)
        field(self, "hint", hint)
        field(self, "category", category)
        field(self, "evidence", evidence)


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

_SERVICE_HINT = (
    "the Microsoft Defender Antivirus service (WinDefend) is not running; start it, "
    "or check that Defender is not disabled by another antivirus product"
)

#: HRESULTs users meet (MPCLIENT.md sections 5 and 6), unsigned. The offline fallback for
#: messages: ``MpErrorMessageFormat``'s text wins where it answers, then (on Windows, for system
#: codes) FormatMessageW's; see :func:`mpupdate.errors.message_for`. Shared by the fakes, whose
#: MpErrorMessageFormat answers with these texts. Names are unique (scenarios use them).
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
        # [BIN] The shipped DLL answers E_INVALIDARG also to a NULL manager handle, in
        # MpUpdateStart (with or without callback info) and MpErrorMessageFormat: seen calling the
        # x64 DLL of platform 4.18.1909.6 under Wine. A non-NULL handle of the wrong kind is
        # E_HANDLE there; newer DLLs answer E_INVALIDARG to it too (seen for MpHandleClose,
        # assumed for MpUpdateControl [GUESS]).
        _hr(
            0x80070057,
            "E_INVALIDARG",
            "The parameter is incorrect.",
            "check the arguments: at most one update-source bit (none of 0x78 with 0x200), "
            "callback info is required, and the manager handle must be open (not NULL)",
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
        # Met before a manager exists (MPCLIENT.md section 5), when MpErrorMessageFormat cannot
        # describe them: Windows' own wording, as FormatMessageW gives it in English.
        _hr(
            0x80070002,
            "ERROR_FILE_NOT_FOUND",
            "The system cannot find the file specified.",
            "if MpManagerOpen failed: it needs the files beside MpClient.dll (it looks for "
            "MsMpLics.dll there), so a copied MpClient.dll alone does not work; load the one in "
            "the Defender folder (backend=None finds it)",
            _C.OTHER,
        ),
        _hr(
            0x80070003,
            "ERROR_PATH_NOT_FOUND",
            "The system cannot find the path specified.",
            "a folder in a path does not exist: check the MpClient.dll path and, for file-share "
            "updates, the share's path",
            _C.OTHER,
        ),
        _hr(
            0x80070426,
            "ERROR_SERVICE_NOT_ACTIVE",
            "The service has not been started.",
            _SERVICE_HINT,
            _C.SERVICE_UNAVAILABLE,
        ),
        _hr(
            0x800706BA,
            # The facility-1 form below already has the plain name (scenarios name codes by it).
            "HRESULT_FROM_WIN32(RPC_S_SERVER_UNAVAILABLE)",
            "The RPC server is unavailable.",
            _SERVICE_HINT,
            _C.SERVICE_UNAVAILABLE,
        ),
        _hr(
            0x800700C1,
            "ERROR_BAD_EXE_FORMAT",
            "%1 is not a valid Win32 application.",
            "the DLL is not a valid DLL for this Python's bitness: a 64-bit Python needs the "
            "x64 MpClient.dll, a 32-bit Python the one in the X86 subfolder",
            _C.BACKEND,
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
            _SERVICE_HINT,
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

# The codes the code itself names, taken from the table by name (so each number is written once).
_CODE_BY_NAME = {info.name: code for code, info in HRESULTS.items()}
S_OK = _CODE_BY_NAME["S_OK"]
S_FALSE = _CODE_BY_NAME["S_FALSE"]
E_ABORT = _CODE_BY_NAME["E_ABORT"]
E_FAIL = _CODE_BY_NAME["E_FAIL"]
E_ACCESSDENIED = _CODE_BY_NAME["E_ACCESSDENIED"]
E_HANDLE = _CODE_BY_NAME["E_HANDLE"]
E_INVALIDARG = _CODE_BY_NAME["E_INVALIDARG"]
E_NOT_LOADED = _CODE_BY_NAME["ERROR_MOD_NOT_FOUND"]
E_PROC_NOT_FOUND = _CODE_BY_NAME["ERROR_PROC_NOT_FOUND"]
E_TIMEOUT = _CODE_BY_NAME["ERROR_TIMEOUT"]
ERROR_INVALID_OPERATION = _CODE_BY_NAME["ERROR_INVALID_OPERATION"]

#: Where MpClient.dll lives (MPCLIENT.md section 5). Relative to the environment's folders.
DEFENDER_REGISTRY_KEY = r"SOFTWARE\Microsoft\Windows Defender"
#: Not in official docs; [BIN] Microsoft's own LoadMpClientHelper reads it (RRF_SUBKEY_WOW6464KEY).
DEFENDER_REGISTRY_VALUE = "InstallLocation"
