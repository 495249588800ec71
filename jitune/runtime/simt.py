"""A GPU simulator for tests: runs GPU loop IR on the CPU with NumPy (slow; small shapes only).

Blocks run one after another; the threads of a block run in lockstep as the lanes of NumPy
arrays, so every statement executes for all threads before the next (``If`` masks lanes).
Lockstep execution would hide a missing barrier, so memory accesses are checked instead:
within a block, reading an element that another thread wrote since the last ``Barrier``, or
writing one that another thread read or wrote since then, raises :class:`RaceError`.

This is the oracle that lets CI check the GPU templates' indices, tails and barriers without a
GPU; ``tests/test_cuda_codegen.py`` compares its results with the reference evaluator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..ir.compute import BufferDecl
from ..ir.expr import Expr, ExprOp, linear_index
from ..ir.loops import (
    Alloc,
    Barrier,
    Block,
    BlockReduce,
    For,
    If,
    Kernel,
    LoopKind,
    LoopProgram,
    Stmt,
    Store,
)
from ..ir.ops import BinaryOp, ReduceOp, UnaryOp
from .interp import _BINARY, _UNARY


class RaceError(AssertionError):
    """Two threads of a block touched one element without a barrier between."""


_BINARY_SIM = {**_BINARY, BinaryOp.INDEX_DIV: np.floor_divide, BinaryOp.INDEX_MOD: np.remainder}
_REDUCE = {
    ReduceOp.SUM: np.add,
    ReduceOp.PROD: np.multiply,
    ReduceOp.MAX: np.maximum,
    ReduceOp.MIN: np.minimum,
}


class _Memory:
    """A flat buffer with per-element access tracking for race checks."""

    def __init__(self, data: np.ndarray, name: str, offset: int = 0) -> None:
        self.data = data
        self.name = name
        self.offset = offset  # flat index of element (0, ..., 0)
        self.writer = np.full(data.shape, -1, np.int64)
        self.reader = np.full(data.shape, -1, np.int64)  # -2: read by several threads

    def epoch(self) -> None:
        self.writer.fill(-1)
        self.reader.fill(-1)

    def read(self, index: np.ndarray, threads: np.ndarray) -> np.ndarray:
        index = index + self.offset
        if index.size:
            if index.min() < 0 or index.max() >= self.data.size:
                raise IndexError(f"{self.name}: index out of range")
            w = self.writer[index]
            if np.any((w >= 0) & (w != threads)):
                raise RaceError(f"{self.name}: read of an element another thread wrote")
            r = self.reader[index]
            self.reader[index] = np.where((r == -1) | (r == threads), threads, -2)
        return self.data[index]

    def write(self, index: np.ndarray, threads: np.ndarray, value: np.ndarray) -> None:
        index = index + self.offset
        if not index.size:
            return
        if index.min() < 0 or index.max() >= self.data.size:
            raise IndexError(f"{self.name}: index out of range")
        if len(np.unique(index)) != index.size:
            raise RaceError(f"{self.name}: two threads wrote one element")
        w, r = self.writer[index], self.reader[index]
        if np.any((w >= 0) & (w != threads)) or np.any((r == -2) | ((r >= 0) & (r != threads))):
            raise RaceError(f"{self.name}: write of an element another thread used")
        self.writer[index] = threads
        self.data[index] = value


class _Block:
    def __init__(self, sim: Simulator, kernel: Kernel, threads: int) -> None:
        self.sim = sim
        self.threads = threads
        self.lanes = np.arange(threads)
        self.env: dict[str, Any] = {}
        self.local: dict[str, np.ndarray] = {}
        self.shared: dict[str, _Memory] = {}

    # values are NumPy arrays of shape (threads,)
    def full(self, value: Any, dtype: np.dtype) -> np.ndarray:
        return np.full(self.threads, value, dtype=dtype)

    def expr(self, e: Expr, mask: np.ndarray) -> np.ndarray:
        op = e.op
        if op is ExprOp.VAR:
            value = self.env[e.arg]
            return value if isinstance(value, np.ndarray) else self.full(value, e.dtype)
        if op is ExprOp.CONST:
            return self.full(e.arg, e.dtype)
        if op is ExprOp.LOAD:
            return self.load(e, mask)
        args = [self.expr(s, mask) for s in e.src]
        with np.errstate(all="ignore"):
            if op is ExprOp.UNARY:
                out = _UNARY[e.arg](args[0])
                if e.arg is UnaryOp.RECIPROCAL and e.dtype.kind != "f":
                    out = np.where(args[0] == 0, 0, out)
            elif op is ExprOp.BINARY:
                a, b = args
                if e.arg in (BinaryOp.FLOORDIV, BinaryOp.MOD) and e.dtype.kind in "iu":
                    safe = np.where(b == 0, 1, b)
                    out = np.where(b == 0, 0, _BINARY_SIM[e.arg](a, safe))
                elif e.arg is BinaryOp.POW and e.dtype.kind in "iu":
                    out = np.where(b < 0, 0, np.power(a, np.maximum(b, 0)))
                else:
                    out = _BINARY_SIM[e.arg](a, b)
            elif op is ExprOp.SELECT:
                out = np.where(args[0], args[1], args[2])
            elif op is ExprOp.CAST:
                out = args[0].astype(e.dtype)
            else:
                raise NotImplementedError(op)
        return np.asarray(out).astype(e.dtype, copy=False)

    def flat(self, name: str, indices: tuple[Expr, ...]) -> Expr:
        if name in self.local or name in self.shared:
            return indices[0]
        return linear_index(indices, self.sim.decls[name].strides)

    def load(self, e: Expr, mask: np.ndarray) -> np.ndarray:
        name = e.arg
        index = self.expr(self.flat(name, e.src), mask)
        safe = np.where(mask, index, 0)
        if name in self.local:
            return self.local[name][self.lanes, safe]
        memory = self.shared.get(name) or self.sim.memory[name]
        value = np.zeros(self.threads, memory.data.dtype)
        value[mask] = memory.read(safe[mask], self.lanes[mask])
        return value.astype(e.dtype, copy=False)

    def store(self, s: Store, mask: np.ndarray) -> None:
        name = s.buffer
        value = self.expr(s.value, mask)
        index = self.expr(self.flat(name, s.indices), mask)
        if name in self.local:
            self.local[name][self.lanes[mask], index[mask]] = value[mask]
            return
        memory = self.shared.get(name) or self.sim.memory[name]
        memory.write(index[mask], self.lanes[mask], value[mask].astype(memory.data.dtype))

    def uniform(self, e: Expr, mask: np.ndarray) -> int:
        values = self.expr(e, mask)[mask]
        if values.size == 0:
            return 0
        if np.any(values != values[0]):
            raise NotImplementedError("loop bounds that differ between threads")
        return int(values[0])

    def run(self, s: Stmt, mask: np.ndarray) -> None:
        if not mask.any():
            return
        if isinstance(s, Block):
            for child in s.stmts:
                self.run(child, mask)
        elif isinstance(s, Store):
            self.store(s, mask)
        elif isinstance(s, If):
            cond = self.expr(s.cond, mask).astype(bool)
            self.run(s.then, mask & cond)
            if s.orelse is not None:
                self.run(s.orelse, mask & ~cond)
        elif isinstance(s, For):
            if s.kind is LoopKind.GPU_THREAD:
                start, stop = self.uniform(s.start, mask), self.uniform(s.stop, mask)
                self.env[s.var] = start + self.lanes
                self.run(s.body, mask & (start + self.lanes < stop))
                return
            if s.kind is LoopKind.GPU_BLOCK:
                raise NotImplementedError("nested GPU_BLOCK loops")
            start, stop = self.uniform(s.start, mask), self.uniform(s.stop, mask)
            for i in range(start, stop):
                self.env[s.var] = i
                self.run(s.body, mask)
        elif isinstance(s, Alloc):
            if s.scope == "shared":
                if s.buffer not in self.shared:
                    self.shared[s.buffer] = _Memory(np.zeros(s.size, s.dtype), s.buffer)
            else:
                self.local[s.buffer] = np.zeros((self.threads, s.size), s.dtype)
        elif isinstance(s, Barrier):
            if not mask.all():
                raise RaceError("a barrier that not every thread of the block reaches")
            for memory in [*self.shared.values(), *self.sim.memory.values()]:
                memory.epoch()
        elif isinstance(s, BlockReduce):
            if not mask.all():
                raise RaceError("a block reduction that not every thread reaches")
            values = self.local[s.buffer][:, 0]
            total = _REDUCE[s.op].reduce(values.astype(s.dtype))
            self.local[s.buffer][:, 0] = total
            for memory in [*self.shared.values(), *self.sim.memory.values()]:
                memory.epoch()
        else:
            raise TypeError(s)


class Simulator:
    """Runs a GPU :class:`LoopProgram` on NumPy arrays (one per buffer, in buffer order)."""

    def __init__(self, program: LoopProgram) -> None:
        self.program = program
        self.decls: Mapping[str, BufferDecl] = {d.name: d for d in program.buffers}
        self.memory: dict[str, _Memory] = {}

    def run(self, arrays: list[np.ndarray]) -> None:
        flats = []
        for decl, array in zip(self.program.buffers, arrays):
            array = np.asarray(array, dtype=decl.dtype)
            strides = tuple(s // array.itemsize for s in array.strides)
            if decl.shape != () and array.size and strides != decl.strides:
                raise ValueError(
                    f"{decl.name}: the simulator needs arrays with the strides compiled in"
                )
            # the memory the view spans, as a flat array; element (0, ...) at ``offset``
            low = sum(min(0, (n - 1) * s) for n, s in zip(array.shape, strides))
            high = sum(max(0, (n - 1) * s) for n, s in zip(array.shape, strides))
            flat = np.zeros(high - low + 1 if array.size else 1, decl.dtype)
            if array.size:
                view = np.lib.stride_tricks.as_strided(
                    flat[-low:], array.shape, tuple(s * array.itemsize for s in strides)
                )
                view[...] = array
            flats.append(flat)
            self.memory[decl.name] = _Memory(flat, decl.name, -low)
        for kernel in self.program.kernels:
            self.kernel(kernel)
        for decl, array, flat in zip(self.program.buffers, arrays, flats):
            if decl.role != "input" and array.size:
                array.reshape(-1)[...] = flat[: array.size]

    def kernel(self, kernel: Kernel) -> None:
        assert kernel.launch is not None, "not a GPU kernel"
        (gx, gy, gz), (tx, ty, tz) = kernel.launch
        assert gy == gz == ty == tz == 1, "the simulator runs 1-D launches"
        outer = kernel.body
        assert isinstance(outer, For) and outer.kind is LoopKind.GPU_BLOCK
        for b in range(gx):
            block = _Block(self, kernel, tx)
            start = int(outer.start.arg)
            if start + b >= int(outer.stop.arg):
                continue
            block.env[outer.var] = start + b
            for memory in self.memory.values():
                memory.epoch()
            block.run(outer.body, np.ones(tx, bool))
