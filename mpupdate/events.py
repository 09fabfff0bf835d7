"""Notifications as Python values: the immutable :class:`Event`.

The compiled callback copies each notification into a C queue (see :mod:`mpupdate._native`); the
consumer's thread turns those records into Events in batches. :func:`decode` does the same from
an ``MPCALLBACK_DATA *`` directly (a reference for tests and tools; the client never calls it): it
copies every field, is NULL-safe (``pSigUpdateData`` and ``Path`` are often NULL), reads the union
only when ``Type`` says it holds ``MPSIGUPDATE_DATA``, and never raises for odd values: an unknown
notification is an Event carrying its number.

Events are cheap to build (``__slots__``, no per-field checks on the capture path) and immutable.
The timestamp is converted from the FILETIME on first access and kept.
"""

from __future__ import annotations

from ._classes import Frozen
from .constants import CallbackType, Notify, SigUpdateType, Stage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any, Callable, Optional, Union

__all__ = ["MAX_PATH_UNITS", "Event", "decode", "notify_name", "read_utf16"]

#: Longest Path we read (UTF-16 units): the Windows long-path limit. Guards a missing terminator.
MAX_PATH_UNITS = 32767

_SIGUPDATE = int(CallbackType.SIGUPDATE)

# Number -> member tables: the capture path looks numbers up directly.
_NOTIFY: dict[int, Notify] = {int(n): n for n in Notify}
_TYPES: dict[int, SigUpdateType] = {int(t): t for t in SigUpdateType}
_STAGES: dict[int, Stage] = {int(s): s for s in Stage}


def notify_name(notify: Union[Notify, int]) -> str:
    """``"SIGUPDATE_START"`` for a known number, ``"UNKNOWN_0x800E"`` otherwise."""
    if isinstance(notify, Notify):
        return notify.name
    return f"UNKNOWN_0x{int(notify):04X}"


class _EventSlots:
    """The storage of an Event. Building one through :class:`_Fill` and then making it an
    :class:`Event` (a ``__class__`` swap between classes of one layout) is the fast path."""

    __slots__ = (
        "_timestamp",
        "callback_type",
        "current_index",
        "filetime",
        "hresult",
        "notify",
        "path",
        "percent",
        "stage",
        "total_updates",
        "update_type",
    )

    notify: Union[Notify, int]
    hresult: int
    filetime: int
    callback_type: int
    percent: Optional[int]
    total_updates: Optional[int]
    current_index: Optional[int]
    update_type: Union[SigUpdateType, int, None]
    stage: Union[Stage, int, None]
    path: Optional[str]
    _timestamp: Optional[datetime]


#: Stores a converted timestamp in an immutable Event (the slot's own descriptor).
_set_timestamp: Callable[[Any, Any], None] = vars(_EventSlots)["_timestamp"].__set__


