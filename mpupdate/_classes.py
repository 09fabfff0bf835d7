"""What the package took from :mod:`dataclasses` and :mod:`typing` at run time, without them.

Importing either costs more than the package's own start-up (``typing`` brings ``re`` on the
Python versions we support, ``dataclasses`` brings ``inspect``), and the package needs little of
them at run time:

- :class:`Frozen`, the base of the immutable value classes (what ``@dataclass(frozen=True)``
  made).
- :class:`Protocol` and :func:`runtime_checkable`, for the run time of the protocols that
  ``isinstance`` checks. Modules import them only when not type checking; a type checker sees
  :mod:`typing`'s own.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional, TypeVar

    _F = TypeVar("_F", bound="Frozen")
    _T = TypeVar("_T", bound="type[Protocol]")

__all__ = ["Frozen", "Protocol", "runtime_checkable"]


# -- immutable values ------------------------------------------------------------------------------


def _values(value: Frozen) -> tuple[object, ...]:
    return tuple([getattr(value, name) for name in value.__match_args__])


class Frozen:
    """An immutable value: what ``@dataclass(frozen=True)`` gave.

    A subclass lists its fields in ``__match_args__``, in the order its ``__init__`` takes them,
    makes them its ``__slots__`` and sets them in ``__init__`` with ``object.__setattr__``.
    Fields cannot be assigned or deleted (AttributeError). Two values are equal when they are of
    the same class and their fields are equal; hashing hashes the fields; the repr names each
    field (``Anomaly(position=1, message='...')``); pickling and :mod:`copy` go through
    ``__init__``; :meth:`replace` is ``dataclasses.replace``.
    """

    __slots__ = ()

    #: The fields, in the order ``__init__`` takes them (as a dataclass's).
    __match_args__: tuple[str, ...] = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__ and isinstance(other, Frozen):
            return _values(self) == _values(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(_values(self))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__match_args__)
        return f"{self.__class__.__qualname__}({fields})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, _values(self))

    def replace(self: _F, **changes: Any) -> _F:
        """A copy with the named fields changed (``dataclasses.replace``; ``copy.replace`` on
        Python 3.13+). An unknown field name raises TypeError."""
        fields = dict(zip(self.__match_args__, _values(self)))
        fields.update(changes)
        return self.__class__(**fields)

    __replace__ = replace


# -- protocols that isinstance() checks ------------------------------------------------------------

#: Names in a protocol class's namespace that are not its members (those typing leaves out).
_NOT_MEMBERS = frozenset(
    {
        "__abstractmethods__",
        "__annotations__",
        "__class_getitem__",
        "__dict__",
        "__doc__",
        "__firstlineno__",
        "__init__",
        "__match_args__",
        "__module__",
        "__new__",
        "__orig_bases__",
        "__parameters__",
        "__protocol_attrs__",
        "__qualname__",
        "__slots__",
        "__static_attributes__",
        "__subclasshook__",
        "__type_params__",
        "__weakref__",
        "_is_protocol",
        "_is_runtime_protocol",
    }
)


def _protocol_members(cls: type) -> Optional[frozenset[str]]:
    """A runtime-checkable protocol's members; None for a class that is not a protocol (one
    that subclasses a protocol explicitly is an ordinary class). TypeError for a protocol that
    is not runtime-checkable, as typing answers."""
    namespace = cls.__dict__
    if not namespace.get("_is_protocol", False):
        return None
    if not namespace.get("_is_runtime_protocol", False):
        raise TypeError(
            "Instance and class checks can only be used with @runtime_checkable protocols"
        )
    members: frozenset[str] = namespace["__protocol_attrs__"]
    return members


class _ProtocolMeta(type):
    """isinstance() and issubclass() as :mod:`typing` answers them for a ``@runtime_checkable``
    protocol: an object is an instance when it has every member (a method member set to None
    does not count); a class is a subclass when its classes define every member, which only
    protocols of methods alone answer."""

    def __instancecheck__(cls, instance: object) -> bool:
        members = _protocol_members(cls)
        nominal = type.__instancecheck__(cls, instance)
        if members is None or nominal:
            return nominal
        return all(
            hasattr(instance, name)
            and (not callable(getattr(cls, name, None)) or getattr(instance, name) is not None)
            for name in members
        )

    def __subclasscheck__(cls, subclass: type) -> bool:
        members = _protocol_members(cls)
        if not isinstance(subclass, type):
            raise TypeError("issubclass() arg 1 must be a class")
        nominal = type.__subclasscheck__(cls, subclass)
        if members is None or nominal:
            return nominal
        if not all(callable(getattr(cls, name, None)) for name in members):
            raise TypeError("Protocols with non-method members don't support issubclass()")
        for name in members:
            for base in subclass.__mro__:
                if name in base.__dict__:
                    if base.__dict__[name] is None:
                        return False
                    break
            else:
                return False
        return True


class Protocol(metaclass=_ProtocolMeta):
    """The run time of :class:`typing.Protocol`: a class listing it among its bases is a protocol,
    whose members are the names it (and the protocols it extends) defines or annotates.
    Protocols cannot be instantiated; a class subclassing one explicitly can."""

    __slots__ = ()

    _is_protocol = False
    _is_runtime_protocol = False
    __protocol_attrs__: frozenset[str] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._is_protocol = Protocol in cls.__bases__
        cls._is_runtime_protocol = False
        if cls._is_protocol:
            names: set[str] = set()
            for base in cls.__mro__:
                if base.__dict__.get("_is_protocol", False):
                    names.update(base.__dict__, getattr(base, "__annotations__", {}))
            cls.__protocol_attrs__ = frozenset(
                name for name in names if name not in _NOT_MEMBERS and not name.startswith("_abc_")
            )

    def __new__(cls, *args: Any, **kwargs: Any) -> Protocol:
        if cls.__dict__.get("_is_protocol", False):
            raise TypeError("Protocols cannot be instantiated")
        return super().__new__(cls)


def runtime_checkable(cls: _T) -> _T:
    """Allow isinstance() and issubclass() with the protocol ``cls`` (``@runtime_checkable``)."""
    if not cls.__dict__.get("_is_protocol", False):
        raise TypeError(f"@runtime_checkable can be only applied to protocol classes, got {cls!r}")
    cls._is_runtime_protocol = True
    return cls
