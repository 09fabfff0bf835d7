"""The code under test: it calls mpupdate with no backend, as production code does."""

from __future__ import annotations

import mpupdate


def refresh_signatures(timeout: float = 600) -> str:
    """Update Defender's signatures; say what happened, in a word."""
    result = mpupdate.update(timeout=timeout, check=False)
    if result.ok and result.reboot_required:
        return "reboot"
    return "ok" if result.ok else result.outcome.name.lower()


def signature_version() -> str:
    """The antivirus signature version Defender reports."""
    with mpupdate.Client() as client:
        return client.version().av_signature
