"""The ``mpupdate`` command: update the signatures, show their status, list the simulated
scenarios, record a real update as a trace, replay a trace on the fake.

Nothing is imported before the arguments are parsed but argparse and the package itself, so
``mpupdate --version`` stays fast; the fakes are imported by name, on request (the core never
imports them statically).

Exit status (the same for every subcommand; record and replay use only 0, 1 and 2):

- 0: the update succeeded (UPDATED or ALREADY_CURRENT); status and scenarios answered
- 1: the update failed (for record and replay: any outcome but UPDATED and ALREADY_CURRENT)
- 2: usage or input error
- 3: the update timed out or was cancelled
- 4: environment problem: no Defender here (no MpClient.dll), access denied (not elevated),
  the Defender service unavailable
- 5: ``update --max-age``: the AV signatures are older than allowed (or their age is unknown),
  whatever the update did (4 still wins)
- 6: updated, but a reboot is required
- 130: interrupted (Ctrl-C): the update was aborted and closed; ``update --json`` still prints a
  final result object, with outcome ``CANCELLED``
- 141: stdout was closed by its reader (``| head``): the update was aborted and closed, the
  command stopped quietly (128 + SIGPIPE, as a shell reports a tool SIGPIPE ended)
"""

from __future__ import annotations

import argparse
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime
    from typing import Any, Optional

    from .results import Attempt, UpdateResult
    from .versions import VersionInfo

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMED_OUT = 3
EXIT_ENVIRONMENT = 4
EXIT_STALE = 5
EXIT_REBOOT = 6
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

_EPILOG = """\
exit status:
  0  the update succeeded (UPDATED or ALREADY_CURRENT); status and scenarios answered
  1  the update failed (record and replay: also when it was cancelled or timed out)
  2  usage or input error: bad arguments, a malformed trace (the message names the position
     and the reason), or no MpClient.dll to record from (record needs Windows with Defender)
  3  update: timed out or cancelled
  4  update, status: no Defender here, access denied (not elevated), or the Defender service
     is unavailable
  5  update --max-age: the AV signatures are older than allowed (or of unknown age), whatever
     the update did
  6  update: updated, but a reboot is required
  130 interrupted (Ctrl-C): the update was aborted and closed
  141 stdout closed by its reader (| head): the update was aborted and closed
"""


def _spelling(member_name: str) -> str:
    """A :class:`mpupdate.Source` member's name as ``update --source`` spells it
    (``FILE_SHARES`` -> ``file-shares``); ``Source.parse`` reads it back."""
    return member_name.lower().replace("_", "-")


