"""Handle ownership: each MPHANDLE belongs to one :class:`OwnedHandle`, which closes it once.

A handle is closed exactly once: on ``close()``, when its owner is garbage-collected, or at
interpreter exit. A close is never made on the callback thread (MpClient hits ``DebugBreak``
there); if the garbage collector happens to run there, the whole close is deferred to the next
:func:`flush_deferred_closes` (every Client and every start of an update runs one, and so does a
manager's close, before it) or to interpreter exit. Updates are closed before their manager.

:class:`mpupdate.Client` owns the manager handle and each :class:`mpupdate.UpdateOperation` its
update handle; nothing else here knows about either.
"""

from __future__ import annotations

import atexit
import enum
import logging
import threading
import weakref
from typing import Any, Callable, Optional

from . import _native
from .backends import Backend
from .constants import S_FALSE
from .hresults import failed, format_hresult, to_unsigned

__all__ = ["HandleKind", "OwnedHandle", "flush_deferred_closes"]

log = logging.getLogger("mpupdate")


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


_deferred_lock = threading.Lock()
#: Closes requested on the callback thread (by the garbage collector), each with everything
#: it needs (the update's callback info and routing token live until it runs).
_deferred: list[Callable[[], int]] = []


def _close_handle_now(
    backend: Backend,
    handle: Any,
    kind: HandleKind,
    after_close: Optional[Callable[[], None]],
    keep_alive: Any,
) -> int:
    """Close one owned handle; defer the whole close if this thread is inside the callback.

    A manager's deferred update closes run first: updates are closed before their manager.
    ``keep_alive`` is only held here, until the close has returned.
    """
    if _native.in_callback():
        with _deferred_lock:
            _deferred.append(
                lambda: _close_handle_now(backend, handle, kind, after_close, keep_alive)
            )
        return 0
    if kind is HandleKind.MANAGER:
        flush_deferred_closes()
    try:
        hr = to_unsigned(backend.MpHandleClose(handle))
    finally:
        if after_close is not None:
            after_close()
    if failed(hr):
        log.warning("mpupdate: MpHandleClose(%s handle) failed: %s", kind, format_hresult(hr))
    return hr


def flush_deferred_closes() -> None:
    """Run the closes that had to wait until we were off the callback thread."""
    if _native.in_callback():
        return
    with _deferred_lock:
        pending = _deferred[:]
        del _deferred[:]
    for close in pending:
        close()


atexit.register(flush_deferred_closes)


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
