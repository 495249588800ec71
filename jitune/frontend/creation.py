"""Arrays made inside a kernel: ``np.zeros``, ``np.ones``, ``np.empty``, ``np.full``,
``np.eye``, ``np.identity``, ``np.arange`` and ``np.linspace``.

NumPy builds these before jitune could see them, so while a trace runs the ``numpy`` module's
functions of these names are wrappers: in the thread (and task) that traces they return
tracers (a constant broadcast, or an expression of ``IOTA``, the index along an axis), and
anywhere else they call NumPy's own function. The wrappers are installed when the first trace
of the process starts and removed when the last one ends, so NumPy is untouched outside
traces. Code that imported a function by name (``from numpy import zeros``) keeps NumPy's
and gets a concrete array, which jitune refuses with an error naming the line.

An array from ``np.empty`` holds zeros: NumPy leaves its values unspecified, and zeros are
one of the values it may hold.
"""

from __future__ import annotations

import contextlib
import functools
import operator
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..errors import JituneError, ShapeError
from ..ir.ops import BinaryOp
from . import build, state
from .context import located, require_static, supported
from .tracer import Tracer, to_node

_INTERNAL = ("jitune.", "numpy.")
_LOCK = threading.Lock()
_ACTIVE = 0
_ORIGINALS: dict[str, Callable[..., Any]] = {}


def _shape(shape: Any, name: str) -> tuple[int, ...]:
    require_static(shape)
    items = (shape,) if not isinstance(shape, (tuple, list)) else tuple(shape)
    try:
        dims = tuple(operator.index(d) for d in items)
    except JituneError:
        raise  # a traced value: the tracer said why
    except TypeError:
        raise ShapeError(located(f"np.{name}: the shape {shape!r} is not ints")) from None
    if any(d < 0 for d in dims):
        raise ShapeError(located(f"np.{name}: negative dimensions are not allowed ({dims})"))
    return dims


def _filled(value: Any, shape: tuple[int, ...], dtype: Any, name: str) -> Tracer:
    target = supported(dtype, f"np.{name}")
    node = build.cast(to_node(value, target, f"np.{name}"), target)
    return Tracer(build.expand(node, shape, f"np.{name}"), mutable=True)


def _zeros(shape: Any, dtype: Any = float, order: str = "C", **_: Any) -> Tracer:
    return _filled(0, _shape(shape, "zeros"), dtype, "zeros")


def _ones(shape: Any, dtype: Any = None, order: str = "C", **_: Any) -> Tracer:
    return _filled(1, _shape(shape, "ones"), float if dtype is None else dtype, "ones")


def _empty(shape: Any, dtype: Any = float, order: str = "C", **_: Any) -> Tracer:
    return _filled(0, _shape(shape, "empty"), dtype, "empty")


def _full(shape: Any, fill_value: Any, dtype: Any = None, order: str = "C", **_: Any) -> Tracer:
    if dtype is None:
        dtype = fill_value.dtype if isinstance(fill_value, Tracer) else np.array(fill_value).dtype
    dims = _shape(shape, "full")
    if isinstance(fill_value, Tracer) and fill_value.ndim:
        node = build.cast(fill_value.node, supported(dtype, "np.full"))
        return Tracer(build.copy(build.expand(node, dims, "np.full")), mutable=True)
    return _filled(fill_value, dims, dtype, "full")


def _eye(
    N: int,  # noqa: N803 - NumPy's name
    M: int | None = None,  # noqa: N803
    k: int = 0,
    dtype: Any = float,
    order: str = "C",
    **_: Any,
) -> Tracer:
    require_static((N, M, k))
    rows, cols = operator.index(N), operator.index(N if M is None else M)
    shape = (rows, cols)
    i64 = np.dtype(np.int64)
    diagonal = _op(BinaryOp.ADD, build.iota(shape, 0), build.constant(operator.index(k), i64))
    equal = build.binary(BinaryOp.EQ, diagonal, build.iota(shape, 1), i64, np.bool_, "np.eye")
    return Tracer(build.cast(equal, supported(dtype, "np.eye")), mutable=True)


def _identity(n: int, dtype: Any = float, **_: Any) -> Tracer:
    return _eye(n, dtype=dtype)


