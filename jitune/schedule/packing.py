"""Packing: copy the operand of a contraction that the register tile reads as vectors into
micro-panels, so the tile reads it contiguously whatever its original layout.

For ``C[i, j] = sum_k A[i, k] * B[k, j]`` with ``nr`` columns per tile, the packed buffer is
``P[jt, k, jj] = B[k, jt * nr + jj]`` for the ``N // nr`` full column panels: one tile's
operand is then ``kc x nr`` consecutive elements, instead of ``nr``-wide rows ``N`` apart (which
alias in the cache when N is a power of two, and need gathers when B is transposed, as in
``einsum("bhqd,bhkd->bhqk")``). Batch indices of the operand stay leading axes of the panel
buffer. Tail tiles (the last ``N % nr`` columns) read the original operand.
"""

from __future__ import annotations

import dataclasses

from ..ir.compute import Axis, BufferDecl, Stage, contiguous_strides
from ..ir.expr import Expr, ExprOp, index_add, index_mul, is_const, load, loads, substitute, var


@dataclasses.dataclass(frozen=True)
class PackedOperand:
    """Where the fast path of a tile finds one operand: ``buffer[batch..., vt, reduce..., jj]``."""

    source: Expr  # the operand's load in the stage body
    buffer: str
    batch: tuple[str, ...]  # variables of the operand that stay leading axes
    reduce: tuple[str, ...]  # summed variables of the operand, in its index order

    def index(self, tile: Expr, column: Expr) -> tuple[Expr, ...]:
        """The packed index of column ``column`` of column tile ``tile`` (other indices are
        the stage's own variables, substituted later like the rest of the body)."""
        batch = tuple(var(name) for name in self.batch)
        reduce = tuple(var(name) for name in self.reduce)
        return batch + (tile,) + reduce + (column,)


def _operand_vars(node: Expr) -> list[str] | None:
    names = []
    for index in node.src:
        if index.op is ExprOp.VAR:
            names.append(index.arg)
        elif not is_const(index, 0):
            return None
    return names if len(set(names)) == len(names) else None


def plan_packing(
    stage: Stage, vector_axis: str, row_axis: str | None, nr: int, name: str
) -> tuple[list[Stage], list[BufferDecl], list[PackedOperand]]:
    """Pack stages, their buffers, and where the tile finds each packed operand.

    Returns empty lists when no operand qualifies (no full column panel, or no operand indexed
    by plain variables that include the vector axis and a summed axis but not the row axis).
    """
    extents = {a.name: a.extent for a in stage.axes + stage.reduce_axes}
    panels = extents[vector_axis] // nr
    summed = {a.name for a in stage.reduce_axes}
    stages, buffers, packed = [], [], []
    if panels == 0:
        return [], [], []
    for position, node in enumerate(loads(stage.body)):
        names = _operand_vars(node)
        if names is None or vector_axis not in names or not summed & set(names):
            continue
        if row_axis is not None and row_axis in names:
            continue
        batch = tuple(n for n in names if n != vector_axis and n not in summed)
        reduce = tuple(n for n in names if n in summed)
        order = list(batch) + ["%tile"] + list(reduce) + ["%lane"]
        shape = tuple(panels if n == "%tile" else nr if n == "%lane" else extents[n] for n in order)
        buffer = f"{name}_{position}"
        axes = tuple(Axis(f"i{k}", extent) for k, extent in enumerate(shape))
        renamed = {n: var(f"i{order.index(n)}") for n in batch + reduce}
        renamed[vector_axis] = index_add(
            index_mul(var(f"i{order.index('%tile')}"), nr), var(f"i{len(order) - 1}")
        )
        stages.append(Stage(buffer, node.dtype, axes, substitute(node, renamed)))
        buffers.append(BufferDecl(buffer, shape, node.dtype, contiguous_strides(shape), "temp"))
        packed.append(PackedOperand(node, buffer, batch, reduce))
    return stages, buffers, packed


def packed_body(
    body: Expr,
    packed: list[PackedOperand],
    tile_index: dict[str, Expr],
    tile: Expr,
    column: Expr,
) -> Expr:
    """``body`` at ``tile_index`` with packed operands read from their panels."""
    from ..ir.expr import transform

    replacements = {p.source: load(p.buffer, p.index(tile, column), p.source.dtype) for p in packed}
    with_panels = transform(body, replacements.get)
    return substitute(with_panels, tile_index)
