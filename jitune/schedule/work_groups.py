"""CPU schedules as OpenCL kernels for CPU devices (PoCL).

An OpenCL CPU driver runs each work-group as loops over its work-items on one core; a
work-group of one work-item runs exactly the code it is given. So on a CPU device jitune runs
its CPU schedules (register-tiled contractions, vectorized rows; ``schedule/default.py``)
with the iterations of each kernel's outermost parallel loop as work-groups of one
work-item, and lets the driver spread the work-groups over its cores. The GPU templates,
whose local-memory tiles and barriers the driver can only serialize, ran 10-20 times slower
on PoCL (see ``benchmarks/README.md``).
"""

from __future__ import annotations

import dataclasses

from ..ir.expr import iconst
from ..ir.loops import For, Kernel, LoopKind, LoopProgram


def _as_work_groups(kernel: Kernel) -> Kernel:
    body = kernel.body
    if isinstance(body, For) and body.kind is LoopKind.PARALLEL and body.stop.op.value == "const":
        groups = int(body.stop.arg)
        body = dataclasses.replace(body, kind=LoopKind.GPU_BLOCK, axis="x")
    else:
        groups = 1
        body = For("wg_", iconst(0), iconst(1), LoopKind.GPU_BLOCK, body, "x")
    return dataclasses.replace(
        kernel, body=body, parallel=False, launch=((groups, 1, 1), (1, 1, 1))
    )


def as_work_groups(program: LoopProgram) -> LoopProgram:
    """``program`` (from the CPU templates) with each kernel launched as one work-group per
    iteration of its outermost parallel loop (one work-group if it has none)."""
    kernels = tuple(_as_work_groups(kernel) for kernel in program.kernels)
    return dataclasses.replace(program, kernels=kernels)
