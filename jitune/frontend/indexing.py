"""Basic indexing (``x[1:5, ::-1, None, 3, ...]``) with constant bounds."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import IndexingError, ShapeError, UnsupportedOperation
from ..ir.graph import Array
from . import build
from .context import located, require_static


def expand_key(key: Any, ndim: int, shape: tuple[int, ...]) -> list[Any]:
    """``key`` as one item per axis (``...`` expanded, missing axes as ``:``), with ``None``
    items kept; raises for keys that are not basic indexing with constants."""
    items = list(key) if isinstance(key, tuple) else [key]
    require_static(items)
    for item in items:
        if isinstance(item, (bool, np.bool_)):
            # NumPy reads a bool scalar as a 0-d boolean mask (advanced indexing: x[True]
            # adds an axis, x[False] empties it), not as the integer 1 or 0.
            raise UnsupportedOperation(
                located(
                    f"indexing with the boolean scalar {bool(item)} (shape {shape}) is "
                    "advanced indexing, which jitune does not support"
                )
            )
        if not (item is None or item is Ellipsis or isinstance(item, (int, np.integer, slice))):
            raise UnsupportedOperation(
                located(
                    f"indexing with {type(item).__name__} (shape {shape}): only basic indexing "
                    "with constant ints, slices, None and ... is supported"
                )
            )
        if isinstance(item, slice) and not all(
            v is None or isinstance(v, (int, np.integer))
            for v in (item.start, item.stop, item.step)
        ):
            raise UnsupportedOperation(located(f"indexing with slice {item}: bounds must be ints"))
    if sum(item is Ellipsis for item in items) > 1:
        raise ShapeError(located("indexing: an index can only have a single ellipsis"))
    used = sum(item is not None and item is not Ellipsis for item in items)
    if used > ndim:
        raise ShapeError(
            located(f"indexing: too many indices for array of shape {shape}: {used} given")
        )
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items[at : at + 1] = [slice(None)] * (ndim - used)
    else:
        items += [slice(None)] * (ndim - used)
    return items


def slice_region(item: slice, extent: int, shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(start, step, count) of the elements ``item`` selects on an axis of ``extent`` (start
    0 where it selects none); a zero step is a ShapeError, as NumPy's ValueError."""
    if item.step is not None and int(item.step) == 0:
        raise ShapeError(located(f"indexing: slice step cannot be zero (shape {shape})"))
    start, stop, step = item.indices(extent)
    count = len(range(start, stop, step))
    return (start if count else 0), step, count


def basic_index(node: Array, key: Any) -> Array:
    """The node for ``node[key]``; raises for advanced indexing or out-of-range ints."""
    items = expand_key(key, node.ndim, node.shape)
    starts, steps, counts, final_shape = [], [], [], []
    axis = 0
    for item in items:
        if item is None:
            final_shape.append(1)
            continue
        extent = node.shape[axis]
        if isinstance(item, slice):
            start, step, count = slice_region(item, extent, node.shape)
            starts.append(start)
            steps.append(step)
            counts.append(count)
            final_shape.append(count)
        else:
            index = int(item)
            if not -extent <= index < extent:
                raise IndexingError(
                    located(
                        f"indexing: index {index} is out of bounds for axis {axis} "
                        f"with size {extent} (shape {node.shape})"
                    )
                )
            starts.append(index % extent)
            steps.append(1)
            counts.append(1)
        axis += 1
    sliced = build.slice_axes(node, starts, steps, counts)
    return build.reshape(sliced, tuple(final_shape))
