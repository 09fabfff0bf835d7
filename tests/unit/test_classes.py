"""mpupdate._classes: the run-time stand-ins for dataclasses and typing.Protocol, held to what
those answer."""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import pickle
import typing
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

import mpupdate
from mpupdate import _classes
from mpupdate._classes import Frozen

# -- Frozen: what @dataclass(frozen=True) gave ---------------------------------------------------


class Pair(Frozen):
    __match_args__ = ("position", "message")
    __slots__ = __match_args__

    position: Optional[int]
    message: str

    def __init__(self, position: Optional[int], message: str = "") -> None:
        object.__setattr__(self, "position", position)
        object.__setattr__(self, "message", message)


@dataclasses.dataclass(frozen=True)
class DataPair:
    position: Optional[int]
    message: str = ""


VALUES = [(1, "m"), (None, "it's"), (0, ""), (-5, "a\nb")]


@pytest.mark.parametrize(("position", "message"), VALUES)
def test_frozen_repr_eq_and_hash_are_the_dataclass_s(position: Optional[int], message: str) -> None:
    ours, theirs = Pair(position, message), DataPair(position, message)
    assert repr(ours) == repr(theirs).replace("DataPair", "Pair", 1)
    assert hash(ours) == hash(theirs)
    assert ours == Pair(position, message)
    assert not ours != Pair(position, message)  # noqa: SIM202  (__ne__ from __eq__)
    assert ours != Pair(position, message + "x")
    assert ours != theirs  # another class: never equal, as a dataclass
    assert ours.__eq__((position, message)) is NotImplemented


def test_frozen_fields_cannot_be_assigned_or_deleted() -> None:
    ours, theirs = Pair(1, "m"), DataPair(1, "m")
    for name in ("position", "other"):
        with pytest.raises(AttributeError) as caught:
            setattr(ours, name, 2)
        with pytest.raises(dataclasses.FrozenInstanceError) as expected:
            setattr(theirs, name, 2)
        assert str(caught.value) == str(expected.value)
        with pytest.raises(AttributeError) as caught:
            delattr(ours, name)
        with pytest.raises(dataclasses.FrozenInstanceError) as expected:
            delattr(theirs, name)
        assert str(caught.value) == str(expected.value)
    assert ours == Pair(1, "m")


def test_frozen_pickles_copies_and_replaces() -> None:
    value = Pair(1, "m")
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(value, protocol)) == value
    assert copy.copy(value) == value and copy.deepcopy(value) == value
    assert value.replace(message="n") == Pair(1, "n")
    assert value.replace() == value
    with pytest.raises(TypeError, match="nothing"):
        value.replace(nothing=1)


def test_frozen_match_args_are_the_dataclass_s() -> None:
    assert Pair.__match_args__ == tuple(field.name for field in dataclasses.fields(DataPair))


def _frozen_classes() -> list[type[Frozen]]:
    found = []
    for path in sorted(Path(mpupdate.__file__).parent.glob("*.py")):
        module = importlib.import_module(
            f"mpupdate.{path.stem}" if path.stem != "__init__" else "mpupdate"
        )
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Frozen)
                and value is not Frozen
                and value.__module__ == module.__name__
            ):
                found.append(value)
    return found


def test_the_package_s_value_classes_are_frozen() -> None:
    names = {cls.__name__ for cls in _frozen_classes()}
    assert names == {
        "Anomaly",
        "Attempt",
        "ComponentVersion",
        "HResultInfo",
        "LoaderEnvironment",
        "UpdateResult",
        "VersionInfo",
    } | (names & {"Event", "Progress"})  # the events' and the machine's, if they become Frozen


@pytest.mark.parametrize("cls", _frozen_classes(), ids=lambda cls: cls.__name__)
def test_each_value_class_lists_its_fields_once_in_one_order(cls: type[Frozen]) -> None:
    # __init__ takes the fields in __match_args__' order (pickling, replace and repr rely on
    # it); they are the slots, and the attributes the class declares.
    fields = list(cls.__match_args__)
    assert list(inspect.signature(cls.__init__).parameters)[1:] == fields
    own_slots: tuple[str, ...] = cls.__slots__
    if own_slots:
        assert list(own_slots) == fields
        assert list(cls.__annotations__) == fields
    else:  # Event: its storage is a base's slots; the timestamp a property converting on use
        slots = {name for base in cls.__mro__ for name in getattr(base, "__slots__", ())}
        computed = {name for name in fields if isinstance(getattr(cls, name), property)}
        assert set(fields) - computed <= slots and computed == {"timestamp"}
    assert not hasattr(cls.__new__(cls), "__dict__")


