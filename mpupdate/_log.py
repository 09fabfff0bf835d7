"""The package's logger, ``"mpupdate"``, set up on first use: importing mpupdate imports no logging.

The first call of :func:`logger` (or :func:`warning`) imports :mod:`logging` and adds a
``NullHandler`` to ``"mpupdate"``, as a library should: an application that configures no logging
then hears nothing from the package (not Python's last-resort handler on stderr), and one that does
configure logging gets every record through its own handlers.
"""

from __future__ import annotations

import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from typing import Optional

__all__ = ["NAME", "logger", "warning"]

#: The logger the package logs on.
NAME = "mpupdate"

_lock = threading.Lock()
_logger: Optional[logging.Logger] = None


def logger() -> logging.Logger:
    """The ``"mpupdate"`` logger; the first call imports logging and adds the NullHandler."""
    global _logger
    if _logger is None:
        with _lock:  # one NullHandler, whichever threads log first
            if _logger is None:
                import logging

                found = logging.getLogger(NAME)
                found.addHandler(logging.NullHandler())
                _logger = found
    return _logger


def warning(message: str, *args: object) -> None:
    """Log ``message % args`` at WARNING on ``"mpupdate"``, as if the caller had logged it (the
    record names the caller's file, function and line)."""
    logger().warning(message, *args, stacklevel=2)
