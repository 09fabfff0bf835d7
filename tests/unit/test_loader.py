"""The compiled module's run-time loader and DllBackend's refusals (no real DLL needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mpupdate
from mpupdate.backends import DllBackend, LoaderEnvironment
from mpupdate.errors import BackendUnavailableError


def in_fresh_python(code: str) -> str:
    """Run ``code`` where no library has been loaded yet (one is loaded per process)."""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_every_export_answers_mod_not_found_before_a_library_is_loaded() -> None:
    code = """
from mpupdate._native import ffi, lib
h = ffi.new("MPHANDLE *")
results = [
    lib.MpManagerOpen(0, h),
    lib.MpUpdateStart(ffi.NULL, 0, ffi.NULL, h),
    lib.MpUpdateControl(ffi.NULL, 0),
    lib.MpHandleClose(ffi.NULL),
    lib.MpErrorMessageFormat(ffi.NULL, 0, ffi.new("uint16_t **")),
    lib.MpManagerVersionQuery(ffi.NULL, ffi.new("MPVERSION_INFO *")),
]
lib.MpFreeMemory(ffi.NULL)  # nothing could have allocated: a no-op, not a crash
print(sorted({hex(r & 0xFFFFFFFF) for r in results}), hex(lib.mpupdate_missing_exports()))
"""
    assert in_fresh_python(code) == "['0x8007007e'] 0x7f"


def test_loading_a_missing_file_names_the_path_and_the_reason(tmp_path: Path) -> None:
    missing = tmp_path / "MpClient.so"
    with pytest.raises(BackendUnavailableError) as caught:
        DllBackend(str(missing))
    assert caught.value.tried == ((str(missing), "no such file, or it cannot be read"),)
    assert f"tried {missing}: no such file" in str(caught.value)


def test_a_relative_override_is_refused() -> None:
    with pytest.raises(BackendUnavailableError) as caught:
        DllBackend("MpClient.dll")
    if sys.platform == "win32":
        reason = (
            "not an absolute path with a drive or UNC share "
            "(a bare or relative name could be planted)"
        )
    else:
        reason = "not an absolute path (a relative name could be planted)"
    assert caught.value.tried == (("MpClient.dll", reason),)
    assert caught.value.message == "the MpClient path override was refused"
    assert "MsMpLics.dll" in (caught.value.hint or "")


def library_without_the_exports(tmp_path: Path) -> Path:
    """A real shared library that exports none of MpClient's functions."""
    if sys.platform == "win32":
        # Every Windows has it, and it exports nothing named Mp*.
        return Path(os.environ["SYSTEMROOT"], "System32", "version.dll")
    else:  # an else, so that mypy --platform win32 does not call this unreachable
        source = tmp_path / "empty.c"
        source.write_text("int not_mpclient(void) { return 0; }\n")
        library = tmp_path / "libempty.so"
        subprocess.run(["cc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
        return library


def test_a_library_without_the_exports_is_refused_and_unloaded(tmp_path: Path) -> None:
    library = library_without_the_exports(tmp_path)
    code = f"""
import warnings
from mpupdate.backends import DllBackend
from mpupdate._native import lib
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        DllBackend({str(library)!r})
    except Exception as exc:
        print(type(exc).__name__, hex(exc.hresult), exc.message)
print(lib.mpupdate_is_loaded(), [type(w.message).__name__ for w in caught])
"""
    assert in_fresh_python(code).splitlines() == [
        "BackendUnavailableError 0x8007007f the library lacks exports MpClient.dll has: "
        "MpManagerOpen, MpUpdateStart, MpUpdateControl, MpHandleClose, MpErrorMessageFormat, "
        "MpFreeMemory, MpManagerVersionQuery",
        # Windows also says that the path lies outside the Defender folders.
        f"0 {['MpClientOverrideWarning'] * (2 if sys.platform == 'win32' else 1)}",
    ]


def test_the_dll_is_searched_only_on_windows() -> None:
    environment = LoaderEnvironment(environ={}, windows=False)
    with pytest.raises(BackendUnavailableError) as caught:
        DllBackend(environment=environment)
    assert caught.value.tried == (("MpClient.dll", "MpClient.dll exists only on Windows"),)


def test_importing_mpupdate_loads_no_dll_and_nothing_heavy() -> None:
    code = (
        "import sys, mpupdate\n"
        "from mpupdate._native import lib\n"
        "heavy = {'asyncio', 'hypothesis', 'pytest', 'mpupdate.fakes', 'mpupdate.aio'}\n"
        "print(lib.mpupdate_is_loaded(), sorted(heavy & set(sys.modules)))\n"
    )
    assert in_fresh_python(code) == "0 []"


def test_the_fakes_have_one_import_name() -> None:
    # Not also a top-level ``fakes`` (which made a second, unequal copy of every class), even
    # when Python starts in the project's root.
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, "-c", "import fakes"],
        capture_output=True,
        text=True,
        cwd=root,
    )
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == "ModuleNotFoundError: No module named 'fakes'"


def test_update_async_is_imported_on_first_use() -> None:
    from mpupdate.aio import update_async

    assert mpupdate.update_async is update_async
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        mpupdate.nothing  # noqa: B018


@pytest.mark.parametrize("folder", ["Défense ✓", "日本語のフォルダ", "Ärger 𝄞"])
def test_an_override_path_with_non_ascii_characters_loads(tmp_path: Path, folder: str) -> None:
    from mpupdate.fakes.native.build import build_native_fake, unavailable_reason

    why = unavailable_reason()
    if why is not None:
        pytest.skip(f"needs the native fake: {why}")
    built = build_native_fake()
    target = tmp_path / folder / ("MpClient" + built.suffix)
    target.parent.mkdir()
    shutil.copyfile(built, target)
    # The loader takes UTF-8 and widens it for LoadLibraryExW: never the ANSI code page, in
    # which these names cannot be spelled.
    code = f"""
import warnings
from mpupdate.backends import DllBackend
from mpupdate._native import ffi
warnings.simplefilter("ignore")
from mpupdate._native import lib
backend = DllBackend({str(target)!r})
answer = backend.MpManagerOpen(0, ffi.new("MPHANDLE *")) & 0xFFFFFFFF
print(lib.mpupdate_missing_exports(), hex(answer))
"""
    # Loaded, every export found, and answering from the library itself (with no model attached
    # the native fake's exports say E_UNEXPECTED).
    assert in_fresh_python(code) == "0 0x8000ffff"
