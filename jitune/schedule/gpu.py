"""GPU schedules (CUDA, and OpenCL through the same loop IR): compute IR -> loop IR.

Every kernel is a grid of 1-D blocks (``GPU_BLOCK`` and ``GPU_THREAD`` loops on axis x). Each
stage takes one of three forms:

- **tiled** (contractions ``out[.., m, n] = sum_k fa(m, k) * fb(k, n)``): a block computes a
  ``bm x bn`` tile of the output, each of its threads a ``tm x tn`` register tile. The block
  stages ``bk``-deep slices of both operands through shared memory (``double``: two buffers,
  the next slice loaded into registers while the current one is used, one barrier per step),
  with vector loads (``float4``) where the operand's layout allows (``vec``); the inner
  product over the slice is fully unrolled; the epilogue is applied as the tile is stored.
  Extents that are not multiples of the tile are padded with zeros in shared memory, and
  out-of-range outputs are not stored, so every config is correct for every shape.
- **rows** (reductions along a contiguous axis, and the stages that read their rows:
  softmax, layernorm): one block per row (grid-stride over rows); the block's threads split
  the row, ``ipt`` items per thread per step; a reduction ends with a ``BlockReduce`` (warp
  shuffles, then the warps' results through shared memory); stages of one row group are
  separated by barriers, so a row is read from L1/L2 rather than DRAM the second time.
- **threads** (elementwise stages, and reductions along a strided axis, arg-reductions and
  contractions that do not tile): one output element per thread and item, ``ipt`` items per
  thread, grid-stride over the whole output (``waves`` caps the grid at that many waves of
  resident blocks; 0: one item per thread and step); with ``vec``, 4 consecutive elements per
  item through vector loads and stores where every access is contiguous and aligned.

Device limits come from the :class:`Target` (``max_threads``, ``shared_bytes``,
``processors``); configs that exceed them are shrunk to fit (:func:`fit`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from ..ir.compute import ACC, Axis, BufferDecl, ComputeProgram, Stage, StageKind
from ..ir.expr import (
    Expr,
    binary,
    coefficient,
    const,
    free_vars,
    iconst,
    index_add,
    index_div,
    index_mod,
    index_mul,
    is_const,
    linear_index,
    load,
    loads,
    substitute,
    var,
)
from ..ir.loops import (
    Alloc,
    Barrier,
    BlockReduce,
    For,
    If,
    Kernel,
    LoopKind,
    LoopProgram,
    Stmt,
    Store,
    block,
)
from ..ir.ops import ARG_REDUCTIONS, BinaryOp
from ..runtime.target import Target
from .default import _Context, _element, _reads_rows_of  # shared with the CPU templates
from .reduce_ops import combine, identity
from .space import Config, Knob, Space

BOOL = np.dtype(bool)
TID = "tid"
BID = "bid"


# -- classification ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Tiling:
    """How a contraction maps onto the tiled template."""

    m: Axis
    n: Axis
    k: Axis
    outer: tuple[Axis, ...]
    fa: Expr  # factor of (outer, m, k)
    fb: Expr  # factor of (outer, k, n)


def _active(stage: Stage) -> list[Axis]:
    return [a for a in stage.axes if a.extent != 1]


def tiling(stage: Stage) -> Tiling | None:
    """The tiled form of a contraction stage, or None if it does not have one."""
    if stage.kind is not StageKind.CONTRACTION or len(stage.reduce_axes) != 1:
        return None
    active = _active(stage)
    if len(active) < 2:
        return None
    m, n = active[-2], active[-1]
    x, y = stage.body.src
    fx, fy = free_vars(x), free_vars(y)
    if n.name not in fx and m.name not in fy:
        fa, fb = x, y
    elif n.name not in fy and m.name not in fx:
        fa, fb = y, x
    else:
        return None
    return Tiling(m, n, stage.reduce_axes[0], tuple(active[:-2]), fa, fb)


def _contiguity(stage: Stage, buffers: Mapping[str, BufferDecl], name: str) -> int:
    count = 0
    for node in loads(stage.body):
        decl = buffers.get(node.arg)
        if decl is None or not node.src:
            continue
        if coefficient(linear_index(node.src, decl.strides), name) == 1:
            count += 1
    return count


def form(stage: Stage, buffers: Mapping[str, BufferDecl]) -> str:
    """ "tiled", "rows" or "threads" (see the module docstring)."""
    if tiling(stage) is not None:
        return "tiled"
    if stage.reduce_op is None or stage.reduce_op in ARG_REDUCTIONS:
        return "threads"
    active = _active(stage)
    if not active:
        return "rows"
    k_score = sum(_contiguity(stage, buffers, a.name) for a in stage.reduce_axes)
    if k_score > _contiguity(stage, buffers, active[-1].name):
        return "rows"
    return "threads"


# -- spaces --------------------------------------------------------------------------------------


def space(stage: Stage, target: Target, buffers: Mapping[str, BufferDecl] | None = None) -> Space:
    """The knobs of ``stage``'s GPU template."""
    if tiling(stage) is not None:
        return Space(
            (
                Knob("bm", (16, 32, 64, 128)),
                Knob("bn", (16, 32, 64, 128)),
                Knob("bk", (8, 16, 32)),
                Knob("tm", (1, 2, 4, 8)),
                Knob("tn", (1, 2, 4, 8)),
                Knob("double", (False, True)),
                Knob("vec", (False, True)),
                Knob("occupancy", (1, 2)),
            )
        )
    if stage.reduce_op is not None and (buffers is None or form(stage, buffers) == "rows"):
        return Space(
            (
                Knob("threads", (32, 64, 128, 256, 512, 1024)),
                Knob("ipt", (1, 2, 4)),
                Knob("vec", (False, True)),
            )
        )
    return Space(
        (
            Knob("threads", (64, 128, 256, 512, 1024)),
            Knob("ipt", (1, 2, 4, 8)),
            Knob("waves", (0, 1, 2, 4, 8)),
            Knob("vec", (False, True)),
        )
    )


