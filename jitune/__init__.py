"""jitune: NumPy functions compiled to tuned machine code, per call signature.

@jitune.kernel
def dense_relu(x, w, b):
    return np.maximum(x @ w + b, 0)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, overload

import numpy as np

from . import config
from .errors import (
    ArgumentError,
    CompileError,
    ConfigError,
    DeviceError,
    DomainError,
    DTypeError,
    IndexingError,
    JituneError,
    ShapeError,
    UnsupportedOperation,
)
from .frontend.kernel import Kernel
from .frontend.numpy_api import einsum_function as einsum
from .pipeline import Lowered
from .runtime.pool import release as release_buffers
from .version import __version__ as __version__


class spec:  # noqa: N801 - reads like a type, used like np.empty
    """A shape and dtype without data, for ``f.lower(jitune.spec((64, 32), "float32"))``."""

    def __init__(self, shape: tuple[int, ...] | int, dtype: Any = np.float64) -> None:
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.dtype = np.dtype(dtype)

    def __repr__(self) -> str:
        return f"jitune.spec({self.shape}, {self.dtype})"


@overload
def kernel(fn: Callable[..., Any]) -> Kernel: ...
@overload
def kernel(
    *,
    name: str | None = None,
    budget: int | str | None = None,
    strategy: str | None = None,
    static: Iterable[str | int] | str | int = (),
) -> Callable[[Callable[..., Any]], Kernel]: ...


def kernel(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    budget: int | str | None = None,
    strategy: str | None = None,
    static: Iterable[str | int] | str | int = (),
) -> Any:
    """Compile ``fn`` (a function of NumPy arrays) per call signature.

    Use as ``@jitune.kernel`` or ``@jitune.kernel(name=..., budget=..., strategy=...,
    static=...)``: ``budget`` (trials such as ``64``, or a time such as ``"30s"``) overrides
    ``JITUNE_BUDGET`` for this kernel; ``strategy`` is ``"model"`` (default), ``"random"``
    or ``"ga"``; ``static`` names the parameters (or positions) whose values are part of the
    signature (one compiled kernel per value) and reach ``fn`` as they are. A scalar argument
    used as a shape, loop count or axis becomes static by itself.
    """
    options = dict(name=name, budget=budget, strategy=strategy, static=static)
    if fn is None:
        return lambda f: Kernel(f, **options)
    return Kernel(fn, **options)


__all__ = [
    "ArgumentError",
    "CompileError",
    "ConfigError",
    "DomainError",
    "DTypeError",
    "IndexingError",
    "DeviceError",
    "JituneError",
    "Kernel",
    "Lowered",
    "ShapeError",
    "UnsupportedOperation",
    "config",
    "einsum",
    "kernel",
    "release_buffers",
    "spec",
]
