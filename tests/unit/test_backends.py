"""Where MpClient.dll may be loaded from: the pure resolution logic, over a simulated Windows."""

from __future__ import annotations

import ntpath
import os
import struct
import sys
from pathlib import Path
from typing import Optional

import pytest

from mpupdate.backends import (
    DllBackend,
    LoaderEnvironment,
    check_override,
    locate_mpclient,
    mpclient_candidates,
    pe_machine,
    process_machine,
)
from mpupdate.errors import BackendUnavailableError

X64, X86, ARM64 = 0x8664, 0x014C, 0xAA64
ENV = {
    "ProgramFiles": r"C:\Program Files",
    "ProgramFiles(x86)": r"C:\Program Files (x86)",
    "ProgramData": r"C:\ProgramData",
    "SystemRoot": r"C:\Windows",
}
INBOX = r"C:\Program Files\Windows Defender\MpClient.dll"
PLATFORM = r"C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.24090.11-0"
KEY = (r"SOFTWARE\Microsoft\Windows Defender", "InstallLocation")


def pe(machine: int) -> bytes:
    """The first bytes of a PE image for ``machine``."""
    header = bytearray(512)
    header[0:2] = b"MZ"
    struct.pack_into("<I", header, 0x3C, 0x80)
    header[0x80:0x84] = b"PE\0\0"
    struct.pack_into("<H", header, 0x84, machine)
    return bytes(header)


def windows(
    files: dict[str, bytes],
    install_location: Optional[str] = None,
    machine: int = X64,
    cwd: str = r"C:\Users\ana\Downloads",
    environ: Optional[dict[str, str]] = None,
    registry: Optional[dict[tuple[str, str], str]] = None,
    known_folders: Optional[dict[str, str]] = None,
) -> LoaderEnvironment:
    """A simulated Windows machine: its files (case-insensitive), registry and process.

    The registry and the known folders say nothing unless given, so the environment decides.
    """
    stored = {ntpath.normcase(path): data for path, data in files.items()}
    values = dict(registry or {})
    if install_location:
        values[KEY] = install_location
    folders = known_folders or {}
    return LoaderEnvironment(
        environ=ENV if environ is None else environ,
        read_registry=lambda key, value: values.get((key, value)),
        read_header=lambda path: stored.get(ntpath.normcase(path)),
        cwd=cwd,
        machine=machine,
        windows=True,
        known_folder=folders.get,
    )


def test_normal_install_loads_from_program_files() -> None:
    assert locate_mpclient(windows({INBOX: pe(X64)})) == (INBOX, ())


def test_updated_platform_folder_named_by_the_registry_comes_first() -> None:
    updated = PLATFORM + r"\MpClient.dll"
    environment = windows({INBOX: pe(X64), updated: pe(X64)}, install_location=PLATFORM + "\\")
    assert mpclient_candidates(environment) == [updated, INBOX]
    assert locate_mpclient(environment) == (updated, ())


def test_a_missing_platform_folder_falls_back_and_says_so() -> None:
    environment = windows({INBOX: pe(X64)}, install_location=PLATFORM)
    assert locate_mpclient(environment) == (
        INBOX,
        ((PLATFORM + r"\MpClient.dll", "no such file, or it cannot be read"),),
    )


def test_32_bit_python_loads_the_platform_x86_subfolder() -> None:
    x86 = PLATFORM + r"\X86\MpClient.dll"
    environment = windows({x86: pe(X86)}, install_location=PLATFORM + "\\", machine=X86)
    assert mpclient_candidates(environment)[0] == x86
    assert locate_mpclient(environment) == (x86, ())


@pytest.mark.parametrize(
    "spelling", ["C:\\Program Files\\Windows Defender\\", r"c:\PROGRAM FILES\windows defender"]
)
def test_32_bit_python_with_the_inbox_install_location_loads_its_own_program_files(
    spelling: str,
) -> None:
    # Microsoft's loader: InstallLocation == %ProgramW6432%\Windows Defender\ means the inbox
    # DLL, and a 32-bit process takes the one in its own %ProgramFiles% (Program Files (x86)).
    wow = r"C:\Program Files (x86)\Windows Defender\MpClient.dll"
    environ = {
        **ENV,
        "ProgramFiles": r"C:\Program Files (x86)",
        "ProgramW6432": r"C:\Program Files",
    }
    environment = windows({wow: pe(X86)}, install_location=spelling, machine=X86, environ=environ)
    assert mpclient_candidates(environment) == [wow]
    assert locate_mpclient(environment) == (wow, ())


