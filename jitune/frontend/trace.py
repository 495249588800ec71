"""trace: a Python function + argument specs -> graph IR."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from .. import dtypes
from ..errors import ArgumentError, UnsupportedOperation
from ..ir.graph import Array, Graph, GraphOp
from . import build
from .tracer import Tracer, as_node

Structure = Literal["single", "tuple", "list"]


@dataclasses.dataclass(frozen=True)
class ArgSpec:
    """What tracing needs to know of one argument: shape, dtype, element strides, and for a
    Python scalar its type (it then promotes weakly, as NumPy promotes Python scalars)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    strides: tuple[int, ...]
    weak: type | None = None


@dataclasses.dataclass(frozen=True)
class Traced:
    graph: Graph
    structure: Structure


def trace(fn: Callable[..., Any], specs: Sequence[ArgSpec]) -> Traced:
    """Run ``fn`` on tracers for ``specs`` and return the recorded graph."""
    inputs = tuple(
        Array(GraphOp.INPUT, (), spec.shape, spec.dtype, position)
        for position, spec in enumerate(specs)
    )
    tracers = [Tracer(node, spec.weak) for node, spec in zip(inputs, specs)]
    result = fn(*tracers)
    if isinstance(result, tuple):
        structure: Structure = "tuple"
        items = list(result)
    elif isinstance(result, list):
        structure, items = "list", list(result)
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
    if not outputs:
        raise ArgumentError(f"{name}: returned no arrays")
    return Traced(Graph(inputs, tuple(outputs)), structure)
