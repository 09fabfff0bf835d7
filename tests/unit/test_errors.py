"""mpupdate.errors: HRESULT helpers, messages and the exception hierarchy."""

from __future__ import annotations

import pickle
import sys
from datetime import datetime, timedelta, timezone
from typing import Optional

import pytest

import mpupdate
from mpupdate.backends import EXPORTS
from mpupdate.constants import HRESULTS, Evidence, HResultCategory, Source
from mpupdate.errors import (
    AccessDeniedError,
    BackendUnavailableError,
    InvalidArgumentError,
    InvalidHandleError,
    MpError,
    NetworkError,
    ProtocolError,
    ServiceUnavailableError,
    Step,
    UpdateAccessDeniedError,
    UpdateError,
    UpdateNetworkError,
    UpdateServiceUnavailableError,
    describe,
    error_for,
    failed,
    format_hresult,
    format_system_message,
    hresult_name,
    is_system_hresult,
    message_for,
    to_signed,
    to_unsigned,
    update_error_for,
)
from mpupdate.machine import Outcome, UpdateResult

ACCESS_HINT = "run from an elevated (administrator) prompt; tamper protection can also refuse"
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _result(outcome: Outcome, hresult: int) -> UpdateResult:
    return UpdateResult(
        outcome=outcome,
        hresult=hresult,
        message="m",
        reboot_required=False,
        events=(),
        anomalies=(),
        source=Source.DEFAULT,
        options=3,
        started_at=START,
        finished_at=START + timedelta(seconds=2),
    )


# -- signed / unsigned / failed ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("unsigned", "signed"),
    [
        (0x00000000, 0),
        (0x00000001, 1),
        (0x7FFFFFFF, 2147483647),
        (0x80000000, -2147483648),
        (0x80070005, -2147024891),
        (0x80004004, -2147467260),
        (0xFFFFFFFF, -1),
    ],
)
def test_signed_and_unsigned_forms_round_trip(unsigned: int, signed: int) -> None:
    assert to_signed(unsigned) == signed
    assert to_unsigned(signed) == unsigned
    assert to_unsigned(unsigned) == unsigned
    assert to_signed(signed) == signed
    assert to_unsigned(to_signed(unsigned)) == unsigned
    assert to_signed(to_unsigned(signed)) == signed


def test_to_unsigned_and_to_signed_keep_only_32_bits() -> None:
    assert to_unsigned(0x1_8007_0005) == 0x80070005
    assert to_signed(0x1_0000_0001) == 1
    assert to_signed(0x1_FFFF_FFFF) == -1


@pytest.mark.parametrize(
    ("hresult", "expected"),
    [
        (0, False),
        (1, False),
        (0x7FFFFFFF, False),
        (0x80000000, True),
        (0x80070005, True),
        (0xFFFFFFFF, True),
        (-1, True),
        (-2147483648, True),
        (2147483647, False),
    ],
)
def test_failed_is_the_severity_bit(hresult: int, expected: bool) -> None:
    assert failed(hresult) is expected


# -- names and formatting ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hresult", "name"),
    [
        (0x00000000, "S_OK"),
        (0x00000001, "S_FALSE"),
        (0x80070005, "E_ACCESSDENIED"),
        (-2147024891, "E_ACCESSDENIED"),
        (0x80070057, "E_INVALIDARG"),
        (0x80070006, "E_HANDLE"),
        (0x800710DD, "ERROR_INVALID_OPERATION"),
        (0x80004004, "E_ABORT"),
        (0x800106BA, "RPC_S_SERVER_UNAVAILABLE"),
        (0x8024402C, "WU_E_PT_WINHTTP_NAME_NOT_RESOLVED"),
        (0x8050A005, "MP_E_BAD_DATABASE_NOT_SIGNED"),
    ],
)
def test_hresult_name_of_known_codes(hresult: int, name: str) -> None:
    assert hresult_name(hresult) == name


@pytest.mark.parametrize(
    ("hresult", "name"),
    [
        (0x80070490, "HRESULT_FROM_WIN32(1168)"),
        (0x80070020, "HRESULT_FROM_WIN32(32)"),
        (0x8007FFFF, "HRESULT_FROM_WIN32(65535)"),
        (0x80070000, "HRESULT_FROM_WIN32(0)"),
    ],
)
def test_hresult_name_of_other_win32_codes_names_the_win32_error(hresult: int, name: str) -> None:
    assert hresult_name(hresult) == name


