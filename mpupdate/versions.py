"""Component versions (``MPVERSION_INFO``, from ``MpManagerVersionQuery``)."""

from __future__ import annotations

from ._classes import Frozen

# The FILETIME conversions (mpupdate.filetime, which imports datetime) are imported when a
# struct is first copied: importing the package needs neither.

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any, Optional

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
    if len(parts) != 4 or not all(p.isascii() and p.isdigit() for p in parts):  # [0-9]+
        raise ValueError(f"version {text!r} must be four dot-separated numbers, like 1.403.100.0")
    numbers = [int(p) for p in parts]
    if any(n > 0xFFFF for n in numbers):
        raise ValueError(f"version {text!r}: each part must be at most 65535")
    return (numbers[0] << 48) | (numbers[1] << 32) | (numbers[2] << 16) | numbers[3]


class ComponentVersion(Frozen):
    """One component's version and when it was last updated (None when the DLL reports 0).

    Immutable; equal when the fields are.
    """

    __match_args__ = ("raw", "updated_at")
    __slots__ = __match_args__

    raw: int
    updated_at: Optional[datetime]

    def __init__(self, raw: int, updated_at: Optional[datetime] = None) -> None:
        object.__setattr__(self, "raw", raw)
        object.__setattr__(self, "updated_at", updated_at)

    @property
    def version(self) -> str:
        """The dotted form, ``"1.403.100.0"``."""
        return version_to_string(self.raw)

    def __str__(self) -> str:
        return self.version


class VersionInfo(Frozen):
    """The versions ``MpManagerVersionQuery`` reports, one :class:`ComponentVersion` each.

    Immutable; equal when the fields are. The fields are :data:`COMPONENTS`' attributes, in order.
    """

    __match_args__ = (
        "product",
        "service",
        "file_system_filter",
        "engine",
        "as_signature",
        "av_signature",
        "nis_engine",
        "nis_signature",
    )
    __slots__ = __match_args__

    product: ComponentVersion
    service: ComponentVersion
    file_system_filter: ComponentVersion
    engine: ComponentVersion
    as_signature: ComponentVersion
    av_signature: ComponentVersion
    nis_engine: ComponentVersion
    nis_signature: ComponentVersion

    def __init__(
        self,
        product: ComponentVersion,
        service: ComponentVersion,
        file_system_filter: ComponentVersion,
        engine: ComponentVersion,
        as_signature: ComponentVersion,
        av_signature: ComponentVersion,
        nis_engine: ComponentVersion,
        nis_signature: ComponentVersion,
    ) -> None:
        field = object.__setattr__
        field(self, "product", product)
        field(self, "service", service)
        field(self, "file_system_filter", file_system_filter)
        field(self, "engine", engine)
        field(self, "as_signature", as_signature)
        field(self, "av_signature", av_signature)
        field(self, "nis_engine", nis_engine)
        field(self, "nis_signature", nis_signature)

    @classmethod
    def from_struct(cls, info: Any) -> VersionInfo:
        """Copy an ``MPVERSION_INFO`` (cffi cdata) into a VersionInfo."""
        from .filetime import filetime_to_datetime

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
        from .filetime import datetime_to_filetime

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
        return {attr: getattr(self, attr).version for attr, _ in COMPONENTS}
