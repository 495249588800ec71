"""Handlers for the NumPy ufuncs and functions jitune can trace.

``call_ufunc`` and ``call_function`` are entered from :class:`~jitune.frontend.tracer.Tracer`'s
NumPy protocol methods. Result dtypes are NumPy's own (see :mod:`jitune.dtypes`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import dtypes
from ..errors import DomainError, DTypeError, ShapeError, UnsupportedOperation
from ..ir.graph import Array, BinaryOp, GraphOp, ReduceOp, UnaryOp
from . import build, einsum
from .context import located, require_static, supported
from .tracer import Tracer, as_node, to_node

_UNARY: dict[np.ufunc, UnaryOp] = {
    np.negative: UnaryOp.NEG,
    np.absolute: UnaryOp.ABS,
    np.fabs: UnaryOp.ABS,
    np.exp: UnaryOp.EXP,
    np.log: UnaryOp.LOG,
    np.log1p: UnaryOp.LOG1P,
    np.expm1: UnaryOp.EXPM1,
    np.sqrt: UnaryOp.SQRT,
    np.tanh: UnaryOp.TANH,
    np.sin: UnaryOp.SIN,
    np.cos: UnaryOp.COS,
    np.floor: UnaryOp.FLOOR,
    np.ceil: UnaryOp.CEIL,
    np.sign: UnaryOp.SIGN,
    np.reciprocal: UnaryOp.RECIPROCAL,
    np.logical_not: UnaryOp.NOT,
    np.invert: UnaryOp.INVERT,
    np.isnan: UnaryOp.ISNAN,
}

_BINARY: dict[np.ufunc, BinaryOp] = {
    np.add: BinaryOp.ADD,
    np.subtract: BinaryOp.SUB,
    np.multiply: BinaryOp.MUL,
    np.true_divide: BinaryOp.TRUEDIV,
    np.floor_divide: BinaryOp.FLOORDIV,
    np.remainder: BinaryOp.MOD,
    np.power: BinaryOp.POW,
    np.maximum: BinaryOp.MAX,
    np.minimum: BinaryOp.MIN,
    np.equal: BinaryOp.EQ,
    np.not_equal: BinaryOp.NE,
    np.less: BinaryOp.LT,
    np.less_equal: BinaryOp.LE,
    np.greater: BinaryOp.GT,
    np.greater_equal: BinaryOp.GE,
    np.bitwise_and: BinaryOp.AND,
    np.bitwise_or: BinaryOp.OR,
    np.bitwise_xor: BinaryOp.XOR,
    np.logical_and: BinaryOp.AND,
    np.logical_or: BinaryOp.OR,
    np.logical_xor: BinaryOp.XOR,
    np.arctan2: BinaryOp.ATAN2,
}

_LOGICAL = {np.logical_and, np.logical_or, np.logical_xor}


def _result_dtype(name: str, fn: Any, *operands: Any) -> np.dtype:
    try:
        dtype = build.result_dtype(fn, *operands)
    except (TypeError, ValueError) as exc:
        kinds = ", ".join(
            str(op.dtype) if isinstance(op, Array) else type(op).__name__ for op in operands
        )
        raise DTypeError(
            located(f"np.{name}: not defined for operands of dtype {kinds} ({exc})")
        ) from None
    return supported(dtype, f"np.{name}")


def _wrap(node: Array) -> Tracer:
    return Tracer(node)


def call_ufunc(ufunc: np.ufunc, inputs: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    name = ufunc.__name__
    extra = {k: v for k, v in kwargs.items() if v is not None}
    if extra:
        raise UnsupportedOperation(
            located(f"np.{name}: keyword arguments {sorted(extra)} are not supported")
        )
    if ufunc is np.matmul:
        return _matmul(*inputs)
    operands = [as_node(x, f"np.{name}") for x in inputs]
    if ufunc is np.positive:
        _result_dtype(name, ufunc, operands[0])  # NumPy rejects +bool
        if not isinstance(operands[0], Array):
            return inputs[0]  # a Python scalar: _strong makes it NumPy's
        return _wrap(build.copy(operands[0]))
    if ufunc is np.square:
        x = operands[0]
        dtype = _result_dtype(name, ufunc, x)
        node = to_node(x, dtype, name)
        return _wrap(build.binary(BinaryOp.MUL, node, node, dtype, dtype, f"np.{name}"))
    if ufunc in _UNARY:
        return _wrap(_new_array(_unary(ufunc, operands[0]), operands))
    if ufunc in _BINARY:
        return _wrap(_new_array(_binary(ufunc, operands[0], operands[1]), operands))
    raise UnsupportedOperation(located(f"np.{name} is not supported by jitune"))


def _new_array(node: Array, operands: Sequence[Any]) -> Array:
    """A ufunc's result is a new array: where it is an operand's value unchanged
    (``np.ceil`` of integers), a copy node, so an update of the operand does not reach it."""
    return build.copy(node) if any(node is x for x in operands) else node


def _unary(ufunc: np.ufunc, x: Any) -> Array:
    name = ufunc.__name__
    op = _UNARY[ufunc]
    result = _result_dtype(name, ufunc, x)
    node = to_node(x, result, name)
    if op is UnaryOp.ISNAN:
        if not dtypes.is_float(node.dtype):
            return build.expand(build.constant(False, np.bool_), node.shape)
        return build.Array(GraphOp.UNARY, (node,), node.shape, result, op)
    if op is UnaryOp.INVERT and dtypes.is_bool(node.dtype):
        op = UnaryOp.NOT
    if op in (UnaryOp.FLOOR, UnaryOp.CEIL) and not dtypes.is_float(result):
        return build.cast(node, result)
    if op is UnaryOp.RECIPROCAL and not dtypes.is_float(result):
        raise UnsupportedOperation(located(f"np.reciprocal on integer dtype {result}"))
    return build.unary(op, node, result)


def _binary(ufunc: np.ufunc, a: Any, b: Any) -> Array:
    name = ufunc.__name__
    op = _BINARY[ufunc]
    result = _result_dtype(name, ufunc, a, b)
    if ufunc in _LOGICAL:
        compute = np.dtype(np.bool_)
    elif op in (BinaryOp.EQ, BinaryOp.NE, BinaryOp.LT, BinaryOp.LE, BinaryOp.GT, BinaryOp.GE):
        compute = _result_dtype(name, np.add, a, b) if not _both_bool(a, b) else np.dtype(bool)
    else:
        compute = result
    a_node, b_node = to_node(a, compute, name), to_node(b, compute, name)
    if op is BinaryOp.POW and dtypes.is_int(result):
        _check_exponent(a_node, b_node)
    return build.binary(op, a_node, b_node, compute, result, f"np.{name}")


def _check_exponent(base: Array, exponent: Array) -> None:
    """NumPy refuses integers to negative integer powers: a constant exponent is checked
    here; any other is checked by the compiled code when it runs (``codegen/llvm.py``).
    NumPy's check is in its inner loop, so an empty result raises nothing."""
    empty = 0 in base.shape or 0 in exponent.shape
    if exponent.op is GraphOp.CONST and exponent.arg < 0 and not empty:
        raise DomainError(
            located(
                "np.power: Integers to negative integer powers are not allowed "
                f"({base.dtype}{list(base.shape)} ** {exponent.arg})"
            )
        )