@pytest.mark.parametrize(
    ("hresult", "name"),
    [(0x80501234, "0x80501234"), (0x00000002, "0x00000002"), (-1, "0xFFFFFFFF")],
)
def test_hresult_name_of_unknown_codes_is_the_hex_value(hresult: int, name: str) -> None:
    assert hresult_name(hresult) == name


@pytest.mark.parametrize(
    ("hresult", "text"),
    [
        (0x80070005, "0x80070005 E_ACCESSDENIED"),
        (-2147024891, "0x80070005 E_ACCESSDENIED"),
        (0, "0x00000000 S_OK"),
        (0x80070490, "0x80070490 HRESULT_FROM_WIN32(1168)"),
        (0x80501234, "0x80501234"),
        (0x12345, "0x00012345"),
    ],
)
def test_format_hresult_gives_hex_and_name_without_repeating_the_hex(
    hresult: int, text: str
) -> None:
    assert format_hresult(hresult) == text


def test_describe_known_code_is_the_table_entry() -> None:
    info = describe(-2147024891)
    assert info.code == 0x80070005
    assert info.name == "E_ACCESSDENIED"
    assert info.message == "Access is denied."
    assert info.hint == ACCESS_HINT
    assert info.category is HResultCategory.ACCESS_DENIED
    assert info.evidence is Evidence.DOC


def test_describe_antimalware_names_are_marked_as_ours() -> None:
    info = describe(0x8050800C)
    assert info.name == "MP_E_BAD_INPUT_DATA"
    assert info.evidence is Evidence.GUESS


@pytest.mark.parametrize(
    ("hresult", "message", "category"),
    [
        (0x00000002, "Success.", HResultCategory.SUCCESS),
        (0x7FFFFFFF, "Success.", HResultCategory.SUCCESS),
        (0x80501234, "An antimalware (facility 0x50) error.", HResultCategory.OTHER),
        (0xC050FFFF, "An antimalware (facility 0x50) error.", HResultCategory.OTHER),
        (0x80040001, "An error this package has no description for.", HResultCategory.OTHER),
        (0x80070490, "An error this package has no description for.", HResultCategory.OTHER),
    ],
)
def test_describe_unknown_codes_falls_back_to_a_generic_guess(
    hresult: int, message: str, category: HResultCategory
) -> None:
    info = describe(hresult)
    assert info.code == to_unsigned(hresult)
    assert info.name == hresult_name(hresult)
    assert info.message == message
    assert info.hint is None
    assert info.category is category
    assert info.evidence is Evidence.GUESS


# -- MpError and friends -----------------------------------------------------------------------


def test_mperror_str_names_call_hex_name_message_and_hint() -> None:
    error = MpError("MpUpdateStart", -2147024891)
    assert str(error) == (
        f"MpUpdateStart failed: 0x80070005 E_ACCESSDENIED: Access is denied.\nHint: {ACCESS_HINT}"
    )
    assert error.function == "MpUpdateStart"
    assert error.hresult == 0x80070005
    assert error.name == "E_ACCESSDENIED"
    assert error.message == "Access is denied."
    assert error.hint == ACCESS_HINT


def test_mperror_without_a_hint_has_no_hint_line() -> None:
    error = MpError("MpUpdateControl", 0x80004004)
    assert str(error) == "MpUpdateControl failed: 0x80004004 E_ABORT: Operation aborted."
    assert error.hint is None


def test_mperror_message_from_the_dll_wins_over_the_table() -> None:
    error = MpError("MpManagerOpen", 0x80070005, "Zugriff verweigert.")
    assert str(error) == (
        f"MpManagerOpen failed: 0x80070005 E_ACCESSDENIED: Zugriff verweigert.\nHint: {ACCESS_HINT}"
    )


def test_mperror_empty_message_falls_back_to_the_table() -> None:
    assert MpError("f", 0x80070005, "").message == "Access is denied."


def test_mperror_explicit_empty_hint_suppresses_the_table_hint() -> None:
    error = MpError("f", 0x80070005, None, "")
    assert error.hint == ""
    assert str(error) == "f failed: 0x80070005 E_ACCESSDENIED: Access is denied."


