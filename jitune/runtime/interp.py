"""Reference evaluator: runs graph IR with NumPy. It is the oracle for tests and the tuner."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import CompileError, DomainError, IndexingError
from ..ir.graph import VIEWS, Array, BinaryOp, Graph, GraphOp, ReduceOp, UnaryOp

_UNARY: dict[UnaryOp, Callable[[np.ndarray], np.ndarray]] = {
    UnaryOp.NEG: np.negative,
    UnaryOp.ABS: np.absolute,
    UnaryOp.EXP: np.exp,
    UnaryOp.LOG: np.log,
    UnaryOp.LOG1P: np.log1p,
    UnaryOp.EXPM1: np.expm1,
    UnaryOp.SQRT: np.sqrt,
    UnaryOp.TANH: np.tanh,
    UnaryOp.SIN: np.sin,
    UnaryOp.COS: np.cos,
    UnaryOp.FLOOR: np.floor,
    UnaryOp.CEIL: np.ceil,
    UnaryOp.SIGN: np.sign,
    UnaryOp.RECIPROCAL: np.reciprocal,
    UnaryOp.NOT: np.logical_not,
    UnaryOp.INVERT: np.invert,
    UnaryOp.ISNAN: np.isnan,
}

_BINARY: dict[BinaryOp, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    BinaryOp.ADD: np.add,
    BinaryOp.SUB: np.subtract,
    BinaryOp.MUL: np.multiply,
    BinaryOp.TRUEDIV: np.true_divide,
    BinaryOp.FLOORDIV: np.floor_divide,
    BinaryOp.MOD: np.remainder,
    BinaryOp.POW: np.power,
    BinaryOp.MAX: np.maximum,
    BinaryOp.MIN: np.minimum,
    BinaryOp.EQ: np.equal,
    BinaryOp.NE: np.not_equal,
    BinaryOp.LT: np.less,
    BinaryOp.LE: np.less_equal,
    BinaryOp.GT: np.greater,
    BinaryOp.GE: np.greater_equal,
    BinaryOp.AND: np.bitwise_and,
    BinaryOp.OR: np.bitwise_or,
    BinaryOp.XOR: np.bitwise_xor,
    BinaryOp.ATAN2: np.arctan2,
}

_REDUCE: dict[ReduceOp, Callable[..., np.ndarray]] = {
    ReduceOp.SUM: np.sum,
    ReduceOp.PROD: np.prod,
    ReduceOp.MAX: np.max,
    ReduceOp.MIN: np.min,
}


def _reduce(node: Array, x: np.ndarray) -> np.ndarray:
    r = node.arg
    if r.op in (ReduceOp.ARGMAX, ReduceOp.ARGMIN):
        fn = np.argmax if r.op is ReduceOp.ARGMAX else np.argmin
        if len(r.axes) == 1 and x.ndim > 1:
            return fn(x, axis=r.axes[0], keepdims=r.keepdims)
        return np.asarray(fn(x)).reshape(node.shape)
    if r.op in (ReduceOp.MAX, ReduceOp.MIN):  # np.max/np.min take no dtype: cast first
        return _REDUCE[r.op](x.astype(node.dtype, copy=False), axis=r.axes, keepdims=r.keepdims)
    return _REDUCE[r.op](x, axis=r.axes, keepdims=r.keepdims, dtype=node.dtype)


def _contract(node: Array, operands: Sequence[np.ndarray]) -> np.ndarray:
    sizes: dict[str, int] = {}
    for letters, x in zip(node.arg.inputs, operands):
        for letter, extent in zip(letters, x.shape):
            if sizes.get(letter, 1) == 1:
                sizes[letter] = extent
    full = [
        np.broadcast_to(x, tuple(sizes[c] for c in letters))
        for letters, x in zip(node.arg.inputs, operands)
    ]
    return np.einsum(node.arg.spec(), *full)


def _region(arg: Sequence[tuple[int, int]], counts: Sequence[int]) -> tuple[slice, ...]:
    """Slices selecting ``start + step * k`` for ``k < count`` on each axis."""
    return tuple(
        slice(start, start + step * count if start + step * count >= 0 else None, step)
        for (start, step), count in zip(arg, counts)
    )


def _slice(node: Array, x: np.ndarray) -> np.ndarray:
    return x[_region(node.arg, node.shape)]


def _gather(node: Array, values: Sequence[np.ndarray]) -> np.ndarray:
    """NumPy's integer-array indexing of ``values[0]``: one index array of the output's shape
    per base axis (an ``("axis", k)`` axis reads at the output's index along ``k``)."""
    index: list[np.ndarray] = []
    for kind, k in node.arg.axes:
        if kind == "index":
            index.append(values[1 + k])
        else:
            shape = [1] * len(node.shape)
            shape[k] = node.shape[k]
            index.append(np.arange(node.shape[k]).reshape(shape))
    try:
        return values[0][tuple(index)]
    except IndexError as exc:  # the message of an out-of-bounds index, as the compiled code's
        raise IndexingError(f"{exc}: {node.arg.where}") from None


def _evaluate_node(node: Array, values: list[np.ndarray], args: Sequence[Any]) -> np.ndarray:
    op = node.op
    if op is GraphOp.INPUT:
        return np.asarray(args[node.arg])
    if op is GraphOp.CONST:
        return np.asarray(node.arg, dtype=node.dtype)
    if op is GraphOp.UNARY:
        return _UNARY[node.arg](values[0])
    if op is GraphOp.BINARY:
        return _BINARY[node.arg](values[0], values[1])
    if op is GraphOp.WHERE:
        return np.where(values[0], values[1], values[2])
    if op is GraphOp.CAST:
        return values[0].astype(node.dtype)
    if op is GraphOp.REDUCE:
        return _reduce(node, values[0])
    if op is GraphOp.CONTRACT:
        return _contract(node, values)
    if op is GraphOp.PERMUTE:
        return np.transpose(values[0], node.arg)
    if op is GraphOp.RESHAPE:
        return np.reshape(values[0], node.shape)
    if op is GraphOp.EXPAND:
        return np.broadcast_to(values[0], node.shape)
    if op is GraphOp.SLICE:
        return _slice(node, values[0])
    if op is GraphOp.IOTA:
        shape = [1] * len(node.shape)
        shape[node.arg] = node.shape[node.arg]
        return np.broadcast_to(np.arange(node.shape[node.arg]).reshape(shape), node.shape)
    if op is GraphOp.GATHER:
        return _gather(node, values)
    if op is GraphOp.UPDATE:
        out = np.array(values[0], copy=True)
        out[_region(node.arg, values[1].shape)] = values[1]
        return out
    raise NotImplementedError(op)


def evaluate(
    graph: Graph, args: Sequence[Any], into: Sequence[np.ndarray] | None = None
) -> list[np.ndarray]:
    """Evaluate ``graph`` on ``args`` with NumPy; returns fresh arrays, one per output, or
    writes them into the arrays of ``into`` (and returns those).

    A value is dropped after its last use, and an update whose old value nothing else
    reads (nor any live view of it) is written into that value's array instead of a copy:
    a chain of element updates costs one array, not one per update.
    """
    nodes = list(graph.nodes())
    uses: dict[int, int] = {}
    for node in nodes:
        for source in node.src:
            uses[id(source)] = uses.get(id(source), 0) + 1
    for out in graph.outputs:
        uses[id(out)] = uses.get(id(out), 0) + 1
    computed: dict[int, np.ndarray] = {}
    root: dict[int, int] = {}  # node -> the node whose array its value may share
    sharing: dict[int, int] = {}  # root -> live values that may share its array
    owned: set[int] = set()  # nodes whose array this evaluation made by copying
    with np.errstate(all="ignore"):
        for node in nodes:
            operands = [computed[id(s)] for s in node.src]
            if node.op is GraphOp.UPDATE and _writable(node.src[0], uses, sharing, owned):
                value = operands[0]  # the old value dies here: update its array in place
                value[_region(node.arg, operands[1].shape)] = operands[1]
            else:
                value = np.asarray(_evaluate_node(node, operands, args))
                if value.dtype != node.dtype:
                    value = value.astype(node.dtype)
            if node.op is GraphOp.UPDATE:
                owned.add(id(node))
            base = root[id(node.src[0])] if node.op in VIEWS else id(node)
            root[id(node)] = base
            sharing[base] = sharing.get(base, 0) + 1
            computed[id(node)] = value
            for source in node.src:
                uses[id(source)] -= 1
                if uses[id(source)] == 0:
                    del computed[id(source)]
                    sharing[root[id(source)]] -= 1
    if into is None:
        return [np.array(computed[id(node)], copy=True) for node in graph.outputs]
    for target, node in zip(into, graph.outputs):
        target[...] = computed[id(node)]
    return list(into)


class GraphProgram:
    """A program that runs its graph on this evaluator rather than compiled code: the tier
    of kernels whose compiling would cost more than it can repay (see ``docs/env.md``,
    ``JITUNE_MAX_STAGES``). It takes what a compiled program takes: the inputs, then one
    array per output to write."""

    __slots__ = ("graph", "input_count")

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.input_count = len(graph.inputs)

    def launch(self, *arrays: Any) -> None:
        inputs, outputs = arrays[: self.input_count], arrays[self.input_count :]
        try:
            evaluate(self.graph, inputs, outputs)
        except IndexingError:  # an index array's element out of bounds, as NumPy refuses it
            raise
        except ValueError as exc:
            if "negative integer powers" in str(exc):  # NumPy refuses the values, as it would
                raise DomainError(f"np.power: {exc}") from None
            raise CompileError(  # a graph that traced is valid: anything else is jitune's bug
                f"jitune failed running a kernel uncompiled: {exc} (a jitune bug; please report it)"
            ) from exc


def _writable(old: Array, uses: dict[int, int], sharing: dict[int, int], owned: set[int]) -> bool:
    """Whether the array of ``old`` may take an update in place: this evaluation made it,
    this is its last use, and no other live value (a view, or the update's own new values)
    shares it."""
    return id(old) in owned and uses[id(old)] == 1 and sharing.get(id(old), 0) == 1
