"""Component versions (``MPVERSION_INFO``, from ``MpManagerVersionQuery``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Optional

from .filetime import datetime_to_filetime, filetime_to_datetime

_DIGITS = re.compile(r"[0-9]+")

#: MPVERSION_INFO's fields in declaration order, with our attribute names.
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("product", "Product"),
    ("service", "Service"),
    ("file_system_filter", "FileSystemFilter"),
    ("engine", "Engine"),
    ("as_signature", "ASSignature"),
    ("av_signature", "AVSignature"),
    ("nis_engine", "NISEngine"),
    ("nis_signature", "NISSignature"),
)


def version_to_string(raw: int) -> str:
    """``0x0001_0193_0064_0000`` -> ``"1.403.100.0"`` (four 16-bit parts, major on top)."""
    raw &= 0xFFFF_FFFF_FFFF_FFFF
    return ".".join(str((raw >> shift) & 0xFFFF) for shift in (48, 32, 16, 0))


def version_from_string(text: str) -> int:
    """``"1.403.100.0"`` -> the packed 64-bit value. Raises ValueError naming the problem."""
    parts = text.strip().split(".")
    if len(parts) != 4 or not all(_DIGITS.fullmatch(p) for p in parts):
        raise ValueError(f"version {text!r} must be four dot-separated numbers, like 1.403.100.0")
    numbers = [int(p) for p in parts]
    if any(n > 0xFFFF for n in numbers):
        raise ValueError(f"version {text!r}: each part must be at most 65535")
    return (numbers[0] << 48) | (numbers[1] << 32) | (numbers[2] << 16) | numbers[3]


@dataclass(frozen=True)
class ComponentVersion:
    """One component's version and when it was last updated (None when the DLL reports 0)."""

    raw: int
    updated_at: Optional[datetime] = None

    @property
    def version(self) -> str:
        """The dotted form, ``"1.403.100.0"``."""
        return version_to_string(self.raw)

    def __str__(self) -> str:
        return self.version


@dataclass(frozen=True)
class VersionInfo:
    """The versions ``MpManagerVersionQuery`` reports, one :class:`ComponentVersion` each."""

    product: ComponentVersion
    service: ComponentVersion
    file_system_filter: ComponentVersion
    engine: ComponentVersion
    as_signature: ComponentVersion
    av_signature: ComponentVersion
    nis_engine: ComponentVersion
    nis_signature: ComponentVersion

    @classmethod
    def from_struct(cls, info: Any) -> VersionInfo:
        """Copy an ``MPVERSION_INFO`` (cffi cdata) into a VersionInfo."""
        values = {}
        for attr, field in COMPONENTS:
            component = getattr(info, field)
            stamp = int(component.UpdateTime)
            values[attr] = ComponentVersion(
                int(component.Version), filetime_to_datetime(stamp) if stamp else None
            )
        return cls(**values)

    def to_struct(self, info: Any) -> None:
        """Fill an ``MPVERSION_INFO`` (cffi cdata); the reserved part is zeroed."""
        for attr, field in COMPONENTS:
            component: ComponentVersion = getattr(self, attr)
            target = getattr(info, field)
            target.Version = component.raw
            target.UpdateTime = (
                datetime_to_filetime(component.updated_at) if component.updated_at else 0
            )
        for reserved in info.Reserved:
            reserved.Version = 0
            reserved.UpdateTime = 0

    def as_dict(self) -> dict[str, str]:
        """``{"engine": "1.1.24090.11", ...}``"""
        return {f.name: getattr(self, f.name).version for f in fields(self)}
