"""Handle ownership: each MPHANDLE belongs to one :class:`OwnedHandle`, which closes it once.

A handle is closed exactly once: on ``close()``, when its owner is garbage-collected, or at
interpreter exit. A close is never made on the callback thread (MpClient hits ``DebugBreak``
there): the callback is C (:mod:`mpupdate._native`) and runs no Python, so neither our code nor
the garbage collector can run there while MpClient waits for it to return.

:class:`mpupdate.Client` owns the manager handle and each :class:`mpupdate.UpdateOperation` its
update handle; nothing else here knows about either.
"""

from __future__ import annotations

import enum
import weakref

from . import _log
from .backends import Backend
from .constants import S_FALSE
from .hresults import failed, format_hresult, to_unsigned

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Optional

__all__ = ["HandleKind", "OwnedHandle"]


class HandleKind(str, enum.Enum):
    """Which kind of MPHANDLE: the manager's (``MpManagerOpen``) or an update's (``MpUpdateStart``).

    A ``str`` equal to its value, so ``operation.abort_handle == "manager"`` holds as it always has.
    """

    MANAGER = "manager"
    UPDATE = "update"

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, format_spec: str) -> str:
        return format(str(self.value), format_spec)


def _close_handle_now(
    backend: Backend,
    handle: Any,
    kind: HandleKind,
    after_close: Optional[Callable[[], None]],
    keep_alive: Any,
) -> int:
    """Close one owned handle. ``keep_alive`` is only held here, until the close has returned."""
    try:
        hr = to_unsigned(backend.MpHandleClose(handle))
    finally:
        if after_close is not None:
            after_close()
    if failed(hr):
        _log.warning("mpupdate: MpHandleClose(%s handle) failed: %s", kind, format_hresult(hr))
    return hr


class OwnedHandle:
    """One MPHANDLE and the promise to close it exactly once (never on the callback thread).

    ``after_close`` runs once the close has returned (an update stops routing its token then).
    ``keep_alive`` (an update's MPCALLBACK_INFO, which MpClient may read until the handle is
    closed) is held by the finalizer, so it outlives the close even when the owner is
    garbage-collected.
    """

    def __init__(
        self,
        backend: Backend,
        handle: Any,
        kind: HandleKind,
        after_close: Optional[Callable[[], None]] = None,
        keep_alive: Any = None,
    ) -> None:
        self.handle = handle
        self.kind = kind
        self._finalizer = weakref.finalize(
            self, _close_handle_now, backend, handle, kind, after_close, keep_alive
        )

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def close(self) -> int:
        """Close the handle if this is the first call; returns the HRESULT (S_FALSE if already)."""
        result = self._finalizer()
        return S_FALSE if result is None else int(result)
