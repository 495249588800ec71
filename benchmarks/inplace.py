"""In-place NumPy code run unchanged: a 2-D Jacobi stencil with time steps, a gemm that
updates its argument, and loops whose slices change with the loop variable (an LU
factorization and a covariance written with slices), against NumPy and numba, with each
one's first call (compile) time.

    python benchmarks/inplace.py [--n 1000] [--steps 100] [--gemm 1024] [--triangular 40]
                                 [--rounds 5]

The triangular loops make one loop nest per iteration: past ``JITUNE_MAX_STAGES`` jitune runs
them uncompiled (``jitune``); ``jitune-all`` compiles every nest (``JITUNE_MAX_STAGES=0``).

The functions are written once, as a NumPy user would, and given unchanged to NumPy,
``numba.njit`` and ``jitune.kernel`` (at ``JITUNE_BUDGET=0`` unless ``--budget``). Steady-state
times are medians of ``--rounds`` interleaved rounds, each call on fresh copies of the inputs
(the copies are not timed). The NumPy baseline runs on OpenBLAS's own kernel for this CPU: the
script restarts itself without ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` if they are set
(``--keep-blas-env`` keeps them) and reports the kernel threadpoolctl sees.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from machine import cpu_model


def jacobi(a, b, steps):
    for _ in range(steps):
        b[1:-1, 1:-1] = 0.2 * (
            a[1:-1, 1:-1] + a[1:-1, :-2] + a[1:-1, 2:] + a[2:, 1:-1] + a[:-2, 1:-1]
        )
        a[1:-1, 1:-1] = 0.2 * (
            b[1:-1, 1:-1] + b[1:-1, :-2] + b[1:-1, 2:] + b[2:, 1:-1] + b[:-2, 1:-1]
        )


def gemm(c, a, b, alpha, beta):
    c[:] = alpha * a @ b + beta * c


def lu(a):
    for i in range(a.shape[0]):
        for j in range(i):
            a[i, j] -= a[i, :j] @ a[:j, j]
            a[i, j] /= a[j, j]
        for j in range(i, a.shape[0]):
            a[i, j] -= a[i, :i] @ a[:i, j]


def covariance(m, float_n, data):
    mean = np.mean(data, axis=0)
    data -= mean
    cov = np.zeros((m, m), dtype=data.dtype)
    for i in range(m):
        cov[i:m, i] = cov[i, i:m] = data[:, i] @ data[:, i:m] / (float_n - 1.0)
    return cov


def _blas() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    found = [
        f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
        f"({i.get('num_threads')} threads)"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]
    return "; ".join(found) or "no BLAS found"


def _timed(fn: Callable[..., Any], make: Callable[[], tuple[Any, ...]]) -> float:
    args = make()
    began = time.perf_counter()
    fn(*args)
    return time.perf_counter() - began


def _case(
    name: str,
    function: Callable[..., Any],
    make: Callable[[], tuple[Any, ...]],
    rounds: int,
    budget: str,
    compile_all: bool = False,
) -> dict[str, Any]:
    import jitune

    runners: dict[str, Callable[..., Any]] = {"numpy": function}
    first: dict[str, float] = {}
    runners["jitune"] = jitune.kernel(function, budget=budget)
    if compile_all:  # every loop nest compiled, however many
        every = jitune.kernel(function, budget=budget)

        def compiled(*args: Any) -> Any:
            with jitune.config.override(max_stages=0):
                return every(*args)

        runners["jitune-all"] = compiled
    try:
        import numba

        runners["numba"] = numba.njit(function)
    except ImportError:
        print("numba not installed: skipped", file=sys.stderr)
    # first calls: compile (and tuning) time plus one run; results checked against NumPy
    expected = make()
    returned = function(*expected)
    if returned is not None:
        expected = (*expected, returned)
    for label, run in list(runners.items()):
        args = make()
        began = time.perf_counter()
        try:
            result = run(*args)
        except Exception as exc:  # noqa: BLE001 - numba compiles a subset of NumPy
            if label != "numba":
                raise
            print(f"{name}: numba cannot compile it ({type(exc).__name__})", file=sys.stderr)
            del runners[label]
            continue
        first[label] = time.perf_counter() - began
        if result is not None:
            args = (*args, result)
        for got, want in zip(args, expected):
            if isinstance(want, np.ndarray) and not np.allclose(got, want, rtol=1e-9, atol=1e-9):
                raise SystemExit(f"{name}: {label} left an argument different from NumPy's")
    samples: dict[str, list[float]] = {label: [] for label in runners}
    for _ in range(rounds):
        for label, run in runners.items():
            samples[label].append(_timed(run, make))
    medians = {label: statistics.median(times) for label, times in samples.items()}
    return {"name": name, "first_call_s": first, "median_s": medians}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="Jacobi grid side")
    parser.add_argument("--steps", type=int, default=100, help="Jacobi time steps")
    parser.add_argument("--gemm", type=int, default=1024, help="gemm side")
    parser.add_argument(
        "--triangular", type=int, default=40, help="LU side and covariance columns (0: skip)"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", default="0", help="JITUNE_BUDGET for jitune's first call")
    parser.add_argument("--keep-blas-env", action="store_true")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    forced = [v for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ]
    if forced and not args.keep_blas_env:
        env = {k: v for k, v in os.environ.items() if k not in forced}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    rng = np.random.default_rng(0)
    a0, b0 = rng.random((args.n, args.n)), rng.random((args.n, args.n))
    g = args.gemm
    ga, gb, gc = rng.random((g, g)), rng.random((g, g)), rng.random((g, g))
    print(f"CPU: {cpu_model()}; NumPy {np.__version__}; BLAS: {_blas()}")
    results = [
        _case(
            f"jacobi {args.n}^2 x {args.steps} steps",
            jacobi,
            lambda: (a0.copy(), b0.copy(), args.steps),
            args.rounds,
            args.budget,
        ),
        _case(
            f"gemm C[:] = alpha*A@B + beta*C, {g}^3",
            gemm,
            lambda: (gc.copy(), ga, gb, 1.5, 0.5),
            args.rounds,
            args.budget,
        ),
    ]
    t = args.triangular
    if t:
        lu0 = rng.random((t, t)) + t * np.eye(t)
        data0 = rng.random((t + t // 4, t))
        results.append(
            _case(
                f"lu {t}^2 with slices", lu, lambda: (lu0.copy(),), args.rounds, args.budget, True
            )
        )
        results.append(
            _case(
                f"covariance {data0.shape[0]}x{t} with slices",
                covariance,
                lambda: (t, float(data0.shape[0]), data0.copy()),
                args.rounds,
                args.budget,
                True,
            )
        )
    header = f"{'workload':42} {'peer':8} {'first call s':>13} {'median s':>10} {'NumPy/peer':>11}"
    print(header)
    print("-" * len(header))
    for result in results:
        numpy_time = result["median_s"]["numpy"]
        for label, median in result["median_s"].items():
            print(
                f"{result['name']:42} {label:8} {result['first_call_s'][label]:13.3f} "
                f"{median:10.4f} {numpy_time / median:10.2f}x"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu": cpu_model(), "blas": _blas(), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
