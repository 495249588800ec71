"""Tuning curves: best-so-far GFLOP/s against measured trials, per search strategy.

Reruns the comparison of "Learning to Optimize Tensor Programs" on this machine for float32
``x @ w`` and ``relu(x @ w + b)`` (1024^3 by default):

- random search, the genetic algorithm, the XGBoost model (both objectives: ``rank`` =
  rank:pairwise, ``regression`` = throughput-weighted squared error), and the model with
  transfer from two other shapes of the same kernel tuned first (64 trials each);
- the median over seeds of each strategy's best-so-far curve, up to ``--trials`` trials;
- what ``JITUNE_BUDGET=0`` chooses after transfer (no measurement), against the best known;
- tuning throughput (trials per second) of real tuning runs of a 512^3 matmul, in the worker
  process (the default) and in-process.

The CPU spaces are small (1792 contraction configs, 824 distinct programs at 1024^3), so every distinct
program of each space is measured once, with jitune's own measurer (worker process, checked
against the reference evaluator, median of repeats), and the strategies then replay against
that table: a strategy "measures" a config by looking its time up. All strategies and seeds
see the same times, which makes the comparison fair and the benchmark affordable. The best
config known for a workload is the best of its whole table.

Run::

    python benchmarks/tuning_curves.py                 # full: tables, 5 seeds, 256 trials
    python benchmarks/tuning_curves.py --quick         # 256^3 tables, 2 seeds, 64 trials

Writes ``benchmarks/results/tuning_curves.json`` and ``tuning_curves.png`` (if matplotlib is
installed); measured tables are kept in ``benchmarks/results/tables/`` and reused with
``--reuse-tables``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("JITUNE_DISABLE_CACHE", "1")

import numpy as np  # noqa: E402

import jitune  # noqa: E402
from jitune.config import Budget  # noqa: E402
from jitune.frontend.artifacts import cache_key  # noqa: E402
from jitune.frontend.trace import ArgSpec, trace  # noqa: E402
from jitune.runtime.cpu import CpuDevice  # noqa: E402
from jitune.schedule.space import Config  # noqa: E402
from jitune.tune import TuneOptions, TuneTask, tune  # noqa: E402
from jitune.tune.measure import Candidate, MeasureResult, Plan, resolve  # noqa: E402
from jitune.tune.records import RecordBook, clear_memory  # noqa: E402
from jitune.tune.space import to_json  # noqa: E402
from jitune.tune.worker import WorkerMeasurer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def matmul(x, w):
    return x @ w


def dense_relu(x, w, b):
    return np.maximum(x @ w + b, 0)


def shapes_of(fn, m: int, k: int, n: int) -> list[tuple[int, ...]]:
    shapes = [(m, k), (k, n)]
    return shapes + [(n,)] if fn is dense_relu else shapes


class TableTask(TuneTask):
    """A task whose candidates are looked up in a table instead of compiled."""

    def candidate(self, config: Config) -> Candidate:
        self.features(config)
        return Candidate(json.dumps(to_json(config)), Plan(0, (), ()))


def make_task(fn, shape: tuple[int, int, int], cls: type = TuneTask) -> TuneTask:
    specs = []
    for dims in shapes_of(fn, *shape):
        strides = tuple(int(np.prod(dims[k + 1 :])) for k in range(len(dims)))
        specs.append(ArgSpec(dims, np.dtype("float32"), strides))
    traced = trace(fn, specs)
    device = CpuDevice()
    inputs = [(s.shape, s.dtype, s.strides) for s in specs]
    return cls(
        cache_key(traced, specs, device), fn.__name__, traced.graph, inputs, device, str(shape)
    )


def measure_table(fn, shape, path: Path, reuse: bool, passes: int) -> dict[str, float]:
    """Seconds per call (inf if it failed) of every config, one measurement per distinct
    program (configs that schedule to the same loop IR share it) and pass; the minimum over
    ``passes`` passes, which run one after another so that a burst of load from other
    processes hits only one of a program's measurements."""
    if reuse and path.exists():
        return json.loads(path.read_text())
    tables = [_measure_pass(fn, shape, k) for k in range(passes)]
    table = {key: min(t[key] for t in tables) for key in tables[0]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(table))
    return table


