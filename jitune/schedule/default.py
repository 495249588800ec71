"""The default (untuned) CPU schedule: compute IR -> loop IR.

Each stage becomes a loop nest in one of three forms:

- output-vectorized: the innermost output axis runs in SIMD lanes (``W`` per vector, ``nv``
  vectors per tile); contractions also tile ``mr`` rows of the next axis, so a register tile of
  ``mr x nr`` accumulators is updated once per step of the summed axes (the BLIS micro-kernel
  shape). Elementwise stages are this form without accumulators.
- reduce-vectorized: for reductions along a contiguous axis (row sums, softmax denominators),
  the summed axis runs in lanes with ``nv`` vector accumulators, combined at the end.
- scalar: argmax/argmin, and anything too small to vectorize.

Tiles that do not divide an extent are handled by an ``If`` whose other branch is the scalar
form. Stages that read each other's rows (softmax, layernorm) share one outer row loop, so a
row is still in cache when the next stage reads it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..ir.compute import ACC, Axis, BufferDecl, ComputeProgram, Stage, StageKind
from ..ir.expr import (
    INDEX,
    Expr,
    binary,
    coefficient,
    iconst,
    index_add,
    index_mul,
    linear_index,
    load,
    loads,
    select,
    substitute,
    unary,
    var,
)
from ..ir.loops import Alloc, For, If, Kernel, LoopKind, LoopProgram, Stmt, Store, block
from ..ir.ops import ARG_REDUCTIONS, BinaryOp, ReduceOp, UnaryOp
from ..runtime.target import Target
from .packing import pack_strided_operands
from .reduce_ops import combine, identity


@dataclasses.dataclass(frozen=True)
class _Context:
    stage: Stage
    buffers: dict[str, BufferDecl]
    target: Target
    fixed: dict[str, Expr]  # axis name -> expression supplied by an enclosing loop

    @property
    def lanes(self) -> int:
        sizes = [self.stage.dtype.itemsize, self.stage.body.dtype.itemsize]
        sizes += [node.dtype.itemsize for node in loads(self.stage.body)]
        return self.target.lanes(max(sizes))


def _index_min(a: Expr, b: Expr) -> Expr:
    if a.op.value == "const" and b.op.value == "const":
        return iconst(min(a.arg, b.arg))
    return binary(BinaryOp.MIN, a, b, INDEX)


def _loop(
    name: str, stop: Expr | int, body: Stmt, kind: LoopKind = LoopKind.SERIAL, start: Expr | int = 0
) -> Stmt:
    start_expr = iconst(start) if isinstance(start, int) else start
    stop_expr = iconst(stop) if isinstance(stop, int) else stop
    return For(name, start_expr, stop_expr, kind, body)


def _nest(axes: list[Axis], body: Stmt) -> Stmt:
    for axis in reversed(axes):
        body = _loop(axis.name, axis.extent, body)
    return body


def _contiguity(ctx: _Context, name: str) -> int:
    """How many loads of the stage read consecutive elements as ``name`` increments."""
    count = 0
    for node in loads(ctx.stage.body):
        decl = ctx.buffers.get(node.arg)
        if decl is None or not node.src:
            continue
        flat = linear_index(node.src, decl.strides)
        if coefficient(flat, name) == 1:
            count += 1
    return count


def _store_value(ctx: _Context, acc: Expr) -> Expr:
    """The value stored for one output element, from its reduced value ``acc``."""
    stage = ctx.stage
    if stage.epilogue is None:
        return acc
    return substitute(stage.epilogue, {ACC: acc})


def _element(ctx: _Context, out_index: dict[str, Expr], tag: str) -> Stmt:
    """Scalar code computing one output element at ``out_index``."""
    stage = ctx.stage
    names = {**out_index}
    out_indices = tuple(names[a.name] for a in stage.axes)
    if stage.reduce_op is None:
        value = substitute(stage.body, names)
        return Store(stage.out, out_indices, _store_value(ctx, value))
    acc = f"acc_{tag}"
    acc_load = load(acc, (iconst(0),), stage.acc_dtype)
    body = substitute(stage.body, names)
    if stage.reduce_op in ARG_REDUCTIONS:
        update, extra = _arg_update(ctx, acc, body)
    else:
        update = Store(acc, (iconst(0),), combine(stage.reduce_op, acc_load, body))
        extra = None
    return block(
        Alloc(acc, stage.acc_dtype, 1),
        extra,
        Store(acc, (iconst(0),), identity(stage.reduce_op, stage.acc_dtype))
        if extra is None
        else None,
        _nest(list(stage.reduce_axes), update),
        Store(stage.out, out_indices, substitute(_store_value(ctx, acc_load), names)),
    )


def _arg_update(ctx: _Context, acc: str, value: Expr) -> tuple[Stmt, Stmt]:
    """Update of argmax/argmin: best value in ``acc_best``, its flat position in ``acc``."""
    stage = ctx.stage
    best = f"{acc}_best"
    best_load = load(best, (iconst(0),), value.dtype)
    is_max = stage.reduce_op is ReduceOp.ARGMAX
    take = binary(BinaryOp.GT if is_max else BinaryOp.LT, value, best_load, np.dtype(bool))
    if value.dtype.kind == "f":  # NumPy returns the first NaN
        nan_first = binary(
            BinaryOp.AND,
            unary(UnaryOp.ISNAN, value, np.dtype(bool)),
            unary(UnaryOp.NOT, unary(UnaryOp.ISNAN, best_load, np.dtype(bool))),
            np.dtype(bool),
        )
        take = binary(BinaryOp.OR, take, nan_first, np.dtype(bool))
    extents = tuple(a.extent for a in stage.reduce_axes)
    strides = tuple(int(np.prod(extents[k + 1 :], dtype=np.int64)) for k in range(len(extents)))
    position = linear_index(tuple(var(a.name) for a in stage.reduce_axes), strides)
    update = block(
        Store(acc, (iconst(0),), select(take, position, load(acc, (iconst(0),), INDEX))),
        Store(best, (iconst(0),), select(take, value, best_load)),
    )
    init = block(
        Alloc(best, value.dtype, 1),
        Store(best, (iconst(0),), identity(stage.reduce_op, value.dtype)),
        Store(acc, (iconst(0),), iconst(0)),
    )
    return update, init


def _row_tile(extent: int, preferred: int) -> int:
    """Rows per register tile: a divisor of ``extent`` near ``preferred`` avoids a scalar tail."""
    for rows in (preferred, 6, 8, 4, 5, 3):
        if extent % rows == 0:
            return rows
    return preferred


def _output_vectorized(ctx: _Context, active: list[Axis], base: dict[str, Expr]) -> Stmt:
    """Register-tiled form: lanes over the last active axis, ``mr`` rows of the one before."""
    stage = ctx.stage
    lanes = ctx.lanes
    v_axis = active[-1]
    contraction = stage.kind is StageKind.CONTRACTION and len(active) >= 2
    nv = 2 if contraction and v_axis.extent >= 2 * lanes else 1
    # 32 vector registers (AVX-512) hold an 8 x 2-vector tile; 16 (AVX2) hold 6 x 2
    preferred = 8 if ctx.target.vector_bytes >= 64 else 6 if ctx.target.vector_bytes >= 32 else 4
    mr = _row_tile(active[-2].extent, preferred) if contraction else 1
    if v_axis.extent < lanes:
        lanes, nv = 1, 1
    u_axis = active[-2] if contraction and active[-2].extent >= mr else None
    if u_axis is None:
        mr = 1
    nr = lanes * nv
    outer = [a for a in active if a is not v_axis and a is not u_axis]
    vt, ut = f"{v_axis.name}_t", (f"{u_axis.name}_t" if u_axis else "")

    def element_index(r: Expr, c: Expr) -> dict[str, Expr]:
        index = dict(base)
        index[v_axis.name] = index_add(index_mul(var(vt), nr), c)
        if u_axis is not None:
            index[u_axis.name] = index_add(index_mul(var(ut), mr), r)
        return index

    r, c, lane = var("r_"), var("c_"), var("l_")
    column = index_add(index_mul(c, lanes), lane)
    tile_index = element_index(r, column)

    def over_tile(stmt: Stmt) -> Stmt:
        inner = _loop("l_", lanes, stmt, LoopKind.VECTORIZED)
        return _loop("r_", mr, _loop("c_", nv, inner, LoopKind.UNROLLED), LoopKind.UNROLLED)

    out_indices = tuple(tile_index[a.name] for a in stage.axes)
    if stage.reduce_op is None:
        fast = over_tile(
            Store(stage.out, out_indices, _store_value(ctx, substitute(stage.body, tile_index)))
        )
    else:
        slot = (index_add(index_add(index_mul(r, nr), index_mul(c, lanes)), lane),)
        acc_load = load("acc", slot, stage.acc_dtype)
        body = substitute(stage.body, tile_index)
        fast = block(
            Alloc("acc", stage.acc_dtype, mr * nr),
            over_tile(Store("acc", slot, identity(stage.reduce_op, stage.acc_dtype))),
            _nest(
                list(stage.reduce_axes),
                over_tile(Store("acc", slot, combine(stage.reduce_op, acc_load, body))),
            ),
            over_tile(
                Store(stage.out, out_indices, substitute(_store_value(ctx, acc_load), tile_index))
            ),
        )
    # Tail tiles (extents that are not multiples of the tile) take the scalar path.
    conditions = []
    if v_axis.extent % nr:
        conditions.append(
            binary(
                BinaryOp.LE,
                index_mul(index_add(var(vt), 1), nr),
                iconst(v_axis.extent),
                np.dtype(bool),
            )
        )
    if u_axis is not None and u_axis.extent % mr:
        conditions.append(
            binary(
                BinaryOp.LE,
                index_mul(index_add(var(ut), 1), mr),
                iconst(u_axis.extent),
                np.dtype(bool),
            )
        )
    tile: Stmt = fast
    if conditions:
        cond = (
            conditions[0]
            if len(conditions) == 1
            else binary(BinaryOp.AND, *conditions, np.dtype(bool))
        )
        rows = (
            _index_min(
                iconst(mr),
                binary(BinaryOp.SUB, iconst(u_axis.extent), index_mul(var(ut), mr), INDEX),
            )
            if u_axis
            else iconst(1)
        )
        cols = _index_min(
            iconst(nr), binary(BinaryOp.SUB, iconst(v_axis.extent), index_mul(var(vt), nr), INDEX)
        )
        scalar = _loop("r_", rows, _loop("c_", cols, _element(ctx, element_index(r, c), "tail")))
        tile = If(cond, fast, scalar)
    loops = [Axis(ut, -(-u_axis.extent // mr))] if u_axis is not None else []
    loops.append(Axis(vt, -(-v_axis.extent // nr)))
    return _nest(outer + loops, tile)


def _reduce_vectorized(ctx: _Context, active: list[Axis], base: dict[str, Expr]) -> Stmt:
    """Lanes over the last summed axis, ``nv`` vector accumulators, then a horizontal combine."""
    stage = ctx.stage
    lanes = ctx.lanes
    k_axis = stage.reduce_axes[-1]
    nv = 4 if k_axis.extent >= 4 * lanes else 1
    step = lanes * nv
    main = k_axis.extent // step * step
    others = list(stage.reduce_axes[:-1])
    op = stage.reduce_op
    assert op is not None
    slot = (index_add(index_mul(var("c_"), lanes), var("l_")),)
    vec_load = load("vacc", slot, stage.acc_dtype)
    scalar_load = load("acc", (iconst(0),), stage.acc_dtype)
    index = dict(base)
    index[k_axis.name] = index_add(index_mul(var("k_t"), step), slot[0])
    vector_body = substitute(stage.body, index)
    index_tail = dict(base)
    tail_body = substitute(stage.body, index_tail)
    out_indices = tuple(base[a.name] for a in stage.axes)
    lanes_loop = _loop(
        "l_", lanes, Store("vacc", slot, combine(op, vec_load, vector_body)), LoopKind.VECTORIZED
    )
    body = block(
        Alloc("vacc", stage.acc_dtype, step),
        _loop(
            "c_",
            nv,
            _loop(
                "l_", lanes, Store("vacc", slot, identity(op, stage.acc_dtype)), LoopKind.VECTORIZED
            ),
            LoopKind.UNROLLED,
        ),
        _nest(others, _loop("k_t", main // step, _loop("c_", nv, lanes_loop, LoopKind.UNROLLED))),
        Alloc("acc", stage.acc_dtype, 1),
        Store("acc", (iconst(0),), identity(op, stage.acc_dtype)),
        _loop(
            "j_",
            step,
            Store(
                "acc",
                (iconst(0),),
                combine(op, scalar_load, load("vacc", (var("j_"),), stage.acc_dtype)),
            ),
            LoopKind.UNROLLED,
        ),
        _nest(
            others,
            _loop(
                k_axis.name,
                k_axis.extent,
                Store("acc", (iconst(0),), combine(op, scalar_load, tail_body)),
                start=main,
            ),
        )
        if main < k_axis.extent
        else None,
        Store(stage.out, out_indices, substitute(_store_value(ctx, scalar_load), base)),
    )
    return _nest(active, body)


def stage_nest(
    stage: Stage,
    buffers: dict[str, BufferDecl],
    target: Target,
    fixed: dict[str, Expr] | None = None,
) -> Stmt:
    """Loop IR for one stage; axes named in ``fixed`` are bound by an enclosing loop."""
    ctx = _Context(stage, buffers, target, fixed or {})
    base: dict[str, Expr] = dict(ctx.fixed)
    active = []
    for axis in stage.axes:
        if axis.name in base:
            continue
        if axis.extent == 1:
            base[axis.name] = iconst(0)
        else:
            active.append(axis)
            base[axis.name] = var(axis.name)
    if stage.reduce_op in ARG_REDUCTIONS:
        return _nest(active, _element(ctx, base, "s"))
    if stage.reduce_op is not None and stage.kind is not StageKind.CONTRACTION:
        k_axis = stage.reduce_axes[-1]
        v_score = _contiguity(ctx, active[-1].name) if active else -1
        if k_axis.extent >= ctx.lanes and _contiguity(ctx, k_axis.name) > v_score:
            return _reduce_vectorized(ctx, active, base)
    if not active:
        return _element(ctx, base, "s")
    return _output_vectorized(ctx, active, base)


def _groupable(stage: Stage) -> bool:
    return stage.kind is not StageKind.CONTRACTION and bool(stage.axes) and stage.axes[0].extent > 1


def _reads_rows_of(stage: Stage, produced: set[str]) -> bool:
    """True if every load of a buffer in ``produced`` reads row ``axes[0]`` of it."""
    row = var(stage.axes[0].name)
    exprs = [stage.body] + ([stage.epilogue] if stage.epilogue is not None else [])
    found = False
    for expr in exprs:
        for node in loads(expr):
            if node.arg in produced:
                if not node.src or node.src[0] != row:
                    return False
                found = True
    return found


def _groups(stages: tuple[Stage, ...]) -> list[list[Stage]]:
    groups: list[list[Stage]] = []
    for stage in stages:
        current = groups[-1] if groups else None
        if (
            current
            and _groupable(stage)
            and all(_groupable(s) and s.axes[0].extent == stage.axes[0].extent for s in current)
            and _reads_rows_of(stage, {s.out for s in current})
        ):
            current.append(stage)
        else:
            groups.append([stage])
    return groups


def _cost(stage: Stage) -> int:
    """Work estimate used to decide on threads, in units of one elementwise operation.

    A register-tiled contraction retires a multiply-add per SIMD lane per FMA port each
    cycle, about 32 times the rate of elementwise code (measured here: a 192^3 matmul and an
    exp over 2^18 elements both take ~100 us on one core), so its terms count 1/32.
    """
    if stage.kind is StageKind.CONTRACTION:
        return stage.work() // 32
    return stage.work()


def _kernel(
    name: str, group: list[Stage], buffers: dict[str, BufferDecl], target: Target, min_work: int
) -> Kernel:
    work = sum(_cost(stage) for stage in group)
    if len(group) == 1:
        body = stage_nest(group[0], buffers, target)
    else:
        rows = group[0].axes[0].extent
        nests = [stage_nest(s, buffers, target, {s.axes[0].name: var("row")}) for s in group]
        body = _loop("row", rows, block(*nests))
    outermost_splits = (
        isinstance(body, For)
        and body.start == iconst(0)
        and body.stop.op.value == "const"
        and body.stop.arg >= 2
    )
    parallel = outermost_splits and work >= min_work
    if parallel:
        body = dataclasses.replace(body, kind=LoopKind.PARALLEL)
    return Kernel(name, body, parallel, work)


def schedule(
    program: ComputeProgram, target: Target, min_parallel_work: int = 1 << 17
) -> LoopProgram:
    """The default loop IR for ``program`` on ``target``.

    Kernels whose estimated work is below ``min_parallel_work`` run on one thread.
    """
    program = pack_strided_operands(program)
    buffers = {decl.name: decl for decl in program.buffers}
    kernels = tuple(
        _kernel(f"k{n}", group, buffers, target, min_parallel_work)
        for n, group in enumerate(_groups(program.stages))
    )
    return LoopProgram(program.buffers, kernels, program.outputs)
