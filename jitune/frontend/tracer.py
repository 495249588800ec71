"""Tracer objects: stand-ins for arrays that record NumPy calls as graph IR.

A :class:`Tracer` wraps a graph node. NumPy hands ufunc calls to ``__array_ufunc__`` and other
functions to ``__array_function__`` (NEP 13 and NEP 18); the Python operators and ndarray
methods map onto the same handlers. Anything without a handler raises
:class:`~jitune.errors.UnsupportedOperation` naming the function and the user's line.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import DomainError, DTypeError, JituneError, ShapeError, UnsupportedOperation
from ..ir.compute import contiguous_strides
from ..ir.graph import Array, GraphOp
from . import build, state
from .context import located, require_static, supported
from .state import register

Operand = Any  # a Tracer, a Python scalar or a NumPy scalar


class UnsupportedAttribute(UnsupportedOperation, AttributeError):
    """An ndarray attribute tracers lack: a jitune error, and an AttributeError, so that
    ``hasattr`` and ``getattr(x, name, default)`` answer as for any missing attribute."""


class Tracer:
    """An array under tracing: has ``shape``/``dtype`` but no values.

    ``node`` is the array's current value; an in-place update replaces it (see
    :mod:`~jitune.frontend.mutation`). ``view_of`` is the tracer whose memory this one shows
    (set by the view operations of this class), ``mutable`` is False for values NumPy holds as
    immutable scalars (0-d results, scalar arguments).
    """

    __slots__ = ("node", "weak", "view_of", "mutable", "layout", "__weakref__")
    __array_priority__ = 1000

    def __init__(
        self,
        node: Array,
        weak: type | None = None,
        *,
        view_of: Tracer | None = None,
        mutable: bool | None = None,
        layout: np.ndarray | None = None,
    ) -> None:
        self.node = node
        self.weak = weak  # the Python type of a scalar argument, which promotes weakly
        self.view_of = view_of
        self.mutable = (node.ndim > 0 and weak is None) if mutable is None else mutable
        self.layout = layout  # see _layout
        register(self)

    def _layout(self) -> np.ndarray:
        """An ndarray with this array's shape and strides over no real memory (never read):
        NumPy itself then says whether an operation on it is a view, as it would for the
        real array. An array that is not a view is C-contiguous unless it is an argument."""
        if self.layout is None:
            self.layout = layout_of(self.shape, self.dtype, contiguous_strides(self.shape))
        return self.layout

    def _view(self, node: Array, layout: np.ndarray, mutable: bool | None = None) -> Tracer:
        """A tracer for ``node``, a view of this array's memory laid out as ``layout``."""
        owner = self.view_of if self.view_of is not None else self
        if not self.mutable:
            return Tracer(node)  # a view of a scalar's value is a new value
        return Tracer(node, view_of=owner, mutable=mutable, layout=layout)

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
            raise UnsupportedAttribute(
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
        from .numpy_api import call_ufunc, ufunc_method

        try:
            if method != "__call__":
                return _strong(ufunc_method(ufunc, method, inputs, kwargs))
            return _strong(call_ufunc(ufunc, inputs, kwargs))
        except JituneError as exc:  # NumPy may replace it with its own: remember it
            raise state.raised(exc) from None

    def __array_function__(self, func: Callable, types: Any, args: Any, kwargs: Any) -> Any:
        from .numpy_api import call_function

        try:
            return _strong(call_function(func, args, kwargs))
        except JituneError as exc:
            raise state.raised(exc) from None

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise state.raised(
            UnsupportedOperation(
                located(
                    "converting a traced array to a concrete NumPy array (np.asarray, float(), "
                    "a Python loop or branch over its values, or storing it into a NumPy array "
                    "made inside the kernel with np.ndarray(...) or np.array(...): make that "
                    "one with np.empty or np.zeros) is not supported inside @jitune.kernel"
                )
            )
        )

    def make_static(self) -> None:
        """If this value comes from scalar arguments only: they are used as Python values
        (a shape, loop count or axis), so they become static (part of the signature by
        value) and the function is traced again with their values. Raises to end this trace;
        returns for any other value."""
        scope = state.current()
        inputs = _inputs_of(self.node)
        if scope is not None and inputs and inputs <= scope.scalars:
            scope.static |= inputs
            raise state.raised(
                UnsupportedOperation(located("a scalar argument's value is used in Python"))
            )

    def _concrete(self, *args: Any) -> Any:
        self.make_static()
        raise state.raised(
            UnsupportedOperation(
                located(
                    "using a traced array's value in Python control flow (bool, int, float, "
                    "iteration, a shape) is not supported inside @jitune.kernel: arrays have "
                    "no values while tracing. An int used as a shape, axis or loop count must "
                    "be a Python int argument (it is then static: one compiled kernel per "
                    "value; or declare it with @jitune.kernel(static=('n',))) or come from "
                    "an array's .shape"
                )
            )
        )

    __bool__ = __int__ = __float__ = __index__ = __iter__ = _concrete  # type: ignore[assignment]

    def _array_only(self, what: str) -> None:
        """A Python scalar argument has no ndarray methods and cannot be indexed (NumPy's
        functions take it, its own methods do not exist): refuse what would raise there."""
        if self.weak is not None:
            raise UnsupportedOperation(
                located(
                    f"{what} of a Python {self.weak.__name__} argument: it is not an array "
                    f"(Python raises TypeError or AttributeError); use np.asarray() of it"
                )
            )

    # -- methods -----------------------------------------------------------------------------
    def _method(name: str) -> Callable[..., Any]:  # type: ignore[misc]  # noqa: N805
        def method(self: Tracer, *args: Any, **kwargs: Any) -> Any:
            from .numpy_api import call_function

            self._array_only(f".{name}()")
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
        """A copy, always (where ``ravel`` and ``reshape(-1)`` may give a view)."""
        self._array_only(".flatten()")
        return Tracer(build.copy(build.reshape(self.node, (-1,))))

    def reshape(self, *shape: Any, order: str = "C") -> Tracer:
        self._array_only(".reshape()")
        if order != "C":
            raise UnsupportedOperation(located(f"reshape(order={order!r}): only order='C'"))
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = tuple(shape[0])
        reshaped = build.reshape(self.node, shape)
        layout = self._layout().view()
        try:
            layout.shape = reshaped.shape  # succeeds only where NumPy's reshape is a view
        except AttributeError:
            return Tracer(build.copy(reshaped))  # NumPy copies (a transposed array reshaped)
        return self._view(reshaped, layout)

    def transpose(self, *axes: Any) -> Tracer:
        self._array_only(".transpose()")
        require_static(axes)
        if len(axes) == 1 and axes[0] is not None and not isinstance(axes[0], (int, np.integer)):
            axes = tuple(axes[0])
        if not axes or axes == (None,):
            axes = tuple(reversed(range(self.ndim)))
            return self._view(build.permute(self.node, axes), self._layout().transpose(axes))
        for axis in axes:
            if not isinstance(axis, (int, np.integer)) or not -self.ndim <= axis < self.ndim:
                raise ShapeError(
                    located(
                        f"transpose: axis {axis!r} is out of bounds for an array of shape "
                        f"{self.shape}"
                    )
                )
        perm = tuple(int(a) % self.ndim for a in axes)
        return self._view(build.permute(self.node, perm), self._layout().transpose(perm))

    @property
    def T(self) -> Tracer:  # noqa: N802 - NumPy's name
        return self.transpose()

    def astype(self, dtype: Any, copy: bool = True) -> Tracer:
        self._array_only(".astype()")
        what = f"astype({np.dtype(dtype)})" if _is_dtype(dtype) else f"astype({dtype!r})"
        target = supported(dtype, what)
        if target == self.dtype:
            return self if not copy else Tracer(build.copy(self.node))
        return Tracer(build.cast(self.node, target))

    def __getitem__(self, key: Any) -> Tracer:
        from .gather import gather_index, is_advanced
        from .indexing import basic_index, expand_key

        self._array_only("indexing")
        if isinstance(key, Tracer) and key.dtype == np.bool_ and key.shape == self.shape:
            from .mutation import MaskedSelection

            return MaskedSelection(self, key)  # type: ignore[return-value]
        require_static(key)  # an int computed from scalar arguments makes them static
        if is_advanced(key):
            return Tracer(gather_index(self.node, key))  # a new array, as in NumPy
        node = basic_index(self.node, key)
        items = expand_key(key, self.ndim, self.shape)
        has_ellipsis = any(k is Ellipsis for k in (key if isinstance(key, tuple) else (key,)))
        if items and all(isinstance(i, (int, np.integer)) for i in items) and not has_ellipsis:
            return Tracer(build.copy(node))  # one element: NumPy gives a scalar, a copy
        # (with an ellipsis, one element is a 0-d array: a view, as in NumPy)
        return self._view(node, self._layout()[key], mutable=True)

    def __setitem__(self, key: Any, value: Any) -> None:
        from .mutation import assign

        assign(self, key, value)

    # -- operators ---------------------------------------------------------------------------
    def _binary(ufunc: np.ufunc, reflected: bool = False) -> Callable[..., Any]:  # type: ignore[misc]  # noqa: N805
        def method(self: Tracer, other: Any) -> Any:
            from .numpy_api import call_ufunc

            operands = (other, self) if reflected else (self, other)
            if all(_python_kind(x) for x in operands):
                return _python_binary(ufunc, operands)
            return call_ufunc(ufunc, operands, {})

        return method

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

    # -- in-place operators: the array takes the result (NumPy's casting rules) ---------------
    def _inplace(ufunc: np.ufunc, symbol: str) -> Callable[..., Any]:  # type: ignore[misc]  # noqa: N805
        def operator(self: Tracer, other: Any) -> Any:
            from .mutation import update
            from .numpy_api import call_ufunc

            return update(self, call_ufunc(ufunc, (self, other), {}), f"{symbol}=")

        return operator

    __iadd__ = _inplace(np.add, "+")
    __isub__ = _inplace(np.subtract, "-")
    __imul__ = _inplace(np.multiply, "*")
    __itruediv__ = _inplace(np.true_divide, "/")
    __ifloordiv__ = _inplace(np.floor_divide, "//")
    __imod__ = _inplace(np.remainder, "%")
    __ipow__ = _inplace(np.power, "**")
    __imatmul__ = _inplace(np.matmul, "@")
    __iand__ = _inplace(np.bitwise_and, "&")
    __ior__ = _inplace(np.bitwise_or, "|")
    __ixor__ = _inplace(np.bitwise_xor, "^")
    del _inplace

    def __neg__(self) -> Tracer:
        if self.weak is not None:
            return _python_unary(np.negative, operator.neg, self)
        return np.negative(self)  # type: ignore[return-value]

    def __pos__(self) -> Tracer:
        if self.weak is not None:
            return _python_unary(np.positive, operator.pos, self)
        return np.positive(self)  # type: ignore[return-value]

    def __abs__(self) -> Tracer:
        if self.weak is not None:
            return _python_unary(np.absolute, operator.abs, self)
        return np.absolute(self)  # type: ignore[return-value]

    def __invert__(self) -> Tracer:
        if self.weak is not None:
            return _python_unary(np.invert, operator.invert, self)
        return np.invert(self)  # type: ignore[return-value]


def _strong(result: Any) -> Any:
    """What a NumPy function returns is a NumPy value, never a Python scalar: it promotes
    strongly and has ndarray methods (np.positive(n) of a Python int is an np.int64)."""
    if isinstance(result, Tracer) and result.weak is not None:
        return Tracer(result.node)
    if isinstance(result, tuple):
        return tuple(_strong(r) for r in result)
    return result


def _inputs_of(node: Array) -> set[int]:
    """The positions of the graph inputs ``node`` is computed from."""
    found: set[int] = set()
    stack, seen = [node], set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if current.op is GraphOp.INPUT:
            found.add(current.arg)
        stack.extend(current.src)
    return found


def layout_of(shape: tuple[int, ...], dtype: np.dtype, strides: tuple[int, ...]) -> np.ndarray:
    """A stand-in ndarray of ``shape`` with these element ``strides`` over one element of
    memory: only its shape and strides are ever looked at."""
    itemsize = np.dtype(dtype).itemsize
    return np.lib.stride_tricks.as_strided(
        np.empty(1, dtype), shape, tuple(s * itemsize for s in strides), writeable=False
    )


# -- Python arithmetic on Python scalar arguments ---------------------------------------------------
#
# NumPy promotes a Python scalar weakly (NEP 50), and a Python operator between Python scalars
# is Python's own arithmetic, whose result is a Python scalar again: with n a Python int,
# ``n % 5`` is a Python int, so ``int32_array ** (n % 5)`` stays int32. A NumPy function of a
# Python scalar (``np.remainder(n, 5)``) returns a NumPy scalar, which promotes strongly. So
# the result of an operator whose operands are all Python scalars (weak tracers or literals)
# is weak again, of the Python type Python's operator gives; everything else is strong.
#
# Values are computed as NumPy computes the int64/float64/bool of that Python type. Where
# Python's arithmetic differs in value, the compiled kernel follows NumPy: int results that
# overflow int64 wrap (Python's ints do not), a zero divisor gives inf/nan (Python raises
# ZeroDivisionError; a literal zero divisor raises DomainError here), and an int argument
# raised to a negative int argument raises DomainError when run (Python gives a float).

_PYTHON_OPERATORS: dict[np.ufunc, Callable[[Any, Any], Any]] = {
    np.add: operator.add,
    np.subtract: operator.sub,
    np.multiply: operator.mul,
    np.true_divide: operator.truediv,
    np.floor_divide: operator.floordiv,
    np.remainder: operator.mod,
    np.power: operator.pow,
    np.matmul: operator.matmul,
    np.bitwise_and: operator.and_,
    np.bitwise_or: operator.or_,
    np.bitwise_xor: operator.xor,
    np.less: operator.lt,
    np.less_equal: operator.le,
    np.greater: operator.gt,
    np.greater_equal: operator.ge,
    np.equal: operator.eq,
    np.not_equal: operator.ne,
}
_COMPARISONS = {np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal}
_PYTHON_DTYPES = {bool: np.dtype(bool), int: np.dtype(np.int64), float: np.dtype(np.float64)}


def _python_kind(value: Any) -> type | None:
    """bool/int/float for a Python scalar or a Python scalar argument's tracer, else None
    (np.float64 is a float subclass but a NumPy scalar: it promotes strongly)."""
    if isinstance(value, Tracer):
        return value.weak
    return type(value) if type(value) in _PYTHON_DTYPES else None


def _python_result_kind(fn: Callable[..., Any], samples: list[Any], what: str) -> type:
    """The Python type ``fn(*samples)`` gives: Python's own rules (True + True is an int,
    True & True a bool, 3 / 1 and 2 ** -1 floats). A literal keeps its value in ``samples``,
    a traced argument is represented by 1 of its type."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ~True is deprecated
            kind = type(fn(*samples))
    except ZeroDivisionError:
        raise DomainError(located(f"{what}: division of a Python scalar by zero")) from None
    except (TypeError, ValueError) as exc:
        raise DTypeError(located(f"{what}: {exc} (Python scalar arguments)")) from None
    if kind not in _PYTHON_DTYPES:
        raise DTypeError(located(f"{what}: a Python {kind.__name__} result is not supported"))
    return kind


def _python_binary(ufunc: np.ufunc, operands: tuple[Any, Any]) -> Tracer:
    from .numpy_api import _binary as numpy_binary

    what = f"np.{ufunc.__name__}"
    kinds = [_python_kind(x) for x in operands]
    samples = [x.weak(1) if isinstance(x, Tracer) else x for x in operands]  # type: ignore[misc]
    kind = _python_result_kind(_PYTHON_OPERATORS[ufunc], samples, what)
    if ufunc in _COMPARISONS:  # Python compares bools as ints, ints with floats as floats
        compute = _PYTHON_DTYPES[float if float in kinds else int]
    else:
        compute = _PYTHON_DTYPES[kind]
    a, b = (to_node(x, compute, what) for x in operands)
    node = numpy_binary(ufunc, a, b)
    return Tracer(build.cast(node, _PYTHON_DTYPES[kind]), kind)


def _python_unary(ufunc: np.ufunc, fn: Callable[[Any], Any], x: Tracer) -> Tracer:
    from .numpy_api import _unary as numpy_unary

    what = f"np.{ufunc.__name__}"
    kind = _python_result_kind(fn, [x.weak(1)], what)  # type: ignore[misc]
    node = to_node(x, _PYTHON_DTYPES[kind], what)  # -True is -1: bools negate as ints
    if ufunc is not np.positive:
        node = numpy_unary(ufunc, node)
    return Tracer(build.cast(node, _PYTHON_DTYPES[kind]), kind)


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
    from .mutation import MaskedSelection

    if isinstance(value, MaskedSelection):
        value._refuse()  # x[mask] read as a value
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
