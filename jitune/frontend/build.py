"""Graph-building operations with NumPy's shape and dtype rules.

Each function takes graph IR nodes (:class:`~jitune.ir.graph.Array`) and returns a new node,
checking shapes and raising a :mod:`jitune.errors` exception that names the operation, the
shapes and the user's line. The tracer (``tracer.py``) maps NumPy calls onto these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import dtypes
from ..errors import ShapeError
from ..ir.graph import (
    Array,
    BinaryOp,
    Contraction,
    GraphOp,
    ReduceOp,
    Reduction,
    UnaryOp,
    broadcast_shapes,
)
from .context import located, require_static


def shapes_text(*arrays: Array) -> str:
    return ", ".join(str(a.shape) for a in arrays)


def constant(value: Any, dtype: np.dtype) -> Array:
    """A 0-d constant of ``dtype`` (raises OverflowError like NumPy if it does not fit)."""
    dtype = np.dtype(dtype)
    return Array(GraphOp.CONST, (), (), dtype, np.array(value, dtype=dtype).item())


def cast(x: Array, dtype: np.dtype) -> Array:
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    if x.op is GraphOp.CONST:
        return constant(x.arg, dtype)
    return Array(GraphOp.CAST, (x,), x.shape, dtype)


def copy(x: Array) -> Array:
    """A node with ``x``'s value that is not ``x``: a copy in NumPy's sense, which the
    mutation tracking must not take for a view of ``x`` (lowering inlines it away)."""
    return Array(GraphOp.CAST, (x,), x.shape, x.dtype)


def expand(x: Array, shape: tuple[int, ...], op_name: str = "broadcast_to") -> Array:
    """Broadcast ``x`` to ``shape`` with NumPy's rules."""
    shape = tuple(int(d) for d in shape)
    if x.shape == shape:
        return x
    if broadcast_shapes(x.shape, shape) != shape:
        raise ShapeError(located(f"{op_name}: cannot broadcast shape {x.shape} to {shape}"))
    return Array(GraphOp.EXPAND, (x,), shape, x.dtype)


def broadcast_all(arrays: Sequence[Array], op_name: str) -> list[Array]:
    shape = broadcast_shapes(*(a.shape for a in arrays))
    if shape is None:
        raise ShapeError(
            located(f"{op_name}: operands with shapes {shapes_text(*arrays)} do not broadcast")
        )
    return [expand(a, shape, op_name) for a in arrays]


def unary(op: UnaryOp, x: Array, dtype: np.dtype | None = None) -> Array:
    dtype = np.dtype(dtype or x.dtype)
    return Array(GraphOp.UNARY, (cast(x, dtype),), x.shape, dtype, op)


def binary(
    op: BinaryOp, a: Array, b: Array, compute: np.dtype, result: np.dtype, op_name: str
) -> Array:
    """Elementwise ``op`` computed in ``compute`` dtype, giving ``result`` dtype."""
    a, b = broadcast_all([cast(a, compute), cast(b, compute)], op_name)
    return Array(GraphOp.BINARY, (a, b), a.shape, np.dtype(result), op)


def where(cond: Array, a: Array, b: Array, dtype: np.dtype) -> Array:
    cond, a, b = broadcast_all([cast(cond, np.bool_), cast(a, dtype), cast(b, dtype)], "where")
    return Array(GraphOp.WHERE, (cond, a, b), a.shape, np.dtype(dtype))


