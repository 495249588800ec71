"""The device interface every backend implements (CPU now; OpenCL and CUDA plug in here).

The compile side (``render``, ``compile``) needs no device and is pure, so it is testable
anywhere; the run side (``load`` and the returned :class:`Program`) needs the device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from ..ir.loops import LoopProgram
from .target import Target


class Program(Protocol):
    """Loaded machine code of one signature.

    ``launch(*arrays)`` runs it on the inputs, then the temporaries and outputs, in buffer
    order. It is an attribute rather than a method so that the CPU can expose its ctypes
    function directly: the dispatch path of a cached kernel pays for no extra Python frame.
    """

    launch: Callable[..., None]


class Device(Protocol):
    name: ClassVar[str]  # "cpu" | "opencl" | "cuda"
    library: ClassVar[str]  # top-level module of the arrays this device owns ("numpy", ...)

    def available(self) -> bool:
        """Whether this device can run code in this process (probed once)."""
        ...

    def target(self) -> Target:
        """What code generation compiles for; part of every cache key."""
        ...

    def render(self, loops: LoopProgram) -> str:
        """Loop IR -> source text for this device's compiler."""
        ...

    def compile(self, source: str) -> bytes:
        """Source text -> a binary that :meth:`load` accepts in this or a later process
        (object code for the CPU); deterministic, needs no device."""
        ...

    def load(self, binary: bytes, buffer_count: int) -> Program:
        """A callable program for ``binary``, whose entry takes ``buffer_count`` arrays."""
        ...

    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        """A new uninitialized array on this device."""
        ...