def _both_bool(a: Any, b: Any) -> bool:
    def is_bool(x: Any) -> bool:
        if isinstance(x, build.WeakInput):
            return x.kind is bool
        return isinstance(x, bool) or (isinstance(x, Array) and dtypes.is_bool(x.dtype))

    return is_bool(a) and is_bool(b)


# -- contractions --------------------------------------------------------------------------------


def _contract(operands: Sequence[Array], spec: Any, name: str) -> Tracer:
    dtype = supported(np.result_type(*(op.dtype for op in operands)), name)
    steps = einsum.pairwise(spec)
    current = build.contract(
        [operands[0], operands[1]] if len(operands) > 1 else operands, steps[0], dtype
    )
    for position, step in enumerate(steps[1:], start=2):
        current = build.contract([current, operands[position]], step, dtype)
    return _wrap(current)


def _operand_nodes(values: Sequence[Any], name: str) -> list[Array]:
    nodes = []
    for value in values:
        node = as_node(value, name)
        if isinstance(node, build.WeakInput):
            node = node.node
        elif not isinstance(node, Array):
            node = build.constant(node, np.result_type(node))
        nodes.append(node)
    return nodes


def _matmul(a: Any, b: Any) -> Tracer:
    x, y = _operand_nodes((a, b), "matmul")
    return _contract((x, y), einsum.matmul_spec(x.shape, y.shape), "matmul")


