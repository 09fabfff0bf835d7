"""asyncio façade: ``await mpupdate.update_async(...)``.

The update runs on a worker thread (the default executor), exactly as :func:`mpupdate.update`
runs it; the event loop stays free. The ``progress`` function is called on the event loop's
thread, after the fact (the update does not wait for it). Cancelling the awaiting task aborts
the update, waits for the clean-up (handles closed) and then raises CancelledError; a raising
``progress`` function aborts the update if it is still running, and its exception comes out of
the ``await``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from . import _log
from .api import run_update, sources_of
from .client import check_progress, check_timeout, update_flags
from .constants import Source
from .errors import MpError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Optional, Union

    from .backends import Backend
    from .client import ProgressFunction, UpdateOperation
    from .constants import UpdateOption
    from .machine import Progress
    from .results import UpdateResult

__all__ = ["update_async"]


class _Bridge:
    """Shares one update between the worker thread and the event loop."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, progress: Optional[ProgressFunction]
    ) -> None:
        self.loop = loop
        self.progress = progress
        self.operation: Optional[UpdateOperation] = None
        self.cancelled = False
        self.error: Optional[BaseException] = None
        self.lock = threading.Lock()

    def started(self, operation: UpdateOperation) -> None:  # worker thread
        with self.lock:
            self.operation = operation
            cancel = self.cancelled
        if cancel:
            self.abort()

    def on_progress(self, progress: Progress) -> None:  # worker thread
        if self.error is not None:
            raise self.error  # cancels the update through the usual path
        if self.progress is not None:
            self.loop.call_soon_threadsafe(self._call_progress, progress)

    def _call_progress(self, progress: Progress) -> None:  # event loop thread
        if self.error is not None or self.progress is None:
            return
        try:
            self.progress(progress)
        except BaseException as exc:  # re-raised from the await
            self.error = exc
            self.loop.run_in_executor(None, self.abort)

    def request_cancel(self) -> None:
        with self.lock:
            self.cancelled = True
            started = self.operation is not None
        if started:
            self.abort()

    def abort(self) -> None:
        operation = self.operation
        if operation is None:
            return
        try:
            operation.cancel()
        except MpError as exc:  # closing the handle still stops it
            _log.warning(
                "mpupdate: abort refused (%s); the update stops when its handle closes", exc
            )


async def update_async(
    source: Union[Source, Sequence[Source]] = Source.DEFAULT,
    progress: Optional[ProgressFunction] = None,
    timeout: Optional[float] = None,
    backend: Union[Backend, str, None] = None,
    options: Union[UpdateOption, int, None] = None,
    check: bool = True,
    strict: bool = False,
) -> UpdateResult:
    """:func:`mpupdate.update` for asyncio; same arguments, same result and errors (a bad
    argument raises before anything is scheduled)."""
    for each in sources_of(source):
        update_flags(each, options, blocking=False)
    timeout = check_timeout(timeout)
    check_progress(progress)
    loop = asyncio.get_running_loop()
    bridge = _Bridge(loop, progress)
    work = loop.run_in_executor(
        None,
        lambda: run_update(
            source, bridge.on_progress, timeout, backend, options, check, strict, bridge.started
        ),
    )
    try:
        result = await asyncio.shield(work)
    except asyncio.CancelledError:
        # MpUpdateControl may take a while (an RPC to the service): not on the loop's thread.
        await loop.run_in_executor(None, bridge.request_cancel)
        # Let the worker abort and close before reporting the cancellation; its own outcome
        # (UpdateError: CANCELLED) is not what the caller asked about.
        with contextlib.suppress(Exception):
            await work
        raise
    except BaseException:
        if bridge.error is not None:
            raise bridge.error from None
        raise
    if bridge.error is not None:
        raise bridge.error
    return result