def normalize_axes(
    axis: int | Sequence[int] | None,
    ndim: int,
    op_name: str,
    shape: tuple[int, ...],
    zero_d_axis: bool = True,
) -> tuple[int, ...]:
    """Sorted non-negative axes; None means every axis.

    NumPy's ufunc reductions (sum, max, argmax) and squeeze take a bare int axis 0 or -1 of a
    0-d array (reducing nothing); a tuple naming it is out of bounds, and functions that
    normalize the axis themselves (mean, var, std, swapaxes) refuse it: they pass
    ``zero_d_axis=False``.
    """
    require_static(axis)
    if axis is None:
        return tuple(range(ndim))
    bare = isinstance(axis, (int, np.integer)) and not isinstance(axis, (bool, np.bool_))
    if ndim == 0 and bare and zero_d_axis and axis in (0, -1):
        return ()
    if isinstance(axis, (int, np.integer)):
        items: tuple[Any, ...] = (axis,)
    elif isinstance(axis, (tuple, list)):
        items = tuple(axis)
    else:
        raise ShapeError(
            located(f"{op_name}: axis must be an int or a tuple of ints, got {axis!r}")
        )
    result = []
    for item in items:
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer)):
            raise ShapeError(located(f"{op_name}: axis must be an int, got {item!r}"))
        if not -ndim <= item < ndim:
            raise ShapeError(
                located(f"{op_name}: axis {item} is out of bounds for an array of shape {shape}")
            )
        result.append(int(item) % ndim)
    if len(set(result)) != len(result):
        raise ShapeError(located(f"{op_name}: repeated axis in {axis!r}"))
    return tuple(sorted(result))


def reduce(op: ReduceOp, x: Array, axis: Any, keepdims: bool, dtype: np.dtype) -> Array:
    """Reduce ``x`` over ``axis``; the body is cast to ``dtype`` (arg reductions: int64 out)."""
    name = op.value
    axes = normalize_axes(axis, x.ndim, name, x.shape)
    empty = any(x.shape[a] == 0 for a in axes) or (x.ndim == 0 and x.size == 0)
    if empty and op in (ReduceOp.MAX, ReduceOp.MIN, ReduceOp.ARGMAX, ReduceOp.ARGMIN):
        raise ShapeError(
            located(f"{name}: zero-size reduction over shape {x.shape} has no identity")
        )
    if not axes:
        # Reducing over no axes (axis=() or a 0-d array) reduces nothing: each element is
        # its own result, and the position of an element among one is 0.
        if op in (ReduceOp.ARGMAX, ReduceOp.ARGMIN):
            return expand(constant(0, np.int64), x.shape)
        return cast(x, dtype)
    if op in (ReduceOp.ARGMAX, ReduceOp.ARGMIN):
        body, out_dtype = x, np.dtype(np.int64)
    else:
        body, out_dtype = cast(x, dtype), np.dtype(dtype)
    shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape) if keepdims or i not in axes)
    return Array(GraphOp.REDUCE, (body,), shape, out_dtype, Reduction(op, axes, bool(keepdims)))


def contract(operands: Sequence[Array], spec: Contraction, dtype: np.dtype) -> Array:
    """An einsum over operands already checked against ``spec`` (see ``einsum.py``)."""
    sizes: dict[str, int] = {}
    for operand, letters in zip(operands, spec.inputs):
        for letter, extent in zip(letters, operand.shape):
            if extent != 1 or letter not in sizes:
                sizes[letter] = extent if sizes.get(letter, 1) == 1 else sizes[letter]
    shape = tuple(sizes[letter] for letter in spec.output)
    cast_operands = tuple(cast(op, dtype) for op in operands)
    return Array(GraphOp.CONTRACT, cast_operands, shape, np.dtype(dtype), spec)


def permute(x: Array, perm: Sequence[int]) -> Array:
    perm = tuple(int(p) for p in perm)
    if sorted(perm) != list(range(x.ndim)):
        raise ShapeError(located(f"transpose: axes {perm} do not match shape {x.shape}"))
    if perm == tuple(range(x.ndim)):
        return x
    shape = tuple(x.shape[p] for p in perm)
    return Array(GraphOp.PERMUTE, (x,), shape, x.dtype, perm)


