"""Packing: copy a contraction operand that is strided along the vector axis into a layout
where that axis is contiguous, so the register tile reads it with vector loads.

``einsum("bhqd,bhkd->bhqk", q, k)`` vectorizes over ``k``, along which ``k`` has stride ``d``:
without packing every vector load is a gather. One transposing copy (a pass over ``k``) is far
cheaper than gathers repeated for every row of ``q``.
"""

from __future__ import annotations

import dataclasses

from ..ir.compute import Axis, BufferDecl, ComputeProgram, Stage, StageKind, contiguous_strides
from ..ir.expr import (
    Expr,
    ExprOp,
    coefficient,
    is_const,
    linear_index,
    load,
    loads,
    substitute,
    transform,
    var,
)


def _packable(node: Expr) -> list[str] | None:
    """The variables indexing ``node`` if each index is a distinct variable (or 0)."""
    names = []
    for index in node.src:
        if index.op is ExprOp.VAR:
            names.append(index.arg)
        elif not is_const(index, 0):
            return None
    return names if len(set(names)) == len(names) else None


def pack_strided_operands(program: ComputeProgram) -> ComputeProgram:
    """``program`` with copies inserted before contractions that would read strided vectors."""
    buffers = {decl.name: decl for decl in program.buffers}
    new_buffers = list(program.buffers)
    stages: list[Stage] = []
    for stage in program.stages:
        active = [a for a in stage.axes if a.extent != 1]
        if stage.kind is not StageKind.CONTRACTION or not active:
            stages.append(stage)
            continue
        vector_axis = active[-1].name
        extents = {a.name: a.extent for a in stage.axes + stage.reduce_axes}
        replacements: dict[Expr, Expr] = {}
        for node in loads(stage.body):
            decl = buffers[node.arg]
            step = coefficient(linear_index(node.src, decl.strides), vector_axis)
            names = _packable(node)
            if step in (0, 1, None) or names is None or vector_axis not in names:
                continue
            order = [name for name in names if name != vector_axis] + [vector_axis]
            shape = tuple(extents[name] for name in order)
            packed = f"p{len(new_buffers)}"
            new_buffers.append(
                BufferDecl(packed, shape, node.dtype, contiguous_strides(shape), "temp")
            )
            axes = tuple(Axis(f"i{k}", extents[name]) for k, name in enumerate(order))
            renamed = {name: var(f"i{k}") for k, name in enumerate(order)}
            stages.append(Stage(packed, node.dtype, axes, substitute(node, renamed)))
            replacements[node] = load(packed, tuple(var(name) for name in order), node.dtype)
        if replacements:
            body = transform(stage.body, replacements.get)
            stage = dataclasses.replace(stage, body=body)
        stages.append(stage)
    return dataclasses.replace(program, buffers=tuple(new_buffers), stages=tuple(stages))
