"""Graph IR: whole-array operations, as traced from the user's NumPy code.

Every node has a concrete shape and dtype (tracing happens per call signature). Elementwise
nodes always see operands of their own shape: the tracer inserts explicit ``EXPAND`` nodes for
broadcasting, so lowering and the reference evaluator never re-derive broadcasting rules.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from .node import Node
from .ops import BinaryOp, ReduceOp, UnaryOp


class GraphOp(enum.Enum):
    INPUT = "input"  # arg: argument position
    CONST = "const"  # arg: Python scalar value; shape ()
    UNARY = "unary"  # arg: UnaryOp
    BINARY = "binary"  # arg: BinaryOp
    WHERE = "where"  # src: (condition, if_true, if_false)
    CAST = "cast"  # dtype: the new dtype
    REDUCE = "reduce"  # arg: Reduction
    CONTRACT = "contract"  # arg: Contraction (an einsum over the operands)
    PERMUTE = "permute"  # arg: axis permutation
    RESHAPE = "reshape"  # shape: the new shape (same size)
    EXPAND = "expand"  # shape: NumPy broadcast of src to this shape
    SLICE = "slice"  # arg: tuple of (start, step) per axis; shape gives the counts
    # src: (base, value); arg: (start, step) per axis: the base with value[k] stored at
    # base[start + step * k] (an assignment to part of an array, as a new value)
    UPDATE = "update"
    IOTA = "iota"  # arg: axis; the int64 index along that axis (np.arange, np.eye)
    # src: (base, index...), each index an integer array of the gather's shape; arg: Gather
    GATHER = "gather"


VIEWS = frozenset({GraphOp.PERMUTE, GraphOp.RESHAPE, GraphOp.EXPAND, GraphOp.SLICE})


@dataclasses.dataclass(frozen=True)
class Reduction:
    op: ReduceOp
    axes: tuple[int, ...]  # sorted, non-negative
    keepdims: bool


@dataclasses.dataclass(frozen=True)
class Gather:
    """How a GATHER reads its base (NumPy's integer-array indexing, ``x[idx]``): per axis
    of the base, ``("index", j)`` reads it at the value of index operand ``j`` (``src[1 +
    j]``, read at the output element; negative values count from the end) and ``("axis",
    k)`` at the output's index along axis ``k``. ``where`` (what the expression was and on
    which line) is for the run-time error of an out-of-bounds index: it is not part of the
    node's identity, so equal computations on other lines share a compiled kernel."""

    axes: tuple[tuple[str, int], ...]
    where: str = dataclasses.field(default="", compare=False, repr=False)


@dataclasses.dataclass(frozen=True)
class Contraction:
    """``out[out_subscripts] = sum over other letters of prod operands[in_subscripts]``.

    An operand axis of extent 1 whose letter has a larger extent elsewhere broadcasts
    (this is how ``matmul`` broadcasts batch axes).
    """

    inputs: tuple[str, ...]
    output: str

    def spec(self) -> str:
        return ",".join(self.inputs) + "->" + self.output


@dataclasses.dataclass(frozen=True, eq=False)
class Array(Node):
    """One graph IR node: an array-valued operation on other nodes."""

    op: GraphOp
    src: tuple[Array, ...]
    shape: tuple[int, ...]
    dtype: np.dtype
    arg: Any = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    # Graph nodes are compared by identity: a traced graph can be thousands of ops deep, and
    # a structural hash would recurse through all of them. Structural identity of whole
    # graphs is ir/key.py's job.
    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other

    def __repr__(self) -> str:
        from .printer import format_graph

        return format_graph([self])


@dataclasses.dataclass(frozen=True)
class Graph:
    """A traced function: its input placeholders and output nodes. ``writes`` pairs an
    input's position with the index of the output that is its new value, for each argument
    the function updates in place (the caller's array receives that value)."""

    inputs: tuple[Array, ...]
    outputs: tuple[Array, ...]
    writes: tuple[tuple[int, int], ...] = ()

    def nodes(self) -> list[Array]:
        """All nodes reachable from the outputs, operands before users."""
        return toposort(self.outputs)

    def __str__(self) -> str:
        from .printer import format_graph

        return format_graph(self.outputs)


def toposort(roots: tuple[Array, ...] | list[Array]) -> list[Array]:
    """Nodes reachable from ``roots`` in an order where operands precede their users."""
    order: list[Array] = []
    seen: set[int] = set()

    def visit(node: Array) -> None:
        stack: list[tuple[Array, Iterator[Array]]] = [(node, iter(node.src))]
        seen.add(id(node))
        while stack:
            current, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                order.append(current)
            elif id(child) not in seen:
                seen.add(id(child))
                stack.append((child, iter(child.src)))

    for root in roots:
        if id(root) not in seen:
            visit(root)
    return order


def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...] | None:
    """NumPy's broadcast of ``shapes``, or None if they are incompatible."""
    ndim = max((len(s) for s in shapes), default=0)
    result = []
    for axis in range(ndim):
        extent = 1
        for shape in shapes:
            offset = axis - (ndim - len(shape))
            if offset < 0:
                continue
            d = shape[offset]
            if d != 1:
                if extent not in (1, d):
                    return None
                extent = d
        result.append(extent)
    return tuple(result)


__all__ = [
    "Array",
    "BinaryOp",
    "Contraction",
    "Graph",
    "Gather",
    "GraphOp",
    "ReduceOp",
    "Reduction",
    "UnaryOp",
    "VIEWS",
    "broadcast_shapes",
    "toposort",
]
