"""trace: a Python function + argument specs -> graph IR."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from .. import dtypes
from ..errors import ArgumentError, JituneError, UnsupportedOperation
from ..ir.graph import Array, Graph, GraphOp, toposort
from . import build, creation, state
from .tracer import Tracer, as_node, layout_of

Structure = Literal["single", "tuple", "list", "none"]


@dataclasses.dataclass(frozen=True)
class ArgSpec:
    """What tracing needs to know of one argument: shape, dtype, element strides, and for a
    Python scalar its type (it then promotes weakly, as NumPy promotes Python scalars)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    strides: tuple[int, ...]
    weak: type | None = None
    scalar: bool = False  # a Python or NumPy scalar: immutable, so never written back


@dataclasses.dataclass(frozen=True)
class Traced:
    """A traced function: its graph, how its results are returned, and ``writes``: for each
    argument it updated in place, (argument position, index of its new value among the
    graph's outputs). The graph's outputs are the results, then those new values, then
    ``checks`` hidden 0-d outputs that check index arrays (see ``_index_checks``)."""

    graph: Graph
    structure: Structure
    writes: tuple[tuple[int, int], ...] = ()
    checks: int = 0


class NeedsStatic(Exception):  # noqa: N818 - a signal to the caller, not an error
    """The trace used the value of scalar arguments in Python (a shape, a loop count, an
    axis): ``inputs`` are their positions among the traced arguments; trace again with
    them static."""

    def __init__(self, inputs: set[int]) -> None:
        super().__init__(sorted(inputs))
        self.inputs = inputs


def trace(
    fn: Callable[..., Any],
    specs: Sequence[ArgSpec],
    statics: dict[int, Any] | None = None,
    call: Callable[[Callable[..., Any], Sequence[Any]], Any] | None = None,
) -> Traced:
    """Run ``fn`` on tracers for ``specs`` and return the recorded graph.

    ``statics`` are arguments passed as they are, by their position in the call (the traced
    ones fill the other positions, in order); ``call(fn, arguments)`` calls ``fn`` (default:
    positionally). Raises :class:`NeedsStatic` when a scalar argument's value was used in
    Python, and the jitune error NumPy's own code turned into one of its own exceptions.
    """
    statics = statics or {}
    inputs = tuple(
        Array(GraphOp.INPUT, (), spec.shape, spec.dtype, position)
        for position, spec in enumerate(specs)
    )
    with state.tracing() as scope, creation.creating():
        scope.scalars = {k for k, spec in enumerate(specs) if spec.scalar}
        tracers = [_input_tracer(node, spec) for node, spec in zip(inputs, specs)]
        arguments: list[Any] = []
        traced = iter(tracers)
        for position in range(len(specs) + len(statics)):
            arguments.append(statics[position] if position in statics else next(traced))
        try:
            result = call(fn, arguments) if call is not None else fn(*arguments)
        except Exception as exc:
            if scope.static:
                raise NeedsStatic(scope.static) from exc
            if scope.error is not None and not isinstance(exc, JituneError):
                # NumPy called back into a tracer, which raised, and replaced the error
                raise scope.error from exc
            raise
        if scope.static:  # a caught error does not undo the need
            raise NeedsStatic(scope.static)
        return _finish(fn, inputs, tracers, result, scope.gathers)


def _input_tracer(node: Array, spec: ArgSpec) -> Tracer:
    """The tracer of one argument: an array laid out as the argument is (its views and
    reshapes are views exactly where NumPy's are); a scalar is immutable."""
    if spec.scalar:
        return Tracer(node, spec.weak, mutable=False)
    return Tracer(node, layout=layout_of(spec.shape, spec.dtype, spec.strides), mutable=True)


def _finish(
    fn: Callable[..., Any],
    inputs: tuple[Array, ...],
    tracers: list[Tracer],
    result: Any,
    gathers: Sequence[tuple[Array, Array]] = (),
) -> Traced:
    """The graph of a finished trace: the results, then the new value of every argument
    the function updated in place (written back into the caller's array after the call)."""
    written = tuple(
        (position, tracer.node)
        for position, tracer in enumerate(tracers)
        if tracer.node is not inputs[position]
    )
    if isinstance(result, tuple):
        structure: Structure = "tuple"
        items = list(result)
    elif isinstance(result, list):
        structure, items = "list", list(result)
    elif result is None and written:
        structure, items = "none", []  # a function that only updates its arguments
    else:
        structure, items = "single", [result]
    name = getattr(fn, "__name__", "kernel")
    outputs = []
    for position, item in enumerate(items):
        if item is None:
            raise UnsupportedOperation(f"{name}: result {position} is None; return arrays")
        node = as_node(item, f"{name}: result {position}")
        if isinstance(node, build.WeakInput):
            node = node.node
        elif not isinstance(node, Array):
            node = build.constant(node, np.result_type(node))
        dtypes.check_supported(node.dtype, f"{name}: result {position}")
        outputs.append(node)
    if not outputs and not written:
        raise ArgumentError(f"{name}: returned no arrays")
    writes = tuple((position, len(outputs) + k) for k, (position, _) in enumerate(written))
    outputs += [node for _, node in written]
    checks = _index_checks(outputs, gathers)
    graph = Graph(inputs, tuple(outputs + checks), writes)
    return Traced(graph, structure, writes, len(checks))


# Ops whose every element reads every element of each operand (for UPDATE and GATHER, of
# some operands: see _reads_whole)
_WHOLE_READERS = frozenset(
    {
        GraphOp.UNARY,
        GraphOp.BINARY,
        GraphOp.WHERE,  # the compiled select evaluates both branches
        GraphOp.CAST,
        GraphOp.REDUCE,
        GraphOp.CONTRACT,
        GraphOp.PERMUTE,
        GraphOp.RESHAPE,
        GraphOp.EXPAND,
    }
)


def _reads_whole(user: Array, operand: int) -> bool:
    """Whether evaluating all of ``user`` reads all of its operand ``operand``."""
    if user.op in _WHOLE_READERS:
        return True
    if user.op is GraphOp.UPDATE:
        return operand == 1  # the stored value; the old value is read outside the region
    if user.op is GraphOp.GATHER:
        return operand > 0  # the index arrays; the base only where they point
    return False


def _index_checks(outputs: list[Array], gathers: Sequence[tuple[Array, Array]]) -> list[Array]:
    """The checks of the integer-array indexings whose elements the graph does not all
    evaluate: NumPy checks every index value (and raises IndexError) even where the result is
    sliced, partly overwritten or unused, while the compiled code checks an index only where
    it reads through it."""
    if not gathers:
        return []
    whole = {id(node) for node in outputs}
    for node in reversed(toposort(outputs)):  # every user before its operands
        if id(node) in whole:
            for position, source in enumerate(node.src):
                if _reads_whole(node, position):
                    whole.add(id(source))
    # an empty result reads no index even when whole, while its index arrays may have values
    return [check for gather, check in gathers if id(gather) not in whole or gather.size == 0]
