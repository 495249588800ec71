"""Per-call dispatch overhead of a compiled jitune kernel on a tiny input.

For a 4-element float32 array it times, per call:

* ``jitune``   - a ``@jitune.kernel`` whose signature is already compiled (dispatch-table
  lookup, output allocation, ctypes call into the machine code);
* ``python``   - a plain Python function doing the same NumPy operation;
* ``ufunc``    - the NumPy ufunc called directly (``np.add(x, 1)``).

Each candidate runs ``--number`` calls per repeat, ``--repeat`` repeats, and the candidates are
interleaved repeat by repeat (in a rotating order) so that drift affects them all alike. Results
are printed in microseconds per call and written as JSON to ``benchmarks/results/overhead.json``.

    python benchmarks/overhead.py [--number 20000] [--repeat 7] [--output PATH]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from machine import cpu_model

import jitune

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "overhead.json"


@jitune.kernel
def add_one(x):
    return x + 1


@jitune.kernel
def add(x, y):
    return x + y


def add_one_py(x):
    return x + 1


def add_py(x, y):
    return x + y


def _cases(x: np.ndarray, y: np.ndarray) -> dict[str, dict[str, Callable[[], Any]]]:
    return {
        "x + 1": {
            "jitune": lambda: add_one(x),
            "python": lambda: add_one_py(x),
            "ufunc": lambda: np.add(x, 1),
        },
        "x + y": {
            "jitune": lambda: add(x, y),
            "python": lambda: add_py(x, y),
            "ufunc": lambda: np.add(x, y),
        },
    }


def _check(cases: dict[str, dict[str, Callable[[], Any]]]) -> None:
    """Every candidate must compute the same thing (and the kernels get compiled here)."""
    for name, candidates in cases.items():
        expected = candidates["ufunc"]()
        for label, fn in candidates.items():
            got = fn()
            if got.dtype != expected.dtype or not np.array_equal(got, expected):
                sys.exit(f"{name}: {label} returned {got!r}, NumPy gives {expected!r}")


def measure(number: int, repeat: int) -> dict[str, Any]:
    x = np.arange(4, dtype=np.float32)
    y = np.full(4, 0.5, dtype=np.float32)
    cases = _cases(x, y)
    _check(cases)
    compiles_before = add_one.compile_count + add.compile_count

    timers = {
        (case, label): timeit.Timer(fn)
        for case, candidates in cases.items()
        for label, fn in candidates.items()
    }
    keys = list(timers)
    for key in keys:  # warm-up: one short round each
        timers[key].timeit(max(1, number // 10))

    samples: dict[tuple[str, str], list[float]] = {key: [] for key in keys}
    for r in range(repeat):
        shift = r % len(keys)
        for key in keys[shift:] + keys[:shift]:  # interleaved, rotating start
            samples[key].append(timers[key].timeit(number) / number)

    if add_one.compile_count + add.compile_count != compiles_before:
        sys.exit("a kernel was recompiled during timing: the dispatch cache missed")

    results: dict[str, Any] = {}
    for case, candidates in cases.items():
        row: dict[str, Any] = {}
        for label in candidates:
            values = samples[(case, label)]
            row[label] = {
                "best_us": 1e6 * min(values),
                "median_us": 1e6 * statistics.median(values),
                "samples_us": [1e6 * v for v in values],
            }
        row["jitune_minus_python_median_us"] = (
            row["jitune"]["median_us"] - row["python"]["median_us"]
        )
        row["jitune_over_ufunc_median"] = row["jitune"]["median_us"] / row["ufunc"]["median_us"]
        results[case] = row
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--number", type=int, default=20000, help="calls per repeat")
    parser.add_argument("--repeat", type=int, default=7, help="repeats per candidate")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON file to write")
    args = parser.parse_args(argv)

    results = measure(args.number, args.repeat)

    print(
        f"dispatch overhead, float32[4], {args.repeat} repeats x {args.number} calls, "
        "microseconds per call (best / median)"
    )
    header = (
        f"{'op':<8} {'jitune kernel':>16} {'Python function':>16} {'NumPy ufunc':>16} "
        f"{'jitune - Python':>16}"
    )
    print(header)
    print("-" * len(header))
    for case, row in results.items():
        cells = [
            f"{row[k]['best_us']:6.2f} / {row[k]['median_us']:6.2f}"
            for k in ("jitune", "python", "ufunc")
        ]
        print(
            f"{case:<8} {cells[0]:>16} {cells[1]:>16} {cells[2]:>16} "
            f"{row['jitune_minus_python_median_us']:>16.2f}"
        )

    report = {
        "benchmark": "overhead",
        "unit": "microseconds per call",
        "input": "float32[4] (x + 1: one array; x + y: two arrays)",
        "number": args.number,
        "repeat": args.repeat,
        "results": results,
        "environment": {
            "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "jitune": jitune.__version__,
            "platform": platform.platform(),
            "cpu": cpu_model(),
            "cpus": os.cpu_count(),
            "jitune_env": {k: v for k, v in os.environ.items() if k.startswith("JITUNE_")},
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