def _pow2_at_least(n: int) -> int:
    p = 1
    while p < n:
        p *= 2
    return p


def default_config(stage: Stage, target: Target, buffers: Mapping[str, BufferDecl]) -> Config:
    """The untuned choice for ``stage``."""
    t = tiling(stage)
    if t is not None:
        small = min(t.m.extent, t.n.extent)
        # measured on an H200: 4096^3 float32, bk=16 took 3.6 ms against 5.4 with bk=8;
        # batched 16 x 16 x 16 products ran best with 32-64 threads per block
        if small >= 128:
            return Config(
                dict(bm=128, bn=128, bk=16, tm=8, tn=8, double=True, vec=True, occupancy=1)
            )
        if small >= 64:
            return Config(dict(bm=64, bn=64, bk=16, tm=4, tn=4, double=True, vec=True, occupancy=1))
        # batched 16^3 on an H200: 8.1 us with one warp per 16 x 16 tile, 11.7 with two
        return Config(dict(bm=16, bn=16, bk=16, tm=8, tn=1, double=False, vec=True, occupancy=1))
    if stage.reduce_op is not None and form(stage, buffers) == "rows":
        # measured on an H200 (softmax, layernorm 16384 x 1024, 24 configs each): this was the
        # fastest for both (layernorm 0.957x the copy bandwidth, softmax 0.763x)
        return Config({"threads": 128, "ipt": 4, "vec": True})
    return Config({"threads": 256, "ipt": 4, "waves": 0, "vec": True})


