"""The one call most programs need: :func:`update` (and :func:`run_update`, its engine).

Opens a :class:`~mpupdate.Client`, starts one update, waits, closes everything, and turns what
happened into an :class:`~mpupdate.UpdateResult`, or, with ``check=True``, an
:class:`~mpupdate.UpdateError` naming the :class:`~mpupdate.errors.Step` that failed. The asyncio
façade (:mod:`mpupdate.aio`) runs :func:`run_update` on a worker thread.
"""

from __future__ import annotations

from .client import Client, check_progress, check_timeout, update_flags
from .clock import SYSTEM_CLOCK
from .constants import Source
from .errors import BackendUnavailableError, MpError, Step, update_error_for
from .results import Attempt, Outcome, UpdateResult

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Optional, Union

    from .backends import Backend
    from .client import ProgressFunction, UpdateOperation
    from .clock import Clock
    from .constants import UpdateOption

__all__ = ["run_update", "update"]


def _failed_to_start(error: MpError, source: Source, options: int, clock: Clock) -> UpdateResult:
    """The FAILED result of an update that never ran (``MpManagerOpen`` or ``MpUpdateStart``)."""
    now = clock.now()
    return UpdateResult(
        outcome=Outcome.FAILED,
        hresult=error.hresult,
        message=error.message,
        reboot_required=False,
        events=(),
        anomalies=(),
        source=source,
        options=options,
        started_at=now,
        finished_at=now,
        hint=error.hint,
    )


def update(
    source: Union[Source, Sequence[Source]] = Source.DEFAULT,
    progress: Optional[ProgressFunction] = None,
    timeout: Optional[float] = None,
    backend: Union[Backend, str, None] = None,
    options: Union[UpdateOption, int, None] = None,
    check: bool = True,
    strict: bool = False,
) -> UpdateResult:
    """Update the signatures and return how it went; the one call most programs need.

    Opens a :class:`Client`, starts the update (ASYNC), waits up to ``timeout`` seconds (None:
    no limit), closes everything. ``progress`` gets a :class:`Progress` after every event;
    raising from it cancels the update and the exception comes out of ``update()``. Ctrl-C
    aborts the update, cleans up and re-raises KeyboardInterrupt.

    ``source`` may be a list of sources: they are tried in that order, each with a Client of
    its own, until one updates (UPDATED or ALREADY_CURRENT); ``timeout`` bounds them all
    together. A TIMED_OUT or CANCELLED attempt ends the fallback (the time is spent, or somebody
    aborted the update); a FAILED one moves on to the next source. The result is the last
    attempt's, and its ``attempts`` lists every one (source, outcome, HRESULT, message,
    seconds).

    With ``check=True`` (the default) an outcome other than UPDATED or ALREADY_CURRENT raises
    :class:`~mpupdate.UpdateError` (of the cause's class where known, e.g.
    ``UpdateAccessDeniedError``), its ``.result`` holding the :class:`UpdateResult`. A failure of
    ``MpManagerOpen`` or ``MpUpdateStart`` is a FAILED result like any other. Only
    :class:`~mpupdate.BackendUnavailableError` (no DLL here) is raised whatever ``check`` says.

    Bad arguments raise TypeError or ValueError naming them before anything opens: ``source``
    not a Source (or an empty list, or one holding anything else), ``options`` not an int in the
    DWORD range, ``timeout`` not a finite number of seconds >= 0 (or None), ``progress`` not
    callable, ``backend`` a class instead of an object.
    """
    return run_update(source, progress, timeout, backend, options, check, strict)


def sources_of(source: object) -> list[Source]:
    """``source`` as the list of sources to try: one Source, or a non-empty list or tuple of
    them; TypeError or ValueError naming ``source`` otherwise."""
    if isinstance(source, Source):
        return [source]
    if not isinstance(source, (list, tuple)):
        raise TypeError(
            f"source must be a mpupdate.Source or a list of them, not {type(source).__name__}"
        )
    if not source:
        raise ValueError("source must name at least one mpupdate.Source, not an empty list")
    for index, each in enumerate(source):
        if not isinstance(each, Source):
            raise TypeError(f"source[{index}] must be a mpupdate.Source, not {type(each).__name__}")
    return list(source)


def run_update(
    source: Union[Source, Sequence[Source]],
    progress: Optional[ProgressFunction],
    timeout: Optional[float],
    backend: Union[Backend, str, None],
    options: Union[UpdateOption, int, None],
    check: bool,
    strict: bool,
    started: Optional[Callable[[UpdateOperation], None]] = None,
    attempted: Optional[Callable[[Attempt, UpdateResult], None]] = None,
) -> UpdateResult:
    """:func:`update`, plus ``started(operation)`` called once each update runs (for the
    asyncio façade, which must be able to cancel it from another thread), and, when ``source``
    is a list, ``attempted(attempt, result)`` as each attempt ends (for the command, which
    reports the attempts made before a Ctrl-C, and every attempt's anomalies)."""
    # Every argument is checked before anything opens (TypeError/ValueError naming it).
    sources = sources_of(source)
    for each in sources:
        update_flags(each, options, blocking=False)
    timeout = check_timeout(timeout)
    check_progress(progress)
    if len(sources) == 1 and isinstance(source, Source):
        result, step = _run_once(source, progress, timeout, backend, options, strict, started)
    else:
        attempts: list[Attempt] = []
        spent = 0.0
        for each in sources:
            remaining = None if timeout is None else max(0.0, timeout - spent)
            result, step = _run_once(each, progress, remaining, backend, options, strict, started)
            seconds = max(0.0, result.duration.total_seconds())
            spent += seconds
            attempt = Attempt(each, result.outcome, result.hresult, result.message, seconds)
            attempts.append(attempt)
            if attempted is not None:
                attempted(attempt, result)
            if result.ok or result.outcome in (Outcome.TIMED_OUT, Outcome.CANCELLED):
                break
        result = result.replace(attempts=tuple(attempts))
    if check and not result.ok:
        raise update_error_for(step, result.hresult, result.message, result)
    return result


def _run_once(
    source: Source,
    progress: Optional[ProgressFunction],
    timeout: Optional[float],
    backend: Union[Backend, str, None],
    options: Union[UpdateOption, int, None],
    strict: bool,
    started: Optional[Callable[[UpdateOperation], None]],
) -> tuple[UpdateResult, Union[Step, str]]:
    """One update from one source: its result, and the step to name if it failed."""
    requested = update_flags(source, options, blocking=False)
    step: Union[Step, str]
    try:
        client = Client(backend)
    except MpError as exc:
        # A manager that will not open is a failed update; no backend at all is not.
        if isinstance(exc, BackendUnavailableError) or exc.function is not Step.MP_MANAGER_OPEN:
            raise
        return _failed_to_start(exc, source, requested, SYSTEM_CLOCK), exc.function
    with client:
        try:
            operation = client.start_update(source, options, strict, progress)
        except MpError as exc:
            return _failed_to_start(exc, source, requested, client.clock), exc.function
        with operation:
            if started is not None:
                started(operation)
            result = operation.wait(timeout)
        stopped = result.outcome is Outcome.TIMED_OUT or not result.events
        step = Step.UPDATE_WAIT if stopped else Step.UPDATE_COMPLETE
    return result, step
