"""How long one tuning candidate takes to compile, phase by phase.

    python benchmarks/compile_time.py [--size 512] [--repeats 7]

For a float32 matmul of ``size``^3 and a few register tiles of the contraction space (the
default first), it times: lowering to loop IR and rendering LLVM IR (Python), parsing and
verifying, LLVM's O3 pipeline, and machine-code generation; median of ``--repeats`` after one
warm-up, and the size of the LLVM IR. The tuner pays this for every candidate it measures.
"""

from __future__ import annotations

import argparse
import statistics
import time

import llvmlite.binding as llvm
import numpy as np

from jitune.frontend.trace import ArgSpec, trace
from jitune.pipeline import lower_graph
from jitune.runtime import cpu
from jitune.schedule.space import Config

TILES = {
    "default": None,
    "8x32, k in 512, 128-row blocks": {"mr": 8, "nv": 2, "kc": 512, "mc": 128},
    "6x64": {"mr": 6, "nv": 4, "kc": 0, "mc": 0},
    "4x64": {"mr": 4, "nv": 4, "kc": 0, "mc": 0},
}
PHASES = ("lower + render", "parse + verify", "O3", "codegen", "total")


def _matmul(a, b):
    return a @ b


def compile_once(graph, strides, device, configs) -> tuple[list[float], int]:
    """Seconds per phase (and the total) for one candidate, and its LLVM IR size."""
    began = time.perf_counter()
    lowered = lower_graph(graph, strides, device, configs)
    rendered = time.perf_counter()
    machine = cpu._target_machine()
    module = llvm.parse_assembly(lowered.source)
    module.verify()
    parsed = time.perf_counter()
    cpu._optimize(module, machine)
    optimized = time.perf_counter()
    machine.emit_object(module)
    done = time.perf_counter()
    phases = [rendered - began, parsed - rendered, optimized - parsed, done - optimized]
    return phases + [done - began], len(lowered.source)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    n = args.size
    spec = ArgSpec((n, n), np.dtype(np.float32), (n, 1))
    graph = trace(_matmul, [spec, spec]).graph
    strides = [spec.strides, spec.strides]
    device = cpu.CpuDevice()
    print(f"float32 matmul {n}^3, one candidate, median of {args.repeats} (ms):")
    print(f"{'tile':32s} " + " ".join(f"{p:>15s}" for p in PHASES) + "   LLVM IR")
    for name, knobs in TILES.items():
        configs = None
        if knobs is not None:
            configs = {"out0": Config({"pack": True, "order": "cols_outer", **knobs})}
        compile_once(graph, strides, device, configs)  # warm-up
        runs = [compile_once(graph, strides, device, configs) for _ in range(args.repeats)]
        medians = [1e3 * statistics.median(r[0][k] for r in runs) for k in range(len(PHASES))]
        size = runs[0][1] // 1000
        print(f"{name:32s} " + " ".join(f"{m:15.1f}" for m in medians) + f"   {size} kB")


if __name__ == "__main__":
    main()