def test_mperror_explicit_hint_replaces_the_table_hint() -> None:
    error = MpError("f", 0x80070005, hint="ask your admin")
    assert (
        str(error) == "f failed: 0x80070005 E_ACCESSDENIED: Access is denied.\nHint: ask your admin"
    )


def test_mperror_unknown_code_has_generic_message_and_bare_hex() -> None:
    error = MpError("MpUpdateStart", 0x80501234)
    assert str(error) == "MpUpdateStart failed: 0x80501234: An antimalware (facility 0x50) error."
    assert error.name == "0x80501234"


def test_mperror_args_are_the_constructor_arguments() -> None:
    assert MpError("f", -1).args == (
        "f",
        0xFFFFFFFF,
        "An error this package has no description for.",
        None,
    )


def test_backend_unavailable_str_lists_tried_paths_then_hint() -> None:
    error = BackendUnavailableError(
        "load MpClient.dll",
        0x8007007E,
        "no MpClient.dll found",
        "install Defender or use backend='fake'",
        tried=(
            (r"C:\Program Files\Windows Defender\MpClient.dll", "not found"),
            (r"C:\ProgramData\Microsoft\Windows Defender\Platform\4.18\MpClient.dll", "x86"),
        ),
    )
    assert str(error) == (
        "load MpClient.dll: no MpClient.dll found\n"
        r"  tried C:\Program Files\Windows Defender\MpClient.dll: not found"
        "\n"
        r"  tried C:\ProgramData\Microsoft\Windows Defender\Platform\4.18\MpClient.dll: x86"
        "\nHint: install Defender or use backend='fake'"
    )
    assert error.tried == (
        (r"C:\Program Files\Windows Defender\MpClient.dll", "not found"),
        (r"C:\ProgramData\Microsoft\Windows Defender\Platform\4.18\MpClient.dll", "x86"),
    )


def test_backend_unavailable_without_tried_paths_uses_table_message_and_hint() -> None:
    error = BackendUnavailableError("MpManagerOpen", 0x8007007E)
    assert str(error) == (
        "MpManagerOpen: The specified module could not be found.\n"
        "Hint: no MpClient library is loaded (see mpupdate.backends)"
    )
    assert error.tried == ()
    assert isinstance(error, MpError)


def test_backend_unavailable_tried_list_is_stored_as_a_tuple() -> None:
    error = BackendUnavailableError("f", 0x8007007E, tried=[("a", "b")])  # type: ignore[arg-type]
    assert error.tried == (("a", "b"),)


def test_update_error_str_names_the_outcome_of_its_result() -> None:
    result = _result(Outcome.CANCELLED, 0x80004004)
    error = UpdateError("MpUpdateStart", 0x80004004, result=result)
    assert str(error) == (
        "signature update CANCELLED (MpUpdateStart): 0x80004004 E_ABORT: Operation aborted."
    )
    assert error.result is result


def test_update_error_without_result_says_failed_and_gives_hint() -> None:
    error = UpdateError("SIGUPDATE_COMPLETE", 0x80072EFD)
    assert str(error) == (
        "signature update FAILED (SIGUPDATE_COMPLETE): 0x80072EFD WININET_E_CANNOT_CONNECT: "
        "A connection with the server could not be established.\n"
        "Hint: check the firewall and the WinHTTP proxy (netsh winhttp show proxy)"
    )
    assert error.result is None


def test_update_error_timed_out_outcome_in_str() -> None:
    error = UpdateError("wait", 0x800705B4, "gave up", None, _result(Outcome.TIMED_OUT, 0x800705B4))
    assert str(error) == (
        "signature update TIMED_OUT (wait): 0x800705B4 ERROR_TIMEOUT: gave up\n"
        "Hint: raise the timeout, or check the network if updates are usually faster"
    )


def test_protocol_error_keeps_event_position_and_expected() -> None:
    error = ProtocolError("event 3: bad", event="ev", position=3, expected="SIGUPDATE_START")
    assert str(error) == "event 3: bad"
    assert (error.event, error.position, error.expected) == ("ev", 3, "SIGUPDATE_START")
    assert not isinstance(error, MpError)


def test_protocol_error_defaults() -> None:
    error = ProtocolError("x")
    assert (error.event, error.position, error.expected) == (None, -1, "")


