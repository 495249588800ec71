"""The default (untuned) CPU schedule: compute IR -> loop IR.

Each stage becomes a loop nest in one of three forms:

- output-vectorized: the innermost output axis runs in SIMD lanes (``W`` per vector, ``nv``
  vectors per tile); contractions also tile ``mr`` rows of the next axis, so a register tile of
  ``mr x nr`` accumulators is updated once per step of the summed axes (the BLIS micro-kernel
  shape). Elementwise stages are this form without accumulators.
- reduce-vectorized: for reductions along a contiguous axis (row sums, softmax denominators),
  the summed axis runs in lanes with ``nv`` vector accumulators, combined at the end.
- scalar: argmax/argmin, and anything too small to vectorize.

Tiles that do not divide an extent are handled by an ``If`` whose other branch is a smaller
tile of the same form: the last ``N % nr`` columns as one vector of that many lanes, the last
``M % mr`` rows as a tile of that many rows (shapes are compile-time constants). Stages that read each other's rows (softmax, layernorm) share one outer row loop, so a
row is still in cache when the next stage reads it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

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
from .packing import PackedOperand, packed_body, plan_packing
from .reduce_ops import combine, identity
from .space import Config, Knob, Space


@dataclasses.dataclass(frozen=True)
class _Context:
    stage: Stage
    buffers: dict[str, BufferDecl]
    target: Target
    fixed: dict[str, Expr]  # axis name -> expression supplied by an enclosing loop
    config: Config
    packed: tuple[PackedOperand, ...] = ()  # operands the tile's fast path reads from panels

    @property
    def lanes(self) -> int:
        return _lanes(self.stage, self.target)


def _lanes(stage: Stage, target: Target) -> int:
    """SIMD lanes for a stage: as many as a register holds of its widest dtype."""
    sizes = [stage.dtype.itemsize, stage.body.dtype.itemsize]
    sizes += [node.dtype.itemsize for node in loads(stage.body)]
    return target.lanes(max(sizes))


def _active(stage: Stage, fixed: dict[str, Expr] | None = None) -> list[Axis]:
    """Output axes that get loops: not bound by an enclosing loop, extent above 1."""
    return [a for a in stage.axes if a.extent != 1 and a.name not in (fixed or {})]


def space(stage: Stage) -> Space:
    """The knobs of ``stage``'s template."""
    if stage.kind is StageKind.CONTRACTION:
        return Space(
            (
                Knob("mr", (1, 2, 3, 4, 5, 6, 8)),
                Knob("nv", (1, 2, 3, 4)),
                Knob("pack", (False, True)),
                Knob("order", ("rows_outer", "cols_outer")),
                Knob("kc", (0, 128, 256, 512)),
                Knob("mc", (0, 128, 256, 512)),
            )
        )
    if stage.reduce_op is not None:
        return Space((Knob("nv", (1, 2, 4, 8)),))
    return Space((Knob("nv", (1, 2, 4)),))


def default_config(stage: Stage, target: Target, buffers: dict[str, BufferDecl]) -> Config:
    """The untuned choice for ``stage``: what the tuner starts from."""
    if stage.kind is not StageKind.CONTRACTION:
        return Config({"nv": 4 if stage.reduce_op is not None else 1})
    active = _active(stage)
    pack = _packing_pays(stage, active, buffers)
    # with packed panels, column tiles outside row tiles keep one K x nr panel in L2 while
    # every row tile uses it (measured: 1024^3 float32, 2 threads, 8x32 tile: 260 GFLOP/s
    # against 150 with row tiles outside)
    order = "cols_outer" if pack else "rows_outer"
    if target.vector_bytes >= 64 and pack:
        # 32 vector registers (AVX-512) hold a 6 x 4-vector tile: 24 FMAs per 4 loads and 6
        # broadcasts, its K x 64 panel stays in L2, and the threads split the column panels
        # between them. Against the 8 x 2 tile in 128-row blocks with k in 512 slices, the
        # previous default, medians of 25 interleaved launches: 1024^3 194 GFLOP/s against
        # 162, 2048^3 214 against 156, 512^3 121 against 108; the tuner had chosen it too.
        preferred, nv, blocked = 6, 4, {"kc": 0, "mc": 0}
    elif target.vector_bytes >= 64:
        preferred, nv, blocked = 8, 2, {"kc": 0, "mc": 0}
    else:
        # 16 registers (AVX2) hold 6 x 2; 128-row blocks with k in 512 slices keep the rows'
        # slice of the row operand in L2 while every column panel passes it
        preferred = 6 if target.vector_bytes >= 32 else 4
        nv, blocked = 2, ({"kc": 512, "mc": 128} if pack else {"kc": 0, "mc": 0})
    mr = _row_tile(active[-2].extent, preferred) if len(active) >= 2 else 1
    return Config({"mr": mr, "nv": nv, "pack": pack, "order": order, **blocked})


