"""Notifications as Python values: ``MPCALLBACK_DATA *`` -> frozen :class:`Event`.

:func:`decode` runs inside the callback. It copies every field out (MpClient frees the data right
after the callback returns), is NULL-safe (``pSigUpdateData`` and ``Path`` are often NULL), reads
the union only when ``Type`` says it holds ``MPSIGUPDATE_DATA``, and never raises for odd values:
an unknown notification is an Event carrying its number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional, Union

from ._mpclient import ffi, lib
from .constants import CallbackType, Notify, SigUpdateType, Stage
from .filetime import filetime_to_datetime

#: Longest Path we read (UTF-16 units): the Windows long-path limit. Guards a missing terminator.
MAX_PATH_UNITS = 32767

_SIGUPDATE = int(CallbackType.SIGUPDATE)


def notify_name(notify: Union[Notify, int]) -> str:
    """``"SIGUPDATE_START"`` for a known number, ``"UNKNOWN_0x800E"`` otherwise."""
    if isinstance(notify, Notify):
        return notify.name
    return f"UNKNOWN_0x{int(notify):04X}"


@dataclass(frozen=True)
class Event:
    """One notification, copied out of the callback.

    ``notify`` is a :class:`~mpupdate.Notify` member, or the plain int for a number we do not know.
    ``hresult`` is unsigned (``0x80070005``). ``timestamp`` is the notification's FILETIME as an
    aware UTC datetime (``filetime`` keeps the raw value). The six data fields are None when the
    notification carried no ``MPSIGUPDATE_DATA``. ``callback_type`` is ``MPCALLBACK_TYPE``; for
    any type other than SIGUPDATE (6) the union is not read.
    """

    notify: Union[Notify, int]
    hresult: int
    timestamp: datetime
    percent: Optional[int] = None
    total_updates: Optional[int] = None
    current_index: Optional[int] = None
    update_type: Union[SigUpdateType, int, None] = None
    stage: Union[Stage, int, None] = None
    path: Optional[str] = None
    callback_type: int = _SIGUPDATE
    filetime: int = 0
    name: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        # A plain int of a known number becomes its member, so equal events look equal.
        # (decode() already hands over members: the type checks keep that path cheap.)
        if type(self.notify) is not Notify:
            object.__setattr__(self, "notify", Notify.coerce(self.notify))
        if self.update_type is not None and type(self.update_type) is not SigUpdateType:
            object.__setattr__(self, "update_type", SigUpdateType.coerce(self.update_type))
        if self.stage is not None and type(self.stage) is not Stage:
            object.__setattr__(self, "stage", Stage.coerce(self.stage))
        object.__setattr__(self, "name", notify_name(self.notify))

    @property
    def known(self) -> bool:
        """False for a notification number this package has no name for."""
        return isinstance(self.notify, Notify)

    @property
    def has_data(self) -> bool:
        """True when the notification carried MPSIGUPDATE_DATA."""
        return self.percent is not None

    def __str__(self) -> str:
        text = f"{self.name} hr=0x{self.hresult:08X}"
        if self.has_data:
            assert self.current_index is not None
            text += (
                f" {self.percent}% package {self.current_index + 1}/{self.total_updates}"
                f" type={_name(self.update_type)} stage={_name(self.stage)}"
            )
            if self.path is not None:
                text += f' path="{self.path}"'
        return text


def _name(value: Union[SigUpdateType, Stage, int, None]) -> str:
    return value.name if isinstance(value, (SigUpdateType, Stage)) else str(value)


def read_utf16(pointer: Any, max_units: int = MAX_PATH_UNITS) -> Optional[str]:
    """Copy a NUL-terminated UTF-16 string (``uint16_t *``); None for NULL.

    Lone surrogates are kept (``surrogatepass``), as Windows file names may hold them.
    """
    if pointer == ffi.NULL:
        return None
    units = lib.mpupdate_utf16_length(pointer, max_units)
    raw: bytes = ffi.buffer(pointer, units * 2)[:]
    return raw.decode("utf-16-le", "surrogatepass")


# Number -> member tables: decode runs inside the callback, so it looks numbers up directly.
_NOTIFY: dict[int, Notify] = {int(n): n for n in Notify}
_TYPES: dict[int, SigUpdateType] = {int(t): t for t in SigUpdateType}
_STAGES: dict[int, Stage] = {int(s): s for s in Stage}


def decode(data: Any) -> Event:
    """Copy an ``MPCALLBACK_DATA *`` (not NULL) into an :class:`Event`."""
    raw_notify = int(data.Notify)
    notify: Union[Notify, int] = _NOTIFY.get(raw_notify, raw_notify)
    filetime = int(data.TimeStamp)
    callback_type = int(data.Type)
    hresult = int(data.hResult) & 0xFFFFFFFF  # inline: the callback's hot path
    timestamp = filetime_to_datetime(filetime)
    if callback_type == _SIGUPDATE:
        sig = data.Data.pSigUpdateData
        if sig != ffi.NULL:
            return Event(
                notify,
                hresult,
                timestamp,
                percent=int(sig.dwPercentComplete),
                total_updates=int(sig.dwTotalUpdates),
                current_index=int(sig.dwCurrentUpdateIndex),
                update_type=_TYPES.get(int(sig.eType), int(sig.eType)),
                stage=_STAGES.get(int(sig.Stage), int(sig.Stage)),
                path=read_utf16(sig.Path),
                callback_type=callback_type,
                filetime=filetime,
            )
    return Event(notify, hresult, timestamp, callback_type=callback_type, filetime=filetime)
