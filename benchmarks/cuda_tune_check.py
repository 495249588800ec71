"""The learned tuner on a CUDA GPU: each workload called through a kernel with budget 0 (the
default schedule) and through one tuned with ``--budget`` trials (measured in the worker
process with CUDA events), then both and the CuPy peer timed interleaved (CUDA events,
medians; see ``gpu_bench.interleaved``).

    python benchmarks/cuda_tune_check.py [--budget 24] [--rounds 7] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import cupy
import numpy as np
from gpu_bench import interleaved
from workloads import dense, matmul, softmax

import jitune


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("cuda_tune_check.json"))
    parser.add_argument("--only", default="", help="workload name prefixes, comma-separated")
    options = parser.parse_args()
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []
    cases = [
        ("matmul 2048^3", matmul, [(2048, 2048), (2048, 2048)], cupy.matmul),
        ("relu(x@w+b) 2048^3", dense, [(2048, 2048), (2048, 2048), (2048,)], None),
        ("softmax 16384x1024", softmax, [(16384, 1024)], None),
    ]
    only = [p for p in options.only.split(",") if p]
    for name, fn, shapes, peer in cases:
        if only and not any(name.startswith(p) for p in only):
            continue
        args = [cupy.asarray(rng.standard_normal(s).astype(np.float32)) for s in shapes]
        default = jitune.kernel(fn, name=f"{fn.__name__}_default", budget=0)
        tuned = jitune.kernel(fn, name=f"{fn.__name__}_tuned", budget=options.budget)
        began = time.perf_counter()
        result = tuned.tune(*args)
        tuning = time.perf_counter() - began
        expected = fn(*[cupy.asnumpy(a) for a in args])
        error = float(np.abs(cupy.asnumpy(tuned(*args)) - expected).max())
        contenders = {
            "jitune default": lambda k=default, a=args: k(*a),
            "jitune tuned": lambda k=tuned, a=args: k(*a),
            "cupy": (lambda p=peer or fn, a=args: p(*a)),
        }
        times = {k: v["median_ms"] for k, v in interleaved(contenders, options.rounds).items()}
        row = {
            "workload": name,
            "tuning_seconds": tuning,
            "trials": None if result is None else result.trials,
            "errors": None if result is None else dict(result.errors),
            "config": None if result is None else str(result.config),
            "max_abs_error": error,
            "ms": times,
        }
        rows.append(row)
        print(
            f"{name}: tuned in {tuning:.1f} s ({row['trials']} trials, errors {row['errors']}); "
            + ", ".join(f"{k} {v:.4f} ms" for k, v in times.items())
            + f"; tuned/default speed {times['jitune default'] / times['jitune tuned']:.2f}x",
            flush=True,
        )
        options.out.write_text(
            json.dumps(
                {
                    "gpu": cupy.cuda.runtime.getDeviceProperties(0)["name"].decode(),
                    "budget": options.budget,
                    "rows": rows,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