def _packing_pays(stage: Stage, active: list[Axis], buffers: dict[str, BufferDecl]) -> bool:
    """Pack when the vector operand is strided along the vector axis (gathers otherwise), or
    when one batch of it exceeds 256 KiB (rows N apart alias in the cache)."""
    if not active:
        return False
    v = active[-1].name
    summed = {a.name: a.extent for a in stage.reduce_axes}
    for node in loads(stage.body):
        names = {i.arg for i in node.src if i.op.value == "var"}
        if v not in names or not names & set(summed):
            continue
        decl = buffers[node.arg]
        if coefficient(linear_index(node.src, decl.strides), v) != 1:
            return True
        panel = active[-1].extent * node.dtype.itemsize
        for name in names & set(summed):
            panel *= summed[name]
        if panel >= 256 * 1024:
            return True
    return False


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
    """Rows per register tile: ``preferred`` for many rows (one tail tile is cheap beside
    them: 1100^3 float32 with 8-row tiles ran at 0.91x NumPy, with 4-row tiles at 0.61x);
    for a few rows, a divisor close below it (6 for 12 rows rather than 8 and a 4-row tail)."""
    if extent >= 4 * preferred:
        return preferred
    for rows in (preferred, *(r for r in (6, 5, 4) if preferred - 2 <= r < preferred)):
        if extent % rows == 0:
            return rows
    return preferred


@dataclasses.dataclass(frozen=True)
class TileShape:
    """The register tile of an output-vectorized stage: ``mr`` rows of ``nv`` vectors."""

    v_axis: Axis  # the axis in SIMD lanes
    u_axis: Axis | None  # the axis tiled by rows (contractions only)
    lanes: int
    nv: int
    mr: int

    @property
    def nr(self) -> int:
        return self.lanes * self.nv


