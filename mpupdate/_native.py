"""The compiled module, and the Python body of its ``extern "Python"`` callback.

MpClient calls ``mpupdate_callback(context, pData)`` through the function pointer we put in
``MPCALLBACK_INFO``; ``context`` is a small integer token, not a pointer. The token is looked up in
a registry of live :class:`Sink` objects, so a late or stray notification for an update that is
already gone finds nothing and is counted, never dereferenced (no ``ffi.from_handle`` on a dead
handle). The callback decodes, enqueues and returns 0; it never raises and never blocks for long.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from typing import Any, Optional

from ._mpclient import ffi, lib
from .events import Event, decode

__all__ = ["Sink", "ffi", "in_callback", "lib", "register", "registry_size", "unregister"]


class Sink:
    """Where the callback puts one update's notifications; the caller's thread takes them.

    ``condition`` guards everything and is notified on every change. ``problems`` holds what could
    not become an Event (a NULL ``pData``, a decoding failure) so it reaches the result's anomalies.
    ``interrupt`` keeps a BaseException (Ctrl-C) that landed inside the callback, to be re-raised on
    the caller's thread.
    """

    def __init__(self) -> None:
        self.condition = threading.Condition(threading.Lock())
        self.events: deque[Event] = deque()
        self.problems: list[str] = []
        self.interrupt: Optional[BaseException] = None

    def put(self, event: Event) -> None:
        with self.condition:
            self.events.append(event)
            self.condition.notify_all()

    def problem(self, text: str) -> None:
        """Keep it for the caller's thread, which logs it as an anomaly (nothing logs here)."""
        with self.condition:
            self.problems.append(text)
            self.condition.notify_all()

    def take_problems(self) -> list[str]:
        """The problems kept so far, removed from the sink (call without holding ``condition``)."""
        with self.condition:
            problems, self.problems = self.problems, []
        return problems

    def interrupted(self, exc: BaseException) -> None:
        with self.condition:
            if self.interrupt is None:
                self.interrupt = exc
            self.condition.notify_all()


_registry: dict[int, Sink] = {}
_registry_lock = threading.Lock()
_tokens = itertools.count(1)
_local = threading.local()
_stray_count = 0


def register(sink: Sink) -> int:
    """Make ``sink`` reachable from the callback; returns the context token."""
    with _registry_lock:
        token = next(_tokens)
        _registry[token] = sink
    return token


def unregister(token: int) -> None:
    """Stop routing ``token``; later notifications carrying it are counted as stray."""
    with _registry_lock:
        _registry.pop(token, None)


def registry_size() -> int:
    """How many updates can currently receive notifications (0 when every handle is closed)."""
    with _registry_lock:
        return len(_registry)


def stray_notifications() -> int:
    """How many notifications arrived for no live update (late ones, or not ours); not logged
    on the DLL's thread, where a slow log handler would hold up MpClient."""
    return _stray_count


def in_callback() -> bool:
    """True on a thread that is inside the callback right now (where closing a handle is banned)."""
    return getattr(_local, "depth", 0) > 0


@ffi.def_extern()
def mpupdate_callback(context: int, data: Any) -> int:
    global _stray_count
    _local.depth = getattr(_local, "depth", 0) + 1
    sink = None
    try:
        sink = _registry.get(int(context))
        if sink is None:
            with _registry_lock:  # held for an increment only
                _stray_count += 1
        elif data == ffi.NULL:
            sink.problem("a notification arrived with a NULL MPCALLBACK_DATA pointer")
        else:
            try:
                event = decode(data)
            except Exception as exc:  # a decoding bug must not lose the notification silently
                sink.problem(f"a notification could not be decoded: {exc!r}")
            else:
                sink.put(event)
    except BaseException as exc:  # Ctrl-C on the calling thread: hand it to the caller
        if sink is not None:
            sink.interrupted(exc)
    finally:
        _local.depth -= 1
    return 0
