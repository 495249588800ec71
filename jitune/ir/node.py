"""Base class of IR nodes: frozen, compared by structure, hashed once."""

from __future__ import annotations

import dataclasses
import struct
from typing import Any

_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _identity(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """``values`` with each float replaced by its bit pattern.

    Floats compare by value, and value equality is wrong for IR identity: ``-0.0 == 0.0``
    would let a memo or a common-subexpression table hand out the constant of the other
    sign (``(x + -0.0) / 0.0`` became ``-inf``), and ``nan != nan`` (with an identity-based
    hash) would keep equal NaN constants apart. Bits tell every float apart, NaN payloads
    included; the dtype is a separate field, so float32 and float64 constants stay apart.
    """
    if not any(type(v) is float for v in values):
        return values
    return tuple(("float", struct.pack("<d", v)) if type(v) is float else v for v in values)


class Node:
    """A frozen dataclass compared by value whose hash is computed once and cached.

    Float fields compare by their bits, not by ``==`` (see ``_identity``).

    Subclasses are declared ``@dataclass(frozen=True, eq=False)`` so that they inherit
    ``__eq__``/``__hash__`` from here. Caching the hash matters: IR trees share subtrees (a DAG),
    and an uncached recursive hash would revisit a shared subtree once per path to it.
    """

    __slots__ = ()

    def fields(self) -> tuple[Any, ...]:
        """The node's field values in declaration order."""
        names = _FIELD_NAMES.get(type(self))
        if names is None:  # dataclasses.fields() is slow, and this runs per hash and compare
            names = tuple(f.name for f in dataclasses.fields(self))  # type: ignore[arg-type]
            _FIELD_NAMES[type(self)] = names
        return tuple(getattr(self, name) for name in names)

    def __hash__(self) -> int:
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((type(self).__name__, _identity(self.fields())))
            object.__setattr__(self, "_hash", cached)
        return cached

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if type(self) is not type(other) or hash(self) != hash(other):
            return False
        return _identity(self.fields()) == _identity(other.fields())  # type: ignore[attr-defined]

    def __ne__(self, other: object) -> bool:
        return not self == other