def _measure_pass(fn, shape, number: int) -> dict[str, float]:
    task = make_task(fn, shape)
    programs: dict[str, list[Config]] = {}
    for config in task.space.configs():
        programs.setdefault(str(task.loops(config)), []).append(config)
    groups = list(programs.values())
    bench = task.measure_task(0)
    bench.timeout = 120.0
    measurer = WorkerMeasurer()
    table: dict[str, float] = {}
    began = time.monotonic()
    try:
        for start in range(0, len(groups), 16):
            chunk = groups[start : start + 16]
            results = measurer.measure(bench, [task.candidate(g[0]) for g in chunk])
            for group, result in zip(chunk, results):
                for config in group:
                    table[json.dumps(to_json(config), sort_keys=True)] = (
                        result.seconds if result.ok else float("inf")
                    )
            print(
                f"  table {fn.__name__}{shape} pass {number + 1}: "
                f"{min(start + 16, len(groups))}/{len(groups)} "
                f"programs, {time.monotonic() - began:.0f} s",
                file=sys.stderr,
            )
    finally:
        measurer.close()
    return table


class TableMeasurer:
    """Looks measured times up; remembers the order configs were asked for."""

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table
        self.seen: list[str] = []

    def measure(self, task, candidates) -> list[MeasureResult]:
        results = []
        for build in candidates:
            text = json.dumps(json.loads(resolve(build).source), sort_keys=True)
            self.seen.append(text)
            seconds = self.table[text]
            results.append(
                MeasureResult(seconds) if np.isfinite(seconds) else MeasureResult(None, None)
            )
        return results

    def close(self) -> None:
        pass


def run_curve(task, table, flops, trials, strategy, seed, objective, book, transfer) -> list[float]:
    measurer = TableMeasurer(table)
    options = TuneOptions(
        budget=Budget(trials=trials),
        strategy=strategy,
        seed=seed,
        objective=objective,
        transfer=transfer,
        progress="off",
    )
    tune(task, options, book, measurer)
    best, curve = 0.0, []
    for text in measurer.seen:
        seconds = table[text]
        if np.isfinite(seconds):
            best = max(best, flops / seconds / 1e9)
        curve.append(best)
    return curve


def trials_to(curve: list[float], level: float) -> int | None:
    for k, value in enumerate(curve, start=1):
        if value >= level:
            return k
    return None


