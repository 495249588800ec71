"""Integer-array indexing (``x[idx]``, ``x[rows, cols]``, ``x[:, idx]``, ``x[[0, -1]]``) as
a GATHER node with NumPy's rules: the index arrays broadcast together; their shape replaces the
indexed axes where those are adjacent in the key and leads the result where a slice, ``None``
or ``...`` separates them; an integer beside an index array is an index array of shape ();
negative values count from the end; an out-of-bounds value raises IndexError when the kernel
runs (``BinaryOp.CHECK_INDEX``). The result is a new array, never a view.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import IndexingError, UnsupportedOperation
from ..ir.graph import Array, Gather, GraphOp, ReduceOp, Reduction, broadcast_shapes
from . import build, state
from .context import located
from .indexing import slice_region

MAX_CONSTANT_INDEX = 1024
"""Largest index given as a Python list or NumPy array in the function's code (it becomes an
expression of the element's position); a larger one is passed as an argument."""


def is_advanced(key: Any) -> bool:
    """Whether ``key`` holds an index array (traced, a list or a NumPy array), which makes it
    NumPy's advanced indexing rather than basic."""
    from .tracer import Tracer

    items = key if isinstance(key, tuple) else (key,)
    return any(
        isinstance(item, (Tracer, list, np.ndarray)) and not _is_scalar_int(item) for item in items
    )


def _is_scalar_int(item: Any) -> bool:
    """A 0-d integer NumPy array is an integer to NumPy, even beside index arrays."""
    return isinstance(item, np.ndarray) and item.ndim == 0 and item.dtype.kind in "iu"


def _index_array(item: Any, shape: tuple[int, ...]) -> Array | np.ndarray:
    """One index array of the key: a traced array's node, or a constant's int64 values."""
    from .tracer import Tracer

    if isinstance(item, Tracer):
        if item.dtype.kind in "iu":
            return item.node
        if item.dtype.kind == "b":
            raise UnsupportedOperation(
                located(
                    f"indexing an array of shape {shape} with a boolean array of shape "
                    f"{item.shape} beside other indices: its result's shape depends on the "
                    "data (x[mask] with a mask of x's shape works in reductions and "
                    "assignments; or use np.where)"
                )
            )
        raise IndexingError(
            located(
                f"indexing an array of shape {shape} with a {item.dtype} array: arrays used "
                "as indices must be of integer (or boolean) type"
            )
        )
    values = np.asarray(item)
    if values.size == 0 and values.dtype.kind == "f":
        values = values.astype(np.int64)  # NumPy reads x[[]] as an empty integer index
    if values.dtype.kind == "b":
        raise UnsupportedOperation(
            located(
                f"indexing an array of shape {shape} with a constant boolean array: write "
                "the positions it selects as integers"
            )
        )
    if values.dtype.kind not in "iu":
        raise IndexingError(
            located(
                f"indexing an array of shape {shape} with {values.dtype} values: arrays used "
                "as indices must be of integer (or boolean) type"
            )
        )
    if values.size > MAX_CONSTANT_INDEX:
        raise UnsupportedOperation(
            located(
                f"indexing with a constant index array of {values.size} elements (more than "
                f"{MAX_CONSTANT_INDEX}): pass it to the kernel as an argument"
            )
        )
    return values.astype(np.int64)


def _parse(node: Array, key: Any) -> list[tuple[str, Any]]:
    """The key as entries ``("slice", s)``, ``("new", None)`` and ``("index", node or int)``,
    one per item, with ``...`` expanded and missing trailing axes as full slices."""
    items = list(key) if isinstance(key, tuple) else [key]
    if sum(item is Ellipsis for item in items) > 1:
        raise IndexingError(located("indexing: an index can only have a single ellipsis"))
    entries: list[tuple[str, Any]] = []
    for item in items:
        if item is None:
            entries.append(("new", None))
        elif item is Ellipsis:
            entries.append(("ellipsis", None))
        elif isinstance(item, slice):
            for bound in (item.start, item.stop, item.step):
                if not (bound is None or isinstance(bound, (int, np.integer))):
                    raise UnsupportedOperation(
                        located(f"indexing with slice {item}: bounds must be ints")
                    )
            entries.append(("slice", item))
        elif isinstance(item, (bool, np.bool_)):
            raise UnsupportedOperation(
                located(
                    f"indexing with the boolean scalar {bool(item)} beside index arrays "
                    f"(shape {node.shape}) is not supported"
                )
            )
        elif isinstance(item, (int, np.integer)) or _is_scalar_int(item):
            entries.append(("index", int(item)))
        else:
            entries.append(("index", _index_array(item, node.shape)))
    used = sum(kind in ("slice", "index") for kind, _ in entries)
    if used > node.ndim:
        raise IndexingError(
            located(f"indexing: too many indices for array of shape {node.shape}: {used} given")
        )
    fill = [("slice", slice(None))] * (node.ndim - used)
    at = next((k for k, (kind, _) in enumerate(entries) if kind == "ellipsis"), len(entries))
    return entries[:at] + fill + entries[at + 1 :]


