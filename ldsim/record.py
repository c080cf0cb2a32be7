"""Small record classes without `dataclasses` (stdlib only, imports nothing).

Every `ldsim ldd` is a fresh interpreter: importing `dataclasses` (~12 ms: it pulls in `inspect`) and
generating the methods of the ~30 records on the ldd path with `exec` (~25 ms) were a third of its cold
start.  A record names its fields in `_fields` (usually also its `__slots__`) and writes its own
`__init__`; these bases derive the rest from `_fields`, as `@dataclass` would:

- `Record`: repr and `replace()`; equality is identity (`@dataclass(eq=False)`).
- `Value`: equality field by field, unhashable (`@dataclass`).
- `Frozen`: equality and hash field by field, attributes cannot be set after `__init__`, which sets
  them with `object.__setattr__` (`@dataclass(frozen=True)`); `Key`, a frozen record whose hash is
  kept.

`NamedTuple` is typing.NamedTuple's class syntax without importing `typing` (~6 ms with `re`, which
nothing else on the ldd path needs) and at about half its cost per class: the ~30 event and ELF tuple
types are made at every start.  For the same reason modules write `TYPE_CHECKING = False` and import
from `typing` only under it.
"""

from __future__ import annotations

_setattr = object.__setattr__
TYPE_CHECKING = False


class _NamedTupleMeta(type):
    """`class X(NamedTuple): a: int; b: str = ""; category = 3` -> collections.namedtuple("X", "a b",
    defaults=("",)) with the class's other attributes (docstring, constants, methods) set on it."""

    def __new__(mcls, name: str, bases: tuple, ns: dict):
        if not bases:
            return super().__new__(mcls, name, bases, ns)
        from collections import namedtuple

        fields = tuple(ns.get("__annotations__", ()))
        defaults = tuple(ns[f] for f in fields if f in ns)
        cls = namedtuple(name, fields, defaults=defaults, module=ns.get("__module__"))
        cls.__qualname__ = ns.get("__qualname__", name)
        for key, value in ns.items():
            if key not in fields and key not in ("__annotations__", "__module__", "__qualname__"):
                setattr(cls, key, value)
        return cls


if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple
else:
    class NamedTuple(metaclass=_NamedTupleMeta):
        """Base of named tuple classes (see the module's docstring)."""


class Record:
    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def __repr__(self) -> str:
        inner = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{self.__class__.__qualname__}({inner})"

    def _asdict(self) -> dict:
        """The fields by name, in order (what `vars()` gave of the dataclass)."""
        return {f: getattr(self, f) for f in self._fields}

    def replace(self, **changes):
        """A copy with some fields changed (`dataclasses.replace`); `__init__` takes every field by name."""
        for f in self._fields:
            if f not in changes:
                changes[f] = getattr(self, f)
        return self.__class__(**changes)


class Value(Record):
    __slots__ = ()
    __hash__ = None  # type: ignore[assignment]  # mutable: as a dataclass with eq and without frozen

    def _key(self) -> tuple:
        return tuple([getattr(self, f) for f in self._fields])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._key() == other._key()  # type: ignore[attr-defined]


class Frozen(Value):
    __slots__ = ()

    def __hash__(self) -> int:
        return hash(self._key())


class Key(Frozen):
    """A frozen record used as a memo key again and again (CPU, hwcaps choice, invocation): its hash is
    worked out once, in the `_hash` slot."""

    __slots__ = ("_hash",)

    def __hash__(self) -> int:
        try:
            return self._hash
        except AttributeError:
            h = hash(self._key())
            _setattr(self, "_hash", h)
            return h

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of a frozen {self.__class__.__name__}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of a frozen {self.__class__.__name__}")
