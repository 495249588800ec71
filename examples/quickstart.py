"""jitune quickstart: compile three NumPy functions, check them against NumPy, time both.

Run with ``python examples/quickstart.py``. Exits with status 1 if any result disagrees
with NumPy. Takes well under a minute on a 2-core machine.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import jitune

# -- the kernels ----------------------------------------------------------------------------


@jitune.kernel
def matmul(a, b):
    return a @ b


@jitune.kernel
def dense(x, w, b):
    return np.maximum(x @ w + b, 0)


@jitune.kernel
def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# The same functions, undecorated, as the NumPy reference.


def matmul_np(a, b):
    return a @ b


def dense_np(x, w, b):
    return np.maximum(x @ w + b, 0)


def softmax_np(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# -- harness --------------------------------------------------------------------------------

WARMUP = 3  # calls of each after the first (compiling) call, not timed
REPEATS = 20  # timed calls of each, jitune and NumPy interleaved
RTOL = 1e-4


def _ms(seconds: float) -> float:
    return 1e3 * seconds


def run_case(
    name: str,
    kernel: jitune.Kernel,
    reference: Callable[..., Any],
    args: tuple[np.ndarray, ...],
    atol: float,
) -> dict[str, Any]:
    began = time.perf_counter()
    got = kernel(*args)  # traces, lowers and compiles for this signature, then runs
    first = time.perf_counter() - began

    expected = reference(*args)
    ok = True
    try:
        if got.shape != expected.shape or got.dtype != expected.dtype:
            raise AssertionError(
                f"got {got.dtype}{list(got.shape)}, NumPy gives {expected.dtype}{list(expected.shape)}"
            )
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=atol)
    except AssertionError as exc:
        ok = False
        print(f"FAIL {name}: result differs from NumPy\n{exc}", file=sys.stderr)

    for _ in range(WARMUP):
        kernel(*args)
        reference(*args)

    jit_times, np_times = [], []
    for _ in range(REPEATS):  # interleaved so that drift (clock, cache, noise) hits both alike
        t0 = time.perf_counter()
        kernel(*args)
        t1 = time.perf_counter()
        reference(*args)
        t2 = time.perf_counter()
        jit_times.append(t1 - t0)
        np_times.append(t2 - t1)

    jit_ms = _ms(statistics.median(jit_times))
    np_ms = _ms(statistics.median(np_times))
    return {
        "name": name,
        "ok": ok,
        "max_abs_err": float(np.max(np.abs(got.astype(np.float64) - expected))),
        "first_ms": _ms(first),
        "jit_ms": jit_ms,
        "np_ms": np_ms,
        "ratio": jit_ms / np_ms,
    }


def main() -> int:
    rng = np.random.default_rng(0)

    def normal(*shape: int, scale: float = 1.0) -> np.ndarray:
        return (scale * rng.standard_normal(shape)).astype(np.float32)

    n = 1024
    a, b = normal(n, n), normal(n, n, scale=n**-0.5)  # keeps results O(1)
    x, w, bias = normal(n, n), normal(n, n, scale=n**-0.5), normal(n)
    logits = normal(4096, 1024, scale=3.0)

    cases = [
        # atol covers float32 rounding where results are near zero (summation order differs).
        ("matmul 1024x1024 @ 1024x1024", matmul, matmul_np, (a, b), 1e-5),
        ("dense relu(x@w+b) 1024^3", dense, dense_np, (x, w, bias), 1e-5),
        ("softmax rows 4096x1024", softmax, softmax_np, (logits,), 1e-7),
    ]

    print(
        f"jitune {jitune.__version__}, NumPy {np.__version__}, float32, "
        f"median of {REPEATS} calls after {WARMUP} warm-up calls"
    )
    rows = [run_case(*case) for case in cases]

    header = (
        f"{'kernel':<30} {'first call ms':>13} {'jitune ms':>10} {'NumPy ms':>9} "
        f"{'jitune/NumPy':>12} {'max |err|':>10}  check"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['name']:<30} {r['first_ms']:>13.1f} {r['jit_ms']:>10.2f} {r['np_ms']:>9.2f} "
            f"{r['ratio']:>11.2f}x {r['max_abs_err']:>10.1e}  {'ok' if r['ok'] else 'FAIL'}"
        )
    budget = jitune.config.get().budget
    print(
        f"first call = trace + tune (budget: {budget}) + lower + LLVM compile + one run, or a "
        "disk-cache load; later calls reuse the machine code."
    )

    failed = [r["name"] for r in rows if not r["ok"]]
    if failed:
        print(f"{len(failed)} check(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