def _dot(a: Any, b: Any, out: Any = None) -> Tracer:
    x, y = _operand_nodes((a, b), "dot")
    return _contract((x, y), einsum.dot_spec(x.shape, y.shape), "dot")


def _tensordot(a: Any, b: Any, axes: Any = 2) -> Tracer:
    x, y = _operand_nodes((a, b), "tensordot")
    return _contract((x, y), einsum.tensordot_spec(x.shape, y.shape, axes), "tensordot")


def _einsum(spec: Any, *operands: Any, out: Any = None, optimize: Any = False, **kw: Any) -> Tracer:
    if not isinstance(spec, str):
        raise UnsupportedOperation(located("einsum: only the string subscript form is supported"))
    if out is not None or kw:
        raise UnsupportedOperation(located(f"einsum('{spec}'): out=/dtype= are not supported"))
    nodes = _operand_nodes(operands, f"einsum('{spec}')")
    parsed = einsum.parse(spec, [n.shape for n in nodes], sum_unlisted_ellipsis=bool(optimize))
    return _contract(nodes, parsed, f"einsum('{spec}')")


# -- reductions ---------------------------------------------------------------------------------


def _no_extras(name: str, **extras: Any) -> None:
    used = [k for k, v in extras.items() if v is not None and v is not np._NoValue]
    if used:
        raise UnsupportedOperation(located(f"np.{name}: arguments {used} are not supported"))


def _reduce_call(
    op: ReduceOp,
    a: Any,
    axis: Any,
    dtype: Any,
    out: Any,
    keepdims: Any,
    initial: Any,
    where: Any,
    default_dtype: Callable[[np.dtype], np.dtype],
) -> Tracer:
    _no_extras(op.value, out=out, initial=initial, where=where)
    node = _operand_nodes((a,), f"np.{op.value}")[0]
    acc = np.dtype(dtype) if dtype is not None else default_dtype(node.dtype)
    acc = supported(acc, f"np.{op.value}")
    return _wrap(build.reduce(op, node, axis, bool(keepdims), acc))


def _reduction(op: ReduceOp, default_dtype: Callable[[np.dtype], np.dtype]) -> Callable[..., Any]:
    """np.sum/np.prod: ``(a, axis, dtype, out, keepdims, initial, where)``."""

    def handler(
        a: Any,
        axis: Any = None,
        dtype: Any = None,
        out: Any = None,
        keepdims: Any = False,
        initial: Any = np._NoValue,
        where: Any = np._NoValue,
    ) -> Tracer:
        return _reduce_call(op, a, axis, dtype, out, keepdims, initial, where, default_dtype)

    return handler


def _extremum(op: ReduceOp) -> Callable[..., Any]:
    """np.max/np.min: NumPy's signature has no ``dtype`` (``np.max(a, axis, out, keepdims)``)."""

    def handler(
        a: Any,
        axis: Any = None,
        out: Any = None,
        keepdims: Any = False,
        initial: Any = np._NoValue,
        where: Any = np._NoValue,
    ) -> Tracer:
        return _reduce_call(op, a, axis, None, out, keepdims, initial, where, lambda dtype: dtype)

    return handler


def _sum_dtype(dtype: np.dtype) -> np.dtype:
    return build.result_dtype(np.sum, dtype)


def mean_dtype(dtype: np.dtype) -> np.dtype:
    return dtype if dtypes.is_float(dtype) else np.dtype(np.float64)


def _reduced_count(node: Array, axis: Any, name: str) -> int:
    # np.mean/var/std normalize the axis themselves (_methods._count_reduce_items), which,
    # unlike np.sum, refuses axis 0 of a 0-d array
    axes = build.normalize_axes(axis, node.ndim, name, node.shape, zero_d_axis=False)
    return math.prod(node.shape[i] for i in axes)


def _mean(
    a: Any,
    axis: Any = None,
    dtype: Any = None,
    out: Any = None,
    keepdims: Any = False,
    where: Any = np._NoValue,
) -> Tracer:
    _no_extras("mean", out=out, where=where)
    node = _operand_nodes((a,), "np.mean")[0]
    count = _reduced_count(node, axis, "mean")
    acc = supported(np.dtype(dtype) if dtype is not None else mean_dtype(node.dtype), "np.mean")
    total = build.reduce(ReduceOp.SUM, node, axis, bool(keepdims), acc)
    return _wrap(_divide_by_count(total, count, "np.mean"))


