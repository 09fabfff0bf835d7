"""The Windows lane's end-to-end check, run by Windows CPython under Wine as a user would run it.

    python end_to_end.py EXPECTED_DLL PLANTED_FOLDER

The lane has put the native fake where Defender keeps MpClient.dll and named it in the registry
(``InstallLocation``, REG_SZ); once the default search has loaded it, this process attaches the
fake's model (``NativeFakeMpClient(library=...)``) to answer its exports. This process starts in
a folder holding a planted ``MpClient.dll``, puts another planted folder first on ``PATH`` and
points ``%ProgramFiles%`` and ``%ProgramData%`` at it too (as a same-user process can for an
elevated one). Then, with no backend and no override, ``mpupdate.update()`` must load
EXPECTED_DLL and nothing else, with no warning, and the version query, the error text and
``update_async`` must work through it.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import sys
import warnings
from ctypes import wintypes


def loaded_mpclient() -> str:
    """The file the process has loaded as MpClient.dll, from the loader itself."""
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.GetModuleHandleW.argtypes = [wintypes.LPCWSTR]
    kernel32.GetModuleHandleW.restype = wintypes.HMODULE
    kernel32.GetModuleFileNameW.argtypes = [wintypes.HMODULE, wintypes.LPWSTR, wintypes.DWORD]
    module = kernel32.GetModuleHandleW("MpClient.dll")
    if not module:
        return "(no MpClient.dll loaded)"
    buffer = ctypes.create_unicode_buffer(32768)
    kernel32.GetModuleFileNameW(module, buffer, len(buffer))
    return buffer.value


def main() -> None:
    expected, planted = sys.argv[1], sys.argv[2]
    os.environ["PATH"] = planted + os.pathsep + os.environ.get("PATH", "")
    # Upper case, as Windows' os.environ spells every name.
    os.environ["PROGRAMFILES"] = planted
    os.environ["PROGRAMDATA"] = planted
    for name in ("MPUPDATE_BACKEND", "MPUPDATE_MPCLIENT_PATH"):
        os.environ.pop(name, None)
    warnings.simplefilter("error")  # an override announced, or anything else, fails the check

    import mpupdate
    from mpupdate.backends import DllBackend, locate_mpclient

    found, tried = locate_mpclient()
    assert found is not None and os.path.normcase(found) == os.path.normcase(expected), (
        found,
        tried,
    )
    # The default search loads it (no override)...
    assert os.path.normcase(DllBackend().path) == os.path.normcase(expected)
    # ... and the fake's model (mpupdate.fakes) answers what its exports are asked.
    from mpupdate.fakes.native import NativeFakeMpClient

    fake = NativeFakeMpClient("updated", delivery="thread", library=found)

    result = mpupdate.update(timeout=60)
    assert result.outcome is mpupdate.Outcome.UPDATED, result
    loaded = loaded_mpclient()
    assert os.path.normcase(loaded) == os.path.normcase(expected), f"loaded {loaded}"
    print(f"update(): {result.outcome.name} {result.message!r} from {loaded}")

    with mpupdate.Client() as client:
        version = client.version()
        text = client.error_message(0x80070005)
    assert version.product is not None and text, (version, text)
    print(f"version(): product {version.product}; error_message(E_ACCESSDENIED): {text!r}")

    result = asyncio.run(mpupdate.update_async(timeout=60))
    assert result.outcome is mpupdate.Outcome.UPDATED, result
    print(f"update_async(): {result.outcome.name}")
    command(found)
    fake.assert_clean()
    assert [update.delivered[-1] for update in fake.updates] == [0x800D] * 4
    print("end-to-end: OK")


def command(found: str) -> None:
    """The ``mpupdate`` command's own path to the DLL (no --simulate, no backend variable): an
    update as JSON Lines, a stale verdict on the system clock, and status with the record."""
    import contextlib
    import io
    import json
    import tempfile

    from mpupdate.cli import main

    def run(*argv: str) -> tuple[int, str]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = main(list(argv))
        return status, out.getvalue()

    os.environ["MPUPDATE_STATE_DIR"] = tempfile.mkdtemp()
    status, out = run("update", "--json", "--no-progress")
    *events, result = (json.loads(line) for line in out.splitlines())
    assert status == 0 and result["outcome"] == "UPDATED" and result["exit_status"] == 0, out
    assert events and events[-1]["notify"] == "SIGUPDATE_COMPLETE", events
    # The scenario's signatures are from 2026-01-01; the real DLL's ages are on the system clock.
    status, out = run("update", "--max-age", "24", "--no-progress")
    assert status == 5, (status, out)
    status, out = run("status", "--openmetrics")
    assert status == 0 and "mpupdate_last_update_exit_status 5" in out, out
    assert out.endswith("# EOF\n") and 'component="av_signature",version="1.419.135.0"' in out
    record = os.path.join(os.environ["MPUPDATE_STATE_DIR"], "last-update.json")
    assert os.path.isfile(record), record  # the machine's record, not the simulated one
    print(f"mpupdate update / status through {found}: OK")


if __name__ == "__main__":
    main()
