"""mpupdate: start, watch, cancel and verify Microsoft Defender signature updates.

Binds ``MpClient.dll``'s ``MpUpdateStart`` through a compiled cffi module, and ships a faithful
fake of the DLL (:mod:`mpupdate.fakes`) so update automation can be tested on any OS::

    import mpupdate
    result = mpupdate.update(backend="fake:updated", progress=lambda p: print(p.percent))
    print(result.outcome, result.versions_after.av_signature)

Importing this package loads no DLL, and imports neither logging nor asyncio: each is imported
when first needed (the "mpupdate" logger gets its NullHandler then, from :mod:`mpupdate._log`).
"""

from __future__ import annotations

import os

try:
    from . import _mpclient  # noqa: F401  (the compiled module; a clear error if it is missing)
except ImportError as _error:
    raise ImportError(
        f"mpupdate's compiled module (mpupdate._mpclient) is missing from "
        f"{os.path.dirname(os.path.abspath(__file__))}. If that is a source checkout, Python was "
        "started in the checkout's root, whose mpupdate/ folder hides the installed package: "
        "run from another directory, or install with 'pip install -e .', which builds the "
        f"module in place. ({_error})"
    ) from _error

from .api import update
from .backends import Backend, DllBackend, MpClientOverrideWarning
from .client import Client, ProgressFunction, UpdateOperation
from .constants import (
    CallbackType,
    Control,
    Evidence,
    Notify,
    SigUpdateType,
    Source,
    Stage,
    UpdateOption,
)
from .errors import (
    AccessDeniedError,
    BackendUnavailableError,
    InvalidArgumentError,
    InvalidHandleError,
    MpError,
    NetworkError,
    ProtocolError,
    ServiceUnavailableError,
    UpdateAccessDeniedError,
    UpdateError,
    UpdateNetworkError,
    UpdateServiceUnavailableError,
)
from .events import Event
from .machine import Phase, Progress, UpdateMachine
from .results import Anomaly, Attempt, Outcome, UpdateResult
from .versions import ComponentVersion, VersionInfo

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .aio import update_async

__version__ = "0.1.0"

__all__ = [
    "AccessDeniedError",
    "Anomaly",
    "Attempt",
    "Backend",
    "BackendUnavailableError",
    "CallbackType",
    "Client",
    "ComponentVersion",
    "Control",
    "DllBackend",
    "Event",
    "Evidence",
    "InvalidArgumentError",
    "InvalidHandleError",
    "MpClientOverrideWarning",
    "MpError",
    "NetworkError",
    "Notify",
    "Outcome",
    "Phase",
    "Progress",
    "ProgressFunction",
    "ProtocolError",
    "ServiceUnavailableError",
    "SigUpdateType",
    "Source",
    "Stage",
    "UpdateAccessDeniedError",
    "UpdateError",
    "UpdateMachine",
    "UpdateNetworkError",
    "UpdateOperation",
    "UpdateOption",
    "UpdateResult",
    "UpdateServiceUnavailableError",
    "VersionInfo",
    "__version__",
    "update",
    "update_async",
]


def __getattr__(name: str) -> Any:
    # asyncio is imported only by those who use it.
    if name == "update_async":
        from .aio import update_async

        return update_async
    raise AttributeError(f"module 'mpupdate' has no attribute {name!r}")