def _divide_by_count(total: Array, count: int, name: str) -> Array:
    """``total / count`` in ``total``'s dtype, as np.mean and np.var divide a sum.

    NumPy divides with ``true_divide(total, count, out=total, casting='unsafe')`` (a full
    reduction: ``dtype.type(total / count)``): a float total is divided in its own dtype; an
    integer or bool total (``mean(dtype=np.int32)``) is divided in float64 and the quotient
    cast back, truncating toward zero (``-7 / 4`` gives ``-1``).
    """
    dtype = total.dtype
    if dtypes.is_float(dtype):
        return build.binary(
            BinaryOp.TRUEDIV, total, build.constant(count, dtype), dtype, dtype, name
        )
    f8 = np.dtype(np.float64)
    quotient = build.binary(
        BinaryOp.TRUEDIV, build.cast(total, f8), build.constant(count, f8), f8, f8, name
    )
    return build.cast(quotient, dtype)


def _var(
    a: Any,
    axis: Any = None,
    dtype: Any = None,
    out: Any = None,
    ddof: int = 0,
    keepdims: Any = False,
    where: Any = np._NoValue,
    mean: Any = np._NoValue,
    correction: Any = np._NoValue,
) -> Tracer:
    _no_extras("var", out=out, where=where, mean=mean, correction=correction)
    node = _operand_nodes((a,), "np.var")[0]
    count = _reduced_count(node, axis, "var")
    acc = supported(np.dtype(dtype) if dtype is not None else mean_dtype(node.dtype), "np.var")
    # NumPy's steps (numpy/_core/_methods.py::_var): the mean is a sum in ``acc`` divided
    # like np.mean's; the deviations are ``a - mean`` in the dtype those two promote to
    # (float64 for float64 data even when acc is float32); their squares are summed in acc.
    centre = _divide_by_count(build.reduce(ReduceOp.SUM, node, axis, True, acc), count, "np.var")
    diff_dtype = _result_dtype("var", np.subtract, node, centre)
    diff = build.binary(BinaryOp.SUB, node, centre, diff_dtype, diff_dtype, "np.var")
    square = build.binary(BinaryOp.MUL, diff, diff, diff_dtype, diff_dtype, "np.var")
    total = build.reduce(ReduceOp.SUM, square, axis, bool(keepdims), acc)
    return _wrap(_divide_by_count(total, max(count - ddof, 0), "np.var"))


def _std(*args: Any, **kwargs: Any) -> Tracer:
    """sqrt of np.var; an integer variance (``dtype=np.int32``) is rooted in float64 and cast
    back, as NumPy's ``sqrt(ret, out=ret, casting='unsafe')`` does."""
    variance = _var(*args, **kwargs).node
    if dtypes.is_float(variance.dtype):
        return _wrap(build.unary(UnaryOp.SQRT, variance))
    if variance.ndim:
        # NumPy's sqrt(ret, out=ret) runs under the 'same_kind' rule there, which refuses
        # float64 -> int; only a full reduction (a scalar) goes through dtype.type(sqrt(ret)).
        raise DTypeError(
            located(
                f"np.std: an integer dtype ({variance.dtype}) is refused for a result of "
                f"shape {variance.shape} (NumPy cannot cast sqrt's float64 to it)"
            )
        )
    root = build.unary(UnaryOp.SQRT, build.cast(variance, np.float64))
    return _wrap(build.cast(root, variance.dtype))


def _arg_reduction(op: ReduceOp) -> Callable[..., Any]:
    def handler(a: Any, axis: Any = None, out: Any = None, *, keepdims: Any = False) -> Tracer:
        _no_extras(op.value, out=out)
        node = _operand_nodes((a,), f"np.{op.value}")[0]
        require_static(axis)
        if axis is not None and not isinstance(axis, (int, np.integer)):
            raise ShapeError(located(f"np.{op.value}: axis must be an int or None, got {axis!r}"))
        return _wrap(build.reduce(op, node, axis, bool(keepdims), np.dtype(np.int64)))

    return handler


