"""Compute IR: stages in index notation.

A :class:`Stage` computes one buffer::

    out[a0, a1, ...] = epilogue(reduce_{r0, r1, ...}(body))      (or out[...] = body)

where ``body`` and ``epilogue`` are :class:`~jitune.ir.expr.Expr` trees whose loads index their
buffers with affine (or div/mod) expressions of the axis variables, and ``epilogue`` reads the
reduced value as the variable :data:`ACC`. A contraction ``C = A @ B`` is the stage
``C[i, j] = sum_k A[i, k] * B[k, j]``; ``relu(A @ B + b)`` is the same stage with the epilogue
``max(ACC + b[j], 0)``.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np

from .expr import Expr, ExprOp, argument_text, digest, free_vars, loads
from .ops import BinaryOp, ReduceOp

if TYPE_CHECKING:
    from .loops import LoopProgram

ACC = "%acc"
"""Name of the variable through which an epilogue reads the reduced value."""

Role = Literal["input", "output", "temp", "local", "view"]


@dataclasses.dataclass(frozen=True)
class Axis:
    name: str
    extent: int


@dataclasses.dataclass(frozen=True)
class BufferDecl:
    """A buffer a program reads or writes. ``strides`` are in elements and may be 0 or negative.

    A ``view`` has no memory of its own: it names the elements of buffer ``view_of`` from
    element ``offset`` on with its own shape and strides. An assignment to part of an array
    whose old value nothing reads afterwards stores into a view of the old value's buffer (an
    update in place, ``lower/fuse.py``), and the new value is a view of all of that buffer:
    each name still has one value while it is read, but two names may share memory.
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    strides: tuple[int, ...]
    role: Role
    view_of: str | None = None
    offset: int = 0

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def memory_of(buffers: Sequence[BufferDecl]) -> dict[str, str]:
    """The buffer whose memory each buffer is: itself, or the one a view is of."""
    return {d.name: d.view_of or d.name for d in buffers}


_Layout = TypeVar("_Layout", bound="BufferLayout")


@dataclasses.dataclass(frozen=True)
class BufferLayout:
    """What running a program needs besides its arguments: the buffers it takes, after the
    inputs, are fresh arrays of ``allocations`` (shape, dtype); ``results`` are the buffer
    positions of its outputs; ``written`` the inputs it updates in place. Views are no
    buffers of the program: they point into the buffer they are of."""

    buffer_count: int
    allocations: tuple[tuple[tuple[int, ...], str], ...]
    results: tuple[int, ...]
    written: tuple[int, ...]

    @classmethod
    def of_loops(cls: type[_Layout], loops: LoopProgram) -> _Layout:
        return cls.of(loops.buffers, loops.outputs)

    @classmethod
    def of(cls: type[_Layout], buffers: Sequence[BufferDecl], outputs: Sequence[str]) -> _Layout:
        real = [d for d in buffers if d.view_of is None]
        position = {d.name: k for k, d in enumerate(real)}
        memory = memory_of(buffers)
        inputs = {d.name for d in real if d.role == "input"}
        return cls(
            len(real),
            tuple((d.shape, d.dtype.str) for d in real if d.role != "input"),
            tuple(position[memory[name]] for name in outputs),
            tuple(sorted({position[d.view_of] for d in buffers if d.view_of in inputs})),
        )


def contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """C-order element strides of ``shape``."""
    strides = []
    step = 1
    for extent in reversed(shape):
        strides.append(step)
        step *= max(extent, 1)
    return tuple(reversed(strides))


class StageKind(enum.Enum):
    ELEMENTWISE = "elementwise"
    REDUCTION = "reduction"
    CONTRACTION = "contraction"


@dataclasses.dataclass(frozen=True)
class Stage:
    out: str
    dtype: np.dtype
    axes: tuple[Axis, ...]
    body: Expr
    reduce_axes: tuple[Axis, ...] = ()
    reduce_op: ReduceOp | None = None
    epilogue: Expr | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(axis.extent for axis in self.axes)

    @property
    def kind(self) -> StageKind:
        if self.reduce_op is None:
            return StageKind.ELEMENTWISE
        is_product = self.body.op is ExprOp.BINARY and self.body.arg is BinaryOp.MUL
        if self.reduce_op is ReduceOp.SUM and is_product and self._reuses_a_factor():
            return StageKind.CONTRACTION
        return StageKind.REDUCTION

    def _reuses_a_factor(self) -> bool:
        """Whether some output axis indexes only one factor of the product, so the other
        factor is reused along it (the register tile exploits that). A sum of squares such as
        a row variance ``sum_r (x[i, r] - m[i]) * (x[i, r] - m[i])`` has no reuse: it is a
        reduction, not a contraction."""
        left, right = (free_vars(factor) for factor in self.body.src)
        if not (loads(self.body.src[0]) and loads(self.body.src[1])):
            return False
        return any((a.name in left) != (a.name in right) for a in self.axes if a.extent > 1)

    @property
    def acc_dtype(self) -> np.dtype:
        """dtype of the reduced value (before the epilogue)."""
        if self.reduce_op in (ReduceOp.ARGMAX, ReduceOp.ARGMIN):
            return np.dtype("int64")
        return self.body.dtype

    def reads(self) -> set[str]:
        """Names of the buffers this stage loads."""
        exprs = [self.body] + ([self.epilogue] if self.epilogue is not None else [])
        return {node.arg for e in exprs for node in loads(e)}

    def work(self) -> int:
        """Estimated scalar operations: output size times reduction size."""
        total = 1
        for axis in self.axes + self.reduce_axes:
            total *= axis.extent
        return total


@dataclasses.dataclass(frozen=True)
class ComputeProgram:
    """Stages in execution order over declared buffers.

    ``buffers`` lists the inputs first, in argument order, then temporaries and outputs.
    ``outputs`` names the buffers returned, in the order of the function's results.
    """

    buffers: tuple[BufferDecl, ...]
    stages: tuple[Stage, ...]
    outputs: tuple[str, ...]

    def buffer(self, name: str) -> BufferDecl:
        for decl in self.buffers:
            if decl.name == name:
                return decl
        raise KeyError(name)

    def __str__(self) -> str:
        from .printer import format_compute

        return format_compute(self)


def loop_nest_key(stage: Stage, buffers: dict[str, BufferDecl]) -> tuple[Any, ...]:
    """What the machine code of ``stage`` depends on, its buffers' names left out.

    Two stages with one key are the same loop nest over other buffers of the same layout (a
    stencil's time steps), which code generation emits once; the number of distinct keys
    estimates what compiling a program costs. The expressions enter as digests, with each
    loaded buffer named by the order of its first use.
    """
    order: dict[str, int] = {}
    memo: dict[int, bytes] = {}

    def text(node: Expr) -> str:
        if node.op is ExprOp.LOAD:
            return str(order.setdefault(node.arg, len(order)))
        return argument_text(node)

    body = digest(stage.body, text, memo)
    epilogue = b"" if stage.epilogue is None else digest(stage.epilogue, text, memo)
    layouts = tuple(
        (buffers[name].shape, buffers[name].strides, buffers[name].dtype.str)
        for name in [stage.out, *order]
    )
    return (
        body,
        epilogue,
        stage.dtype.str,
        tuple(axis.extent for axis in stage.axes),
        tuple(axis.extent for axis in stage.reduce_axes),
        stage.reduce_op,
        layouts,
    )