# -- choosing the class ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hresult", "cls"),
    [
        (0x80070005, AccessDeniedError),
        (-2147024891, AccessDeniedError),
        (0x800106BA, ServiceUnavailableError),
        (0x8024402C, NetworkError),
        (0x80072EFD, NetworkError),
        (0x80072EE2, NetworkError),
        (0x80501004, NetworkError),
        (0x80070057, InvalidArgumentError),
        (0x800710DD, InvalidArgumentError),
        (0x80070006, InvalidHandleError),
        (0x8007007E, BackendUnavailableError),
        (0x8007007F, BackendUnavailableError),
        (0x80004004, MpError),
        (0x80004005, MpError),
        (0x80070643, MpError),
        (0x8050A001, MpError),
        (0x80501234, MpError),
        (0x80070490, MpError),
        (0x80070002, MpError),
        (0x80070003, MpError),
        (0x80070426, ServiceUnavailableError),
        (0x800706BA, ServiceUnavailableError),
        (0x800700C1, BackendUnavailableError),
    ],
)
def test_error_for_picks_the_class_of_the_cause(hresult: int, cls: type[MpError]) -> None:
    error = error_for("MpUpdateStart", hresult)
    assert type(error) is cls
    assert error.function == "MpUpdateStart"
    assert error.hresult == to_unsigned(hresult)


def test_error_for_passes_the_message_through() -> None:
    error = error_for("MpUpdateControl", 0x800710DD, "nope")
    assert str(error) == (
        "MpUpdateControl failed: 0x800710DD ERROR_INVALID_OPERATION: nope\n"
        "Hint: only ABORT is supported for updates; PAUSE and RESUME are refused"
    )


@pytest.mark.parametrize(
    ("hresult", "cls", "cause"),
    [
        (0x80070005, UpdateAccessDeniedError, AccessDeniedError),
        (0x800106BA, UpdateServiceUnavailableError, ServiceUnavailableError),
        (0x80072EFD, UpdateNetworkError, NetworkError),
        (0x8024402C, UpdateNetworkError, NetworkError),
        (0x80501004, UpdateNetworkError, NetworkError),
    ],
)
def test_update_error_for_is_both_update_error_and_the_cause(
    hresult: int, cls: type[UpdateError], cause: type[MpError]
) -> None:
    result = _result(Outcome.FAILED, hresult)
    error = update_error_for("SIGUPDATE_COMPLETE", hresult, None, result)
    assert type(error) is cls
    assert isinstance(error, UpdateError)
    assert isinstance(error, cause)
    assert isinstance(error, MpError)
    assert error.result is result
    assert error.hint == describe(hresult).hint


@pytest.mark.parametrize("hresult", [0x80004004, 0x80070643, 0x80501234, 0x80070057, 0x80070006])
def test_update_error_for_other_causes_is_a_plain_update_error(hresult: int) -> None:
    error = update_error_for(
        "SIGUPDATE_COMPLETE", hresult, "text", _result(Outcome.FAILED, hresult)
    )
    assert type(error) is UpdateError
    assert error.message == "text"


def test_update_access_denied_is_caught_by_except_access_denied() -> None:
    error = update_error_for("f", 0x80070005, None, _result(Outcome.FAILED, 0x80070005))
    with pytest.raises(AccessDeniedError):
        raise error


# -- the step that failed ----------------------------------------------------------------------


@pytest.mark.parametrize("step", list(Step), ids=lambda s: s.name)
def test_a_step_reads_as_the_text_errors_have_always_carried(step: Step) -> None:
    text = step.value
    assert isinstance(step, str)
    assert step == text and text == step
    logged = "%s" % (step,)  # noqa: UP031  (as logging formats it)
    assert (str(step), f"{step}", logged, format(step, "")) == (text,) * 4
    assert f"{step:>25}" == f"{text:>25}"
    assert {text: 1}[step] == 1  # hashes as its text
    assert Step(text) is step


def test_every_export_that_returns_an_hresult_is_a_step() -> None:
    exports = {step.value for step in Step} & set(EXPORTS)
    assert exports == set(EXPORTS) - {"MpFreeMemory"}  # MpFreeMemory returns nothing
    assert [step.value for step in Step if step.value not in EXPORTS] == [
        "load MpClient",
        "SIGUPDATE_COMPLETE",
        "UpdateOperation.wait",
    ]


