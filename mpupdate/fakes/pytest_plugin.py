"""pytest fixtures for testing code that uses mpupdate, with the fake DLL underneath.

Enable with ``-p mpupdate.fakes.pytest_plugin``, or in a conftest with
``pytest_plugins = ["mpupdate.fakes.pytest_plugin"]``. Then:

- ``fake_mpclient(scenario="updated", delivery="timed", **options)`` makes a FakeMpClient;
- after every test, each fake made during it (FakeMpClient or NativeFakeMpClient) must be clean
  (no open handle, no unfreed buffer, no violation, no worker thread left) and no update may
  still be registered for callbacks. Mark a test ``@pytest.mark.mpupdate_unclean`` to skip that
  check.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any, Callable

import pytest

from . import registered_updates, tracking
from .dll import FakeMpClient

__all__ = ["fake_mpclient"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "mpupdate_unclean: do not check that fakes and callbacks end clean"
    )


@pytest.fixture(autouse=True)
def _mpupdate_ends_clean(request: pytest.FixtureRequest) -> Iterator[None]:
    registered = registered_updates()
    with tracking() as made:
        yield
    if request.node.get_closest_marker("mpupdate_unclean"):
        return
    for fake in made:
        fake.assert_clean()
    if registered_updates() > registered:
        gc.collect()  # an abandoned operation closes its handle when collected
    leaked = registered_updates() - registered
    assert leaked <= 0, (
        f"{leaked} update(s) still registered for callbacks: an operation was not closed"
    )


@pytest.fixture
def fake_mpclient() -> Callable[..., FakeMpClient]:
    """Make FakeMpClient instances: ``fake_mpclient("network-failure", delivery="timed")``."""

    def make(
        scenario: Any = "updated", delivery: str = "immediate", **options: Any
    ) -> FakeMpClient:
        return FakeMpClient(scenario, delivery=delivery, **options)

    return make
