"""Loop IR: the imperative program that code generators walk.

Statements are :class:`For` (with a :class:`LoopKind`), :class:`Store`, :class:`If`,
:class:`Block` and :class:`Alloc` (scratch buffers such as register tiles); values are
:class:`~jitune.ir.expr.Expr` trees. A :class:`Kernel` is one function: if its outermost
statement is a ``PARALLEL`` loop, the runtime splits that loop's range across threads.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Union

import numpy as np

from .compute import BufferDecl
from .expr import Expr
from .ops import ReduceOp


class LoopKind(enum.Enum):
    SERIAL = "serial"
    PARALLEL = "parallel"  # only as a kernel's outermost loop, starting at 0
    VECTORIZED = "vectorized"  # constant extent; the body runs once on vectors of lanes
    UNROLLED = "unrolled"  # constant extent; the body is repeated
    # GPU: ``var = start + index`` of the block (thread) along the loop's ``axis`` ("x", "y",
    # "z"); indices past ``stop`` skip the body. The kernel's ``launch`` gives the dimensions.
    GPU_BLOCK = "gpu_block"
    GPU_THREAD = "gpu_thread"


@dataclasses.dataclass(frozen=True)
class For:
    var: str
    start: Expr
    stop: Expr
    kind: LoopKind
    body: Stmt
    axis: str = ""  # GPU_BLOCK / GPU_THREAD loops: "x", "y" or "z"


@dataclasses.dataclass(frozen=True)
class Store:
    buffer: str
    indices: tuple[Expr, ...]
    value: Expr


@dataclasses.dataclass(frozen=True)
class If:
    cond: Expr
    then: Stmt
    orelse: Stmt | None = None


@dataclasses.dataclass(frozen=True)
class Block:
    stmts: tuple[Stmt, ...]


@dataclasses.dataclass(frozen=True)
class Alloc:
    """Scratch storage private to one iteration of the enclosing loops (registers, stack).

    ``scope`` "shared" (GPUs) is one buffer per block, which all its threads see.
    """

    buffer: str
    dtype: np.dtype
    size: int
    scope: str = "local"  # "local" (registers / stack) or "shared" (a GPU block's memory)


@dataclasses.dataclass(frozen=True)
class Barrier:
    """GPU: every thread of the block waits here; shared and global writes before it are
    visible to the block's threads after it."""


@dataclasses.dataclass(frozen=True)
class BlockReduce:
    """GPU: combine ``buffer[0]`` (a local scalar) of every thread of the block with ``op``
    (a ReduceOp: sum, prod, max, min); afterwards each thread's ``buffer[0]`` holds the result.

    ``threads`` is the block size. Code generators expand it into warp shuffles and a combine
    of the warps' results through shared memory; it contains the barriers it needs.
    """

    buffer: str
    op: ReduceOp
    dtype: np.dtype
    threads: int


Stmt = Union[For, Store, If, Block, Alloc, Barrier, BlockReduce]  # noqa: UP007 - runtime alias


@dataclasses.dataclass(frozen=True)
class Kernel:
    name: str
    body: Stmt
    parallel: bool  # the runtime may split the outermost (PARALLEL) loop across threads
    work: int  # estimated scalar operations, to decide whether threads pay
    launch: tuple[tuple[int, int, int], tuple[int, int, int]] | None = None
    """GPU kernels: (grid, block) dimensions, from the body's GPU_BLOCK / GPU_THREAD loops."""
    min_blocks: int = 0
    """GPU kernels: blocks that should fit on one multiprocessor at once (caps registers per
    thread; 0: no request)."""


@dataclasses.dataclass(frozen=True)
class LoopProgram:
    buffers: tuple[BufferDecl, ...]
    kernels: tuple[Kernel, ...]
    outputs: tuple[str, ...]

    def __str__(self) -> str:
        from .printer import format_loops

        return format_loops(self)


def block(*stmts: Stmt | None) -> Stmt:
    """A block of the non-None statements, flattened; a single statement stands alone."""
    flat: list[Stmt] = []
    for stmt in stmts:
        if stmt is None:
            continue
        if isinstance(stmt, Block):
            flat.extend(stmt.stmts)
        else:
            flat.append(stmt)
    return flat[0] if len(flat) == 1 else Block(tuple(flat))


def parallel_extent(kernel: Kernel) -> Expr | None:
    """The stop of the kernel's outermost PARALLEL loop, or None if it has none."""
    body = kernel.body
    if isinstance(body, For) and body.kind is LoopKind.PARALLEL:
        return body.stop
    return None
