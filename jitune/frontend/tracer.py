"""Tracer objects: stand-ins for arrays that record NumPy calls as graph IR.

A :class:`Tracer` wraps a graph node. NumPy hands ufunc calls to ``__array_ufunc__`` and other
functions to ``__array_function__`` (NEP 13 and NEP 18); the Python operators and ndarray
methods map onto the same handlers. Anything without a handler raises
:class:`~jitune.errors.UnsupportedOperation` naming the function and the user's line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import DomainError, DTypeError, ShapeError, UnsupportedOperation
from ..ir.graph import Array
from . import build
from .context import located, supported

Operand = Any  # a Tracer, a Python scalar or a NumPy scalar


class Tracer:
    """An array under tracing: has ``shape``/``dtype`` but no values."""

    __slots__ = ("node", "weak")
    __array_priority__ = 1000

    def __init__(self, node: Array, weak: type | None = None) -> None:
        self.node = node
        self.weak = weak  # the Python type of a scalar argument, which promotes weakly

    # -- array attributes ------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.node.shape

    @property
    def dtype(self) -> np.dtype:
        return self.node.dtype

    @property
    def ndim(self) -> int:
        return self.node.ndim

    @property
    def size(self) -> int:
        return self.node.size

    @property
    def itemsize(self) -> int:
        return self.node.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.node.size * self.node.dtype.itemsize

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes the class does not define: name the ndarray feature
        # that jitune lacks instead of a bare AttributeError.
        if not name.startswith("__") and hasattr(np.ndarray, name):
            raise UnsupportedOperation(
                located(f"ndarray.{name} is not supported by jitune (shape {self.shape})")
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __len__(self) -> int:
        if not self.shape:
            raise UnsupportedOperation(located("len() of a 0-d array"))
        return self.shape[0]

    def __repr__(self) -> str:
        return f"Tracer({self.dtype}{list(self.shape)})"

    # -- NumPy protocols ---------------------------------------------------------------------
    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        from .numpy_api import call_ufunc

        if method != "__call__":
            raise UnsupportedOperation(
                located(f"np.{ufunc.__name__}.{method} is not supported by jitune")
            )
        return call_ufunc(ufunc, inputs, kwargs)

    def __array_function__(self, func: Callable, types: Any, args: Any, kwargs: Any) -> Any:
        from .numpy_api import call_function

        return call_function(func, args, kwargs)

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise UnsupportedOperation(
            located(
                "converting a traced array to a concrete NumPy array (np.asarray, float(), "
                "a Python loop or branch over its values) is not supported inside "
                "@jitune.kernel"
            )
        )

    def _concrete(self, *args: Any) -> Any:
        raise UnsupportedOperation(
            located(
                "using a traced array's value in Python control flow (bool, int, float, "
                "iteration) is not supported inside @jitune.kernel"
            )
        )

    __bool__ = __int__ = __float__ = __index__ = __iter__ = _concrete  # type: ignore[assignment]

    # -- methods -----------------------------------------------------------------------------
    def _method(name: str) -> Callable[..., Any]:  # type: ignore[misc]  # noqa: N805
        def method(self: Tracer, *args: Any, **kwargs: Any) -> Any:
            from .numpy_api import call_function

            return call_function(getattr(np, name), (self,) + args, kwargs)

        method.__name__ = name
        return method

    sum = _method("sum")
    mean = _method("mean")
    max = _method("max")
    min = _method("min")
    prod = _method("prod")
    argmax = _method("argmax")
    argmin = _method("argmin")
    var = _method("var")
    std = _method("std")
    clip = _method("clip")
    squeeze = _method("squeeze")
    swapaxes = _method("swapaxes")
    dot = _method("dot")
    ravel = _method("ravel")
    copy = _method("copy")
    del _method

    def flatten(self) -> Tracer:
        return self.reshape(-1)

    def reshape(self, *shape: Any, order: str = "C") -> Tracer:
        if order != "C":
            raise UnsupportedOperation(located(f"reshape(order={order!r}): only order='C'"))
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = tuple(shape[0])
        return Tracer(build.reshape(self.node, shape))

    def transpose(self, *axes: Any) -> Tracer:
        if len(axes) == 1 and axes[0] is not None and not isinstance(axes[0], (int, np.integer)):
            axes = tuple(axes[0])
        if not axes or axes == (None,):
            return Tracer(build.permute(self.node, tuple(reversed(range(self.ndim)))))
        for axis in axes:
            if not isinstance(axis, (int, np.integer)) or not -self.ndim <= axis < self.ndim:
                raise ShapeError(
                    located(
                        f"transpose: axis {axis!r} is out of bounds for an array of shape "
                        f"{self.shape}"
                    )
                )
        return Tracer(build.permute(self.node, tuple(int(a) % self.ndim for a in axes)))

    @property
    def T(self) -> Tracer:  # noqa: N802 - NumPy's name
        return self.transpose()

    def astype(self, dtype: Any, copy: bool = True) -> Tracer:
        what = f"astype({np.dtype(dtype)})" if _is_dtype(dtype) else f"astype({dtype!r})"
        target = supported(dtype, what)
        return Tracer(build.cast(self.node, target))

    def __getitem__(self, key: Any) -> Tracer:
        from .indexing import basic_index

        return Tracer(basic_index(self.node, key))

    def __setitem__(self, key: Any, value: Any) -> None:
        raise UnsupportedOperation(
            located("item assignment: traced arrays are immutable; use np.where instead")
        )

    # -- operators ---------------------------------------------------------------------------
    def _binary(ufunc: np.ufunc, reflected: bool = False) -> Callable[..., Any]:  # type: ignore[misc]  # noqa: N805
        def operator(self: Tracer, other: Any) -> Any:
            from .numpy_api import call_ufunc

            operands = (other, self) if reflected else (self, other)
            return call_ufunc(ufunc, operands, {})

        return operator

    __add__, __radd__ = _binary(np.add), _binary(np.add, True)
    __sub__, __rsub__ = _binary(np.subtract), _binary(np.subtract, True)
    __mul__, __rmul__ = _binary(np.multiply), _binary(np.multiply, True)
    __truediv__, __rtruediv__ = _binary(np.true_divide), _binary(np.true_divide, True)
    __floordiv__, __rfloordiv__ = _binary(np.floor_divide), _binary(np.floor_divide, True)
    __mod__, __rmod__ = _binary(np.remainder), _binary(np.remainder, True)
    __pow__, __rpow__ = _binary(np.power), _binary(np.power, True)
    __matmul__, __rmatmul__ = _binary(np.matmul), _binary(np.matmul, True)
    __and__, __rand__ = _binary(np.bitwise_and), _binary(np.bitwise_and, True)
    __or__, __ror__ = _binary(np.bitwise_or), _binary(np.bitwise_or, True)
    __xor__, __rxor__ = _binary(np.bitwise_xor), _binary(np.bitwise_xor, True)
    __lt__ = _binary(np.less)
    __le__ = _binary(np.less_equal)
    __gt__ = _binary(np.greater)
    __ge__ = _binary(np.greater_equal)
    __eq__ = _binary(np.equal)  # type: ignore[assignment]
    __ne__ = _binary(np.not_equal)  # type: ignore[assignment]
    del _binary
    __hash__ = None  # type: ignore[assignment]

    def __neg__(self) -> Tracer:
        return np.negative(self)  # type: ignore[return-value]

    def __pos__(self) -> Tracer:
        return np.positive(self)  # type: ignore[return-value]

    def __abs__(self) -> Tracer:
        return np.absolute(self)  # type: ignore[return-value]

    def __invert__(self) -> Tracer:
        return np.invert(self)  # type: ignore[return-value]


def _is_dtype(value: Any) -> bool:
    try:
        np.dtype(value)
    except TypeError:
        return False
    return True


def as_node(value: Operand, op_name: str) -> Array | build.WeakInput | int | float | bool:
    """A graph node for a Tracer or NumPy scalar; Python scalars pass through (weak)."""
    if isinstance(value, Tracer):
        return build.WeakInput(value.node, value.weak) if value.weak else value.node
    if isinstance(value, (Array, build.WeakInput)):
        return value
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (np.generic, np.ndarray)) and np.ndim(value) == 0:
        dtype = supported(np.asarray(value).dtype, op_name)
        return build.constant(np.asarray(value).item(), dtype)
    if isinstance(value, complex):
        raise DTypeError(located(f"{op_name}: complex values are not supported"))
    if isinstance(value, np.ndarray):
        raise UnsupportedOperation(
            located(
                f"{op_name}: a concrete array of shape {value.shape} was used inside the "
                "kernel; pass it as an argument instead"
            )
        )
    raise UnsupportedOperation(
        located(f"{op_name}: operand of type {type(value).__name__} is not supported")
    )


def to_node(value: Operand, dtype: np.dtype, op_name: str) -> Array:
    """A graph node for any operand; Python scalars become constants of ``dtype``."""
    node = as_node(value, op_name)
    if isinstance(node, Array):
        return node
    if isinstance(node, build.WeakInput):
        return build.cast(node.node, dtype)
    try:
        return build.constant(node, dtype)
    except OverflowError as exc:  # int32_array + 2**40: NumPy 2 refuses the Python int too
        raise DomainError(
            located(f"{op_name}: the Python int {node!r} does not fit in {np.dtype(dtype)} ({exc})")
        ) from None
