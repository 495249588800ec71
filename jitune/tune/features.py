"""Loop-context features of a candidate: what its loop IR does, as a fixed-length vector.

The features describe the innermost statement that runs most often (the "hot" store: a
contraction's accumulator update, an elementwise store): for each enclosing loop level its
extent and kind, and for each buffer the statement touches its stride along that loop, the
bytes touched by the loops from that level inwards, and the reuse (iterations per distinct
element). A few whole-program numbers follow (kernels, threads, extra buffers). Nothing
names the workload, so a model trained on one shape or kernel applies to another.

Every number is a log2(1 + x): extents and bytes span orders of magnitude, and tree models
split on order, so the scale only has to be monotone and bounded.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..ir.expr import Expr, ExprOp, coefficient, linear_index, loads
from ..ir.loops import Alloc, Block, For, If, LoopKind, LoopProgram, Stmt, Store
from ..ir.ops import BinaryOp

VERSION = 1  # bump when the features change: older records are then not transferred
LEVELS = 10  # loop levels described, innermost last (deeper nests keep their inner levels)
ACCESSES = 4  # the store and the three loads that touch the most bytes
_KINDS = tuple(LoopKind)  # GPU block and thread loops too, so one extractor serves every target
GLOBALS = 7
PER_LEVEL = 1 + len(_KINDS)
PER_ACCESS_LEVEL = 3
LENGTH = GLOBALS + LEVELS * PER_LEVEL + ACCESSES * LEVELS * PER_ACCESS_LEVEL
UNKNOWN_EXTENT = 16.0  # a loop whose trip count is not a constant difference of its bounds


def _log(x: float) -> float:
    return math.log2(1.0 + max(0.0, x))


@dataclasses.dataclass(frozen=True)
class _Loop:
    var: str
    extent: float
    kind: LoopKind


@dataclasses.dataclass(frozen=True)
class _Access:
    buffer: str
    indices: tuple[Expr, ...]
    itemsize: int


def _difference(stop: Expr, start: Expr) -> float | None:
    """``stop - start`` when it is a constant (or bounded by one, for ``min`` bounds)."""
    if stop.op is ExprOp.CONST and start.op is ExprOp.CONST:
        return float(stop.arg - start.arg)
    if stop.op is ExprOp.BINARY and stop.arg is BinaryOp.MIN:
        found = [d for d in (_difference(s, start) for s in stop.src) if d is not None]
        if found:
            return min(found)
        bounds = [float(s.arg) for s in stop.src if s.op is ExprOp.CONST]
        return min(bounds) if bounds else None
    if stop.op is ExprOp.BINARY and stop.arg is BinaryOp.ADD:
        a, b = stop.src
        if a == start and b.op is ExprOp.CONST:
            return float(b.arg)
        if b == start and a.op is ExprOp.CONST:
            return float(a.arg)
    return None


def _extent(loop: For) -> float:
    found = _difference(loop.stop, loop.start)
    return max(0.0, found) if found is not None else UNKNOWN_EXTENT


@dataclasses.dataclass
class _Walk:
    strides: dict[str, tuple[int, ...]]
    itemsizes: dict[str, int]
    hot: tuple[tuple[_Loop, ...], Store] | None = None
    hot_trips: float = -1.0
    total_trips: float = 0.0
    scratch_bytes: float = 0.0

    def visit(self, stmt: Stmt | None, loops: tuple[_Loop, ...]) -> None:
        if stmt is None:
            return
        if isinstance(stmt, For):
            self.visit(stmt.body, loops + (_Loop(stmt.var, _extent(stmt), stmt.kind),))
        elif isinstance(stmt, Block):
            for inner in stmt.stmts:
                self.visit(inner, loops)
        elif isinstance(stmt, If):
            self.visit(stmt.then, loops)
            self.visit(stmt.orelse, loops)
        elif isinstance(stmt, Alloc):
            self.strides[stmt.buffer] = (1,)
            self.itemsizes[stmt.buffer] = stmt.dtype.itemsize
            self.scratch_bytes += stmt.size * stmt.dtype.itemsize
        elif isinstance(stmt, Store):
            trips = math.prod(loop.extent for loop in loops)
            self.total_trips += trips
            if trips > self.hot_trips:  # the first of equals: deterministic
                self.hot, self.hot_trips = (loops, stmt), trips


def _access_features(
    access: _Access, loops: tuple[_Loop, ...], strides: tuple[int, ...]
) -> tuple[list[float], float]:
    """Per level (outermost first): log stride, log bytes touched inwards, log reuse; and the
    bytes touched by the whole nest (to rank accesses)."""
    flat = linear_index(access.indices, strides) if access.indices else None
    steps = []
    for loop in loops:
        step = coefficient(flat, loop.var) if flat is not None else 0
        steps.append(step)
    rows = []
    touched = float(access.itemsize)  # distinct bytes from this level inwards (an upper bound)
    iterations = 1.0
    per_level: list[tuple[float, float, float]] = []
    for loop, step in zip(reversed(loops), reversed(steps)):
        iterations *= max(loop.extent, 1.0)
        if step != 0:  # None (not affine) counts as moving
            touched *= max(loop.extent, 1.0)
        elements = touched / access.itemsize
        per_level.append(
            (
                _log(abs(step) if step is not None else 1 << 20),
                _log(touched),
                _log(iterations / elements),
            )
        )
    for values in reversed(per_level):
        rows.extend(values)
    return rows, touched


def extract(loops: LoopProgram) -> np.ndarray:
    """The feature vector (length :data:`LENGTH`) of a candidate's loop IR."""
    walk = _Walk(
        {d.name: d.strides for d in loops.buffers},
        {d.name: d.dtype.itemsize for d in loops.buffers},
    )
    parallel = 0.0
    hot_parallel = 0.0
    for kernel in loops.kernels:
        before = walk.hot
        walk.visit(kernel.body, ())
        body = kernel.body
        extent = _extent(body) if isinstance(body, For) and body.kind is LoopKind.PARALLEL else 0.0
        parallel = max(parallel, extent)
        if walk.hot is not before:
            hot_parallel = extent
    features = np.zeros(LENGTH, dtype=np.float64)
    if walk.hot is None:
        return features
    context, store = walk.hot
    context = context[-LEVELS:]
    tile = math.prod(
        loop.extent for loop in context if loop.kind in (LoopKind.UNROLLED, LoopKind.VECTORIZED)
    )
    temporaries = sum(
        d.size * d.dtype.itemsize for d in loops.buffers if d.role not in ("input", "view")
    )
    loaded = loads(store.value)
    features[:GLOBALS] = (
        _log(walk.hot_trips),
        _log(hot_parallel),
        float(len(loops.kernels)),
        _log(tile),
        float(len(loaded)),
        _log(walk.total_trips),
        _log(temporaries + walk.scratch_bytes),
    )
    offset = GLOBALS + (LEVELS - len(context)) * PER_LEVEL
    for loop in context:
        features[offset] = _log(loop.extent)
        features[offset + 1 + _KINDS.index(loop.kind)] = 1.0
        offset += PER_LEVEL
    accesses = [_Access(store.buffer, store.indices, walk.itemsizes.get(store.buffer, 4))]
    ranked = []
    for position, node in enumerate(loaded):
        access = _Access(node.arg, node.src, walk.itemsizes.get(node.arg, node.dtype.itemsize))
        strides = walk.strides.get(node.arg, (1,) * len(node.src))
        rows, touched = _access_features(access, context, strides)
        ranked.append((-touched, position, rows))
    store_strides = walk.strides.get(store.buffer, (1,) * len(store.indices))
    rows, _ = _access_features(accesses[0], context, store_strides)
    chosen = [rows] + [r for _, _, r in sorted(ranked)[: ACCESSES - 1]]
    base = GLOBALS + LEVELS * PER_LEVEL
    for slot, rows in enumerate(chosen):
        start = base + slot * LEVELS * PER_ACCESS_LEVEL + (LEVELS - len(context)) * PER_ACCESS_LEVEL
        features[start : start + len(rows)] = rows
    return features