# -- shape functions ---------------------------------------------------------------------------


def _node(a: Any, name: str) -> Array:
    return _operand_nodes((a,), name)[0]


def _as_tracer(a: Any, name: str) -> Tracer:
    """``a`` itself if it is a tracer (its views then stay views of it, see
    ``frontend/mutation.py``), else a tracer of its value (a Python scalar argument's value
    is a NumPy value here, as ``np.reshape(n, 1)`` makes one)."""
    return a if isinstance(a, Tracer) and a.weak is None else Tracer(_node(a, name))


def _transpose(a: Any, axes: Any = None) -> Tracer:
    return _as_tracer(a, "transpose").transpose(axes)


def _swapaxes(a: Any, axis1: int, axis2: int) -> Tracer:
    node = _node(a, "swapaxes")
    # NumPy's swapaxes refuses every axis of a 0-d array (AxisError), unlike np.sum's
    i, j = (
        build.normalize_axes(axis1, node.ndim, "swapaxes", node.shape, zero_d_axis=False)[0],
        build.normalize_axes(axis2, node.ndim, "swapaxes", node.shape, zero_d_axis=False)[0],
    )
    perm = list(range(node.ndim))
    perm[i], perm[j] = perm[j], perm[i]
    return _wrap(build.permute(node, perm))


def _axis_list(axes: Any, ndim: int, name: str, shape: tuple[int, ...]) -> list[int]:
    """Non-negative axes in the given order; raises ShapeError if out of range or repeated."""
    require_static(axes)
    items = [axes] if isinstance(axes, (int, np.integer)) else list(axes)
    for item in items:
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer)):
            raise ShapeError(located(f"{name}: axis must be an int, got {item!r}"))
        if not -ndim <= item < ndim:
            raise ShapeError(
                located(f"{name}: axis {item} is out of bounds for an array of shape {shape}")
            )
    result = [int(item) % ndim for item in items]
    if len(set(result)) != len(result):
        raise ShapeError(located(f"{name}: repeated axis in {axes!r}"))
    return result


def _moveaxis(a: Any, source: Any, destination: Any) -> Tracer:
    node = _node(a, "moveaxis")
    src = _axis_list(source, node.ndim, "moveaxis: source", node.shape)
    dst = _axis_list(destination, node.ndim, "moveaxis: destination", node.shape)
    if len(src) != len(dst):
        raise ShapeError(located("moveaxis: source and destination differ in length"))
    order = [n for n in range(node.ndim) if n not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return _wrap(build.permute(node, order))


def _reshape(a: Any, *args: Any, **kwargs: Any) -> Tracer:
    shape = kwargs.pop("shape", kwargs.pop("newshape", args[0] if args else None))
    order = kwargs.pop("order", args[1] if len(args) > 1 else "C")
    return _as_tracer(a, "reshape").reshape(shape, order=order)


def _ravel(a: Any, order: str = "C") -> Tracer:
    return _as_tracer(a, "ravel").reshape(-1, order=order)


def _flip(m: Any, axis: Any = None) -> Tracer:
    """A view with the order of ``axis`` (every axis when None) reversed, as NumPy's."""
    t = _as_tracer(m, "flip")
    if axis is None:
        axes = set(range(t.ndim))
    else:
        axes = set(build.normalize_axes(axis, t.ndim, "flip", t.shape, zero_d_axis=False))
    key = tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(t.ndim))
    return t[key + (Ellipsis,)]


def _fliplr(m: Any) -> Tracer:
    if _node(m, "fliplr").ndim < 2:
        raise ShapeError(located("np.fliplr: the input must be at least 2-d"))
    return _flip(m, 1)


def _flipud(m: Any) -> Tracer:
    if _node(m, "flipud").ndim < 1:
        raise ShapeError(located("np.flipud: the input must be at least 1-d"))
    return _flip(m, 0)