# -- Protocol: what typing's @runtime_checkable protocols answer -----------------------------------


def _protocols(base: Any, checkable: Callable[[Any], Any]) -> tuple[Any, Any]:
    """The same two protocols (methods only; with a data member), on ``base``."""

    @checkable
    class Methods(base):  # type: ignore[misc]
        def first(self) -> int:
            raise NotImplementedError

        def second(self, x: int) -> int:
            raise NotImplementedError

    @checkable
    class WithData(Methods, base):  # type: ignore[misc]
        clock: object

    return Methods, WithData


class Both:
    clock = None

    def first(self) -> int:
        return 1

    def second(self, x: int) -> int:
        return x


class OnlyFirst:
    def first(self) -> int:
        return 1


class SecondBlocked(Both):
    second = None  # type: ignore[assignment]


class BoundPerInstance:
    def __init__(self) -> None:
        self.first = lambda: 1
        self.second = lambda x: x


class BoundWithClock(BoundPerInstance):
    def __init__(self) -> None:
        super().__init__()
        self.clock = object()


SAMPLES: list[object] = [
    Both(),
    OnlyFirst(),
    SecondBlocked(),
    BoundPerInstance(),
    BoundWithClock(),
    object(),
    1,
    Both,
]


def _answer(check: Callable[[], bool]) -> object:
    """The answer, or that it raised TypeError (typing's wording differs between versions:
    3.13 adds the non-method members' names)."""
    try:
        return check()
    except TypeError:
        return TypeError


def test_isinstance_answers_as_typing_s() -> None:
    ours = _protocols(_classes.Protocol, _classes.runtime_checkable)
    theirs = _protocols(typing.Protocol, typing.runtime_checkable)
    for our, their in zip(ours, theirs):
        for sample in SAMPLES:
            assert isinstance(sample, our) == isinstance(sample, their), (their, sample)


@pytest.mark.parametrize(
    "cls", [Both, OnlyFirst, SecondBlocked, BoundPerInstance, BoundWithClock, int]
)
def test_issubclass_answers_as_typing_s(cls: type) -> None:
    # Fresh protocols, the one with a data member first: on Python 3.11 typing's answer for it
    # depends on the checks made before (a check of the protocol it extends, or an isinstance(),
    # caches False where it would raise); Python 3.12 raises always, as ours does.
    ours = _protocols(_classes.Protocol, _classes.runtime_checkable)
    theirs = _protocols(typing.Protocol, typing.runtime_checkable)
    for our, their in reversed(list(zip(ours, theirs))):
        assert _answer(lambda: issubclass(cls, our)) == _answer(  # noqa: B023
            lambda: issubclass(cls, their)  # noqa: B023
        ), their


def test_a_class_that_subclasses_a_protocol_is_checked_as_any_class() -> None:
    for base, checkable in ((_classes.Protocol, _classes.runtime_checkable),):
        methods, _ = _protocols(base, checkable)

        class Explicit(methods):  # type: ignore[misc,valid-type]
            pass

        assert isinstance(Explicit(), methods)
        assert not isinstance(Both(), Explicit)
        assert issubclass(Explicit, methods) and not issubclass(Both, Explicit)


def test_protocols_cannot_be_instantiated_and_must_be_runtime_checkable_to_check() -> None:
    methods, _ = _protocols(_classes.Protocol, _classes.runtime_checkable)
    with pytest.raises(TypeError, match="Protocols cannot be instantiated"):
        methods()

    class Unchecked(_classes.Protocol):
        def first(self) -> int:
            raise NotImplementedError

    with pytest.raises(TypeError, match="@runtime_checkable protocols"):
        isinstance(Both(), Unchecked)
    with pytest.raises(TypeError, match="only applied to protocol classes"):
        _classes.runtime_checkable(Both)  # type: ignore[type-var]


def test_the_backend_protocols_name_the_exports_and_the_clock() -> None:
    from mpupdate.backends import EXPORTS, Backend, ClockedBackend

    assert vars(Backend)["__protocol_attrs__"] == frozenset(EXPORTS)
    assert vars(ClockedBackend)["__protocol_attrs__"] == frozenset({*EXPORTS, "clock"})