def gather_index(node: Array, key: Any) -> Array:
    """The node of ``node[key]`` for a key with index arrays (see the module docstring)."""
    entries = _parse(node, key)
    positions = [k for k, (kind, _) in enumerate(entries) if kind == "index"]
    indices = [value for kind, value in entries if kind == "index"]
    shapes = [() if isinstance(v, int) else v.shape for v in indices]
    joint = broadcast_shapes(*shapes)
    if joint is None:
        raise IndexingError(
            located(
                f"indexing an array of shape {node.shape}: shape mismatch: index arrays "
                f"with shapes {', '.join(map(str, shapes))} could not be broadcast together"
            )
        )
    adjacent = positions == list(range(positions[0], positions[-1] + 1))
    starts, steps, counts = [], [], []
    axes: list[tuple[str, int]] = []
    shape: list[int] = [] if adjacent else list(joint)
    lead = None if adjacent else 0
    axis = taken = 0
    for kind, value in entries:
        if kind == "new":
            shape.append(1)
            continue
        extent = node.shape[axis]
        axis += 1
        if kind == "slice":
            start, step, count = slice_region(value, extent, node.shape)
            starts.append(start)
            steps.append(step)
            counts.append(count)
            axes.append(("axis", len(shape)))
            shape.append(count)
            continue
        if isinstance(value, int) or math.prod(joint):  # (NumPy: an empty array checks none)
            _check_static(value, extent, node.shape)
        if lead is None:
            lead = len(shape)
            shape.extend(joint)
        starts.append(0)
        steps.append(1)
        counts.append(extent)
        axes.append(("index", taken))
        taken += 1
    extents = tuple(node.shape[d] for d, (kind, _) in enumerate(axes) if kind == "index")
    if math.prod(joint) and 0 in extents:  # every value is out of bounds, as NumPy finds
        raise IndexingError(
            located(
                f"indexing: an index into an axis with size 0 is out of bounds (shape {node.shape})"
            )
        )
    assert lead is not None  # the key has at least one index
    result_shape = tuple(shape)
    sliced = build.slice_axes(node, starts, steps, counts)
    placed = [1] * lead + list(joint) + [1] * (len(result_shape) - lead - len(joint))
    nodes = [build.expand(_as_node(value), joint, "indexing") for value in indices]
    operands = [
        build.expand(build.reshape(value, tuple(placed)), result_shape, "indexing")
        for value in nodes
    ]
    where = located(
        f"integer-array indexing of an array of shape {node.shape} with index shapes "
        f"{', '.join(map(str, shapes))}"
    )
    arg = Gather(tuple(axes), where)
    gathered = Array(GraphOp.GATHER, (sliced, *operands), result_shape, node.dtype, arg)
    scope = state.current()
    if scope is not None and math.prod(joint) > 0:  # an empty index array has no value to check
        scope.gathers.append((gathered, index_check(nodes, joint, extents, where)))
    return gathered


def index_check(
    indices: list[Array], joint: tuple[int, ...], extents: tuple[int, ...], where: str
) -> Array:
    """A 0-d node whose evaluation checks every value of the index arrays against the
    extents they index, as NumPy checks them whatever the result is used for. The graph
    reads the gather's elements only where they are used (a sliced or overwritten result, or
    one never used, reads few or none), so the trace adds this node as a hidden output where
    the gather is not read whole (``trace._index_checks``)."""
    flags = build.expand(build.constant(False, np.dtype(bool)), extents, "indexing")
    arg = Gather(tuple(("index", j) for j in range(len(indices))), where)
    checked = Array(GraphOp.GATHER, (flags, *indices), joint, np.dtype(bool), arg)
    if not joint:  # 0-d index arrays: the gather is the check (a reduction needs an axis)
        return checked
    every = tuple(range(len(joint)))
    return Array(
        GraphOp.REDUCE, (checked,), (), np.dtype(bool), Reduction(ReduceOp.MAX, every, False)
    )


def _as_node(value: Array | np.ndarray | int) -> Array:
    """The int node of one index of the key: an integer, a constant array or a node."""
    if isinstance(value, int):
        return build.constant(value, np.dtype(np.int64))
    if isinstance(value, np.ndarray):
        return build.constant_array(value)
    return value


def _check_static(value: Array | np.ndarray | int, extent: int, shape: tuple[int, ...]) -> None:
    """A constant index (an integer, or an array written in the code) is checked now, as
    basic indexing checks an integer."""
    if isinstance(value, Array):
        return
    outside = np.asarray(value)[(value < -extent) | (value >= extent)]
    if outside.size:
        raise IndexingError(
            located(
                f"indexing: index {int(outside.flat[0])} is out of bounds for an axis with "
                f"size {extent} (shape {shape})"
            )
        )