class Event(_EventSlots, Frozen):
    """One notification, copied out of the callback. Immutable, hashable, compared by value
    (every field but ``name``), with ``replace()`` as the other value classes.

    ``notify`` is a :class:`~mpupdate.Notify` member, or the plain int for a number we do not know.
    ``hresult`` is unsigned (``0x80070005``). ``timestamp`` is the notification's FILETIME as an
    aware UTC datetime (``filetime`` keeps the raw value). The six data fields are None when the
    notification carried no ``MPSIGUPDATE_DATA``. ``callback_type`` is ``MPCALLBACK_TYPE``; for
    any type other than SIGUPDATE (6) the union is not read. ``name`` is the notification's name
    (not compared).
    """

    __slots__ = ()
    __match_args__ = (
        "notify",
        "hresult",
        "timestamp",
        "percent",
        "total_updates",
        "current_index",
        "update_type",
        "stage",
        "path",
        "callback_type",
        "filetime",
    )

    def __init__(
        self,
        notify: Union[Notify, int],
        hresult: int,
        timestamp: datetime,
        percent: Optional[int] = None,
        total_updates: Optional[int] = None,
        current_index: Optional[int] = None,
        update_type: Union[SigUpdateType, int, None] = None,
        stage: Union[Stage, int, None] = None,
        path: Optional[str] = None,
        callback_type: int = _SIGUPDATE,
        filetime: int = 0,
    ) -> None:
        # A plain int of a known number becomes its member, so equal events look equal.
        values = {
            "notify": Notify.coerce(notify),
            "hresult": hresult,
            "filetime": filetime,
            "callback_type": callback_type,
            "percent": percent,
            "total_updates": total_updates,
            "current_index": current_index,
            "update_type": None if update_type is None else SigUpdateType.coerce(update_type),
            "stage": None if stage is None else Stage.coerce(stage),
            "path": path,
            "_timestamp": timestamp,
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def timestamp(self) -> datetime:
        """The FILETIME as an aware UTC datetime (converted on first access; garbage past year
        9999 clamps to ``datetime.max``)."""
        moment = self._timestamp
        if moment is None:
            from .filetime import filetime_to_datetime

            moment = filetime_to_datetime(self.filetime)
            _set_timestamp(self, moment)
        return moment

    @property
    def name(self) -> str:
        """``"SIGUPDATE_START"``, or ``"UNKNOWN_0x800E"`` for a number we do not know."""
        return notify_name(self.notify)

    @property
    def known(self) -> bool:
        """False for a notification number this package has no name for."""
        return type(self.notify) is Notify

    @property
    def has_data(self) -> bool:
        """True when the notification carried MPSIGUPDATE_DATA."""
        return self.percent is not None

    def __repr__(self) -> str:
        return f"{Frozen.__repr__(self)[:-1]}, name={self.name!r})"

    def __str__(self) -> str:
        text = f"{self.name} hr=0x{self.hresult:08X}"
        if self.percent is not None:
            index = self.current_index if self.current_index is not None else 0
            text += (
                f" {self.percent}% package {index + 1}/{self.total_updates}"
                f" type={_name(self.update_type)} stage={_name(self.stage)}"
            )
            if self.path is not None:
                text += f' path="{self.path}"'
        return text


class _Fill(_EventSlots):
    """Builds an Event's slots with plain assignments; :func:`_new_event` then makes it an Event."""

    __slots__ = ()

    def __init__(
        self,
        notify: int,
        hresult: int,
        filetime: int,
        callback_type: int,
        percent: Optional[int],
        total: Optional[int],
        index: Optional[int],
        update_type: Optional[int],
        stage: Optional[int],
        path: Optional[str],
    ) -> None:
        self.notify = _NOTIFY.get(notify, notify)
        self.hresult = hresult
        self.filetime = filetime
        self.callback_type = callback_type
        self.percent = percent
        self.total_updates = total
        self.current_index = index
        self.update_type = None if update_type is None else _TYPES.get(update_type, update_type)
        self.stage = None if stage is None else _STAGES.get(stage, stage)
        self.path = path
        self._timestamp = None


def _new_event(
    notify: int,
    hresult: int,
    filetime: int,
    callback_type: int,
    percent: Optional[int] = None,
    total: Optional[int] = None,
    index: Optional[int] = None,
    update_type: Optional[int] = None,
    stage: Optional[int] = None,
    path: Optional[str] = None,
) -> Event:
    """An Event from raw numbers (``hresult`` unsigned), its timestamp left to first access."""
    event = _Fill(
        notify, hresult, filetime, callback_type, percent, total, index, update_type, stage, path
    )
    event.__class__ = Event  # type: ignore[assignment]  # one layout: an allowed swap
    return event  # type: ignore[return-value]


def _name(value: Union[SigUpdateType, Stage, int, None]) -> str:
    return value.name if isinstance(value, (SigUpdateType, Stage)) else str(value)


def read_utf16(pointer: Any, max_units: int = MAX_PATH_UNITS) -> Optional[str]:
    """Copy a NUL-terminated UTF-16 string (``uint16_t *``); None for NULL.

    Lone surrogates are kept (``surrogatepass``), as Windows file names may hold them.
    """
    from ._mpclient import ffi, lib

    if pointer == ffi.NULL:
        return None
    units = lib.mpupdate_utf16_length(pointer, max_units)
    raw: bytes = ffi.buffer(pointer, units * 2)[:]
    return raw.decode("utf-16-le", "surrogatepass")


def decode(data: Any) -> Event:
    """Copy an ``MPCALLBACK_DATA *`` (not NULL) into an :class:`Event`, in Python: the reference
    the compiled capture is tested against."""
    from ._mpclient import ffi

    notify = int(data.Notify)
    filetime = int(data.TimeStamp)
    callback_type = int(data.Type)
    hresult = int(data.hResult) & 0xFFFFFFFF
    if callback_type == _SIGUPDATE:
        sig = data.Data.pSigUpdateData
        if sig != ffi.NULL:
            return _new_event(
                notify,
                hresult,
                filetime,
                callback_type,
                int(sig.dwPercentComplete),
                int(sig.dwTotalUpdates),
                int(sig.dwCurrentUpdateIndex),
                int(sig.eType),
                int(sig.Stage),
                read_utf16(sig.Path),
            )
    return _new_event(notify, hresult, filetime, callback_type)
