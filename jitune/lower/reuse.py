"""Compute values once: identical stages merged, and a reduction's costly summand stored for
the later stage that needs it again.

Identical stages come from NumPy's own compositions: ``x.var()`` computes its own mean, so
layernorm written with ``x.mean()`` and ``x.var()`` sums every row twice. A temporary stage
equal to an earlier one (same axes, body, reduction and epilogue) is dropped and its readers
load the earlier buffer.


Softmax is the case in point::

    t1[i0, 0] = sum_r0 exp(x[i0, r0] - t0[i0, 0])
    out[i0, i1] = exp(x[i0, i1] - t0[i0, 0]) / t1[i0, 0]

evaluates every ``exp`` twice. When a later elementwise stage contains the summand (with its
own axes in place of the reduction's), the summand is stored into that stage's output first
and both stages read it from there::

    out[i0, i1] = exp(x[i0, i1] - t0[i0, 0])
    t1[i0, 0] = sum_r0 out[i0, r0]
    out[i0, i1] = out[i0, i1] / t1[i0, 0]

The three stages read one another's rows, so the schedule runs them in one row loop and the
row stays in L1 between them: memory traffic is unchanged and the transcendental work halves.
Only summands that contain a transcendental are moved; recomputing an add is cheaper than a
store and a load.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator

from ..ir.compute import ComputeProgram, Stage, StageKind
from ..ir.expr import Expr, ExprOp, free_vars, iconst, load, nodes, substitute, transform, var
from ..ir.ops import ARG_REDUCTIONS, UnaryOp

_COSTLY = frozenset(
    {
        UnaryOp.EXP,
        UnaryOp.EXPM1,
        UnaryOp.LOG,
        UnaryOp.LOG1P,
        UnaryOp.TANH,
        UnaryOp.SIN,
        UnaryOp.COS,
    }
)


def _costly(expr: Expr) -> bool:
    return any(node.op is ExprOp.UNARY and node.arg in _COSTLY for node in nodes(expr))


def _placements(reduction: Stage, consumer: Stage) -> Iterator[dict[str, Expr]]:
    """Ways to rename the reduction's loop variables (output and summed axes of extent > 1)
    to distinct axes of ``consumer`` with the same extents."""
    used = free_vars(reduction.body)
    own = [a for a in reduction.axes + reduction.reduce_axes if a.name in used]
    if any(a.extent == 1 for a in own):
        return
    for chosen in itertools.permutations(consumer.axes, len(own)):
        if all(mine.extent == theirs.extent for mine, theirs in zip(own, chosen)):
            yield {mine.name: var(theirs.name) for mine, theirs in zip(own, chosen)}


def _contains(expr: Expr, part: Expr) -> bool:
    return any(node == part for node in nodes(expr))


def _replace(expr: Expr, part: Expr, by: Expr) -> Expr:
    return transform(expr, lambda node: by if node == part else None)


def _share(reduction: Stage, consumer: Stage) -> tuple[Stage, Stage, Stage] | None:
    """(summand stage, reduction reading it, consumer reading it), or None if the consumer
    does not contain the reduction's summand."""
    if consumer.dtype != reduction.body.dtype:
        return None
    for renaming in _placements(reduction, consumer):
        summand = substitute(reduction.body, renaming)
        if not _contains(consumer.body, summand):
            continue
        placed = {expr.arg: name for name, expr in renaming.items()}  # consumer axis -> ours
        stored = load(
            consumer.out,
            tuple(var(placed[a.name]) if a.name in placed else iconst(0) for a in consumer.axes),
            summand.dtype,
        )
        own_element = load(consumer.out, tuple(var(a.name) for a in consumer.axes), summand.dtype)
        first = Stage(consumer.out, consumer.dtype, consumer.axes, summand)
        reads = Stage(
            reduction.out,
            reduction.dtype,
            reduction.axes,
            stored,
            reduction.reduce_axes,
            reduction.reduce_op,
            reduction.epilogue,
        )
        rest = _replace(consumer.body, summand, own_element)
        return first, reads, Stage(consumer.out, consumer.dtype, consumer.axes, rest)
    return None


def merge_duplicates(program: ComputeProgram) -> ComputeProgram:
    """``program`` without temporary stages that repeat an earlier stage."""
    # a buffer an update stores into has another value after that store, so a later stage
    # cannot stand for an earlier one that computed it, nor a store into a view be repeated
    mutated = {d.view_of for d in program.buffers if d.view_of is not None}
    views = {d.name for d in program.buffers if d.view_of is not None}
    temps = {d.name for d in program.buffers if d.role == "temp"} - mutated
    first_of: dict[tuple[object, ...], str] = {}
    renamed: dict[str, str] = {}
    stages: list[Stage] = []
    for stage in program.stages:
        if renamed:
            stage = _rename_loads(stage, renamed)
        key = (
            stage.dtype,
            tuple(a.extent for a in stage.axes),
            stage.body,
            tuple(a.extent for a in stage.reduce_axes),
            stage.reduce_op,
            stage.epilogue,
            tuple(a.name for a in stage.axes + stage.reduce_axes),
        )
        earlier = first_of.get(key)
        if earlier is not None and stage.out in temps:
            renamed[stage.out] = earlier
            continue
        if stage.out not in mutated and stage.out not in views:
            first_of.setdefault(key, stage.out)
        stages.append(stage)
    buffers = tuple(d for d in program.buffers if d.name not in renamed)
    return ComputeProgram(buffers, tuple(stages), program.outputs)


def _rename_loads(stage: Stage, renamed: dict[str, str]) -> Stage:
    def rename(node: Expr) -> Expr | None:
        if node.op is ExprOp.LOAD and node.arg in renamed:
            return load(renamed[node.arg], node.src, node.dtype)
        return None

    body = transform(stage.body, rename)
    epilogue = None if stage.epilogue is None else transform(stage.epilogue, rename)
    return dataclasses.replace(stage, body=body, epilogue=epilogue)


def share_summands(program: ComputeProgram) -> ComputeProgram:
    """``program`` with costly reduction summands stored once where a later stage needs them.

    Not into a view: the summand would be stored at the reduction's place in the program,
    before stages that still read the memory the view shares with another buffer."""
    views = {d.name for d in program.buffers if d.view_of is not None}
    stages = list(program.stages)
    position = 0
    while position < len(stages):
        reduction = stages[position]
        if (
            reduction.kind is StageKind.REDUCTION
            and reduction.reduce_op not in ARG_REDUCTIONS
            and _costly(reduction.body)
        ):
            for later in range(position + 1, len(stages)):
                consumer = stages[later]
                if consumer.reduce_op is not None or consumer.out in views:
                    continue
                shared = _share(reduction, consumer)
                if shared is None:
                    continue
                first, reads, rest = shared
                stages[later] = rest
                stages[position : position + 1] = [first, reads]
                position += 1
                break
        position += 1
    return ComputeProgram(program.buffers, tuple(stages), program.outputs)
