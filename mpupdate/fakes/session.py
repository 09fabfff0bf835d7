"""RawSession: drive any backend's exports by hand, as the compiled binding does.

For tests at the level of the DLL's exports (argument checks, handle misuse, callback threads),
below :class:`mpupdate.Client`: a capture queue registered with the compiled callback,
``MPCALLBACK_INFO`` pointing at that callback with the queue's token, a manager handle, and the
notifications received (taken from the queue as events, with the thread each arrived on).
Works with :class:`~mpupdate.fakes.FakeMpClient`, the native fake and the real DLL::

    with RawSession(FakeMpClient("updated")) as session:
        result, update = session.start()
        assert session.notifies()[-1] == Notify.SIGUPDATE_COMPLETE
        session.close(update)
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, Optional

from mpupdate._native import CALLBACK, Sink, ffi
from mpupdate.backends import Backend
from mpupdate.constants import S_OK, UpdateOption
from mpupdate.errors import format_hresult, to_unsigned
from mpupdate.events import Event

__all__ = ["RawSession"]

#: What the client starts updates with: ASYNC | PROGRESS.
ASYNC_PROGRESS = int(UpdateOption.ASYNC | UpdateOption.PROGRESS)


class RawSession:
    """A registered sink, callback info and (unless ``open_manager=False``) a manager handle.

    ``sink``: the :class:`~mpupdate._native.Sink` (a C capture queue) receiving the
    notifications; ``info``: the ``MPCALLBACK_INFO *`` to pass to ``MpUpdateStart``;
    ``manager``: the handle, or ``ffi.NULL``. :meth:`close` closes the given handles, then the
    manager, and unregisters the sink; leaving a ``with`` block unregisters it in any case.
    """

    def __init__(
        self, backend: Backend, sink: Optional[Sink] = None, open_manager: bool = True
    ) -> None:
        self.backend = backend
        self.sink = sink if sink is not None else Sink()
        self.token = self.sink.token
        self.info = ffi.new("MPCALLBACK_INFO *")
        self.info.pfnCallbackFunction = CALLBACK
        self.info.CallbackContext = self.token
        self._events: list[Event] = []
        self._threads: list[int] = []
        self.manager: Any = ffi.NULL
        self._registered = True
        if open_manager:
            out = ffi.new("MPHANDLE *")
            result = to_unsigned(backend.MpManagerOpen(0, out))
            if result != S_OK:
                self.unregister()
                raise RuntimeError(f"MpManagerOpen failed: {format_hresult(result)}")
            self.manager = out[0]

    def __enter__(self) -> RawSession:
        return self

    def __exit__(
        self,
        kind: Optional[type[BaseException]],
        value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.unregister()

    def start(self, options: int = ASYNC_PROGRESS, manager: Any = None) -> tuple[int, Any]:
        """``MpUpdateStart`` on the session's manager (or ``manager``): (HRESULT unsigned,
        the update handle or ``ffi.NULL``)."""
        out = ffi.new("MPHANDLE *")
        target = self.manager if manager is None else manager
        result = to_unsigned(self.backend.MpUpdateStart(target, options, self.info, out))
        return result, out[0]

    @property
    def events(self) -> list[Event]:
        """The notifications received so far, as events, in order."""
        self._events.extend(self.sink.take(self._threads))
        return list(self._events)

    @property
    def threads(self) -> list[int]:
        """The thread each notification so far arrived on (``threading.get_ident()`` numbers),
        in the order of :attr:`events`."""
        self._events.extend(self.sink.take(self._threads))
        return list(self._threads)

    def problems(self) -> list[str]:
        """What the capture counted instead of keeping (NULL data, overflow), as sentences."""
        self._events.extend(self.sink.take(self._threads))
        return self.sink.take_problems()

    def notifies(self) -> list[Any]:
        """The notification numbers received so far, in order."""
        return [event.notify for event in self.events]

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Wait (real time, at most ``timeout`` s) until ``count`` notifications arrived."""
        deadline = time.monotonic() + timeout
        while True:
            self._events.extend(self.sink.take(self._threads))
            remaining = deadline - time.monotonic()
            if len(self._events) >= count or remaining <= 0:
                return len(self._events) >= count
            self.sink.wait(remaining)

    def close(self, *handles: Any) -> None:
        """Close ``handles`` and then the manager, each required to answer S_OK; unregister."""
        try:
            for handle in (*handles, self.manager):
                if handle == ffi.NULL:
                    continue
                result = to_unsigned(self.backend.MpHandleClose(handle))
                if result != S_OK:
                    raise AssertionError(
                        f"MpHandleClose(0x{int(ffi.cast('uintptr_t', handle)):X}) answered "
                        f"{format_hresult(result)}"
                    )
            self.manager = ffi.NULL
        finally:
            self.unregister()

    def unregister(self) -> None:
        """Stop routing callbacks to the sink (idempotent)."""
        if self._registered:
            self._registered = False
            self.sink.close()
