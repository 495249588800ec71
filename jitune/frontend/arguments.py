"""How a call's arguments reach the trace.

- Keyword arguments and defaults are bound to the function's parameters, so a kernel is
  called exactly like the function it wraps; the call is then a tuple in parameter order.
- Static arguments are part of the signature by value and reach the function as they are,
  not as tracers: those named in ``@jitune.kernel(static=...)``, those a trace found used
  as Python values (an int used as a shape, a loop count or an axis), and every argument that
  is neither an array nor a number (strings, tuples, None, dtypes, objects), which cannot be
  traced. A static value must be hashable: one compiled kernel per value.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from ..errors import ArgumentError

_NUMBERS = (bool, int, float, complex, np.generic)
_KINDS = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def traceable(arg: Any) -> bool:
    """Whether ``arg`` can be a traced argument: an array (of any library) or a number."""
    return isinstance(arg, _NUMBERS) or hasattr(arg, "shape")


class Binder:
    """The parameters of one function: binds a call's arguments to parameter names and
    calls the function back with them.

    Defaults are not filled in: a parameter the call leaves out takes its default inside the
    function, as a constant of the trace, so ``lambda x, e=2: x ** e`` still compiles
    ``x ** 2``. Which parameters a call supplied is part of its signature.
    """

    def __init__(self, fn: Callable[..., Any], name: str, static: Iterable[str | int]) -> None:
        self.name = name
        parameters: list[inspect.Parameter] = []
        if inspect.isfunction(fn) or inspect.ismethod(fn):  # not ufuncs: their defaults
            parameters = list(inspect.signature(fn).parameters.values())  # are not arguments
        self.signature = inspect.Signature(parameters) if parameters else None
        self.variadic = any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters)
        self.names = tuple(
            p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )
        self.positional_only = {p.name for p in parameters if p.kind is p.POSITIONAL_ONLY}
        # a positional call of every parameter needs no binding (the fast path)
        self.plain = not self.variadic and all(
            p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters
        )
        self.count = len(self.names)
        self.static = frozenset(self._name(s) for s in static)

    def _name(self, item: str | int) -> str:
        if isinstance(item, int) and not isinstance(item, bool):
            if item < 0 or (self.signature is not None and item >= self.count):
                raise ArgumentError(f"{self.name}: static={item!r} is not a parameter position")
            return self.names[item] if self.signature is not None else str(item)
        if item in self.names:
            return str(item)
        raise ArgumentError(
            f"{self.name}: static={item!r} names no parameter (parameters: "
            f"{', '.join(self.names) or 'none'})"
        )

    def names_of(self, count: int) -> tuple[str, ...]:
        """The names of a positional call of ``count`` arguments (the fast path)."""
        if self.signature is None or self.variadic:
            return tuple(str(k) for k in range(count))
        return self.names

    def bind(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        """The supplied parameters' names and values, in parameter order."""
        if self.signature is None or self.variadic:
            if kwargs:
                raise ArgumentError(
                    f"{self.name}: keyword arguments need a Python function without *args "
                    "or **kwargs; pass them by position"
                )
            return self.names_of(len(args)), args
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ArgumentError(f"{self.name}: {exc}") from None
        names = tuple(n for n in self.names if n in bound.arguments)
        return names, tuple(bound.arguments[n] for n in names)

    def call(self, fn: Callable[..., Any], names: Sequence[str], values: Sequence[Any]) -> Any:
        """``fn`` called with ``values`` for the parameters ``names``."""
        if self.signature is None or self.variadic:
            return fn(*values)
        positional = [v for n, v in zip(names, values) if n in self.positional_only]
        named = {n: v for n, v in zip(names, values) if n not in self.positional_only}
        return fn(*positional, **named)


def check_static(value: Any, position: int, name: str) -> None:
    """A static value must be hashable: it keys the compiled kernels."""
    try:
        hash(value)
    except TypeError:
        raise ArgumentError(
            f"{name}: argument {position} ({type(value).__name__}) is static (part of the "
            "signature by value) but unhashable; pass a tuple instead of a list, or an array"
        ) from None