def test_an_error_holds_its_step_and_reads_as_before() -> None:
    error = AccessDeniedError(Step.MP_UPDATE_START, 0x80070005)
    from_text = AccessDeniedError("MpUpdateStart", 0x80070005)
    # A str, not a literal: mypy takes a str-enum member and a str literal for never equal
    # (python/mypy#19576) and would skip the rest of the test as unreachable.
    text: str = "MpUpdateStart"
    for e in (error, from_text):
        assert e.function is Step.MP_UPDATE_START
        assert e.function == text
        assert e.args[0] == "MpUpdateStart" and type(e.args[0]) is str
        assert repr(e) == (
            f"AccessDeniedError('MpUpdateStart', 2147942405, 'Access is denied.', {ACCESS_HINT!r})"
        )
        assert str(e) == (
            "MpUpdateStart failed: 0x80070005 E_ACCESSDENIED: Access is denied.\n"
            f"Hint: {ACCESS_HINT}"
        )


def test_an_error_keeps_a_function_that_is_no_step_as_given() -> None:
    error = MpError("MpSomethingElse", 0x80004005)
    assert error.function == "MpSomethingElse"
    assert type(error.function) is str
    assert Step.coerce("MpSomethingElse") == "MpSomethingElse"
    assert Step.coerce("MpManagerOpen") is Step.MP_MANAGER_OPEN


def test_errors_raised_for_a_failed_load_name_the_load_step() -> None:
    error = BackendUnavailableError("load MpClient", 0x8007007E, "none", "hint")
    assert error.function is Step.LOAD_MPCLIENT
    assert str(error) == "load MpClient: none\nHint: hint"


def test_an_update_error_names_its_step_in_its_text() -> None:
    result = _result(Outcome.TIMED_OUT, 0x800705B4)
    error = update_error_for(Step.UPDATE_WAIT, 0x800705B4, "gave up", result)
    assert error.function is Step.UPDATE_WAIT
    assert str(error).startswith(
        "signature update TIMED_OUT (UpdateOperation.wait): 0x800705B4 ERROR_TIMEOUT: gave up\n"
    )


def test_pickling_keeps_the_step() -> None:
    copy = pickle.loads(pickle.dumps(MpError(Step.MP_MANAGER_OPEN, 0x800106BA)))
    assert copy.function is Step.MP_MANAGER_OPEN
    assert copy.args[0] == "MpManagerOpen" and type(copy.args[0]) is str


# -- pickling ----------------------------------------------------------------------------------


def _attrs(error: MpError) -> tuple[object, ...]:
    return (type(error), error.function, error.hresult, error.name, error.message, error.hint)