def test_32_bit_python_on_32_bit_windows_loads_the_platform_folder_itself() -> None:
    # The X86 subfolder is for a 32-bit process on 64-bit Windows; 32-bit Windows has no
    # Program Files (x86), and its platform folder holds the x86 DLL directly.
    updated = PLATFORM + r"\MpClient.dll"
    environ = {"ProgramFiles": r"C:\Program Files", "ProgramData": r"C:\ProgramData"}
    environment = windows(
        {updated: pe(X86), INBOX: pe(X86)},
        install_location=PLATFORM + "\\",
        machine=X86,
        environ=environ,
    )
    assert not environment.os_is_64_bit()
    assert mpclient_candidates(environment) == [updated, INBOX]
    assert locate_mpclient(environment) == (updated, ())


def test_environment_names_are_case_insensitive_on_windows() -> None:
    # os.environ on Windows upper-cases its keys; dict(os.environ) must still find ProgramFiles.
    upper = {key.upper(): value for key, value in ENV.items()}
    environment = windows({INBOX: pe(X64)}, environ=upper)
    assert environment.environ["ProgramFiles"] == r"C:\Program Files"
    assert locate_mpclient(environment) == (INBOX, ())
    assert check_override(INBOX, environment) == (
        None,
        [rf"loading MpClient from an explicit path: {INBOX}"],
    )


def test_the_override_variable_is_found_whatever_its_case_on_windows() -> None:
    environment = windows({}, environ={"Mpupdate_MpClient_Path": "relative.dll"})
    with pytest.raises(BackendUnavailableError) as caught:
        DllBackend(environment=environment)
    assert caught.value.tried[0][0] == "relative.dll"


def test_the_registry_outranks_environment_variables_for_trusted_folders() -> None:
    # A same-user process can point %ProgramFiles% at a folder it owns; the registry wins.
    evil_root = r"C:\Users\ana\AppData\Local\Temp\pf"
    evil = evil_root + r"\Windows Defender\MpClient.dll"
    registry = {
        (r"SOFTWARE\Microsoft\Windows\CurrentVersion", "ProgramFilesDir"): r"C:\Program Files",
    }
    environment = windows(
        {evil: pe(X64), INBOX: pe(X64)},
        environ={**ENV, "ProgramFiles": evil_root},
        registry=registry,
    )
    assert mpclient_candidates(environment) == [INBOX]
    assert locate_mpclient(environment) == (INBOX, ())
    reason, notes = check_override(evil, environment)
    assert reason is None and "outside the Defender folders" in notes[1]


def test_known_folders_outrank_environment_variables() -> None:
    platform_dll = PLATFORM + r"\MpClient.dll"
    environment = windows(
        {platform_dll: pe(X64)},
        install_location=PLATFORM,
        environ={**ENV, "ProgramData": r"C:\Users\ana"},
        known_folders={"ProgramData": r"C:\ProgramData", "Windows": r"C:\Windows"},
    )
    assert locate_mpclient(environment) == (platform_dll, ())
    fooled = windows(
        {r"C:\Users\ana\Microsoft\Windows Defender\Platform\1\MpClient.dll": pe(X64)},
        install_location=r"C:\Users\ana\Microsoft\Windows Defender\Platform\1",
        environ={**ENV, "ProgramData": r"C:\Users\ana"},
        known_folders={"ProgramData": r"C:\ProgramData"},
    )
    path, tried = locate_mpclient(fooled)
    assert path is None and tried[0][1].startswith("outside the Defender folders")