def _cov(
    m: Any,
    y: Any = None,
    rowvar: bool = True,
    bias: bool = False,
    ddof: Any = None,
    fweights: Any = None,
    aweights: Any = None,
    dtype: Any = None,
) -> Any:
    """np.cov of observations in rows (``rowvar``) or columns, as NumPy computes it: in
    float64 (or ``dtype``), centred, ``X @ X.T / (N - ddof)``, squeezed."""
    if y is not None or fweights is not None or aweights is not None:
        raise UnsupportedOperation(located("np.cov: y=, fweights= and aweights= are not supported"))
    for flag in (rowvar, bias, ddof):
        require_static(flag)
    node = _node(m, "cov")
    if node.ndim > 2:
        raise ShapeError(located(f"np.cov: m has more than 2 dimensions (shape {node.shape})"))
    if dtype is None:
        dtype = np.result_type(node.dtype, np.float64)
    x = Tracer(build.cast(node, supported(dtype, "np.cov")))
    if x.ndim < 2:
        x = x.reshape(1, -1)
    elif not rowvar:
        x = x.T
    if x.shape[0] == 0:
        raise UnsupportedOperation(located("np.cov of no variables (NumPy returns a 0x0 array)"))
    if ddof is None:
        ddof = 0 if bias else 1
    count = x.shape[1] - int(ddof)
    centred = x - x.mean(axis=1, keepdims=True)
    scale = 1.0 / count if count > 0 else np.inf  # NumPy warns and divides by zero
    return ((centred @ centred.T) * scale).squeeze()


def _outer(a: Any, b: Any, out: Any = None) -> Any:
    if out is not None:
        raise UnsupportedOperation(located("np.outer: out= is not supported by jitune"))
    return ufunc_method(np.multiply, "outer", (_ravel(a), _ravel(b)), {})


# ufunc methods that are a NumPy function: np.add.reduce(a, axis) is np.sum(a, axis)
_REDUCE_METHODS: dict[np.ufunc, Callable[..., Any]] = {
    np.add: np.sum,
    np.multiply: np.prod,
    np.maximum: np.max,
    np.minimum: np.min,
}


def ufunc_method(
    ufunc: np.ufunc, method: str, inputs: Sequence[Any], kwargs: dict[str, Any]
) -> Any:
    """``ufunc.outer`` of a binary ufunc (every pair of elements) and ``ufunc.reduce`` of
    those with a reduction function; other methods are refused by name."""
    name = f"np.{ufunc.__name__}.{method}"
    if method == "outer" and ufunc.nin == 2 and len(inputs) == 2:
        a, b = (_node(x, name) for x in inputs)
        widened = build.reshape(a, a.shape + (1,) * b.ndim)
        return call_ufunc(ufunc, (Tracer(widened), Tracer(b)), kwargs)
    reduction = _REDUCE_METHODS.get(ufunc)
    if method == "reduce" and reduction is not None and len(inputs) == 1:
        options = {"axis": 0, **kwargs}
        return _FUNCTIONS[reduction](inputs[0], **options)
    raise UnsupportedOperation(located(f"{name} is not supported by jitune"))


def _expand_dims(a: Any, axis: Any) -> Tracer:
    node = _node(a, "expand_dims")
    items = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    ndim = node.ndim + len(items)
    positions = build.normalize_axes(items, ndim, "expand_dims", node.shape)
    dims = iter(node.shape)
    shape = tuple(1 if i in positions else next(dims) for i in range(ndim))
    return _wrap(build.reshape(node, shape))


def _squeeze(a: Any, axis: Any = None) -> Tracer:
    node = _node(a, "squeeze")
    if axis is None:
        axes = tuple(i for i, d in enumerate(node.shape) if d == 1)
    else:
        axes = build.normalize_axes(axis, node.ndim, "squeeze", node.shape)
        if any(node.shape[i] != 1 for i in axes):
            raise ShapeError(
                located(f"squeeze: cannot select an axis of size other than one in {node.shape}")
            )
    shape = tuple(d for i, d in enumerate(node.shape) if i not in axes)
    return _wrap(build.reshape(node, shape))


def _broadcast_to(a: Any, shape: Any, subok: bool = False) -> Tracer:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return _wrap(build.expand(_node(a, "broadcast_to"), shape))


def _where(condition: Any, x: Any = None, y: Any = None) -> Tracer:
    if x is None or y is None:
        raise UnsupportedOperation(located("np.where with one argument (data-dependent shape)"))
    dtype = _result_dtype(
        "where", np.where, np.dtype(bool), as_node(x, "where"), as_node(y, "where")
    )
    cond = to_node(condition, np.dtype(bool), "where")
    return _wrap(build.where(cond, _where_operand(x, dtype), _where_operand(y, dtype), dtype))


