"""The dtypes jitune compiles, and NumPy's rules for the dtypes of results.

Result dtypes are not re-implemented: they are asked of NumPy itself by running the operation on
empty arrays of the operand dtypes (Python scalars stay Python scalars, so NumPy's "weak scalar"
promotion applies). The answers are cached, so each question costs one NumPy call per process.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import DTypeError

SUPPORTED = tuple(np.dtype(name) for name in ("bool", "int32", "int64", "float32", "float64"))
"""Dtypes a kernel can read and write."""


def check_supported(dtype: np.dtype, what: str) -> np.dtype:
    """Return ``dtype`` if jitune can compile it; raise :class:`DTypeError` naming ``what``."""
    dtype = np.dtype(dtype)
    if dtype in SUPPORTED:
        return dtype
    raise DTypeError(
        f"{what}: dtype {dtype} is not supported by jitune "
        f"(supported: {', '.join(d.name for d in SUPPORTED)})"
    )


def is_float(dtype: np.dtype) -> bool:
    return np.dtype(dtype).kind == "f"


def is_int(dtype: np.dtype) -> bool:
    return np.dtype(dtype).kind in "iu"


def is_bool(dtype: np.dtype) -> bool:
    return np.dtype(dtype).kind == "b"


class WeakScalar:
    """Marks an operand that is a Python scalar (NumPy promotes it 'weakly')."""

    __slots__ = ("kind",)

    def __init__(self, kind: type) -> None:
        self.kind = kind


def _example(operand: np.dtype | type) -> Any:
    """An empty array of a dtype, or a Python scalar of a Python type (a weak scalar)."""
    if isinstance(operand, type):
        return operand(1)
    return np.empty(0, dtype=operand)


@functools.lru_cache(maxsize=4096)
def _probe(fn: Callable[..., Any], operands: tuple[Any, ...]) -> np.dtype:
    with np.errstate(all="ignore"):
        return np.asarray(fn(*[_example(op) for op in operands])).dtype


def result_dtype(fn: Callable[..., Any], *operands: np.dtype | WeakScalar) -> np.dtype:
    """The dtype NumPy gives ``fn(*operands)`` for operands of these dtypes.

    ``fn`` must be hashable and accept empty arrays (a ufunc, or a module-level function).
    """
    key = tuple(op.kind if isinstance(op, WeakScalar) else np.dtype(op) for op in operands)
    return _probe(fn, key)