def _parser() -> argparse.ArgumentParser:
    from . import __version__
    from .constants import Source  # (loaded with the package already)

    parser = argparse.ArgumentParser(
        prog="mpupdate",
        description=(
            "Update Microsoft Defender's signatures and show their status; simulate both on the "
            "fake MpClient.dll; record real updates and replay them on the fake."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mpupdate {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    record = commands.add_parser(
        "record",
        help="run a real update and write its trace (Windows with Defender only)",
        description=(
            "Run one signature update through the real MpClient.dll and write what happened as "
            "a trace (docs/traces.md), scrubbed of user, host and domain names and SIDs."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    record.add_argument("out", metavar="OUT.json", help="where to write the trace")
    record.add_argument(
        "--source",
        default="DEFAULT",
        choices=[source.name for source in Source],
        type=str.upper,
        help="where to update from (default: the machine's fallback order)",
    )
    record.add_argument(
        "--timeout", type=float, default=None, metavar="N", help="abort after N seconds"
    )
    record.add_argument(
        "--scrub",
        action="append",
        default=[],
        metavar="TEXT",
        help="also replace TEXT by <redacted> in the trace (repeatable)",
    )
    record.add_argument(
        "--backend",
        default=None,
        help="for testing: record from this backend (e.g. fake:updated) instead of the real DLL",
    )

    replay = commands.add_parser(
        "replay",
        help="replay a trace on the fake DLL (anywhere)",
        description="Replay a recorded trace (or a scenario file) on the fake MpClient.dll.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("trace", metavar="TRACE.json", help="the trace to replay")
    replay.add_argument("--json", action="store_true", help="print the result as one JSON object")
    replay.add_argument(
        "--delivery",
        choices=["immediate", "timed"],
        default="timed",
        help="how the fake delivers the notifications (default: timed, on virtual time)",
    )
    replay.add_argument(
        "--native", action="store_true", help="replay through the native fake (a C library)"
    )
    replay.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="N",
        help="abort after N seconds (default: the recorded timeout)",
    )
    _add_update_commands(commands, [_spelling(source.name) for source in Source])
    return parser


def _add_update_commands(commands: Any, sources: list[str]) -> None:
    update = commands.add_parser(
        "update",
        help="update the signatures (or simulate an update with --simulate)",
        description=(
            "Update Microsoft Defender's signatures, trying each --source in order until one "
            "succeeds. Progress goes to stderr (or, with --json, JSON Lines to stdout)."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    update.add_argument(
        "--source",
        action="append",
        choices=sources,
        metavar="SRC",
        help=(
            "where to update from: " + ", ".join(sources) + "; repeat to fall back in order "
            "(default: default, the machine's own fallback order)"
        ),
    )
    update.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help="abort after S seconds in all, across the --source attempts (default: no limit)",
    )
    update.add_argument(
        "--max-age",
        type=float,
        default=None,
        metavar="HOURS",
        help="afterwards, exit 5 if the AV signatures are older than HOURS (or of unknown age)",
    )
    update.add_argument(
        "--json",
        action="store_true",
        help="JSON Lines on stdout: one object per notification, then one result object",
    )
    update.add_argument("--no-progress", action="store_true", help="print no progress lines")
    _add_simulate(update)

    status = commands.add_parser(
        "status",
        help="show the component versions and the signatures' age",
        description="Show Defender's component versions, when each was updated, and how long ago.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    output = status.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON object")
    output.add_argument(
        "--openmetrics",
        action="store_true",
        help="print the OpenMetrics text format (for a node-exporter textfile collector)",
    )
    _add_simulate(status)

    commands.add_parser(
        "scenarios",
        help="list the built-in scenarios --simulate takes",
        description="List the built-in scenarios of the fake, one a line: name and description.",
    )


def _add_simulate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--simulate",
        metavar="SCENARIO",
        default=None,
        help=(
            "run on the fake MpClient.dll instead: a built-in scenario (see 'mpupdate "
            "scenarios') or a scenario file; $MPUPDATE_BACKEND (e.g. fake:updated) works too"
        ),
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    _tolerant_output()
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (already printed)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    timeout = getattr(args, "timeout", None)
    if timeout is not None and not 0 <= timeout < float("inf"):
        return _fail(f"--timeout must be a finite number of seconds >= 0, not {timeout}")
    max_age = getattr(args, "max_age", None)
    if max_age is not None and not 0 <= max_age < float("inf"):
        return _fail(f"--max-age must be a finite number of hours >= 0, not {max_age}")
    try:
        if args.command == "record":
            return _record(args)
        if args.command == "replay":
            return _replay(args)
        if args.command == "update":
            return _update(args)
        if args.command == "status":
            return _status(args)
        return _scenarios()
    except BrokenPipeError:
        # Whoever read stdout went away (``| head``): a running update was aborted and closed
        # (a raising progress function cancels it); stop quietly, as a tool killed by SIGPIPE.
        _drop_stdout()
        return EXIT_BROKEN_PIPE


def _tolerant_output() -> None:
    """Text the DLL hands us (a path with a lone surrogate, a message in a script the console's
    code page lacks) is written as escapes, never a UnicodeEncodeError that would abort an
    update from inside its progress function. JSON is written as ASCII anyway."""
    import contextlib

    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):  # closed, or not a text wrapper
                reconfigure(errors="backslashreplace")


def _drop_stdout() -> None:
    """Point stdout at the null device, so flushing it at exit cannot fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (an in-process caller's stream)
        pass


def _fail(message: str) -> int:
    print(f"mpupdate: error: {message.splitlines()[0] if message else 'failed'}", file=sys.stderr)
    return EXIT_USAGE


def _on_windows() -> bool:
    return sys.platform == "win32"  # a call: the type checkers' platform is not the run's


def _fakes(module: str) -> Any:
    import importlib

    return importlib.import_module(f"mpupdate.fakes.{module}")


def _record(args: argparse.Namespace) -> int:
    from .backends import DllBackend
    from .constants import Source
    from .errors import BackendUnavailableError, MpError

    backend: Any = args.backend
    if backend is None:
        if not _on_windows():
            return _fail(
                f"record needs Windows with Microsoft Defender (MpClient.dll); this is "
                f"{sys.platform}. Replay traces anywhere with 'mpupdate replay'."
            )
        try:
            backend = DllBackend()
        except (BackendUnavailableError, MpError, OSError) as exc:
            return _fail(f"cannot load MpClient.dll: {exc}")
    recorder = _fakes("recorder")
    try:
        scrubber = recorder.Scrubber(extra=args.scrub)
        trace, result = recorder.record(
            args.out,
            backend=backend,
            source=Source[args.source],
            timeout=args.timeout,
            scrub=scrubber,
        )
    except (BackendUnavailableError, ValueError) as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"cannot write {args.out}: {exc.strerror or exc}")
    print(_summary(result))
    print(f"trace written to {args.out} ({len(trace.calls)} calls)")
    return EXIT_OK if result.ok else EXIT_FAILED


def _replay(args: argparse.Namespace) -> int:
    scenario = _fakes("scenario")
    trace_module = _fakes("trace")
    try:
        text = _read(args.trace)
        try:
            trace = trace_module.Trace.loads(text, source=args.trace)
        except scenario.ScenarioError as exc:
            if exc.position != "$.format":
                raise
            # Not a trace: a scenario file replays too (its own errors name their position).
            trace = trace_module.Trace(scenario=scenario.Scenario.loads(text, source=args.trace))
    except scenario.ScenarioError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{args.trace}: cannot be read: {exc.strerror or exc}")
    if trace.scenario.complete is None and trace.timeout is None and args.timeout is None:
        return _fail(
            f"{args.trace}: the update never completes by itself and the trace records no "
            "timeout: give one with --timeout N"
        )
    if args.native:
        build = _fakes("native.build")
        reason = build.unavailable_reason()
        if reason is not None:
            return _fail(f"--native: the native fake cannot be built here: {reason}")
    recorder = _fakes("recorder")
    result = recorder.replay(
        trace, delivery=args.delivery, native=args.native, timeout=args.timeout
    )
    if args.json:
        import json

        print(json.dumps(_result_json(result)))
    else:
        print(_summary(result))
    return EXIT_OK if result.ok else EXIT_FAILED


def _read(path: str) -> bytes:
    with open(path, "rb") as stream:
        return stream.read()


def _summary(result: UpdateResult) -> str:
    lines = [
        f"outcome: {result.outcome.name} ({result.message})",
        f"hresult: 0x{result.hresult & 0xFFFFFFFF:08X}",
        f"events: {len(result.events)}",
    ]
    for when, versions in (("before", result.versions_before), ("after", result.versions_after)):
        if versions is not None:
            lines.append(
                f"versions {when}: product {versions.product.version}, engine "
                f"{versions.engine.version}, AV signatures {versions.av_signature.version}"
            )
    if result.reboot_required:
        lines.append("a reboot is required")
    for anomaly in result.anomalies:
        lines.append(f"anomaly: {anomaly}")
    return "\n".join(lines)


def _result_json(result: UpdateResult) -> dict[str, Any]:
    from .events import notify_name

    start = result.events[0].filetime if result.events else 0
    events = []
    for event in result.events:
        item: dict[str, Any] = {
            "notify": notify_name(event.notify),
            "hresult": f"0x{event.hresult & 0xFFFFFFFF:08X}",
            "at": (event.filetime - start) / 10_000_000,
        }
        if event.percent is not None:
            item["data"] = {
                "percent": event.percent,
                "total_updates": event.total_updates,
                "current_index": event.current_index,
                "update_type": int(event.update_type or 0),
                "stage": int(event.stage or 0),
                "path": event.path,
            }
        events.append(item)

    def versions(info: Any) -> Optional[dict[str, str]]:
        if info is None:
            return None
        from .versions import COMPONENTS

        return {attr: getattr(info, attr).version for attr, _ in COMPONENTS}

    return {
        "outcome": result.outcome.name,
        "ok": result.ok,
        "hresult": f"0x{result.hresult & 0xFFFFFFFF:08X}",
        "message": result.message,
        "reboot_required": result.reboot_required,
        "events": events,
        "anomalies": [str(a) for a in result.anomalies],
        "versions_before": versions(result.versions_before),
        "versions_after": versions(result.versions_after),
    }


# -- update, status, scenarios -------------------------------------------------------------------


class _NoBackend(Exception):
    """No backend for this command: its message (and hint) go to stderr, and the exit is 4."""

    def __init__(self, message: str, hint: Optional[str], hresult: int) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.hresult = hresult


def _hex(hresult: int) -> str:
    return f"0x{hresult & 0xFFFFFFFF:08X}"


def _backend_factory(
    simulate: Optional[str], command: str, timeout: Optional[float] = None
) -> Callable[[], Any]:
    """What makes the command's backend (``update`` calls it once: every ``--source`` attempt
    runs on that one backend, as ``mpupdate.update(source=[...])`` runs them).

    ``--simulate``: a fake on virtual time (``timed``: timeouts cost nothing, and the clock runs
    on across the attempts).
    Else ``$MPUPDATE_BACKEND`` as :func:`~mpupdate.backends.resolve_backend` reads it, else the
    real DLL. Raises :class:`_NoBackend` when there is no Defender here; ValueError or the fakes'
    ScenarioError for a bad scenario or backend string (usage errors).
    """
    import os

    from .backends import ENV_BACKEND, resolve_backend
    from .constants import E_NOT_LOADED
    from .errors import BackendUnavailableError

    if simulate is not None:
        import importlib

        fakes = importlib.import_module("mpupdate.fakes")
        scenario = _fakes("scenarios").get(simulate)
        never_ends = scenario.complete is None and not scenario.start_hresult
        if command == "update" and never_ends and not scenario.open_hresult and timeout is None:
            raise ValueError(
                f"--simulate {simulate}: the update never completes by itself: give --timeout S "
                "(on the simulated clock, waiting costs nothing)"
            )
        return lambda: fakes.FakeMpClient(scenario, delivery="timed")
    spec = os.environ.get(ENV_BACKEND)
    if spec:
        resolve_backend(spec)  # a bad string is a usage error now, not at the first attempt
        return lambda: resolve_backend(spec)
    example = f"mpupdate {command} --simulate updated"
    if not _on_windows():
        raise _NoBackend(
            f"this machine has no Microsoft Defender (MpClient.dll exists only on Windows; this "
            f"is {sys.platform}): nothing was {'updated' if command == 'update' else 'queried'}",
            f"to try the command on the simulated DLL: {example} (scenarios: mpupdate scenarios)",
            E_NOT_LOADED,
        )
    try:
        backend = resolve_backend(None)
    except BackendUnavailableError as exc:
        raise _NoBackend(
            f"no Microsoft Defender here: {exc.message}",
            f"{exc.hint + '; ' if exc.hint else ''}to try the command on the simulated DLL: "
            f"{example}",
            exc.hresult,
        ) from exc
    return lambda: backend


def _simulated(simulate: Optional[str]) -> bool:
    """Whether the command runs on the fake: ``--simulate``, or ``$MPUPDATE_BACKEND`` naming
    ``fake`` (``dll:<path>`` is a real library at an explicit path, not a simulation)."""
    import os

    from .backends import ENV_BACKEND

    if simulate is not None:
        return True
    return os.environ.get(ENV_BACKEND, "").partition(":")[0] == "fake"


def _report_no_backend(problem: _NoBackend) -> None:
    print(f"mpupdate: {problem.message}", file=sys.stderr)
    if problem.hint:
        print(f"hint: {problem.hint}", file=sys.stderr)


def _environment_problem(hresult: int) -> bool:
    from .constants import HResultCategory
    from .hresults import describe

    return describe(hresult).category in (
        HResultCategory.ACCESS_DENIED,
        HResultCategory.SERVICE_UNAVAILABLE,
        HResultCategory.BACKEND,
    )


def _attempt_record(attempt: Attempt) -> dict[str, Any]:
    from .hresults import hresult_name

    return {
        "source": _spelling(attempt.source.name),
        "outcome": attempt.outcome.name,
        "hresult": _hex(attempt.hresult),
        "hresult_name": hresult_name(attempt.hresult),
        "message": attempt.message,
        "duration_seconds": attempt.duration,
    }


def _age_hours(result: Optional[UpdateResult]) -> Optional[float]:
    """The AV signatures' age in hours when the update ended (on the backend's clock: the
    system's for the real DLL, the virtual one for a simulation), or None when unknown."""
    versions = result.versions_after if result is not None else None
    updated_at = versions.av_signature.updated_at if versions is not None else None
    if result is None or updated_at is None:
        return None
    return max(0.0, (result.finished_at - updated_at).total_seconds() / 3600)


def _update_exit(result: Optional[UpdateResult], stale: bool) -> int:
    """The exit status: 130 (interrupted) > 4 (environment) > 5 (stale) > 3 (timed out,
    cancelled) > 1 (failed) > 6 (reboot) > 0."""
    from .results import Outcome

    if result is None:
        return EXIT_INTERRUPTED
    if result.ok:
        code = EXIT_REBOOT if result.reboot_required else EXIT_OK
    elif _environment_problem(result.hresult):
        return EXIT_ENVIRONMENT
    elif result.outcome in (Outcome.TIMED_OUT, Outcome.CANCELLED):
        code = EXIT_TIMED_OUT
    else:
        code = EXIT_FAILED
    return EXIT_STALE if stale else code


def _final_object(
    outcome: str,
    hresult: int,
    message: str,
    hint: Optional[str],
    **fields: Any,
) -> dict[str, Any]:
    """The last JSON line of ``update --json`` (and the record ``status`` reports), its fields
    in the README's order; ``fields`` fill the rest, each defaulting to "nothing happened"."""
    from .hresults import hresult_name

    body: dict[str, Any] = {
        "type": "result",
        "outcome": outcome,
        "hresult": _hex(hresult),
        "hresult_name": hresult_name(hresult),
        "message": message,
        "hint": hint,
        "reboot_required": False,
        "attempts": [],
        "versions_before": None,
        "versions_after": None,
        "signature_age_hours": None,
        "duration_seconds": 0.0,
        "anomalies": [],
        "exit_status": EXIT_FAILED,
    }
    unknown = set(fields) - set(body)
    if unknown:
        raise TypeError(f"unknown result fields {sorted(unknown)}")
    body.update(fields)
    return body


def _update(args: argparse.Namespace) -> int:
    import json

    from . import api
    from ._display import Reporter, choose_display
    from .constants import E_ABORT, Source
    from .hresults import describe, hresult_name

    sources: list[str] = args.source or ["default"]
    simulated = _simulated(args.simulate)
    try:
        backend = _backend_factory(args.simulate, "update", args.timeout)()
    except _NoBackend as problem:
        _report_no_backend(problem)
        if args.json:
            body = _final_object(
                "FAILED",
                problem.hresult,
                problem.message,
                problem.hint,
                exit_status=EXIT_ENVIRONMENT,
            )
            print(json.dumps(body), flush=True)
        return EXIT_ENVIRONMENT
    except (ValueError, _fakes("scenario").ScenarioError) as exc:
        return _fail(str(exc))
    display = choose_display(args.json, args.no_progress, sys.stderr, sys.stdout)
    reporter = Reporter(args.json, display)
    reporter.source = sources[0]  # (until the first attempt starts)
    attempts: list[dict[str, Any]] = []
    results: list[UpdateResult] = []

    def attempted(attempt: Attempt, result: UpdateResult) -> None:
        attempts.append(_attempt_record(attempt))
        results.append(result)
        display.finish(attempt.outcome.name)

    result: Optional[UpdateResult] = None
    try:
        result = api.run_update(
            [Source.parse(name) for name in sources],
            reporter,
            args.timeout,
            backend,
            None,
            False,  # check: the command reports failures itself
            False,  # strict
            lambda operation: reporter.attempt(_spelling(operation.source.name)),
            attempted,
        )
    except KeyboardInterrupt:  # the library has aborted the update and closed its handles
        source = sources[min(len(attempts), len(sources) - 1)]
        display.finish("CANCELLED")
        attempts.append(
            {
                "source": source,
                "outcome": "CANCELLED",
                "hresult": _hex(E_ABORT),
                "hresult_name": hresult_name(E_ABORT),
                "message": "interrupted (Ctrl-C)",
                "duration_seconds": None,
            }
        )
    finally:
        display.close()
    age = _age_hours(result)
    stale = args.max_age is not None and (age is None or age > args.max_age)
    status = _update_exit(result, stale)
    if result is not None:
        outcome, hresult, message = result.outcome.name, result.hresult, result.message
        hint = _command_hint(result.hint or describe(hresult).hint) if not result.ok else None
        reboot = result.reboot_required
    else:
        outcome, hresult, message = "CANCELLED", E_ABORT, "interrupted (Ctrl-C)"
        hint, reboot = None, False
    versions_before = results[0].versions_before if results else None
    versions_after = result.versions_after if result is not None else None
    body = _final_object(
        outcome,
        hresult,
        message,
        hint,
        reboot_required=reboot,
        attempts=attempts,
        versions_before=versions_before.as_dict() if versions_before else None,
        versions_after=versions_after.as_dict() if versions_after else None,
        signature_age_hours=age,
        duration_seconds=sum(a["duration_seconds"] or 0.0 for a in attempts),
        anomalies=[str(a) for r in results for a in r.anomalies],
        exit_status=status,
    )
    if args.json:
        print(json.dumps(body), flush=True)
    else:
        print(_update_summary(body, versions_before, versions_after), flush=True)
    if result is None:
        print("mpupdate: interrupted: the update was aborted", file=sys.stderr)
    elif not result.ok:
        print(
            f"mpupdate: error: update {outcome}: {_hex(hresult)} {hresult_name(hresult)}: "
            f"{message}",
            file=sys.stderr,
        )
        if hint:
            print(f"hint: {hint}", file=sys.stderr)
    if stale:
        known = "of unknown age" if age is None else f"{age:.1f} hours old"
        print(
            f"mpupdate: error: the AV signatures are {known}; --max-age allows {args.max_age:g}",
            file=sys.stderr,
        )
    _save_record(body, simulated)
    return status


def _command_hint(hint: Optional[str]) -> Optional[str]:
    """A library hint in the command's words: ``source=Source.MMPC`` becomes ``--source mmpc``."""
    if hint is None or "source=Source." not in hint:
        return hint
    import re

    return re.sub(
        r"source=Source\.([A-Z_]+)", lambda match: f"--source {_spelling(match.group(1))}", hint
    )


def _update_summary(
    body: dict[str, Any],
    versions_before: Optional[VersionInfo],
    versions_after: Optional[VersionInfo],
) -> str:
    """What ``update`` prints on stdout without ``--json``; its first line is the outcome."""
    lines = [
        f"outcome: {body['outcome']} ({body['hresult']} {body['hresult_name']}: {body['message']})"
    ]
    if len(body["attempts"]) > 1:
        lines.extend(
            f"attempt: {a['source']} {a['outcome']} {a['hresult']} {a['hresult_name']}"
            for a in body["attempts"]
        )
    if body["hint"]:
        lines.append(f"hint: {body['hint']}")
    for when, versions in (("before", versions_before), ("after", versions_after)):
        if versions is not None:
            lines.append(
                f"versions {when}: engine {versions.engine.version}, AV signatures "
                f"{versions.av_signature.version}"
            )
    if body["signature_age_hours"] is not None:
        lines.append(f"AV signatures age: {body['signature_age_hours']:.1f} hours")
    if body["reboot_required"]:
        lines.append("a reboot is required")
    lines.extend(f"anomaly: {a}" for a in body["anomalies"])
    return "\n".join(lines)


def _save_record(body: dict[str, Any], simulated: bool) -> None:
    """Keep ``body`` as the last update's record (for ``status``); a warning if it cannot be."""
    from datetime import datetime, timezone

    from . import _lastrun
    from .filetime import moment_text

    record = dict(body, finished_at=moment_text(datetime.now(timezone.utc)))
    try:
        _lastrun.save(record, simulated)
    except OSError as exc:
        print(
            f"mpupdate: warning: the result was not recorded for 'mpupdate status' "
            f"({_lastrun.path(simulated)}: {exc.strerror or exc}); set "
            f"{_lastrun.ENV_STATE_DIR} to a writable folder",
            file=sys.stderr,
        )


_SIGNATURES = ("av_signature", "as_signature", "nis_signature")


def _status(args: argparse.Namespace) -> int:
    from . import _lastrun
    from .client import Client
    from .errors import MpError
    from .filetime import moment_text

    simulated = _simulated(args.simulate)
    try:
        make_backend = _backend_factory(args.simulate, "status")
    except _NoBackend as problem:
        _report_no_backend(problem)
        return EXIT_ENVIRONMENT
    except (ValueError, _fakes("scenario").ScenarioError) as exc:
        return _fail(str(exc))
    try:
        with Client(make_backend()) as client:
            info = client.version()
            now = client.clock.now()  # the backend's: a simulation's ages are on its clock
    except MpError as exc:
        print(f"mpupdate: error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return EXIT_ENVIRONMENT if _environment_problem(exc.hresult) else EXIT_FAILED
    try:
        last = _lastrun.load(simulated)
    except _lastrun.LastRunError as exc:
        print(f"mpupdate: warning: the last update's record is ignored: {exc}", file=sys.stderr)
        last = None
    from .versions import COMPONENTS

    components: dict[str, dict[str, Any]] = {}
    for attr, _ in COMPONENTS:
        component = getattr(info, attr)
        when = component.updated_at
        components[attr] = {
            "version": component.version,
            "updated_at": moment_text(when) if when else None,
            "age_seconds": max(0.0, (now - when).total_seconds()) if when else None,
        }
    if last is not None:
        last = {key: last.get(key) for key in _LAST_UPDATE_FIELDS}
    if args.openmetrics:
        sys.stdout.write(_openmetrics(components, now, last))
    elif args.json:
        import json

        age = components["av_signature"]["age_seconds"]
        body = {
            "type": "status",
            "now": moment_text(now),
            "simulated": simulated,
            "components": components,
            "signature_age_hours": None if age is None else age / 3600,
            "last_update": last,
        }
        print(json.dumps(body))
    else:
        if simulated:  # its ages are on the fake's clock, not this machine's
            print(f"{'simulated clock':<20} {moment_text(now)}")
        for attr, item in components.items():
            line = f"{attr:<20} {item['version']}"
            if item["updated_at"] is not None:
                line += f"  updated {item['updated_at']} ({item['age_seconds'] / 3600:.1f} h ago)"
            print(line)
        if last is not None:
            print(
                f"{'last update':<20} {last['outcome']} ({last['hresult']} "
                f"{last['hresult_name']}), exit status {last['exit_status']}, "
                f"finished {last['finished_at']}"
            )
        else:
            print(f"{'last update':<20} none recorded")
    return EXIT_OK


#: What ``status`` reports of the last update's record.
_LAST_UPDATE_FIELDS = (
    "outcome",
    "hresult",
    "hresult_name",
    "exit_status",
    "reboot_required",
    "duration_seconds",
    "finished_at",
    "attempts",
)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _gauge(lines: list[str], name: str, help_text: str, unit: Optional[str] = None) -> None:
    lines.append(f"# TYPE {name} gauge")
    if unit is not None:
        lines.append(f"# UNIT {name} {unit}")
    lines.append(f"# HELP {name} {help_text}")


def _openmetrics(
    components: dict[str, dict[str, Any]], now: datetime, last: Optional[dict[str, Any]]
) -> str:
    """The OpenMetrics text exposition of ``status`` (ends with ``# EOF``). Every family is a
    gauge, so the Prometheus text parsers of textfile collectors (node_exporter's,
    windows_exporter's) read it as well; the timestamps are there to alert on
    (``time() - mpupdate_signature_updated_timestamp_seconds``), since an exported age stops
    growing when the file stops being rewritten."""
    lines: list[str] = []
    _gauge(lines, "mpupdate_component_info", "Microsoft Defender component versions (always 1).")
    for attr, item in components.items():
        lines.append(
            f'mpupdate_component_info{{component="{_label(attr)}",'
            f'version="{_label(item["version"])}"}} 1'
        )
    stamps = [
        (attr, components[attr])
        for attr in _SIGNATURES
        if components[attr]["age_seconds"] is not None
    ]
    name = "mpupdate_signature_updated_timestamp_seconds"
    _gauge(lines, name, "When the signatures were last updated (Unix time).", "seconds")
    for attr, item in stamps:
        updated = now.timestamp() - item["age_seconds"]
        lines.append(f'{name}{{component="{attr}"}} {updated!r}')
    name = "mpupdate_signature_age_seconds"
    _gauge(lines, name, "How long ago the signatures were last updated.", "seconds")
    for attr, item in stamps:
        lines.append(f'{name}{{component="{attr}"}} {float(item["age_seconds"])!r}')
    if last is not None:
        from .filetime import parse_moment

        finished = parse_moment(last["finished_at"])
        name = "mpupdate_last_update_info"
        _gauge(lines, name, "The outcome of the last 'mpupdate update' (always 1).")
        lines.append(
            f'{name}{{outcome="{_label(last["outcome"])}",hresult="{_label(last["hresult"])}",'
            f'hresult_name="{_label(last["hresult_name"])}"}} 1'
        )
        name = "mpupdate_last_update_success"
        _gauge(lines, name, "1 if the last 'mpupdate update' exited 0 or 6, else 0.")
        lines.append(f"{name} {int(last['exit_status'] in (EXIT_OK, EXIT_REBOOT))}")
        name = "mpupdate_last_update_exit_status"
        _gauge(lines, name, "The exit status of the last 'mpupdate update'.")
        lines.append(f"{name} {last['exit_status']}")
        name = "mpupdate_last_update_timestamp_seconds"
        _gauge(lines, name, "When the last 'mpupdate update' finished (Unix time).", "seconds")
        lines.append(f"{name} {finished.timestamp()!r}")
        name = "mpupdate_last_update_duration_seconds"
        _gauge(lines, name, "How long the last 'mpupdate update' took, all attempts.", "seconds")
        lines.append(f"{name} {float(last['duration_seconds'])!r}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _scenarios() -> int:
    scenarios = _fakes("scenarios")
    for name in scenarios.names():
        description = " ".join(scenarios.get(name).description.split())
        print(f"{name:<24} {description}".rstrip())
    return EXIT_OK
