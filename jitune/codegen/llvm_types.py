"""LLVM type names and constant literals for jitune's dtypes."""

from __future__ import annotations

import struct

import numpy as np

_REGISTER = {"b": "i1", "i4": "i32", "i8": "i64", "f4": "float", "f8": "double"}
_MEMORY = {"b": "i8", "i4": "i32", "i8": "i64", "f4": "float", "f8": "double"}


def _code(dtype: np.dtype) -> str:
    dtype = np.dtype(dtype)
    return "b" if dtype.kind == "b" else f"{dtype.kind}{dtype.itemsize}".replace("u", "i")


def register_type(dtype: np.dtype) -> str:
    """Type of a value of ``dtype`` in registers (bools are i1)."""
    return _REGISTER[_code(dtype)]


def memory_type(dtype: np.dtype) -> str:
    """Type of an element of ``dtype`` in memory (bools are one byte, as in NumPy)."""
    return _MEMORY[_code(dtype)]


def vector_type(scalar: str, lanes: int) -> str:
    return scalar if lanes == 1 else f"<{lanes} x {scalar}>"


def intrinsic_suffix(scalar: str, lanes: int) -> str:
    """Overload suffix of an intrinsic: ``f32``, ``v16f32``, ``i64``, ``v8i64``."""
    name = {"float": "f32", "double": "f64"}.get(scalar, scalar)
    return name if lanes == 1 else f"v{lanes}{name}"


def literal(value: object, dtype: np.dtype) -> str:
    """An LLVM constant literal of ``value`` as ``dtype`` (floats as exact hex doubles)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return "true" if value else "false"
    if dtype.kind == "f":
        as_double = float(np.array(value, dtype=dtype).astype(np.float64))
        return "0x" + struct.pack(">d", as_double).hex().upper()
    return str(int(value))  # type: ignore[call-overload]