def reshape(x: Array, shape: Sequence[int] | int) -> Array:
    require_static(shape)
    items = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if sum(1 for d in items if d == -1) > 1 or any(d < -1 for d in items):
        raise ShapeError(located(f"reshape: invalid new shape {items} for shape {x.shape}"))
    known = math.prod(d for d in items if d != -1)
    if -1 in items:
        if known == 0 or x.size % known:
            raise ShapeError(located(f"reshape: cannot reshape {x.shape} into {items}"))
        items = tuple(x.size // known if d == -1 else d for d in items)
    new_shape = tuple(int(d) for d in items)
    if math.prod(new_shape) != x.size:
        raise ShapeError(located(f"reshape: cannot reshape {x.shape} into {new_shape}"))
    if new_shape == x.shape:
        return x
    return Array(GraphOp.RESHAPE, (x,), new_shape, x.dtype)


def slice_axes(
    x: Array, starts: Sequence[int], steps: Sequence[int], counts: Sequence[int]
) -> Array:
    if all(s == 0 for s in starts) and all(s == 1 for s in steps) and tuple(counts) == x.shape:
        return x
    arg = tuple(zip((int(s) for s in starts), (int(s) for s in steps)))
    return Array(GraphOp.SLICE, (x,), tuple(int(c) for c in counts), x.dtype, arg)


def iota(shape: tuple[int, ...], axis: int) -> Array:
    """The int64 array of ``shape`` whose elements are their index along ``axis``."""
    return Array(GraphOp.IOTA, (), tuple(int(d) for d in shape), np.dtype(np.int64), int(axis))


def constant_array(values: np.ndarray) -> Array:
    """A node whose value is the constant int64 array ``values`` (an index written in the
    function's code): an arithmetic progression is ``start + step * position``; any other is
    a balanced tree of selects on the position, ``log2(size)`` compares deep."""
    values = np.asarray(values, dtype=np.int64)
    flat = values.ravel()
    int64 = np.dtype(np.int64)
    position = iota((flat.size,), 0)
    if flat.size <= 1 or np.all(np.diff(flat) == flat[1] - flat[0]):
        start = constant(int(flat[0]) if flat.size else 0, int64)
        step = int(flat[1] - flat[0]) if flat.size > 1 else 0
        scaled = binary(BinaryOp.MUL, position, constant(step, int64), int64, int64, "index")
        node = binary(BinaryOp.ADD, scaled, start, int64, int64, "index")
    else:

        def tree(low: int, high: int) -> Array:
            if high - low == 1:
                return expand(constant(int(flat[low]), int64), (flat.size,))
            middle = (low + high) // 2
            below = binary(
                BinaryOp.LT, position, constant(middle, int64), int64, np.dtype(bool), "index"
            )
            return where(below, tree(low, middle), tree(middle, high), int64)

        node = tree(0, flat.size)
    return reshape(node, values.shape)


def update(base: Array, value: Array, starts: Sequence[int], steps: Sequence[int]) -> Array:
    """``base`` with ``value[k]`` stored at ``base[starts + steps * k]`` per axis: the new
    value of an array after an assignment to part of it. ``value`` has ``base``'s dtype and
    one axis per axis of ``base`` (the counts of the region)."""
    assert value.ndim == base.ndim and value.dtype == base.dtype
    arg = tuple(zip((int(s) for s in starts), (int(s) for s in steps)))
    return Array(GraphOp.UPDATE, (base, value), base.shape, base.dtype, arg)


class WeakInput:
    """A kernel argument that was a Python scalar: promotes 'weakly', like the scalar would."""

    __slots__ = ("node", "kind")

    def __init__(self, node: Array, kind: type) -> None:
        self.node = node
        self.kind = kind


def result_dtype(fn: Any, *operands: Any) -> np.dtype:
    """NumPy's result dtype of ``fn`` on operands given as Arrays, dtypes or Python scalars."""
    kinds = []
    for op in operands:
        if isinstance(op, WeakInput):
            kinds.append(dtypes.WeakScalar(op.kind))
        elif isinstance(op, Array):
            kinds.append(op.dtype)
        elif isinstance(op, (bool, int, float)):
            kinds.append(dtypes.WeakScalar(type(op)))
        else:
            kinds.append(np.dtype(op))
    return dtypes.result_dtype(fn, *kinds)