def _where_operand(value: Any, dtype: np.dtype) -> Array:
    """An operand of np.where as a node of ``dtype``. NumPy converts a Python int operand
    through a C long and casts it unsafely, so np.where(c, int32_array, 2**40) holds 0 where
    an int32 addition would raise OverflowError."""
    if type(value) is int and dtypes.is_int(dtype):
        try:
            wide = np.array(value, np.int64)
        except OverflowError as exc:
            raise DomainError(located(f"np.where: the Python int {value} ({exc})")) from None
        with np.errstate(all="ignore"):
            return build.constant(wide.astype(dtype).item(), dtype)
    return to_node(value, dtype, "where")


def _clip(
    a: Any,
    a_min: Any = np._NoValue,
    a_max: Any = np._NoValue,
    out: Any = None,
    *,
    min: Any = np._NoValue,
    max: Any = np._NoValue,
    **kwargs: Any,
) -> Tracer:
    low = a_min if a_min is not np._NoValue else min
    high = a_max if a_max is not np._NoValue else max
    _no_extras("clip", out=out, **kwargs)
    low = None if low is np._NoValue else low
    high = None if high is np._NoValue else high
    # NumPy's steps (numpy/_core/_methods.py::_clip): a Python int bound beyond an integer
    # array's range is dropped; no bounds is np.positive (which refuses bool); one bound is
    # np.maximum or np.minimum; two are the np.clip ufunc, whose dtype promotes all three
    # operands at once (clip(bool, -0.5, float32) is float32, where maximum then minimum
    # would make float64 of the weak -0.5 first).
    node = as_node(a, "np.clip")
    if isinstance(node, Array) and dtypes.is_int(node.dtype):
        info = np.iinfo(node.dtype)
        if type(low) is int and low <= info.min:
            low = None
        if type(high) is int and high >= info.max:
            high = None
    if low is None and high is None:
        return call_ufunc(np.positive, (a,), {})
    if low is None:
        return call_ufunc(np.minimum, (a, high), {})
    if high is None:
        return call_ufunc(np.maximum, (a, low), {})
    operands = [node, as_node(low, "np.clip"), as_node(high, "np.clip")]
    dtype = _result_dtype("clip", np.clip, *operands)
    x, lo, hi = (to_node(op, dtype, "clip") for op in operands)
    # the ufunc's inner loop is minimum(maximum(x, lo), hi), NaN of any operand propagating
    raised = build.binary(BinaryOp.MAX, x, lo, dtype, dtype, "np.clip")
    return _wrap(build.binary(BinaryOp.MIN, raised, hi, dtype, dtype, "np.clip"))


def _filled(value: Any, name: str) -> Callable[..., Tracer]:
    """np.zeros_like/ones_like/empty_like (``value`` given) and np.full_like (``value`` None:
    the fill value is the second argument, and may be a traced array that broadcasts)."""

    def handler(a: Any, *args: Any, **kwargs: Any) -> Tracer:
        if value is None:
            if not args and "fill_value" not in kwargs:
                raise UnsupportedOperation(located("np.full_like: missing fill_value"))
            fill = kwargs.pop("fill_value") if "fill_value" in kwargs else args[0]
            args = args[1:]
        else:
            fill = value
        names = ("dtype", "order", "subok", "shape")
        if len(args) > len(names):
            raise UnsupportedOperation(located(f"np.{name}: too many arguments"))
        options = dict(zip(names, args))
        for key, option in kwargs.items():
            if key not in names and key != "device":
                raise UnsupportedOperation(located(f"np.{name}: argument {key!r} is not supported"))
            options[key] = option
        node = _node(a, f"np.{name}")
        dtype = options.get("dtype")
        out_dtype = supported(dtype if dtype is not None else node.dtype, f"np.{name}")
        shape = options.get("shape")
        require_static(shape)
        if shape is None:
            shape = node.shape
        elif isinstance(shape, (int, np.integer)):
            shape = (int(shape),)
        shape = tuple(int(d) for d in shape)
        if isinstance(fill, Tracer):  # an array fill value broadcasts, as in NumPy
            filled = build.cast(_as_array(fill, f"np.{name}"), out_dtype)
            # NumPy fills with copyto, which also drops leading axes of extent 1 that the
            # output lacks: np.full_like(np.ones(()), np.ones((1, 1))) is array(1.)
            extra = filled.ndim - len(shape)
            if extra > 0 and all(d == 1 for d in filled.shape[:extra]):
                filled = build.reshape(filled, filled.shape[extra:])
        else:
            filled = build.constant(_fill_value(fill, out_dtype, f"np.{name}"), out_dtype)
        return _wrap(build.expand(filled, shape, f"np.{name}"))

    return handler


