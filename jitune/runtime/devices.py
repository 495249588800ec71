"""Which device a call runs on, from where its arrays live."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import config
from ..errors import ArgumentError, DeviceError
from .base import Device
from .cpu import CpuDevice
from .cuda import CudaDevice
from .opencl import OpenclDevice, unavailable_reason

DEVICES: tuple[Device, ...] = (CpuDevice(), CudaDevice(), OpenclDevice())
"""Registered devices, in the order dispatch asks them."""


def library_of(value: Any) -> str | None:
    """The array library (top-level module) an argument comes from, or None for scalars."""
    if isinstance(value, (bool, int, float, complex, np.generic)) or not hasattr(value, "shape"):
        return None
    if type(value) is np.ndarray and value.ndim == 0:
        return None  # a 0-d NumPy array is a scalar argument, also beside GPU arrays
    return type(value).__module__.split(".")[0]


def device_of(args: Sequence[Any], name: str) -> Device:
    """The device that runs a call with ``args``; raises ArgumentError for mixed libraries
    or arrays of a library no available device owns."""
    libraries: dict[str, int] = {}
    for position, arg in enumerate(args):
        library = library_of(arg)
        if library is not None:
            libraries.setdefault(library, position)
    if len(libraries) > 1:
        described = " and ".join(f"{lib} (argument {pos})" for lib, pos in libraries.items())
        raise ArgumentError(
            f"{name}: arrays from different array libraries in one call: {described}"
        )
    library = next(iter(libraries), "numpy")
    forced = config.get().target
    for device in DEVICES:
        if device.library == library and forced in ("auto", device.name) and device.available():
            bind = getattr(device, "bind", None)  # GPUs: check the arrays' placement
            return device if bind is None else bind(args, name)
    if library == "cupy":
        raise ArgumentError(
            f"{name}: cupy arrays need the cuda backend, which cannot run in this process: "
            "no CUDA GPU is visible to CuPy, or NVRTC is missing "
            "(pip install nvidia-cuda-nvrtc-cu12)"
        )
    if library == "pyopencl":
        raise DeviceError(
            f"{name}: pyopencl arrays need the opencl backend, which cannot run in this "
            f"process: {unavailable_reason()}"
        )
    raise ArgumentError(f"{name}: no jitune device runs {library} arrays (JITUNE_TARGET={forced})")


def device_named(name: str) -> Device:
    """The registered device called ``name`` ("cpu", "cuda"), available here or not: its
    compile side (render, compile) needs no hardware."""
    for device in DEVICES:
        if device.name == name:
            return device
    known = ", ".join(repr(d.name) for d in DEVICES)
    raise ArgumentError(f"unknown jitune target {name!r}; known: {known}")
