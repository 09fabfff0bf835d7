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
import threading
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


#: How long closing a manager waits for one of its update handles' close in flight on another
#: thread (MpClient cancels and waits for the update inside that call) before it goes ahead.
CHILD_CLOSE_WAIT = 30.0


class _Closing:
    """What closing one handle needs besides its owner (which may be gone): the finalizer that
    closes it, an event set once the close has returned, and (a manager's) the open update
    handles, closed before it. Held by the finalizer, by the owner and by the parent."""

    __slots__ = ("children", "closer", "done", "finalizer", "lock", "parent")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.children: list[_Closing] = []
        self.finalizer: Optional[weakref.finalize[Any, Any]] = None
        self.closer: Optional[int] = None  # the thread running the close
        self.parent: Optional[_Closing] = None

    def wait_closed(self, timeout: Optional[float]) -> bool:
        """Wait until the close (in flight on another thread) has returned; True if it has."""
        if self.closer == threading.get_ident():  # our own close, further up this stack
            return self.done.is_set()
        return self.done.wait(timeout)


def _close_handle_now(
    closing: _Closing,
    backend: Backend,
    handle: Any,
    kind: HandleKind,
    after_close: Optional[Callable[[], None]],
    keep_alive: Any,
) -> int:
    """Close one owned handle: first its children (a manager's update handles, each closed here
    or, if its close is running on another thread, waited for), then it. ``keep_alive`` is only
    held here, until the close has returned."""
    closing.closer = threading.get_ident()
    try:
        with closing.lock:
            children, closing.children = closing.children, []
        for child in children:
            if child.finalizer is not None:
                child.finalizer()  # closes it now, unless it is closed or closing elsewhere
            if not child.wait_closed(CHILD_CLOSE_WAIT):
                _log.warning(
                    "mpupdate: an update handle's close on another thread did not return "
                    "within %g s; closing its manager handle anyway",
                    CHILD_CLOSE_WAIT,
                )
        try:
            hr = to_unsigned(backend.MpHandleClose(handle))
        finally:
            if after_close is not None:
                after_close()
    finally:
        parent = closing.parent
        if parent is not None:
            with parent.lock:
                if closing in parent.children:
                    parent.children.remove(closing)
        closing.done.set()
    if failed(hr):
        _log.warning("mpupdate: MpHandleClose(%s handle) failed: %s", kind, format_hresult(hr))
    return hr


class OwnedHandle:
    """One MPHANDLE and the promise to close it exactly once (never on the callback thread).

    ``after_close`` runs once the close has returned (an update stops routing its token then).
    ``keep_alive`` (an update's MPCALLBACK_INFO, which MpClient may read until the handle is
    closed) is held by the finalizer, so it outlives the close even when the owner is
    garbage-collected. ``parent`` (an update handle's manager) closes this handle first when it
    is closed itself, also at interpreter exit, also when this handle's close is running on
    another thread (it waits for it): a manager is never closed while one of its updates is open.
    """

    def __init__(
        self,
        backend: Backend,
        handle: Any,
        kind: HandleKind,
        after_close: Optional[Callable[[], None]] = None,
        keep_alive: Any = None,
        parent: Optional[OwnedHandle] = None,
    ) -> None:
        self.handle = handle
        self.kind = kind
        closing = _Closing()
        self._closing: _Closing = closing
        closing.finalizer = weakref.finalize(
            self, _close_handle_now, closing, backend, handle, kind, after_close, keep_alive
        )
        if parent is not None:  # once this close can run: the parent may call it from now on
            closing.parent = parent.adopt(closing)

    def adopt(self, child: _Closing) -> _Closing:
        """Make ``child`` (an update handle's close) one this handle's close does first."""
        with self._closing.lock:
            self._closing.children.append(child)
        return self._closing

    @property
    def closed(self) -> bool:
        """True once the close has started (it may still be running on another thread)."""
        finalizer = self._closing.finalizer
        return finalizer is None or not finalizer.alive

    def close(self) -> int:
        """Close the handle if this is the first call, and return the HRESULT; a later call (also
        one made while the first is still running on another thread) waits until that close
        has returned, and returns S_FALSE."""
        finalizer = self._closing.finalizer
        result = None if finalizer is None else finalizer()
        if result is None:
            self._closing.wait_closed(None)
            return S_FALSE
        return int(result)
