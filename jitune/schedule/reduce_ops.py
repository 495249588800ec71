"""Initial values and combine steps of reductions, as expressions."""

from __future__ import annotations

import numpy as np

from ..ir.expr import Expr, binary, const
from ..ir.ops import BinaryOp, ReduceOp


def identity(op: ReduceOp, dtype: np.dtype) -> Expr:
    """The value a reduction starts from."""
    dtype = np.dtype(dtype)
    if op is ReduceOp.SUM:
        return const(0, dtype)
    if op is ReduceOp.PROD:
        return const(1, dtype)
    if dtype.kind == "b":
        return const(op in (ReduceOp.MIN, ReduceOp.ARGMIN), dtype)
    if dtype.kind == "f":
        return const(-np.inf if op in (ReduceOp.MAX, ReduceOp.ARGMAX) else np.inf, dtype)
    info = np.iinfo(dtype)
    return const(info.min if op in (ReduceOp.MAX, ReduceOp.ARGMAX) else info.max, dtype)


_COMBINE = {
    ReduceOp.SUM: BinaryOp.ADD,
    ReduceOp.PROD: BinaryOp.MUL,
    ReduceOp.MAX: BinaryOp.MAX,
    ReduceOp.MIN: BinaryOp.MIN,
}


def combine(op: ReduceOp, acc: Expr, value: Expr) -> Expr:
    """``acc (op) value`` for SUM/PROD/MAX/MIN (on bools: or, and, or, and)."""
    binop = _COMBINE[op]
    if acc.dtype.kind == "b":
        binop = BinaryOp.OR if op in (ReduceOp.SUM, ReduceOp.MAX) else BinaryOp.AND
    return binary(binop, acc, value, acc.dtype)