def _as_array(value: Any, name: str) -> Array:
    return _operand_nodes((value,), name)[0]


def _fill_value(value: Any, dtype: np.dtype, name: str) -> Any:
    """The element NumPy's full_like fills a ``dtype`` array with for the concrete scalar
    ``value``, asked of NumPy itself: its copyto casts unsafely, so nan, inf or 1e30 into an
    integer dtype give whatever the C cast gives on this machine (with a RuntimeWarning),
    while a Python int out of the dtype's range raises OverflowError."""
    as_node(value, name)  # refuses what is not a scalar (complex, a concrete array)
    try:
        with np.errstate(invalid="ignore", over="ignore"):
            return np.full_like(np.empty((), dtype), value).item()
    except (OverflowError, ValueError, TypeError) as exc:
        raise DomainError(
            located(f"{name}: the fill value {value!r} cannot be stored as {dtype} ({exc})")
        ) from None


def _copy(a: Any, *args: Any, **kwargs: Any) -> Tracer:
    # a node of its own: updates of ``a`` skip it; a copy of an array is an array (also 0-d)
    mutable = True if isinstance(a, Tracer) and (a.mutable or a.ndim) else None
    return Tracer(build.copy(_node(a, "copy")), mutable=mutable)


def _astype(a: Any, dtype: Any, copy: bool = True, **kwargs: Any) -> Tracer:
    return Tracer(_node(a, "astype")).astype(dtype)


_FUNCTIONS: dict[Callable[..., Any], Callable[..., Any]] = {
    np.sum: _reduction(ReduceOp.SUM, _sum_dtype),
    np.prod: _reduction(ReduceOp.PROD, lambda d: build.result_dtype(np.prod, d)),
    np.max: _extremum(ReduceOp.MAX),
    np.amax: _extremum(ReduceOp.MAX),
    np.min: _extremum(ReduceOp.MIN),
    np.amin: _extremum(ReduceOp.MIN),
    np.mean: _mean,
    np.var: _var,
    np.std: _std,
    np.argmax: _arg_reduction(ReduceOp.ARGMAX),
    np.argmin: _arg_reduction(ReduceOp.ARGMIN),
    np.dot: _dot,
    np.einsum: _einsum,
    np.tensordot: _tensordot,
    np.transpose: _transpose,
    np.swapaxes: _swapaxes,
    np.moveaxis: _moveaxis,
    np.reshape: _reshape,
    np.ravel: _ravel,
    np.expand_dims: _expand_dims,
    np.flip: _flip,
    np.fliplr: _fliplr,
    np.flipud: _flipud,
    np.outer: _outer,
    np.cov: _cov,
    np.squeeze: _squeeze,
    np.broadcast_to: _broadcast_to,
    np.where: _where,
    np.clip: _clip,
    np.zeros_like: _filled(0, "zeros_like"),
    np.ones_like: _filled(1, "ones_like"),
    np.full_like: _filled(None, "full_like"),
    np.empty_like: _filled(0, "empty_like"),
    np.copy: _copy,
    np.astype: _astype,
}


def call_function(func: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    handler = _FUNCTIONS.get(func)
    if handler is None:
        name = getattr(func, "__name__", repr(func))
        module = getattr(func, "__module__", None) or "numpy"
        if module.startswith("numpy.") and not module.startswith("numpy._"):
            name = module[len("numpy.") :] + "." + name  # np.fft.fft, np.linalg.norm
        raise UnsupportedOperation(located(f"np.{name} is not supported by jitune"))
    return handler(*args, **kwargs)


def einsum_function(spec: str, *operands: Any) -> Any:
    """``jitune.einsum``: NumPy's einsum inside a kernel, ``np.einsum`` outside one."""
    if any(isinstance(op, Tracer) for op in operands):
        return _einsum(spec, *operands)
    return np.einsum(spec, *operands)
