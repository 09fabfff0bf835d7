"""Interpreter exit with updates in flight, on the main thread's Client and in a daemon thread: in
bounded time, every update handle closed before the manager, no traceback, no violation. Each
case runs in a fresh interpreter (exit is what is tested)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mpupdate.fakes.native.build import unavailable_reason

SCRIPT = textwrap.dedent(
    """
    import atexit, json, sys, threading

    report = {}

    def tell():  # registered before mpupdate makes a handle: runs after its closes
        fake = report["fake"]
        sys.stdout.write(json.dumps({
            "closes": [call.args[0] for call in fake.calls_to("MpHandleClose")],
            "kinds": report["kinds"],
            "violations": fake.violations,
            "open": sorted(fake.open_handles),
        }) + "\\n")
        sys.stdout.flush()

    atexit.register(tell)
    import mpupdate
    from MODULE import NAME as Fake

    fake = Fake("hung", delivery="thread", strict=False)
    report["fake"] = fake
    client = mpupdate.Client(fake)
    operations = [client.start_update() for _ in range(2)]  # left running
    started = threading.Event()

    def daemon():
        with client.start_update() as operation:
            started.set()
            operation.wait()  # never ends on its own

    threading.Thread(target=daemon, daemon=True).start()
    assert started.wait(10)
    report["kinds"] = {str(value): kind for value, kind in fake.open_handles.items()}
    """
)

FAKES = {
    "python": ("mpupdate.fakes", "FakeMpClient"),
    "native": ("mpupdate.fakes.native", "NativeFakeMpClient"),
}


@pytest.mark.parametrize("kind", sorted(FAKES))
def test_exit_with_updates_in_flight_closes_updates_then_the_manager(
    kind: str, tmp_path: Path
) -> None:
    if kind == "native":
        why = unavailable_reason()
        if why is not None:
            pytest.skip(f"compiles the native fake: {why}")
    module, name = FAKES[kind]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.replace("MODULE", module).replace("NAME", name)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,  # not a source checkout's root, whose mpupdate/ would hide the installed one
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    kinds = {int(value): kind for value, kind in report["kinds"].items()}
    assert sorted(kinds.values()) == ["manager", "update", "update", "update"]
    closes = report["closes"]
    assert sorted(closes) == sorted(kinds)  # each closed once
    assert kinds[closes[-1]] == "manager"  # and the manager last
    assert report["violations"] == [] and report["open"] == []
