"""codegen (CUDA): the CUDA C dialect of the shared C-like emitter (``c_source``)."""

from __future__ import annotations

from ..ir.loops import LoopProgram
from . import c_source
from .c_source import Dialect

_TYPES = {
    "b": "bool",
    "mem_b": "unsigned char",
    "i4": "int",
    "i8": "long long",
    "f4": "float",
    "f8": "double",
}
_VECTOR = {"i4": "int", "i8": "longlong", "f4": "float", "f8": "double"}


def _math(name: str, c: str) -> str:
    return name + "f" if c == "f4" else name


CUDA = Dialect(
    name="cuda",
    kernel='extern "C" __global__ __launch_bounds__({threads}{min_blocks})',
    function="static __device__ __forceinline__",
    global_ptr="{const}{type}* {restrict}{name}",
    restrict="__restrict__ ",
    shared="__shared__",
    barrier="__syncthreads();",
    block_index={"x": "blockIdx.x", "y": "blockIdx.y", "z": "blockIdx.z"},
    thread_index={"x": "threadIdx.x", "y": "threadIdx.y", "z": "threadIdx.z"},
    types=_TYPES,
    math=_math,
    vector=lambda c, lanes: f"{_VECTOR[c]}{lanes}",
    make_vector=lambda vt, parts: f"make_{vt}({', '.join(parts)})",
    literals={
        "inf_f4": "__int_as_float(0x7f800000)",
        "nan_f4": "__int_as_float(0x7fc00000)",
        "inf_f8": "__longlong_as_double(0x7ff0000000000000LL)",
        "nan_f8": "__longlong_as_double(0x7ff8000000000000LL)",
    },
    shuffle_xor="__shfl_xor_sync(0xffffffffu, {value}, {offset})",
    align16="__align__(16)",
)


def render(loops: LoopProgram) -> str:
    """CUDA C source of every kernel of ``loops`` (whose kernels carry launch dimensions)."""
    return c_source.render(loops, CUDA)