@pytest.mark.parametrize(
    ("platform", "machine"),
    [("win-amd64", X64), ("win32", X86), ("win-arm64", ARM64)],
)
def test_the_process_machine_is_the_interpreters_not_the_oss(
    platform: str, machine: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import platform as platform_module
    import sysconfig

    # An x64 Python on ARM64 Windows: the OS says ARM64, the interpreter loads x64 DLLs.
    monkeypatch.setattr(platform_module, "machine", lambda: "ARM64")
    monkeypatch.setattr(sysconfig, "get_platform", lambda: platform)
    assert process_machine() == machine
    assert process_machine(platform) == machine
    assert LoaderEnvironment(environ={}).machine == machine


def test_a_loader_environment_left_out_is_this_process_s(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MPUPDATE_TEST_VARIABLE", "set")
    monkeypatch.chdir(tmp_path)
    environment = LoaderEnvironment()
    assert environment.environ.get("MPUPDATE_TEST_VARIABLE") == "set"
    assert environment.cwd == os.getcwd()
    assert environment.machine == process_machine()
    assert environment.windows == (sys.platform == "win32")
    assert environment.read_header(str(tmp_path / "absent.dll")) is None
    (tmp_path / "some.dll").write_bytes(pe(X64))
    assert environment.read_header(str(tmp_path / "some.dll")) == pe(X64)
    # a copy: later changes of the process's environment do not leak into it
    monkeypatch.setenv("MPUPDATE_TEST_VARIABLE", "changed")
    assert environment.environ.get("MPUPDATE_TEST_VARIABLE") == "set"


def test_a_loader_environment_is_an_immutable_value() -> None:
    environment = windows({INBOX: pe(X64)})
    with pytest.raises(AttributeError, match="cannot assign to field 'cwd'"):
        environment.cwd = "C:\\"
    assert environment.replace(cwd="C:\\").cwd == "C:\\"
    assert environment.replace(cwd="C:\\").environ == environment.environ
    same = LoaderEnvironment(*(getattr(environment, name) for name in environment.__match_args__))
    assert same == environment
    assert repr(environment).startswith("LoaderEnvironment(environ=_CaseInsensitiveEnviron({")
    with pytest.raises(TypeError, match="unhashable"):  # its environ is a mapping, as before
        hash(environment)


def test_missing_defender_names_every_path_tried() -> None:
    environment = windows({}, install_location=PLATFORM)
    path, tried = locate_mpclient(environment)
    assert path is None
    assert tried == (
        (PLATFORM + r"\MpClient.dll", "no such file, or it cannot be read"),
        (INBOX, "no such file, or it cannot be read"),
    )
    with pytest.raises(BackendUnavailableError) as caught:
        DllBackend(environment=environment)
    text = str(caught.value)
    assert text.startswith("load MpClient: MpClient.dll was not found in the Defender folders\n")
    assert f"tried {INBOX}: no such file" in text
    assert "backend='fake'" in text


def test_a_dll_planted_in_the_current_directory_is_never_considered() -> None:
    planted = r"C:\Users\ana\Downloads\MpClient.dll"
    environment = windows({planted: pe(X64)}, cwd=r"C:\Users\ana\Downloads")
    path, tried = locate_mpclient(environment)
    assert path is None
    assert [p for p, _ in tried] == [INBOX]


def test_a_registry_value_pointing_outside_the_defender_folders_is_refused() -> None:
    planted = r"C:\Users\ana\Downloads\MpClient.dll"
    environment = windows(
        {planted: pe(X64), INBOX: pe(X64)}, install_location=r"C:\Users\ana\Downloads"
    )
    path, tried = locate_mpclient(environment)
    assert path == INBOX
    assert tried == (
        (
            planted,
            r"outside the Defender folders (C:\Program Files\Windows Defender; "
            r"C:\Program Files (x86)\Windows Defender; "
            r"C:\ProgramData\Microsoft\Windows Defender\Platform; "
            r"C:\Program Files\Microsoft Security Client; C:\Windows\WinSxS)",
        ),
    )


def test_a_registry_value_climbing_out_with_dotdot_is_refused() -> None:
    sneaky = r"C:\Program Files\Windows Defender\..\..\Users\ana"
    environment = windows({INBOX: pe(X64)}, install_location=sneaky)
    # The registry value is normalized first: what is left lies outside the Defender folders.
    path, tried = locate_mpclient(environment)
    assert path == INBOX
    assert tried[0][0] == r"C:\Users\ana\MpClient.dll"
    assert tried[0][1].startswith("outside the Defender folders")


def test_a_lookalike_folder_name_is_not_inside_the_defender_folder() -> None:
    lookalike = r"C:\Program Files\Windows Defender Evil"
    environment = windows({lookalike + r"\MpClient.dll": pe(X64)}, install_location=lookalike)
    path, tried = locate_mpclient(environment)
    assert path is None
    assert tried[0][1].startswith("outside the Defender folders")


def test_a_dll_of_the_other_bitness_is_reported_as_such() -> None:
    path, tried = locate_mpclient(windows({INBOX: pe(X86)}))
    assert path is None
    assert tried == (
        (
            INBOX,
            "bitness mismatch: the DLL is x86 (32-bit), this Python is x64 (64-bit); "
            "use a Python of the DLL's bitness",
        ),
    )


def test_a_file_that_is_not_a_dll_is_refused() -> None:
    assert locate_mpclient(windows({INBOX: b"#!/bin/sh\n" * 20})) == (
        None,
        ((INBOX, "not a Windows DLL (no PE header)"),),
    )


def test_without_program_files_or_registry_there_is_nothing_to_try() -> None:
    assert locate_mpclient(windows({}, environ={})) == (
        None,
        (("MpClient.dll", "neither InstallLocation nor %ProgramFiles% is set"),),
    )


def test_relative_and_bare_overrides_are_refused() -> None:
    environment = windows({INBOX: pe(X64)})
    reason = (
        "not an absolute path with a drive or UNC share (a bare or relative name could be planted)"
    )
    assert check_override("MpClient.dll", environment) == (reason, [])
    assert check_override(r"bin\MpClient.dll", environment) == (reason, [])
    assert check_override(r"\Windows Defender\MpClient.dll", environment) == (reason, [])
    assert check_override("", environment) == ("empty path", [])


def test_an_override_inside_the_defender_folders_is_announced() -> None:
    assert check_override(INBOX, windows({INBOX: pe(X64)})) == (
        None,
        [rf"loading MpClient from an explicit path: {INBOX}"],
    )


def test_an_untrusted_override_is_allowed_but_announced_loudly() -> None:
    share = r"\\build\drops\MpClient.dll"
    assert check_override(share, windows({share: pe(X64)})) == (
        None,
        [
            rf"loading MpClient from an explicit path: {share}",
            "that path is outside the Defender folders; only do this for tests (a copied "
            "MpClient.dll also needs its sibling files: MpManagerOpen looks for MsMpLics.dll "
            "beside it and fails with 0x80070002 without it)",
        ],
    )


def test_an_override_in_the_current_directory_gets_a_third_warning() -> None:
    planted = r"C:\Users\ana\Downloads\MpClient.dll"
    reason, notes = check_override(planted, windows({planted: pe(X64)}))
    assert reason is None
    assert notes[-1] == "that path is in the current directory, where planted DLLs are put"
    assert len(notes) == 3


def test_an_override_must_exist_and_match_the_bitness() -> None:
    path = r"D:\test\MpClient.dll"
    assert check_override(path, windows({})) == ("no such file, or it cannot be read", [])
    reason, _ = check_override(path, windows({path: pe(ARM64)}))
    assert reason is not None and reason.startswith("bitness mismatch: the DLL is ARM64")


def test_override_from_the_environment_is_vetted(monkeypatch: pytest.MonkeyPatch) -> None:
    environment = windows(
        {INBOX: pe(X64)}, environ={**ENV, "MPUPDATE_MPCLIENT_PATH": "MpClient.dll"}
    )
    with pytest.raises(BackendUnavailableError) as caught:
        DllBackend(environment=environment)
    assert caught.value.message == "the MpClient path override was refused"
    assert caught.value.tried[0][0] == "MpClient.dll"


@pytest.mark.parametrize(
    ("header", "expected"),
    [(pe(X64), X64), (pe(X86), X86), (pe(ARM64), ARM64), (b"MZ", None), (b"", None)],
)
def test_pe_machine_reads_the_machine_field(header: bytes, expected: Optional[int]) -> None:
    assert pe_machine(header) == expected


def test_pe_machine_rejects_a_header_pointing_past_its_end() -> None:
    header = bytearray(pe(X64))
    struct.pack_into("<I", header, 0x3C, 10_000)
    assert pe_machine(bytes(header)) is None
    header[0x80:0x84] = b"NE\0\0"
    struct.pack_into("<I", header, 0x3C, 0x80)
    assert pe_machine(bytes(header)) is None


# -- the real sources of evidence, on Windows (the Windows lane runs these under Wine) ------------

windows_only = pytest.mark.skipif(sys.platform != "win32", reason="reads the Windows registry")


@windows_only
def test_the_registry_is_read_as_reg_sz_only() -> None:
    # Always true under windows_only; tells mypy that winreg and its names exist.
    if sys.platform == "win32":
        import winreg

        from mpupdate.backends import _read_registry

        key = r"SOFTWARE\mpupdate-tests"
        with winreg.CreateKeyEx(
            winreg.HKEY_LOCAL_MACHINE, key, 0, winreg.KEY_WRITE | winreg.KEY_WOW64_64KEY
        ) as handle:
            winreg.SetValueEx(handle, "Plain", 0, winreg.REG_SZ, "C:\\Plain\\")
            winreg.SetValueEx(handle, "Expandable", 0, winreg.REG_EXPAND_SZ, "%SystemDrive%\\x")
            winreg.SetValueEx(handle, "Number", 0, winreg.REG_DWORD, 7)
        try:
            assert _read_registry(key, "Plain") == "C:\\Plain\\"
            assert _read_registry(key, "Expandable") is None
            assert _read_registry(key, "Number") is None
            assert _read_registry(key, "Missing") is None
            assert _read_registry(key + r"\Missing", "Plain") is None
        finally:
            winreg.DeleteKeyEx(winreg.HKEY_LOCAL_MACHINE, key, winreg.KEY_WOW64_64KEY, 0)


@windows_only
def test_trusted_folders_come_from_the_registry_and_known_folders_not_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    for name in ("ProgramFiles", "ProgramData", "SystemRoot", "ProgramW6432"):
        monkeypatch.setenv(name, r"C:\Users\Public\planted")
    environment = LoaderEnvironment(environ=dict(os.environ))
    assert environment.environ["PROGRAMFILES"] == r"C:\Users\Public\planted"
    for name in ("ProgramFiles", "ProgramData", "SystemRoot", "ProgramW6432"):
        found = environment.folder(name)
        assert found is not None and "planted" not in found, (name, found)
    assert ntpath.normcase(environment.folder("ProgramData") or "") == ntpath.normcase(
        r"C:\ProgramData"
    )
