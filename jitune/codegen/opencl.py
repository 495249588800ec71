"""codegen (OpenCL): the OpenCL C dialect of the shared C-like emitter (``c_source``).

What differs from CUDA, as table entries: ``__kernel``/``__global``/``__local`` qualifiers,
``get_group_id``/``get_local_id``, ``barrier(CLK_LOCAL_MEM_FENCE)``, overloaded math functions
(``exp`` serves float and double), ``long`` for 64-bit integers (``L`` literals), ``vload4``
/``vstore4`` for vector accesses (they work on global and local memory alike) and no warp
shuffles (block reductions combine through local memory). Booleans cannot be kernel
arguments in OpenCL C, so boolean scalars are passed as ``uchar``.
"""

from __future__ import annotations

from ..ir.loops import LoopProgram
from . import c_source
from .c_source import Dialect

_TYPES = {
    "b": "bool",
    "mem_b": "uchar",
    "param_b": "uchar",
    "i4": "int",
    "i8": "long",
    "f4": "float",
    "f8": "double",
}
_VECTOR = {"i4": "int", "i8": "long", "f4": "float", "f8": "double"}

# double precision is core in OpenCL 3.0 devices that report it; older ones need the pragma
PRELUDE = "#pragma OPENCL EXTENSION cl_khr_fp64 : enable"

OPENCL = Dialect(
    name="opencl",
    kernel="__kernel",
    function="inline",
    global_ptr="__global {const}{type}* {restrict}{name}",
    restrict="restrict ",
    shared="__local",
    barrier="barrier(CLK_LOCAL_MEM_FENCE);",
    block_index={"x": "get_group_id(0)", "y": "get_group_id(1)", "z": "get_group_id(2)"},
    thread_index={"x": "get_local_id(0)", "y": "get_local_id(1)", "z": "get_local_id(2)"},
    types=_TYPES,
    math=lambda name, c: name,
    vector=lambda c, lanes: f"{_VECTOR[c]}{lanes}",
    make_vector=lambda vt, parts: f"(({vt})({', '.join(parts)}))",
    literals={
        "inf_f4": "as_float(0x7f800000)",
        "nan_f4": "as_float(0x7fc00000)",
        "inf_f8": "as_double(0x7ff0000000000000L)",
        "nan_f8": "as_double(0x7ff8000000000000L)",
    },
    shuffle_xor=None,
    align16="__attribute__((aligned(16)))",
    prelude=PRELUDE,
    long_suffix="L",
    vector_load="vload{lanes}(0, &{array}[{index}])",
    vector_store="vstore{lanes}({value}, 0, &{array}[{index}]);",
)


def render(loops: LoopProgram) -> str:
    """OpenCL C source of every kernel of ``loops`` (whose kernels carry launch dimensions)."""
    return c_source.render(loops, OPENCL)