@pytest.mark.parametrize(
    "error",
    [
        MpError("MpUpdateStart", 0x80070005),
        MpError("f", 0x80501234, "custom", ""),
        AccessDeniedError("MpManagerOpen", 0x80070005, "msg", "hint"),
        ServiceUnavailableError("MpUpdateStart", 0x800106BA),
        NetworkError("x", 0x80072EE2),
        InvalidArgumentError("x", 0x80070057),
        InvalidHandleError("x", 0x80070006),
    ],
    ids=lambda e: type(e).__name__,
)
def test_pickling_keeps_class_and_attributes(error: MpError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert _attrs(copy) == _attrs(error)
    assert str(copy) == str(error)
    assert copy.args == error.args


def test_pickling_backend_unavailable_keeps_tried_paths() -> None:
    error = BackendUnavailableError("load", 0x8007007E, "none", "hint", (("p", "r"),))
    copy = pickle.loads(pickle.dumps(error))
    assert _attrs(copy) == _attrs(error)
    assert copy.tried == (("p", "r"),)
    assert str(copy) == "load: none\n  tried p: r\nHint: hint"


def test_pickling_update_error_keeps_the_result() -> None:
    result = _result(Outcome.FAILED, 0x80070005)
    error = update_error_for("SIGUPDATE_COMPLETE", 0x80070005, None, result)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is UpdateAccessDeniedError
    assert _attrs(copy) == _attrs(error)
    assert copy.result == result
    assert str(copy) == str(error)


# -- codes met before a manager exists ---------------------------------------------------------

SERVICE_HINT = (
    "the Microsoft Defender Antivirus service (WinDefend) is not running; start it, "
    "or check that Defender is not disabled by another antivirus product"
)
FILE_HINT = (
    "if MpManagerOpen failed: it needs the files beside MpClient.dll (it looks for MsMpLics.dll "
    "there), so a copied MpClient.dll alone does not work; load the one in the Defender folder "
    "(backend=None finds it)"
)


@pytest.mark.parametrize(
    ("code", "name", "message", "hint", "category"),
    [
        (
            0x80070002,
            "ERROR_FILE_NOT_FOUND",
            "The system cannot find the file specified.",
            FILE_HINT,
            HResultCategory.OTHER,
        ),
        (
            0x80070003,
            "ERROR_PATH_NOT_FOUND",
            "The system cannot find the path specified.",
            "a folder in a path does not exist: check the MpClient.dll path and, for file-share "
            "updates, the share's path",
            HResultCategory.OTHER,
        ),
        (
            0x80070005,
            "E_ACCESSDENIED",
            "Access is denied.",
            ACCESS_HINT,
            HResultCategory.ACCESS_DENIED,
        ),
        (
            0x80070426,
            "ERROR_SERVICE_NOT_ACTIVE",
            "The service has not been started.",
            SERVICE_HINT,
            HResultCategory.SERVICE_UNAVAILABLE,
        ),
        (
            0x800706BA,
            "HRESULT_FROM_WIN32(RPC_S_SERVER_UNAVAILABLE)",
            "The RPC server is unavailable.",
            SERVICE_HINT,
            HResultCategory.SERVICE_UNAVAILABLE,
        ),
        (
            0x800106BA,
            "RPC_S_SERVER_UNAVAILABLE",
            "The RPC server is unavailable.",
            SERVICE_HINT,
            HResultCategory.SERVICE_UNAVAILABLE,
        ),
        (
            0x8007007E,
            "ERROR_MOD_NOT_FOUND",
            "The specified module could not be found.",
            "no MpClient library is loaded (see mpupdate.backends)",
            HResultCategory.BACKEND,
        ),
        (
            0x8007007F,
            "ERROR_PROC_NOT_FOUND",
            "The specified procedure could not be found.",
            "the loaded library lacks this export; is it really MpClient.dll?",
            HResultCategory.BACKEND,
        ),
        (
            0x800700C1,
            "ERROR_BAD_EXE_FORMAT",
            "%1 is not a valid Win32 application.",
            "the DLL is not a valid DLL for this Python's bitness: a 64-bit Python needs the x64 "
            "MpClient.dll, a 32-bit Python the one in the X86 subfolder",
            HResultCategory.BACKEND,
        ),
    ],
)
def test_codes_met_before_a_manager_exists_have_windows_wording(
    code: int, name: str, message: str, hint: str, category: HResultCategory
) -> None:
    info = describe(code)
    assert (info.code, info.name, info.message, info.hint, info.category, info.evidence) == (
        code,
        name,
        message,
        hint,
        category,
        Evidence.DOC,
    )


def test_every_name_in_the_offline_table_is_unique() -> None:
    # fakes.scenario maps names back to codes: two codes under one name would not round-trip.
    names = [info.name for info in HRESULTS.values()]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []
    assert [n for n in names if n != n.upper()] == []  # scenarios look names up upper-cased


@pytest.mark.parametrize("code", [0x800706BA, 0x800106BA, 0x80070002, 0x80070426, 0x800700C1])
def test_scenarios_write_and_read_the_new_codes_by_name(code: int) -> None:
    from mpupdate.fakes import Scenario

    data = Scenario("x", open_hresult=code).to_dict()
    assert data["open_hresult"] == HRESULTS[code].name
    assert Scenario.from_dict(data, "<test>").open_hresult == code


def test_the_null_handle_fact_is_recorded_with_e_invalidarg() -> None:
    info = describe(0x80070057)
    assert info.evidence is Evidence.BIN
    assert info.hint == (
        "check the arguments: at most one update-source bit (none of 0x78 with 0x200), "
        "callback info is required, and the manager handle must be open (not NULL)"
    )


# -- which source gives the message ------------------------------------------------------------


@pytest.mark.parametrize(
    ("hresult", "expected"),
    [
        (0x80070002, True),  # facility Win32
        (0x800706BA, True),
        (0x80004005, True),  # facility NULL
        (0x800106BA, True),  # facility RPC
        (0x8024402C, True),  # Windows Update: the system may or may not have text
        (-2147024891, True),
        (0x8050800C, False),  # antimalware: MpClient's own texts
        (0xC050FFFF, False),
        (0xA0070005, False),  # customer bit
        (0x00000000, False),  # success codes never
        (0x00000001, False),
        (0x00070005, False),
    ],
)
def test_is_system_hresult(hresult: int, expected: bool) -> None:
    assert is_system_hresult(hresult) is expected


class RecordingFormatter:
    """A stand-in for FormatMessageW: answers from a dict and records what it was asked."""

    def __init__(self, texts: dict[int, Optional[str]]) -> None:
        self.texts = texts
        self.asked: list[int] = []

    def __call__(self, code: int) -> Optional[str]:
        self.asked.append(code)
        return self.texts.get(code)


def test_message_for_prefers_the_dll_s_text_and_does_not_ask_the_system() -> None:
    system = RecordingFormatter({0x80070005: "Zugriff verweigert"})
    assert message_for(0x80070005, "  Accès refusé.\r\n", system) == "Accès refusé."
    assert system.asked == []


def test_message_for_takes_the_system_text_for_a_system_code_without_dll_text() -> None:
    system = RecordingFormatter({0x80070002: "Das System kann die Datei nicht finden.\r\n"})
    assert message_for(-2147024894, None, system) == "Das System kann die Datei nicht finden."
    assert message_for(0x80070002, "   ", system) == "Das System kann die Datei nicht finden."
    assert system.asked == [0x80070002, 0x80070002]  # unsigned, whatever form it was given in


def test_message_for_falls_back_to_the_offline_table_when_the_system_has_no_text() -> None:
    system = RecordingFormatter({0x80070426: "  "})
    assert message_for(0x80070426, None, system) == "The service has not been started."
    assert message_for(0x800706BA, None, system) == "The RPC server is unavailable."
    assert message_for(0x80070490, None, system) == "An error this package has no description for."
    assert system.asked == [0x80070426, 0x800706BA, 0x80070490]


def test_message_for_never_asks_the_system_about_antimalware_customer_or_success_codes() -> None:
    system = RecordingFormatter({})
    assert message_for(0x8050800C, None, system) == (
        "The antimalware definitions are invalid (bad input data)."
    )
    assert message_for(0x80501234, None, system) == "An antimalware (facility 0x50) error."
    assert message_for(0xA0070005, None, system) == "An error this package has no description for."
    assert message_for(0x00000001, None, system) == "No update was needed."
    assert system.asked == []


def test_message_for_without_a_system_formatter_uses_the_offline_table() -> None:
    assert message_for(0x80070002, None, None) == "The system cannot find the file specified."


@pytest.mark.skipif(sys.platform == "win32", reason="FormatMessageW answers on Windows")
def test_format_system_message_is_none_off_windows() -> None:
    assert format_system_message(0x80070005) is None
    assert message_for(0x80070002) == "The system cannot find the file specified."


@pytest.mark.skipif(sys.platform != "win32", reason="FormatMessageW exists only on Windows")
def test_format_system_message_gives_windows_text_on_windows() -> None:
    text = format_system_message(0x80070005)
    assert text is not None and text == text.strip() and text
    assert message_for(0x80070005) == text
    assert format_system_message(0xA0001234) is None  # a customer code: not in the system's table


def test_import_mpupdate_does_not_import_ctypes_for_messages() -> None:
    import subprocess

    code = (
        "import sys, mpupdate; print('ctypes' in sys.modules); "
        "mpupdate.errors.message_for(0x80070002); print('ctypes' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # Only FormatMessageW needs ctypes, and only on Windows, where it is loaded on first use.
    assert done.stdout.split() == ["False", str(sys.platform == "win32")]


def test_a_failed_manager_open_reads_the_file_not_found_text_and_hint() -> None:
    from mpupdate.fakes import FakeMpClient, Scenario

    expected = format_system_message(0x80070002) or "The system cannot find the file specified."
    fake = FakeMpClient(Scenario("x", open_hresult=0x80070002))
    with pytest.raises(MpError) as caught:
        mpupdate.Client(fake)
    assert type(caught.value) is MpError
    assert str(caught.value) == (
        f"MpManagerOpen failed: 0x80070002 ERROR_FILE_NOT_FOUND: {expected}\nHint: {FILE_HINT}"
    )
    result = mpupdate.update(
        backend=FakeMpClient(Scenario("x", open_hresult=0x80070002)), check=False
    )
    assert (result.hresult, result.message, result.hint) == (0x80070002, expected, FILE_HINT)