def tile_shape(stage: Stage, active: list[Axis], lanes: int, config: Config) -> TileShape:
    """The tile ``config`` asks for, shrunk to fit the extents (always a valid tile)."""
    v_axis = active[-1]
    contraction = stage.kind is StageKind.CONTRACTION and len(active) >= 2
    nv = max(1, min(config.get("nv", 1), v_axis.extent // lanes))
    if v_axis.extent < lanes:
        lanes, nv = 1, 1
    u_axis = active[-2] if contraction else None
    mr = min(config.get("mr", 1), u_axis.extent) if u_axis is not None else 1
    return TileShape(v_axis, u_axis if mr > 1 else None, lanes, nv, mr)


def _output_vectorized(ctx: _Context, active: list[Axis], base: dict[str, Expr]) -> Stmt:
    """Register-tiled form: lanes over the last active axis, ``mr`` rows of the one before."""
    stage = ctx.stage
    shape = tile_shape(stage, active, ctx.lanes, ctx.config)
    v_axis, u_axis, mr, nr = shape.v_axis, shape.u_axis, shape.mr, shape.nr
    outer = [a for a in active if a is not v_axis and a is not u_axis]
    vt, ut = f"{v_axis.name}_t", (f"{u_axis.name}_t" if u_axis else "")
    full = _tile(ctx, shape, base, mr, shape.lanes, shape.nv, ctx.packed)
    # Tail tiles (the last columns or rows where the tile does not divide an extent) are the
    # same code with smaller constant extents, as shapes are known when compiling: a 1000^3
    # matmul's last 8 columns are an 8-lane tile rather than scalar code that read B a column
    # at a time. They read the original operand, since packed panels hold whole tiles only.
    col_rem = v_axis.extent % nr
    row_rem = u_axis.extent % mr if u_axis is not None else 0

    def whole(tile_var: str, size: int, extent: int) -> Expr:
        end = index_mul(index_add(var(tile_var), 1), size)
        return binary(BinaryOp.LE, end, iconst(extent), np.dtype(bool))

    def last_columns(rows: int) -> Stmt:
        # whole vectors, then one of the remaining lanes: a 40-lane vector (1000 columns in
        # 64-column tiles) is legal LLVM IR but ran at a quarter of the speed of 2 x 16 + 8
        vectors, lanes = divmod(col_rem, shape.lanes)
        return block(
            _tile(ctx, shape, base, rows, shape.lanes, vectors, ()) if vectors else None,
            _tile(ctx, shape, base, rows, lanes, 1, (), vectors * shape.lanes) if lanes else None,
        )

    tile: Stmt = full
    if row_rem:
        rows_tail = _tile(ctx, shape, base, row_rem, shape.lanes, shape.nv, ctx.packed)
        tile = If(whole(ut, mr, u_axis.extent), full, rows_tail)
    if col_rem:
        cols_tail = last_columns(mr)
        if row_rem:
            cols_tail = If(whole(ut, mr, u_axis.extent), cols_tail, last_columns(row_rem))
        tile = If(whole(vt, nr, v_axis.extent), tile, cols_tail)
    loops = [Axis(vt, -(-v_axis.extent // nr))]
    if u_axis is not None:
        rows = Axis(ut, -(-u_axis.extent // mr))
        kc = _k_block(ctx, u_axis) if stage.reduce_op is not None else 0
        if kc:
            k_blocks = Axis("kb", -(-stage.reduce_axes[0].extent // kc))
            loops = loops + [k_blocks, rows]
        elif ctx.config.get("order") == "cols_outer":
            loops = loops + [rows]
        else:
            loops = [rows] + loops
        per_block = ctx.config.get("mc", 0) // mr
        if ctx.config.get("order") == "cols_outer" and 0 < per_block < rows.extent:
            return _nest(outer, _row_blocks(loops, rows, per_block, tile))
    return _nest(outer + loops, tile)


def _tile(
    ctx: _Context,
    shape: TileShape,
    base: dict[str, Expr],
    mr: int,
    lanes: int,
    nv: int,
    packed: tuple[PackedOperand, ...],
    offset: int = 0,
) -> Stmt:
    """One register tile of ``mr`` rows of ``nv`` vectors of ``lanes``, at tile indices
    ``{v}_t`` (and ``{u}_t``) of the full tile ``shape``, ``offset`` columns into it (a tail
    tile is smaller)."""
    stage = ctx.stage
    v_axis, u_axis = shape.v_axis, shape.u_axis
    vt, ut = f"{v_axis.name}_t", (f"{u_axis.name}_t" if u_axis else "")
    nr = lanes * nv
    r, c, lane = var("r_"), var("c_"), var("l_")
    column = index_add(index_mul(c, lanes), lane)
    tile_index = dict(base)
    tile_index[v_axis.name] = index_add(index_mul(var(vt), shape.nr), index_add(column, offset))
    if u_axis is not None:
        tile_index[u_axis.name] = index_add(index_mul(var(ut), shape.mr), r)

    def over_tile(stmt: Stmt) -> Stmt:
        inner = _loop("l_", lanes, stmt, LoopKind.VECTORIZED)
        return _loop("r_", mr, _loop("c_", nv, inner, LoopKind.UNROLLED), LoopKind.UNROLLED)

    out_indices = tuple(tile_index[a.name] for a in stage.axes)
    if stage.reduce_op is None:
        return over_tile(
            Store(stage.out, out_indices, _store_value(ctx, substitute(stage.body, tile_index)))
        )
    slot = (index_add(index_add(index_mul(r, nr), index_mul(c, lanes)), lane),)
    acc_load = load("acc", slot, stage.acc_dtype)
    if packed:
        body = packed_body(stage.body, list(packed), tile_index, var(vt), column)
    else:
        body = substitute(stage.body, tile_index)
    identity_init = over_tile(Store("acc", slot, identity(stage.reduce_op, stage.acc_dtype)))
    accumulate = over_tile(Store("acc", slot, combine(stage.reduce_op, acc_load, body)))
    out_value = substitute(_store_value(ctx, acc_load), tile_index)
    kc = _k_block(ctx, u_axis)
    if not kc:
        return block(
            Alloc("acc", stage.acc_dtype, mr * nr),
            identity_init,
            _nest(list(stage.reduce_axes), accumulate),
            over_tile(Store(stage.out, out_indices, out_value)),
        )
    # k-blocking: the tile sums kc terms per visit; partial sums wait in the output
    (k_axis,) = stage.reduce_axes
    blocks = -(-k_axis.extent // kc)
    first = binary(BinaryOp.EQ, var("kb"), iconst(0), np.dtype(bool))
    last = binary(BinaryOp.EQ, var("kb"), iconst(blocks - 1), np.dtype(bool))
    partial = load(stage.out, out_indices, stage.dtype)
    start = index_mul(var("kb"), kc)
    stop = _index_min(index_add(start, kc), iconst(k_axis.extent))
    return block(
        Alloc("acc", stage.acc_dtype, mr * nr),
        If(first, identity_init, over_tile(Store("acc", slot, partial))),
        _loop(k_axis.name, stop, accumulate, start=start),
        If(
            last,
            over_tile(Store(stage.out, out_indices, out_value)),
            over_tile(Store(stage.out, out_indices, acc_load)),
        ),
    )


def _row_blocks(loops: list[Axis], rows: Axis, per_block: int, tile: Stmt) -> Stmt:
    """``loops`` (column tiles outside row tiles) inside blocks of ``per_block`` row tiles:
    a block's rows of the row operand stay in L2 while every column panel passes them, so
    that operand is read from memory once instead of once per column panel."""
    blocks = Axis("ub", -(-rows.extent // per_block))
    first = index_mul(var("ub"), per_block)
    stop = _index_min(index_add(first, per_block), iconst(rows.extent))
    inner: Stmt = _loop(rows.name, stop, tile, start=first)
    for axis in reversed([a for a in loops if a is not rows]):
        inner = _loop(axis.name, axis.extent, inner)
    return _loop(blocks.name, blocks.extent, inner)


def _k_block(ctx: _Context, u_axis: Axis | None) -> int:
    """Terms of the sum per visit of a tile (0: all at once).

    Blocking needs one summed axis longer than the block, the output to hold partial sums in
    the accumulator's dtype, and column tiles outside row tiles (a kc x nr panel of the packed
    operand then stays in L1 while every row tile of the block uses it).
    """
    stage = ctx.stage
    kc = ctx.config.get("kc", 0)
    if not kc or u_axis is None or len(stage.reduce_axes) != 1:
        return 0
    if stage.reduce_axes[0].extent <= kc or stage.dtype != stage.acc_dtype:
        return 0
    return kc if ctx.config.get("order") == "cols_outer" else 0


def _reduce_vectorized(ctx: _Context, active: list[Axis], base: dict[str, Expr]) -> Stmt:
    """Lanes over the last summed axis, ``nv`` vector accumulators, then a horizontal combine."""
    stage = ctx.stage
    lanes = ctx.lanes
    k_axis = stage.reduce_axes[-1]
    nv = max(1, min(ctx.config.get("nv", 4), k_axis.extent // lanes))
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
        _horizontal(op, stage.acc_dtype, lanes, nv),
        Store("acc", (iconst(0),), load("vacc", (iconst(0),), stage.acc_dtype)),
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


def _horizontal(op: ReduceOp, dtype: np.dtype, lanes: int, nv: int) -> Stmt:
    """Combine the ``nv`` x ``lanes`` accumulators in ``vacc`` into ``vacc[0]``: first the
    vectors lane by lane, then halves of one vector (a tree, log2(lanes) steps), so the
    combine is a few vector operations instead of a chain of ``nv * lanes`` scalar ones."""
    lane = var("l_")

    def fold(width: int, offset: Expr) -> Stmt:
        here = load("vacc", (lane,), dtype)
        there = load("vacc", (index_add(lane, offset),), dtype)
        return _loop(
            "l_", width, Store("vacc", (lane,), combine(op, here, there)), LoopKind.VECTORIZED
        )

    steps: list[Stmt] = [fold(lanes, iconst(c * lanes)) for c in range(1, nv)]
    width = lanes
    while width > 1:
        width //= 2
        steps.append(fold(width, iconst(width)))
    return block(*steps) if steps else block()


def stage_nest(
    stage: Stage,
    buffers: dict[str, BufferDecl],
    target: Target,
    config: Config,
    packed: tuple[PackedOperand, ...] = (),
    fixed: dict[str, Expr] | None = None,
) -> Stmt:
    """Loop IR for one stage; axes named in ``fixed`` are bound by an enclosing loop."""
    ctx = _Context(stage, buffers, target, fixed or {}, config, packed)
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
    transposed = _transposed_copy(ctx, active, base)
    if transposed is not None:
        return transposed
    return _output_vectorized(ctx, active, base)


def _transposed_copy(ctx: _Context, active: list[Axis], base: dict[str, Expr]) -> Stmt | None:
    """A copy whose source is strided along the output's last axis but contiguous along
    another (packing a transposed operand), as ``lanes x lanes`` blocks: an unrolled loop over
    the source's contiguous axis around a vectorized loop over the output's, which the LLVM
    code generator turns into vector loads, a register transpose and vector stores (lane by
    lane it would gather every element). None if ``ctx.stage`` is not such a copy."""
    stage, lanes = ctx.stage, ctx.lanes
    body = stage.body
    if stage.reduce_op is not None or stage.epilogue is not None or len(active) < 2:
        return None
    if body.op.value != "load" or body.dtype != stage.dtype or body.arg not in ctx.buffers:
        return None
    flat = linear_index(body.src, ctx.buffers[body.arg].strides)
    v_axis = active[-1]
    if v_axis.extent % lanes or coefficient(flat, v_axis.name) == 1:
        return None
    rows = [a for a in active[:-1] if a.extent % lanes == 0 and coefficient(flat, a.name) == 1]
    if lanes < 4 or not rows:
        return None
    u_axis = rows[-1]
    index = dict(base)
    index[u_axis.name] = index_add(index_mul(var(f"{u_axis.name}_t"), lanes), var("r_"))
    index[v_axis.name] = index_add(index_mul(var(f"{v_axis.name}_t"), lanes), var("l_"))
    copy = Store(stage.out, tuple(index[a.name] for a in stage.axes), substitute(body, index))
    tile = _loop("r_", lanes, _loop("l_", lanes, copy, LoopKind.VECTORIZED), LoopKind.UNROLLED)
    outer = [a for a in active if a is not u_axis and a is not v_axis]
    tiles = [Axis(f"{u_axis.name}_t", u_axis.extent // lanes)]
    tiles.append(Axis(f"{v_axis.name}_t", v_axis.extent // lanes))
    return _nest(outer + tiles, tile)


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


@dataclasses.dataclass(frozen=True)
class _Planned:
    stage: Stage
    config: Config
    packed: tuple[PackedOperand, ...] = ()


def _is_view(buffers: dict[str, BufferDecl], name: str) -> bool:
    decl = buffers.get(name)
    return decl is not None and decl.view_of is not None


def _groups(planned: list[_Planned], buffers: dict[str, BufferDecl]) -> list[list[_Planned]]:
    """Runs of stages that one parallel loop over rows computes row by row: each reads only
    its own row of what the run has produced. A stage that stores into a view, or reads one,
    stands alone: a view shares memory with another buffer, so another thread's rows of it
    may change under the run."""
    groups: list[list[_Planned]] = []
    for item in planned:
        stage = item.stage
        current = groups[-1] if groups else None
        touches_views = any(_is_view(buffers, name) for name in {stage.out, *stage.reads()})
        if (
            current
            and not touches_views
            and not any(_is_view(buffers, p.stage.out) for p in current)
            and _groupable(stage)
            and all(
                _groupable(p.stage) and p.stage.axes[0].extent == stage.axes[0].extent
                for p in current
            )
            and _reads_rows_of(stage, {p.stage.out for p in current})
        ):
            current.append(item)
        else:
            groups.append([item])
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
    name: str,
    group: list[_Planned],
    buffers: dict[str, BufferDecl],
    target: Target,
    min_work: int,
) -> Kernel:
    work = sum(_cost(p.stage) for p in group)
    if len(group) == 1:
        only = group[0]
        body = stage_nest(only.stage, buffers, target, only.config, only.packed)
    else:
        rows = group[0].stage.axes[0].extent
        nests = [
            stage_nest(
                p.stage, buffers, target, p.config, p.packed, {p.stage.axes[0].name: var("row")}
            )
            for p in group
        ]
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
    program: ComputeProgram,
    target: Target,
    min_parallel_work: int = 1 << 17,
    configs: Mapping[str, Config] | None = None,
) -> LoopProgram:
    """Loop IR for ``program`` on ``target``.

    ``configs`` maps a stage's output buffer to the config of its template (see :func:`space`);
    stages without one get :func:`default_config`. Kernels whose estimated work is below
    ``min_parallel_work`` run on one thread.
    """
    decls = list(program.buffers)
    by_name = {d.name: d for d in decls}
    planned: list[_Planned] = []
    for stage in program.stages:
        config = (configs or {}).get(stage.out) or default_config(stage, target, by_name)
        packed: list[PackedOperand] = []
        active = _active(stage)
        if config.get("pack") and active:
            shape = tile_shape(stage, active, _lanes(stage, target), config)
            rows = shape.u_axis.name if shape.u_axis is not None else None
            pack_stages, pack_decls, packed = plan_packing(
                stage, shape.v_axis.name, rows, shape.nr, f"{stage.out}_pack"
            )
            decls += pack_decls
            by_name.update({d.name: d for d in pack_decls})
            planned += [_Planned(s, default_config(s, target, by_name)) for s in pack_stages]
        planned.append(_Planned(stage, config, tuple(packed)))
    kernels = tuple(
        _kernel(f"k{n}", group, by_name, target, min_parallel_work)
        for n, group in enumerate(_groups(planned, by_name))
    )
    return LoopProgram(tuple(decls), kernels, program.outputs)
