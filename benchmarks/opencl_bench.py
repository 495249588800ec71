"""jitune's OpenCL backend, tuned, against what a user of that device would call instead.

On a CPU OpenCL device (PoCL) the peer is NumPy on the same CPU; on a GPU it is CuPy (cuBLAS
for products, TF32 off) where importable, and a device-to-device copy of the same bytes for
the bandwidth-bound kernels. Each jitune kernel is tuned first with the learned tuner
(``budget`` trials, measured on the device with OpenCL profiling events), then every
contender is timed interleaved: in each round each takes one sample (a batch of calls ended
by a device synchronization), in a shuffled order; medians over rounds are reported.

    python benchmarks/opencl_bench.py [--device cpu|gpu|any] [--budget N] [--rounds N]
                                      [--only NAME[,NAME]] [--out PATH]

Writes the table to stdout and JSON to ``benchmarks/results/opencl_bench.json`` (after every
workload, so a run cut short keeps what it measured).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import pyopencl as cl  # noqa: E402
import pyopencl.array as cl_array  # noqa: E402
from workloads import dense, gelu, layernorm, matmul, softmax  # noqa: E402

import jitune  # noqa: E402
from jitune.runtime.opencl import unavailable_reason, working_devices  # noqa: E402

DEFAULT_OUTPUT = Path(__file__).parent / "results" / "opencl_bench.json"


def workloads(gpu: bool) -> list[tuple[str, Callable[..., Any], list[tuple[int, ...]], float]]:
    """(name, function, input shapes, GFLOP per call or 0 for bandwidth-bound)."""
    n = 4096 if gpu else 1024
    rows = 16384 if gpu else 4096
    elems = (64 if gpu else 16) << 20
    return [
        (f"matmul {n}^3", matmul, [(n, n), (n, n)], 2 * n**3 / 1e9),
        (f"relu(x@w+b) {n}^3", dense, [(n, n), (n, n), (n,)], 2 * n**3 / 1e9),
        (f"gelu {elems >> 20}M", gelu, [(elems,)], 0.0),
        (f"softmax {rows}x1024", softmax, [(rows, 1024)], 0.0),
        (f"layernorm {rows}x1024", layernorm, [(rows, 1024)], 0.0),
    ]


def pick_queue(kind: str) -> cl.CommandQueue:
    """A queue on the first device of ``kind`` ("cpu", "gpu" or "any") that builds programs."""
    wanted = {"cpu": cl.device_type.CPU, "gpu": cl.device_type.GPU}.get(kind)
    for d in working_devices():
        if wanted is None or d.type & wanted:
            return cl.CommandQueue(cl.Context([d]))
    raise SystemExit(f"no OpenCL {kind} device that builds programs: {unavailable_reason()}")


def timed(run: Callable[[], Any], sync: Callable[[], None], number: int) -> float:
    began = time.perf_counter()
    for _ in range(number):
        run()
    sync()
    return (time.perf_counter() - began) / number


def interleaved(
    contenders: dict[str, tuple[Callable[[], Any], Callable[[], None]]], rounds: int
) -> dict[str, float]:
    numbers = {}
    for name, (run, sync) in contenders.items():
        for _ in range(2):  # warm-up
            run()
        sync()
        once = timed(run, sync, 1)
        numbers[name] = max(1, int(0.02 / max(once, 1e-6)))
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    order = list(contenders)
    rng = random.Random(0)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            run, sync = contenders[name]
            samples[name].append(timed(run, sync, numbers[name]))
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="any", choices=("cpu", "gpu", "any"))
    parser.add_argument("--budget", type=int, default=24, help="tuning trials per workload")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", default="", help="workload name prefixes, comma-separated")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUTPUT)
    options = parser.parse_args()

    queue = pick_queue(options.device)
    device = queue.device
    gpu = bool(device.type & cl.device_type.GPU)
    cupy = None
    if gpu:
        try:
            import cupy  # the CUDA peer on an NVIDIA GPU
        except ImportError:
            print("note: CuPy not importable: no cuBLAS column", file=sys.stderr)
    report: dict[str, Any] = {
        "device": device.name.strip(),
        "platform": f"{device.platform.name} {device.platform.version}",
        "driver": device.driver_version,
        "host": platform.node(),
        "jitune": jitune.__version__,
        "budget": options.budget,
        "rounds": options.rounds,
        "workloads": [],
    }
    print(f"OpenCL device: {report['device']} ({report['platform']}, driver {report['driver']})")
    print(f"jitune tuned with {options.budget} trials per workload; medians of {options.rounds}")
    rng = np.random.default_rng(0)
    only = [s for s in options.only.split(",") if s]
    for name, fn, shapes, gflop in workloads(gpu):
        if only and not any(name.startswith(prefix) for prefix in only):
            continue
        host = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
        device_args = [cl_array.to_device(queue, a) for a in host]
        kernel = jitune.kernel(fn, name=fn.__name__, budget=options.budget)
        began = time.perf_counter()
        out = kernel(*device_args)
        queue.finish()
        tuning = time.perf_counter() - began
        expected = fn(*host)
        error = float(np.max(np.abs(out.get() - expected)) / max(1.0, np.max(np.abs(expected))))

        def sync_cl() -> None:
            queue.finish()

        contenders: dict[str, tuple[Callable[[], Any], Callable[[], None]]] = {
            "jitune-opencl": (lambda k=kernel, a=device_args: k(*a), sync_cl)
        }
        nbytes = sum(a.nbytes for a in host) + expected.nbytes
        if gpu:
            src = cl_array.to_device(queue, np.zeros(nbytes // 8, np.float32))
            dst = cl_array.empty_like(src)
            contenders["copy (opencl)"] = (
                lambda s=src, d=dst: cl.enqueue_copy(queue, d.base_data, s.base_data),
                sync_cl,
            )
            if cupy is not None:
                peer_args = [cupy.asarray(a) for a in host]
                peer = {
                    "matmul": lambda a, b: cupy.matmul(a, b),
                    "dense": lambda x, w, b: cupy.maximum(x @ w + b, 0),
                }.get(fn.__name__, fn)
                contenders["cupy"] = (
                    lambda p=peer, a=peer_args: p(*a),
                    cupy.cuda.runtime.deviceSynchronize,
                )
        else:
            contenders["numpy"] = (lambda f=fn, a=host: f(*a), lambda: None)
        times = interleaved(contenders, options.rounds)
        mine = times["jitune-opencl"]
        libraries = [t for k, t in times.items() if k in ("numpy", "cupy")]
        copy = times.get("copy (opencl)")  # a bandwidth reference, not a peer
        row = {
            "workload": name,
            "tuning_seconds": tuning,
            "max_relative_error": error,
            "ms": {k: 1e3 * t for k, t in times.items()},
            "gflops": {k: gflop / t for k, t in times.items()} if gflop else None,
            "gbytes_per_s": None if gflop else {k: nbytes / t / 1e9 for k, t in times.items()},
            "speed_vs_best_library": min(libraries) / mine if libraries else None,
            "fraction_of_copy_bandwidth": copy / mine if copy and not gflop else None,
        }
        report["workloads"].append(row)
        rate = f"{gflop / mine:.1f} GFLOP/s" if gflop else f"{nbytes / mine / 1e9:.1f} GB/s"
        others = ", ".join(
            f"{k} {1e3 * t:.2f} ms" for k, t in times.items() if k != "jitune-opencl"
        )
        ratios = []
        if row["speed_vs_best_library"] is not None:
            ratios.append(f"{row['speed_vs_best_library']:.2f}x the best library's speed")
        if row["fraction_of_copy_bandwidth"] is not None:
            ratios.append(f"{row['fraction_of_copy_bandwidth']:.2f} of copy bandwidth")
        print(
            f"{name:22s} jitune {1e3 * mine:.2f} ms ({rate}; tuned in {tuning:.0f} s, error "
            f"{error:.1e}) | {others} | {'; '.join(ratios)}"
        )
        options.out.parent.mkdir(parents=True, exist_ok=True)
        options.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {options.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