def _arange(*args: Any, dtype: Any = None, **_: Any) -> Tracer:
    require_static(args)
    if not 1 <= len(args) <= 3:
        raise ShapeError(located(f"np.arange: takes 1 to 3 positional arguments, got {len(args)}"))
    start, stop, step = (0, args[0], 1) if len(args) == 1 else (*args, 1)[:3]
    if step == 0:
        raise ShapeError(located("np.arange: the step cannot be zero"))
    reference = np.arange(start, stop, step, dtype=dtype)  # NumPy's length and dtype
    target = supported(reference.dtype, "np.arange")
    index = build.cast(build.iota((len(reference),), 0), target)
    values = _op(
        BinaryOp.ADD,
        build.constant(start, target),
        _op(BinaryOp.MUL, index, build.constant(step, target)),
    )
    return Tracer(values, mutable=True)


def _linspace(
    start: Any,
    stop: Any,
    num: int = 50,
    endpoint: bool = True,
    retstep: bool = False,
    dtype: Any = None,
    axis: int = 0,
    **_: Any,
) -> Any:
    require_static((start, stop, num))
    if isinstance(start, Tracer) or isinstance(stop, Tracer) or np.ndim(start) or np.ndim(stop):
        raise ShapeError(located("np.linspace: only constant scalar start and stop are supported"))
    num = operator.index(num)
    # NumPy's own steps: arange(num) * step + start, the last element set to stop
    div = (num - 1) if endpoint else num
    step = (stop - start) / div if div > 0 else np.nan
    target = supported(
        np.result_type(start, stop, float) if dtype is None else dtype, "np.linspace"
    )
    f64 = np.dtype(np.float64)
    index = build.cast(build.iota((num,), 0), f64)
    if div == 0:  # one sample: NumPy multiplies by the whole span
        scaled = _op(BinaryOp.MUL, index, build.constant(stop - start, f64))
    elif step == 0:
        scaled = _op(
            BinaryOp.MUL,
            _op(BinaryOp.TRUEDIV, index, build.constant(div, f64)),
            build.constant(stop - start, f64),
        )
    else:
        scaled = _op(BinaryOp.MUL, index, build.constant(step, f64))
    values = _op(BinaryOp.ADD, scaled, build.constant(start, f64))
    if endpoint and num > 1:
        last = build.expand(build.constant(stop, f64), (1,))
        values = build.update(values, last, (num - 1,), (1,))
    result = Tracer(build.cast(values, target), mutable=True)
    return (result, step) if retstep else result


def _op(op: BinaryOp, a: Any, b: Any) -> Any:
    """``op`` of two nodes of one dtype, in that dtype."""
    return build.binary(op, a, b, a.dtype, a.dtype, f"np.{op.value}")


CREATORS: dict[str, Callable[..., Any]] = {
    "zeros": _zeros,
    "ones": _ones,
    "empty": _empty,
    "full": _full,
    "eye": _eye,
    "identity": _identity,
    "arange": _arange,
    "linspace": _linspace,
}


def _wrapper(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    traced = CREATORS[name]

    @functools.wraps(original)
    def create(*args: Any, **kwargs: Any) -> Any:
        # another thread, no trace, or a call from jitune's or NumPy's own code: NumPy's
        if state.current() is None or kwargs.get("like") is not None:
            return original(*args, **kwargs)
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller in ("numpy", "jitune") or caller.startswith(_INTERNAL):
            return original(*args, **kwargs)
        return traced(*args, **kwargs)

    return create


@contextlib.contextmanager
def creating() -> Iterator[None]:
    """While a trace runs: NumPy's creation functions make tracers in the tracing context."""
    global _ACTIVE
    with _LOCK:
        if _ACTIVE == 0:
            for name in CREATORS:
                _ORIGINALS[name] = getattr(np, name)
                setattr(np, name, _wrapper(name, _ORIGINALS[name]))
        _ACTIVE += 1
    try:
        yield
    finally:
        with _LOCK:
            _ACTIVE -= 1
            if _ACTIVE == 0:
                for name, original in _ORIGINALS.items():
                    setattr(np, name, original)
                _ORIGINALS.clear()
