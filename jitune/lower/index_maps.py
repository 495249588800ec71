"""How each view op maps an output index to its operand's index."""

from __future__ import annotations

from ..ir.compute import contiguous_strides
from ..ir.expr import Expr, iconst, index_add, index_div, index_mod, index_mul
from ..ir.graph import Array, GraphOp


def operand_indices(node: Array, indices: tuple[Expr, ...]) -> tuple[Expr, ...]:
    """Index into ``node.src[0]`` that element ``indices`` of the view ``node`` reads."""
    source = node.src[0]
    if node.op is GraphOp.PERMUTE:
        result: list[Expr] = [iconst(0)] * source.ndim
        for out_axis, in_axis in enumerate(node.arg):
            result[in_axis] = indices[out_axis]
        return tuple(result)
    if node.op is GraphOp.EXPAND:
        offset = node.ndim - source.ndim
        return tuple(
            iconst(0) if extent == 1 else indices[offset + d]
            for d, extent in enumerate(source.shape)
        )
    if node.op is GraphOp.SLICE:
        return tuple(
            index_add(start, index_mul(index, step))
            for (start, step), index in zip(node.arg, indices)
        )
    if node.op is GraphOp.RESHAPE:
        return reshape_indices(source.shape, node.shape, indices)
    raise ValueError(f"not a view: {node.op}")


def _groups(a: list[int], b: list[int]) -> list[tuple[list[int], list[int]]]:
    """Split two dim lists (no 1s) with equal products into runs of equal partial products."""
    groups = []
    i = j = 0
    while i < len(a) or j < len(b):
        ga, gb = [i], [j]
        pa, pb = a[i], b[j]
        i, j = i + 1, j + 1
        while pa != pb:
            if pa < pb:
                ga.append(i)
                pa *= a[i]
                i += 1
            else:
                gb.append(j)
                pb *= b[j]
                j += 1
        groups.append((ga, gb))
    return groups


def reshape_indices(
    in_shape: tuple[int, ...], out_shape: tuple[int, ...], indices: tuple[Expr, ...]
) -> tuple[Expr, ...]:
    """Input index of a C-order reshape. Merged axes stay affine; split axes use div/mod."""
    result: list[Expr] = [iconst(0)] * len(in_shape)
    if 0 in in_shape:
        return tuple(result)
    out_axes = [k for k, d in enumerate(out_shape) if d != 1]
    in_axes = [k for k, d in enumerate(in_shape) if d != 1]
    groups = _groups([out_shape[k] for k in out_axes], [in_shape[k] for k in in_axes])
    for out_group, in_group in groups:
        outs = [out_axes[g] for g in out_group]
        ins = [in_axes[g] for g in in_group]
        strides = contiguous_strides(tuple(out_shape[k] for k in outs))
        flat = iconst(0)
        for k, stride in zip(outs, strides):
            flat = index_add(flat, index_mul(indices[k], stride))
        if len(ins) == 1:
            result[ins[0]] = flat
            continue
        in_strides = contiguous_strides(tuple(in_shape[k] for k in ins))
        for position, (k, stride) in enumerate(zip(ins, in_strides)):
            value = index_div(flat, stride)
            result[k] = value if position == 0 else index_mod(value, in_shape[k])
    return tuple(result)
