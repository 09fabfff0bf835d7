"""The ``mpupdate`` command: record a real update as a trace, replay a trace on the fake.

Nothing is imported before the arguments are parsed but argparse and the package itself, so
``mpupdate --version`` stays fast; the fakes are imported by name, on request (the core never
imports them statically).
"""

from __future__ import annotations

import argparse
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, Optional

    from .results import UpdateResult

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_EPILOG = """\
exit status:
  0  the update succeeded (UPDATED or ALREADY_CURRENT)
  1  the update failed, was cancelled or timed out
  2  usage or input error: bad arguments, a malformed trace (the message names the position
     and the reason), or no MpClient.dll to record from (record needs Windows with Defender)
"""


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="mpupdate",
        description="Record Microsoft Defender signature updates and replay them on the fake.",
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
        choices=["DEFAULT", "MMPC", "FILE_SHARES", "WSUS", "MICROSOFT_UPDATE"],
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
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (already printed)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    if args.timeout is not None and not 0 <= args.timeout < float("inf"):
        return _fail(f"--timeout must be a finite number of seconds >= 0, not {args.timeout}")
    if args.command == "record":
        return _record(args)
    return _replay(args)


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

        print(json.dumps(_result_json(result), ensure_ascii=False))
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
