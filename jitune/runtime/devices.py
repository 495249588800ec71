"""Which device a call runs on, from where its arrays live."""

from __future__ import annotations

from typing import Any, Sequence

from ..errors import ArgumentError

_LIBRARIES = {"numpy": "cpu", "cupy": "cuda", "pyopencl": "opencl"}
_AVAILABLE = {"cpu"}


def library_of(value: Any) -> str | None:
    """The array library (top-level module) an argument comes from, or None for scalars."""
    if isinstance(value, (bool, int, float, complex)):
        return None
    module = type(value).__module__.split(".")[0]
    if module == "numpy" and not hasattr(value, "shape"):
        return None
    return module if module in _LIBRARIES else None


def device_of(args: Sequence[Any], name: str) -> str:
    """The device that runs a call with ``args``; raises ArgumentError for mixed libraries."""
    libraries: dict[str, int] = {}
    for position, arg in enumerate(args):
        library = library_of(arg)
        if library is not None:
            libraries.setdefault(library, position)
    if len(libraries) > 1:
        described = " and ".join(f"{lib} (argument {pos})" for lib, pos in libraries.items())
        raise ArgumentError(f"{name}: arrays from different array libraries in one call: {described}")
    library = next(iter(libraries), "numpy")
    device = _LIBRARIES[library]
    if device not in _AVAILABLE:
        raise ArgumentError(
            f"{name}: {library} arrays need the {device} backend, which this version of "
            "jitune does not have yet; pass NumPy arrays"
        )
    return device