def throughput(shape: tuple[int, int, int], trials: int, isolate: bool) -> dict[str, float]:
    clear_memory()
    task = make_task(matmul, shape)
    options = TuneOptions(budget=Budget(trials=trials), isolate=isolate, progress="off")
    began = time.monotonic()
    result = tune(task, options, RecordBook(None))
    elapsed = time.monotonic() - began
    return {
        "trials": result.trials,
        "seconds": elapsed,
        "trials_per_second": result.trials / elapsed,
        "best_gflops": result.gflops,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="256^3, 2 seeds, 64 trials")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--size", type=int, default=None, help="m = k = n of the workloads")
    parser.add_argument("--reuse-tables", action="store_true")
    parser.add_argument("--passes", type=int, default=None, help="table passes (min of)")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--only", choices=["matmul", "dense_relu"], help="one workload")
    parser.add_argument("--output", default=str(RESULTS / "tuning_curves.json"))
    args = parser.parse_args()
    size = args.size or (256 if args.quick else 1024)
    seeds = args.seeds or (2 if args.quick else 5)
    trials = args.trials or (64 if args.quick else 256)
    passes = args.passes or (1 if args.quick else 2)
    # tuned first, for transfer: the same layer (k x n weights) at smaller batches m
    others = [(size // 4, size, size), (size // 2, size, size)]
    report: dict = {
        "settings": {
            "size": size,
            "seeds": seeds,
            "trials": trials,
            "transfer_from": others,
            "transfer_trials": 64,
            "table_passes": passes,
            "method": "every distinct program of each space measured once (worker process, "
            "checked against the reference evaluator, median of repeats); strategies replay "
            "against that table",
        },
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "jitune": jitune.__version__,
        },
        "workloads": {},
    }
    curves_for_plot = {}
    for fn in (matmul, dense_relu):
        name = fn.__name__
        if args.only and args.only != name:
            continue
        shape = (size,) * 3
        tables = {
            s: measure_table(
                fn,
                s,
                RESULTS / "tables" / f"{name}_{'x'.join(map(str, s))}.json",
                args.reuse_tables,
                passes,
            )
            for s in [shape, *others]
        }
        task = make_task(fn, shape, TableTask)
        flops = task.flops
        table = tables[shape]
        best_known = flops / min(table.values()) / 1e9
        default_gflops = flops / table[json.dumps(to_json(task.default), sort_keys=True)] / 1e9
        runs: dict[str, list[list[float]]] = {}
        budget0: list[float] = []
        arms = [
            ("random", "random", "rank", False),
            ("ga", "ga", "rank", False),
            ("model (rank)", "model", "rank", False),
            ("model (regression)", "model", "regression", False),
            ("model+transfer (rank)", "model", "rank", True),
            ("model+transfer (regression)", "model", "regression", True),
        ]
        for label, strategy, objective, transfer in arms:
            began = time.monotonic()
            for seed in range(seeds):
                clear_memory()
                book = RecordBook(None)
                if transfer:
                    for other in others:
                        other_task = make_task(fn, other, TableTask)
                        run_curve(
                            other_task,
                            tables[other],
                            other_task.flops,
                            64,
                            "model",
                            seed,
                            objective,
                            book,
                            True,
                        )
                    chosen = tune(
                        task,
                        TuneOptions(
                            budget=Budget(trials=0), seed=seed, objective=objective, progress="off"
                        ),
                        book,
                    )
                    text = json.dumps(to_json(chosen.config), sort_keys=True)
                    budget0.append(
                        flops / table[text] / 1e9 / best_known
                    ) if objective == "rank" else None
                curve = run_curve(
                    task, table, flops, trials, strategy, seed, objective, book, transfer
                )
                runs.setdefault(label, []).append(curve)
            print(
                f"{name}: {label}: {seeds} seeds in {time.monotonic() - began:.0f} s",
                file=sys.stderr,
            )
        summary = {}
        for label, curves in runs.items():
            length = min(len(c) for c in curves)
            median = [statistics.median(c[k] for c in curves) for k in range(length)]
            summary[label] = {
                "median_curve": median,
                "trials_to_95": trials_to(median, 0.95 * best_known),
                "trials_to_90": trials_to(median, 0.90 * best_known),
                "at_64": median[min(63, length - 1)] / best_known,
                "per_seed_trials_to_95": [trials_to(c, 0.95 * best_known) for c in curves],
            }
            curves_for_plot[(name, label)] = median
        report["workloads"][name] = {
            "shape": shape,
            "distinct_times": len(set(table.values())),
            "configs": len(table),
            "best_known_gflops": best_known,
            "default_gflops": default_gflops,
            "budget0_after_transfer_fraction_of_best": budget0,
            "strategies": summary,
        }
    if not args.skip_throughput:
        tp_shape = (512, 512, 512) if not args.quick else (256, 256, 256)
        report["throughput"] = {
            "shape": tp_shape,
            "worker": throughput(tp_shape, 64, True),
            "in_process": throughput(tp_shape, 64, False),
        }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print_summary(report)
    plot(report, curves_for_plot, out.with_suffix(".png"))
    return 0


def print_summary(report: dict) -> None:
    for name, data in report["workloads"].items():
        print(
            f"\n{name} {data['shape']}: best known {data['best_known_gflops']:.1f} GFLOP/s, "
            f"default {data['default_gflops']:.1f} GFLOP/s, {data['configs']} configs"
        )
        print(f"  {'strategy':30s} {'to 95%':>7s} {'to 90%':>7s} {'@64 (of best)':>14s}")
        for label, s in data["strategies"].items():
            print(
                f"  {label:30s} {str(s['trials_to_95']):>7s} {str(s['trials_to_90']):>7s} "
                f"{s['at_64']:>14.3f}"
            )
        fractions = data["budget0_after_transfer_fraction_of_best"]
        if fractions:
            print(f"  budget 0 after transfer: median {statistics.median(fractions):.3f} of best")
    if "throughput" in report:
        t = report["throughput"]
        print(
            f"\nthroughput, matmul {t['shape']}: worker {t['worker']['trials_per_second']:.1f} "
            f"trials/s, in-process {t['in_process']['trials_per_second']:.1f} trials/s"
        )


def plot(report: dict, curves: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no PNG (pip install matplotlib)", file=sys.stderr)
        return
    names = list(report["workloads"])
    figure, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4.5))
    for axis, name in zip(np.atleast_1d(axes), names):
        data = report["workloads"][name]
        for (workload, label), median in curves.items():
            if workload == name:
                axis.plot(range(1, len(median) + 1), median, label=label)
        axis.axhline(data["best_known_gflops"], color="grey", linestyle=":", label="best known")
        axis.set_title(f"{name} {'x'.join(map(str, data['shape']))} float32")
        axis.set_xlabel("measured trials")
        axis.set_ylabel("best GFLOP/s so far (median over seeds)")
        axis.set_xscale("log", base=2)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