@dataclasses.dataclass(frozen=True)
class TileConfig:
    bm: int
    bn: int
    bk: int
    tm: int
    tn: int
    double: bool
    vec: bool

    @property
    def threads(self) -> int:
        return (self.bm // self.tm) * (self.bn // self.tn)


def fit(t: Tiling, config: Config, target: Target, itemsize: int) -> TileConfig:
    """``config``'s tile, shrunk to the extents and the device's limits (always valid)."""
    bm = max(1, min(config.get("bm", 64), _pow2_at_least(t.m.extent)))
    bn = max(1, min(config.get("bn", 64), _pow2_at_least(t.n.extent)))
    tm, tn = min(config.get("tm", 4), bm), min(config.get("tn", 4), bn)
    bk = max(1, min(config.get("bk", 8), _pow2_at_least(t.k.extent)))
    double = bool(config.get("double", False))
    max_threads = target.limit("max_threads", 1024)
    while (bm // tm) * (bn // tn) > max_threads:
        if tm < bm and (tm <= tn or tn == bn):
            tm *= 2
        else:
            tn *= 2
    shared = target.limit("shared_bytes", 48 * 1024)
    while (bm + bn) * bk * itemsize * (2 if double else 1) > shared and bk > 1:
        bk //= 2
    return TileConfig(bm, bn, bk, tm, tn, double, bool(config.get("vec", False)))


# -- helpers -----------------------------------------------------------------------------------


def _loop(
    name: str,
    stop: Expr | int,
    body: Stmt,
    kind: LoopKind = LoopKind.SERIAL,
    start: Expr | int = 0,
    axis: str = "",
) -> Stmt:
    start_e = iconst(start) if isinstance(start, int) else start
    stop_e = iconst(stop) if isinstance(stop, int) else stop
    return For(name, start_e, stop_e, kind, body, axis)


def _lt(a: Expr, b: Expr | int) -> Expr:
    return binary(BinaryOp.LT, a, iconst(b) if isinstance(b, int) else b, BOOL)


def _and(*conds: Expr) -> Expr | None:
    conds = tuple(c for c in conds if c is not None)
    if not conds:
        return None
    out = conds[0]
    for c in conds[1:]:
        out = binary(BinaryOp.AND, out, c, BOOL)
    return out


def _guard(cond: Expr | None, body: Stmt, orelse: Stmt | None = None) -> Stmt:
    return body if cond is None else If(cond, body, orelse)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def decompose(flat: Expr, axes: list[Axis]) -> dict[str, Expr]:
    """Indices of ``axes`` (C order) at flat position ``flat`` (< their product)."""
    out: dict[str, Expr] = {}
    stride = 1
    for position in range(len(axes) - 1, -1, -1):
        axis = axes[position]
        q = index_div(flat, stride)
        out[axis.name] = q if position == 0 else index_mod(q, axis.extent)
        stride *= axis.extent
    return out


def _aligned(flat: Expr, lane: str, names: set[str], lanes: int) -> bool:
    """Whether ``flat`` is ``lane`` plus a multiple of ``lanes`` for all values of ``names``
    (so a vector of ``lanes`` at lane 0 is aligned when the buffer is)."""
    if coefficient(flat, lane) not in (0, 1):
        return False
    rest = substitute(flat, {lane: iconst(0)})
    for name in free_vars(rest):
        c = coefficient(rest, name)
        if c is None or c % lanes:
            return False
    zero = substitute(rest, {name: iconst(0) for name in free_vars(rest)})
    return is_const(zero) and zero.arg % lanes == 0


def _store_value(stage: Stage, acc: Expr) -> Expr:
    return acc if stage.epilogue is None else substitute(stage.epilogue, {ACC: acc})


def _launch(blocks: int, threads: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    return ((max(1, blocks), 1, 1), (threads, 1, 1))


def _grid(body_of_block: Stmt, blocks: int, threads: int) -> Stmt:
    return _loop(
        BID,
        blocks,
        _loop(TID, threads, body_of_block, LoopKind.GPU_THREAD, axis="x"),
        LoopKind.GPU_BLOCK,
        axis="x",
    )


def _threads_knob(config: Config, target: Target, default: int = 256) -> int:
    threads = int(config.get("threads", default))
    return max(32, min(threads, target.limit("max_threads", 1024)))


# -- threads form ------------------------------------------------------------------------------


def _vector_ok(
    stage: Stage, axes: list[Axis], buffers: Mapping[str, BufferDecl], lanes: int
) -> bool:
    """Whether 4 (``lanes``) consecutive elements along the last axis can go as one vector."""
    if stage.reduce_op is not None or not axes or axes[-1].extent % lanes:
        return False
    if stage.dtype.itemsize * lanes > 16 or stage.dtype.kind == "b":
        return False
    last = axes[-1].name
    names = {a.name for a in axes}
    out = buffers[stage.out]
    out_flat = linear_index(tuple(var(a.name) for a in stage.axes), out.strides)
    if not _aligned(out_flat, last, names, lanes) or coefficient(out_flat, last) != 1:
        return False
    for node in loads(stage.body):
        decl = buffers[node.arg]
        if decl.shape == ():
            continue
        flat = linear_index(node.src, decl.strides)
        c = coefficient(flat, last)
        if c == 0:
            continue
        if c != 1 or node.dtype.itemsize * lanes > 16 or node.dtype.kind == "b":
            return False
        if not _aligned(flat, last, names, lanes):
            return False
    return True


def threads_form(
    stage: Stage, buffers: dict[str, BufferDecl], target: Target, config: Config
) -> tuple[Stmt, tuple]:
    """One output element per thread and item; grid-stride over the output."""
    threads = _threads_knob(config, target)
    ipt = max(1, int(config.get("ipt", 1)))
    axes = _active(stage)
    base = {a.name: iconst(0) for a in stage.axes if a.extent == 1}
    lanes = 4 if stage.dtype.itemsize <= 4 else 2
    vec = bool(config.get("vec", False)) and _vector_ok(stage, axes, buffers, lanes)
    total = 1
    for a in axes:
        total *= a.extent
    items = total // lanes if vec else total
    per_wave = target.limit("processors", 132) * max(1, 2048 // threads)
    blocks = _ceil(items, threads * ipt)
    waves = int(config.get("waves", 0))
    if waves:
        blocks = min(blocks, per_wave * waves)
    blocks = max(1, min(blocks, (1 << 31) - 1))
    steps = _ceil(items, blocks * threads * ipt)
    item = index_add(
        index_mul(
            index_add(index_mul(index_add(index_mul(var("it"), ipt), var("u")), blocks), var(BID)),
            threads,
        ),
        var(TID),
    )
    ctx = _Context(stage, buffers, target, {}, config)
    if vec:
        inner = axes[:-1] + [Axis("_vq", axes[-1].extent // lanes)]
        index = {**base, **decompose(item, inner)}
        index[axes[-1].name] = index_add(index_mul(index.pop("_vq"), lanes), var("l_"))
        out_index = tuple(index[a.name] for a in stage.axes)
        value = _store_value(stage, substitute(stage.body, index))
        one = _loop("l_", lanes, Store(stage.out, out_index, value), LoopKind.VECTORIZED)
    else:
        index = {**base, **decompose(item, axes)}
        one = _element(ctx, index, "t")
    body = _guard(_lt(item, items) if steps * blocks * threads * ipt != items else None, one)
    body = _loop("u", ipt, body, LoopKind.UNROLLED)
    body = _loop("it", steps, body)
    return _grid(body, blocks, threads), _launch(blocks, threads)


# -- rows form ---------------------------------------------------------------------------------


def _row_lanes(stage: Stage, axes: list[Axis], buffers: Mapping[str, BufferDecl]) -> int:
    """Elements per vector access of ``stage`` in the rows form (1: no vector accesses)."""
    lanes = 4 if max(stage.dtype.itemsize, stage.body.dtype.itemsize) <= 4 else 2
    if stage.reduce_op is None:
        return lanes if _vector_ok(stage, axes, buffers, lanes) else 1
    if stage.reduce_op in ARG_REDUCTIONS or len(stage.reduce_axes) != 1:
        return 1
    (k,) = stage.reduce_axes
    if k.extent % lanes or stage.body.dtype.kind == "b":
        return 1
    names = {a.name for a in stage.axes} | {k.name}
    for node in loads(stage.body):
        decl = buffers[node.arg]
        if decl.shape == ():
            continue
        flat = linear_index(node.src, decl.strides)
        if coefficient(flat, k.name) == 0:
            continue
        if node.dtype.kind == "b" or node.dtype.itemsize * lanes > 16:
            return 1
        if coefficient(flat, k.name) != 1 or not _aligned(flat, k.name, names, lanes):
            return 1
    return lanes


def _row_stage(
    stage: Stage,
    row: dict[str, Expr],
    threads: int,
    ipt: int,
    tag: str,
    buffers: Mapping[str, BufferDecl] | None = None,
) -> Stmt:
    """The part of one row that ``stage`` computes, split over the block's threads; ``row``
    gives the indices of the axes that select the row. With ``buffers``, contiguous rows go
    as vector accesses (``float4``) where every access allows."""
    axes = [a for a in stage.axes if a.extent != 1 and a.name not in row]
    base = {a.name: iconst(0) for a in stage.axes if a.extent == 1}
    base.update(row)
    lanes = _row_lanes(stage, axes, buffers) if buffers is not None else 1
    lane = var("l_")

    def split(count: int, make: callable) -> Stmt:  # type: ignore[valid-type]
        steps = _ceil(count, threads * ipt)
        flat = index_add(
            index_mul(index_add(index_mul(var(f"s{tag}"), ipt), var(f"u{tag}")), threads), var(TID)
        )
        body = make(flat)
        if steps * threads * ipt != count:
            body = If(_lt(flat, count), body)
        return _loop(f"s{tag}", steps, _loop(f"u{tag}", ipt, body, LoopKind.UNROLLED))

    rest = 1
    for a in axes:
        rest *= a.extent
    if stage.reduce_op is None and lanes > 1:
        inner = axes[:-1] + [Axis("_vq", axes[-1].extent // lanes)]

        def vector_element(flat: Expr) -> Stmt:
            index = {**base, **decompose(flat, inner)}
            index[axes[-1].name] = index_add(index_mul(index.pop("_vq"), lanes), lane)
            out = tuple(index[a.name] for a in stage.axes)
            value = _store_value(stage, substitute(stage.body, index))
            return _loop("l_", lanes, Store(stage.out, out, value), LoopKind.VECTORIZED)

        return split(rest // lanes, vector_element)
    if stage.reduce_op is None:

        def element(flat: Expr) -> Stmt:
            index = {**base, **decompose(flat, axes)}
            out = tuple(index[a.name] for a in stage.axes)
            return Store(stage.out, out, _store_value(stage, substitute(stage.body, index)))

        return split(rest, element)
    # a reduction: each output element of the row is one block-wide reduction
    op = stage.reduce_op
    acc = f"acc{tag}"
    acc_load = load(acc, (iconst(0),), stage.acc_dtype)
    red_axes = list(stage.reduce_axes)
    count = 1
    for a in red_axes:
        count *= a.extent
    e = f"e{tag}"
    out_index = {**base, **decompose(var(e), axes)} if axes else dict(base)

    def update(flat: Expr) -> Stmt:
        index = {**out_index, **decompose(flat, red_axes)}
        return Store(acc, (iconst(0),), combine(op, acc_load, substitute(stage.body, index)))

    def vector_update(flat: Expr) -> Stmt:
        (k,) = red_axes
        index = {**out_index, k.name: index_add(index_mul(flat, lanes), lane)}
        slot = (lane,)
        value = combine(op, load(acc, slot, stage.acc_dtype), substitute(stage.body, index))
        return _loop("l_", lanes, Store(acc, slot, value), LoopKind.VECTORIZED)

    out = tuple(out_index[a.name] for a in stage.axes)
    if lanes > 1:  # one accumulator per lane, folded before the block-wide combine
        summed = block(
            _loop(
                "l_", lanes, Store(acc, (lane,), identity(op, stage.acc_dtype)), LoopKind.UNROLLED
            ),
            split(count // lanes, vector_update),
            *[
                Store(
                    acc,
                    (iconst(0),),
                    combine(op, acc_load, load(acc, (iconst(k),), stage.acc_dtype)),
                )
                for k in range(1, lanes)
            ],
        )
    else:
        summed = block(
            Store(acc, (iconst(0),), identity(op, stage.acc_dtype)), split(count, update)
        )
    one = block(
        Alloc(acc, stage.acc_dtype, lanes),
        summed,
        BlockReduce(acc, op, stage.acc_dtype, threads),
        If(
            binary(BinaryOp.EQ, var(TID), iconst(0), BOOL),
            Store(stage.out, out, substitute(_store_value(stage, acc_load), out_index)),
        ),
    )
    return _loop(e, rest, one) if axes else one


def rows_form(
    group: list[Stage],
    target: Target,
    config: Config,
    grouped: bool,
    buffers: Mapping[str, BufferDecl] | None = None,
) -> tuple[Stmt, tuple]:
    threads = _threads_knob(config, target)
    threads = max(32, threads // 32 * 32)
    ipt = max(1, int(config.get("ipt", 1)))
    first = group[0]
    row_axes = [first.axes[0]] if grouped else _active(first)
    rows = 1
    for a in row_axes:
        rows *= a.extent
    blocks = max(1, min(rows, (1 << 31) - 1))
    steps = _ceil(rows, blocks)
    row = index_add(index_mul(var("rt"), blocks), var(BID)) if steps > 1 else var(BID)
    parts: list[Stmt] = []
    for n, stage in enumerate(group):
        if grouped:
            index = {stage.axes[0].name: row}
        else:
            index = decompose(row, row_axes) if row_axes else {}
        vec = buffers if config.get("vec", False) else None
        parts.append(_row_stage(stage, index, threads, ipt, str(n), vec))
        if n + 1 < len(group):
            parts.append(Barrier())
    body: Stmt = block(*parts)
    if steps > 1:
        body = _loop("rt", steps, If(_lt(row, rows), block(body, Barrier())))
    return _grid(body, blocks, threads), _launch(blocks, threads)


# -- tiled form --------------------------------------------------------------------------------


def _staging(
    name: str,
    factor: Expr,
    rows: Axis,  # the operand's axis other than k (m for fa, n for fb)
    k: Axis,
    row0: Expr,
    k0: Expr,
    size: int,
    fixed: dict[str, Expr],
    cfg: TileConfig,
    buffers: Mapping[str, BufferDecl],
) -> tuple[Stmt, Stmt, Alloc]:
    """Copy of one operand's ``bk x size`` slice (at rows ``row0``, k ``k0``) into registers
    ``reg`` (first statement) and from there into the shared tile ``dst[kk * size + r]`` at
    offset ``dst_base`` (second statement, a function of the buffer index)."""
    threads = cfg.threads
    bk = cfg.bk
    itemsize = factor.dtype.itemsize
    lanes = min(4, 16 // itemsize) if factor.dtype.kind != "b" else 1
    # which of (rows, k) is contiguous in memory for the factor's loads
    k_contig = sum(
        1
        for node in loads(factor)
        if node.arg in buffers
        and buffers[node.arg].shape != ()
        and coefficient(linear_index(node.src, buffers[node.arg].strides), k.name) == 1
    )
    r_contig = sum(
        1
        for node in loads(factor)
        if node.arg in buffers
        and buffers[node.arg].shape != ()
        and coefficient(linear_index(node.src, buffers[node.arg].strides), rows.name) == 1
    )
    along_k = k_contig > r_contig
    inner, inner_len, outer_len = (k, bk, size) if along_k else (rows, size, bk)
    names = set(fixed) | {rows.name, k.name}
    vec = (
        cfg.vec
        and lanes > 1
        and inner_len % lanes == 0
        and inner.extent % lanes == 0
        and all(
            _aligned(linear_index(node.src, buffers[node.arg].strides), inner.name, names, lanes)
            for node in loads(factor)
            if node.arg in buffers and buffers[node.arg].shape != ()
        )
    )
    if not vec:
        lanes = 1
    groups = inner_len // lanes * outer_len
    per_thread = _ceil(groups, threads)
    reg = f"{name}_r"
    g = index_add(index_mul(var(f"{name}_p"), threads), var(TID))
    inner_i = index_mul(index_mod(g, inner_len // lanes), lanes)
    outer_i = index_div(g, inner_len // lanes)
    lane = var("l_") if lanes > 1 else iconst(0)
    inner_pos = index_add(inner_i, lane)
    r_local, kk_local = (outer_i, inner_pos) if along_k else (inner_pos, outer_i)
    r_global = index_add(row0, r_local)
    k_global = index_add(k0, kk_local)
    index = {**fixed, rows.name: r_global, k.name: k_global}
    value = substitute(factor, index)
    reg_slot = (index_add(index_mul(var(f"{name}_p"), lanes), lane),)
    zero = const(0, factor.dtype)
    # a vector group lies wholly inside or outside the operand (extents and tile offsets
    # are multiples of the lanes), so its first element decides
    first = {"l_": iconst(0)}
    inb = _and(
        _lt(substitute(r_global, first), rows.extent), _lt(substitute(k_global, first), k.extent)
    )

    def over_lanes(stmt: Stmt, kind: LoopKind = LoopKind.VECTORIZED) -> Stmt:
        return _loop("l_", lanes, stmt, kind) if lanes > 1 else substitute_stmt_lane(stmt)

    load_one = _guard(
        inb,
        over_lanes(Store(reg, reg_slot, value)),
        over_lanes(Store(reg, reg_slot, zero), LoopKind.UNROLLED),
    )
    if groups % threads:
        load_one = If(_lt(g, groups), load_one)
    to_regs = _loop(f"{name}_p", per_thread, load_one, LoopKind.UNROLLED)
    dst_base = var(f"{name}_buf")
    dst = (index_add(dst_base, index_add(index_mul(kk_local, size), r_local)),)
    save_one = over_lanes(Store(name, dst, load(reg, reg_slot, factor.dtype)))
    if groups % threads:
        save_one = If(_lt(g, groups), save_one)
    to_shared = _loop(f"{name}_p", per_thread, save_one, LoopKind.UNROLLED)
    return to_regs, to_shared, Alloc(reg, factor.dtype, per_thread * lanes)


def substitute_stmt_lane(stmt: Stmt) -> Stmt:
    """``stmt`` with the lane variable ``l_`` set to 0 (for 1-lane copies)."""
    assert isinstance(stmt, Store)
    zero = {"l_": iconst(0)}
    return Store(
        stmt.buffer, tuple(substitute(i, zero) for i in stmt.indices), substitute(stmt.value, zero)
    )


def tiled_form(
    stage: Stage, buffers: dict[str, BufferDecl], target: Target, config: Config
) -> tuple[Stmt, tuple]:
    t = tiling(stage)
    assert t is not None
    itemsize = max(t.fa.dtype.itemsize, t.fb.dtype.itemsize)
    cfg = fit(t, config, target, itemsize)
    bm, bn, bk, tm, tn = cfg.bm, cfg.bn, cfg.bk, cfg.tm, cfg.tn
    threads = cfg.threads
    tiles_m, tiles_n = _ceil(t.m.extent, bm), _ceil(t.n.extent, bn)
    outer_count = 1
    for a in t.outer:
        outer_count *= a.extent
    blocks = outer_count * tiles_m * tiles_n
    bid = var(BID)
    tile_n = index_mod(bid, tiles_n)
    tile_m = index_mod(index_div(bid, tiles_n), tiles_m)
    fixed = decompose(index_div(bid, tiles_n * tiles_m), list(t.outer)) if t.outer else {}
    base = {a.name: iconst(0) for a in stage.axes if a.extent == 1}
    fixed = {**base, **fixed}
    m0, n0 = index_mul(tile_m, bm), index_mul(tile_n, bn)
    threads_n = bn // tn
    ty, tx = index_div(var(TID), threads_n), index_mod(var(TID), threads_n)
    k_steps = _ceil(t.k.extent, bk)
    k0 = index_mul(var("kt"), bk)
    buffers_count = 2 if cfg.double and k_steps > 1 else 1
    a_regs, a_shared, a_alloc = _staging("As", t.fa, t.m, t.k, m0, k0, bm, fixed, cfg, buffers)
    b_regs, b_shared, b_alloc = _staging("Bs", t.fb, t.n, t.k, n0, k0, bn, fixed, cfg, buffers)
    acc_dtype = stage.acc_dtype
    acc_slot = (index_add(index_mul(var("i_"), tn), var("j_")),)
    acc_load = load("acc", acc_slot, acc_dtype)

    def over_tile(stmt: Stmt) -> Stmt:
        return _loop("i_", tm, _loop("j_", tn, stmt, LoopKind.UNROLLED), LoopKind.UNROLLED)

    threads_m = bm // tm
    # With 4-wide register reads, a thread's tm rows (tn columns) are chunks of 4 spaced
    # threads_m * 4 (threads_n * 4) apart, so the threads of a warp read consecutive float4s
    # of shared memory (no bank conflicts) and store consecutive float4s of the output.
    vec_a = tm % 4 == 0 and t.fa.dtype.itemsize == 4
    vec_b = tn % 4 == 0 and t.fb.dtype.itemsize == 4

    def position(thread: Expr, per: int, count: int, chunked: bool, i: Expr) -> Expr:
        """Offset in the block tile of register ``i`` of ``thread`` (``count`` threads,
        ``per`` registers each)."""
        if not chunked:
            return index_add(index_mul(thread, per), i)
        return index_add(
            index_add(index_mul(index_div(i, 4), count * 4), index_mul(thread, 4)),
            index_mod(i, 4),
        )

    def chunk_position(thread: Expr, count: int, q: Expr, lane: Expr) -> Expr:
        return index_add(index_add(index_mul(q, count * 4), index_mul(thread, 4)), lane)

    def read_regs(
        reg: str,
        shared: str,
        offset: Expr,
        size: int,
        thread: Expr,
        per: int,
        count: int,
        vec: bool,
        dtype: np.dtype,
    ) -> Stmt:
        base = index_add(offset, index_mul(var("kk"), size))
        if vec:
            q, lane = var("q_"), var("l_")
            value = load(shared, (index_add(base, chunk_position(thread, count, q, lane)),), dtype)
            inner = _loop(
                "l_",
                4,
                Store(reg, (index_add(index_mul(q, 4), lane),), value),
                LoopKind.VECTORIZED,
            )
            return _loop("q_", per // 4, inner, LoopKind.UNROLLED)
        value = load(
            shared, (index_add(base, index_add(index_mul(thread, per), var("r_"))),), dtype
        )
        return _loop("r_", per, Store(reg, (var("r_"),), value), LoopKind.UNROLLED)

    ra = load("ra", (var("i_"),), t.fa.dtype)
    rb = load("rb", (var("j_"),), t.fb.dtype)
    # body = fa * fb, rebuilt on the register values
    product = (
        binary(BinaryOp.MUL, ra, rb, stage.body.dtype)
        if stage.body.src[0] is t.fa
        else binary(BinaryOp.MUL, rb, ra, stage.body.dtype)
    )
    a_read = read_regs("ra", "As", var("cur"), bm, ty, tm, threads_m, vec_a, t.fa.dtype)
    b_read = read_regs("rb", "Bs", var("curb"), bn, tx, tn, threads_n, vec_b, t.fb.dtype)

    compute = _loop(
        "kk",
        bk,
        block(
            a_read,
            b_read,
            over_tile(Store("acc", acc_slot, combine(stage.reduce_op, acc_load, product))),
        ),
        LoopKind.UNROLLED,
    )

    def with_buffer(stmt: Stmt, slot: Expr) -> Stmt:
        """``stmt`` writing shared buffer number ``slot``."""
        return _bind(stmt, {"As_buf": index_mul(slot, bk * bm), "Bs_buf": index_mul(slot, bk * bn)})

    init = over_tile(Store("acc", acc_slot, identity(stage.reduce_op, acc_dtype)))
    kt = var("kt")
    if buffers_count == 2:
        slot = index_mod(kt, 2)
        nxt = index_mod(index_add(kt, 1), 2)
        has_next = _lt(index_add(kt, 1), k_steps)
        prologue = block(
            _bind(block(a_regs, b_regs), {"kt": iconst(0)}),
            with_buffer(block(a_shared, b_shared), iconst(0)),
            Barrier(),
        )
        step = block(
            If(has_next, _bind(block(a_regs, b_regs), {"kt": index_add(kt, 1)})),
            _bind(compute, {"cur": index_mul(slot, bk * bm), "curb": index_mul(slot, bk * bn)}),
            If(has_next, with_buffer(block(a_shared, b_shared), nxt)),
            Barrier(),
        )
        main = block(prologue, _loop("kt", k_steps, step))
    else:
        step = block(
            a_regs,
            b_regs,
            with_buffer(block(a_shared, b_shared), iconst(0)),
            Barrier(),
            _bind(compute, {"cur": iconst(0), "curb": iconst(0)}),
            Barrier(),
        )
        main = _loop("kt", k_steps, step)
    # the store, with the epilogue
    row = index_add(m0, position(ty, tm, threads_m, vec_a, var("i_")))
    col = index_add(n0, position(tx, tn, threads_n, vec_b, var("j_")))
    out_index = {**fixed, t.m.name: row, t.n.name: col}
    out = tuple(out_index[a.name] for a in stage.axes)
    value = substitute(_store_value(stage, acc_load), out_index)
    conds = []
    if t.m.extent % bm:
        conds.append(_lt(row, t.m.extent))
    store_lanes = 4 if vec_b else (4 if stage.dtype.itemsize == 4 else 2)
    out_flat = linear_index(tuple(var(a.name) for a in stage.axes), buffers[stage.out].strides)
    epilogue_loads = loads(substitute(_store_value(stage, acc_load), {}))
    names = {a.name for a in stage.axes}
    vec_store = (
        cfg.vec
        and tn % store_lanes == 0
        and t.n.extent % store_lanes == 0
        and stage.dtype.kind != "b"
        and stage.dtype.itemsize * store_lanes <= 16
        and _aligned(out_flat, t.n.name, names, store_lanes)
        and all(
            _aligned(
                linear_index(node.src, buffers[node.arg].strides), t.n.name, names, store_lanes
            )
            for node in epilogue_loads
            if node.arg in buffers and buffers[node.arg].shape != ()
        )
    )
    if vec_store:
        j = index_add(index_mul(var("q_"), store_lanes), var("l_"))
        if vec_b:  # chunked columns: chunk q of the thread starts at col_q
            col_q = index_add(n0, chunk_position(tx, threads_n, var("q_"), iconst(0)))
            col_j = index_add(n0, chunk_position(tx, threads_n, var("q_"), var("l_")))
            value = substitute(_store_value(stage, acc_load), {**out_index, t.n.name: col_j})
            out = tuple({**out_index, t.n.name: col_j}[a.name] for a in stage.axes)
        else:
            col_q = index_add(n0, index_add(index_mul(tx, tn), index_mul(var("q_"), store_lanes)))
        if t.n.extent % bn:
            conds.append(_lt(col_q, t.n.extent))
        inner = _loop(
            "l_", store_lanes, _bind(Store(stage.out, out, value), {"j_": j}), LoopKind.VECTORIZED
        )
        store = _loop(
            "i_",
            tm,
            _loop("q_", tn // store_lanes, _guard(_and(*conds), inner), LoopKind.UNROLLED),
            LoopKind.UNROLLED,
        )
    else:
        if t.n.extent % bn:
            conds.append(_lt(col, t.n.extent))
        store = over_tile(_guard(_and(*conds), Store(stage.out, out, value)))
    body = block(
        Alloc("acc", acc_dtype, tm * tn),
        Alloc("As", t.fa.dtype, buffers_count * bk * bm, "shared"),
        Alloc("Bs", t.fb.dtype, buffers_count * bk * bn, "shared"),
        a_alloc,
        b_alloc,
        Alloc("ra", t.fa.dtype, tm),
        Alloc("rb", t.fb.dtype, tn),
        init,
        main,
        store,
    )
    return _grid(body, blocks, threads), _launch(blocks, threads)


def _bind(stmt: Stmt, mapping: dict[str, Expr]) -> Stmt:
    """``stmt`` with variables replaced (loop IR statements are rebuilt)."""
    from ..ir.loops import Block

    if isinstance(stmt, Store):
        return Store(
            stmt.buffer,
            tuple(substitute(i, mapping) for i in stmt.indices),
            substitute(stmt.value, mapping),
        )
    if isinstance(stmt, Block):
        return Block(tuple(_bind(s, mapping) for s in stmt.stmts))
    if isinstance(stmt, For):
        inner = {k: v for k, v in mapping.items() if k != stmt.var}
        return dataclasses.replace(
            stmt,
            start=substitute(stmt.start, mapping),
            stop=substitute(stmt.stop, mapping),
            body=_bind(stmt.body, inner),
        )
    if isinstance(stmt, If):
        return If(
            substitute(stmt.cond, mapping),
            _bind(stmt.then, mapping),
            None if stmt.orelse is None else _bind(stmt.orelse, mapping),
        )
    return stmt


# -- program -----------------------------------------------------------------------------------


def _groups(
    stages: list[Stage], buffers: Mapping[str, BufferDecl]
) -> list[tuple[list[Stage], bool]]:
    """Kernels: (stages, grouped by rows). Row groups start at a rows-form reduction."""
    out: list[tuple[list[Stage], bool]] = []
    for stage in stages:
        current = out[-1] if out else None
        kind = form(stage, buffers)
        groupable = kind != "tiled" and stage.reduce_op not in ARG_REDUCTIONS and bool(stage.axes)
        if (
            current is not None
            and current[1]
            and groupable
            and stage.axes[0].extent == current[0][0].axes[0].extent
            and _reads_rows_of(stage, {s.out for s in current[0]})
        ):
            current[0].append(stage)
            continue
        starts_rows = (
            kind == "rows"
            and bool(stage.axes)
            and stage.axes[0].extent > 1
            and (len(_active(stage)) == 0 or _active(stage)[0] is stage.axes[0])
        )
        out.append(([stage], starts_rows))
    return out


def schedule(
    program: ComputeProgram,
    target: Target,
    configs: Mapping[str, Config] | None = None,
) -> LoopProgram:
    """Loop IR of ``program`` for a GPU ``target``; ``configs`` by stage output name."""
    buffers = {d.name: d for d in program.buffers}
    kernels = []
    for n, (group, grouped) in enumerate(_groups(list(program.stages), buffers)):
        first = group[0]
        config = (configs or {}).get(first.out) or default_config(first, target, buffers)
        kind = form(first, buffers)
        min_blocks = 0
        if grouped or (kind == "rows" and len(group) == 1):
            body, launch = rows_form(group, target, config, grouped, buffers)
        elif kind == "tiled":
            body, launch = tiled_form(first, buffers, target, config)
            min_blocks = int(config.get("occupancy", 1))
        else:
            body, launch = threads_form(first, buffers, target, config)
        work = sum(s.work() for s in group)
        kernels.append(Kernel(f"k{n}", body, False, work, launch, min_blocks))
    return LoopProgram(program.buffers, tuple(kernels), program.outputs)
