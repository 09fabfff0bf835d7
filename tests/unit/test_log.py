"""mpupdate._log: the "mpupdate" logger, with its NullHandler, set up on first use.

That importing mpupdate imports no logging is checked in a fresh interpreter, in
test_architecture.py.
"""

from __future__ import annotations

import logging
import threading

import pytest

from mpupdate import _log


def test_the_logger_is_mpupdate_s_with_one_null_handler() -> None:
    logger = _log.logger()
    assert logger is logging.getLogger("mpupdate") is _log.logger()
    assert [type(h) for h in logger.handlers].count(logging.NullHandler) == 1


def test_threads_logging_first_together_add_one_null_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_log, "_logger", None)
    monkeypatch.setattr(logging.getLogger("mpupdate"), "handlers", [])
    start = threading.Barrier(8)
    found: list[logging.Logger] = []

    def first() -> None:
        start.wait()
        found.append(_log.logger())

    threads = [threading.Thread(target=first) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == [logging.getLogger("mpupdate")] * 8
    assert [type(h) for h in logging.getLogger("mpupdate").handlers] == [logging.NullHandler]


def test_a_warning_is_the_caller_s_record(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mpupdate"):
        _log.warning("mpupdate: %s of %d", "one", 2)
    [record] = caplog.records
    assert (record.name, record.levelno, record.getMessage()) == (
        "mpupdate",
        logging.WARNING,
        "mpupdate: one of 2",
    )
    assert record.funcName == "test_a_warning_is_the_caller_s_record"
    assert record.pathname == __file__
