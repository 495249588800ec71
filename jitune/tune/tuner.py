"""The tuning loop: propose a batch, measure it, record it, retrain the model, repeat.

:func:`tune` is what a cache miss calls (``frontend/artifacts.py``) and what ``f.tune()``
calls ahead of time. It never makes a kernel slower than the default schedule, which is
always measured first, and it never loses work: each batch is recorded as soon as it is
measured, a later tuning of the same signature resumes from those records, and Ctrl-C stops
it cleanly with the best config found so far.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import config as config_mod
from ..cache import CacheKey
from ..config import Budget, ProgressMode
from ..errors import IndexingError
from ..ir.compute import ComputeProgram, StageKind
from ..ir.expr import Expr, digest
from ..ir.graph import Graph, GraphOp
from ..pipeline import compute_program, default_configs, schedule_loops, stage_spaces
from ..runtime.base import Device
from ..runtime.interp import evaluate
from ..schedule.space import Config, Space
from . import features as feature_mod
from .measure import (
    Candidate,
    Measurer,
    MeasureResult,
    MeasureTask,
    Plan,
    can_measure,
    measurer_for,
    random_input,
)
from .model import DEFAULT_OBJECTIVE, CostModel, Objective
from .progress import Progress
from .records import RecordBook
from .search import ModelSearch, SearchState, StrategyName, strategy
from .space import StageConfigs, describe, from_json, join, joint_space, split, to_json
from .transfer import Transfer, prepare

log = logging.getLogger("jitune.tune")


@dataclasses.dataclass(frozen=True)
class TuneOptions:
    """How to tune one signature (one object through the layers, not a list of kwargs)."""

    budget: Budget = Budget(trials=32)
    strategy: StrategyName = "model"
    seed: int = 0
    batch: int = 8
    epsilon: float = 0.125
    objective: Objective = DEFAULT_OBJECTIVE
    transfer: bool = True
    isolate: bool = True
    progress: ProgressMode = "auto"
    timeout: float | None = (
        None  # seconds per candidate in a worker (None: from the default's time)
    )
    confirm: int = 3
    """Rounds in which the best configs and the default are measured again, interleaved,
    once the search has spent its budget (0: none); see :func:`_confirm`."""
    finalists: int = 2

    @classmethod
    def from_settings(cls, **changes: Any) -> TuneOptions:
        """Options from the ``JITUNE_*`` settings in force, with ``changes`` applied."""
        settings = config_mod.get()
        base = cls(budget=settings.budget, isolate=settings.isolate, progress=settings.progress)
        given = {k: v for k, v in changes.items() if v is not None}
        if "budget" in given:
            given["budget"] = config_mod.parse_budget(given["budget"], "budget")
        return dataclasses.replace(base, **given)


def _family(compute: ComputeProgram) -> str:
    """The kernel without its sizes: the same computation at other shapes shares it.

    A digest of the structure with every number masked, each shared subexpression hashed
    once (printing the program instead spelled shared subexpressions out as trees: a loop
    carrying scalars from step to step made that text exponentially long).
    """
    memo: dict[int, bytes] = {}

    def masked(value: object) -> str:
        return re.sub(r"\d+", "#", getattr(value, "value", None) or str(value))

    def text(node: Expr) -> str:
        return masked(node.arg)

    whole = hashlib.sha256()
    for decl in compute.buffers:
        whole.update(f"{decl.role} {decl.name} {decl.dtype.str} {len(decl.shape)};".encode())
    for stage in compute.stages:
        axes = (
            " ".join(a.name for a in stage.axes) + "/" + " ".join(a.name for a in stage.reduce_axes)
        )
        head = f"{stage.out} {axes} {stage.reduce_op} {stage.dtype.str}"
        epilogue = b"" if stage.epilogue is None else digest(stage.epilogue, text, memo)
        whole.update(masked(head).encode() + digest(stage.body, text, memo) + epilogue)
    whole.update(" ".join(compute.outputs).encode())
    return whole.hexdigest()[:16]


def _kind(compute: ComputeProgram) -> str:
    kinds = {stage.kind for stage in compute.stages}
    for kind in (StageKind.CONTRACTION, StageKind.REDUCTION, StageKind.ELEMENTWISE):
        if kind in kinds:
            return kind.value
    return "none"


def _flops(compute: ComputeProgram) -> float:
    """Floating-point operations of one call: a multiply-add counts 2, other work 1."""
    return float(
        sum(
            stage.work() * (2 if stage.kind is StageKind.CONTRACTION else 1)
            for stage in compute.stages
        )
    )


class TuneTask:
    """One signature of one kernel on one device: its space, and how to build a candidate."""

    def __init__(
        self,
        key: CacheKey,
        name: str,
        graph: Graph,
        inputs: Sequence[tuple[tuple[int, ...], np.dtype, tuple[int, ...]]],
        device: Device,
        signature: str = "",
    ) -> None:
        self.key = key
        self.name = name
        self.graph = graph
        self.inputs = list(inputs)  # (shape, dtype, element strides) per argument
        self.device = device
        self.signature = signature
        strides = [strides for _, _, strides in self.inputs]
        self.compute = compute_program(graph, strides, device.target())  # as the pipeline does
        self.spaces: dict[str, Space] = stage_spaces(self.compute, device)
        self.space = joint_space(self.spaces)
        self.default = join(default_configs(self.compute, device))
        self.flops = _flops(self.compute)
        self.family = _family(self.compute)
        self.kind = _kind(self.compute)
        self.shape = [a.extent for s in self.compute.stages for a in s.axes + s.reduce_axes]
        self._features: dict[Config, np.ndarray] = {}
        self._programs: dict[Config, str] = {}

    def loops(self, config: Config) -> Any:
        return schedule_loops(self.compute, self.device, split(config))

    def program(self, config: Config) -> str:
        """A digest of the loop IR ``config`` schedules to (equal digests: equal programs)."""
        found = self._programs.get(config)
        if found is None:
            found = hashlib.sha256(str(self.loops(config)).encode()).hexdigest()
            self._programs[config] = found
        return found

    def features(self, config: Config) -> np.ndarray:
        found = self._features.get(config)
        if found is None:
            found = feature_mod.extract(self.loops(config))
            self._features[config] = found
        return found

    def candidate(self, config: Config) -> Candidate:
        loops = self.loops(config)
        self._features.setdefault(config, feature_mod.extract(loops))
        return Candidate(self.device.render(loops), Plan.of_loops(loops))

    def measure_task(self, seed: int) -> MeasureTask:
        """Random inputs (from ``seed``) and the reference evaluator's outputs on them."""
        rng = np.random.default_rng(seed)
        int_high = min(5, _smallest_gathered_extent(self.graph))
        arguments = tuple(
            random_input(shape, dtype, strides, rng, int_high)
            for shape, dtype, strides in self.inputs
        )
        try:
            reference = tuple(evaluate(self.graph, [a.view() for a in arguments]))
        except IndexingError:  # integers computed into an index went out of bounds: zeros
            arguments = tuple(
                random_input(shape, dtype, strides, rng, 1) for shape, dtype, strides in self.inputs
            )
            reference = tuple(evaluate(self.graph, [a.view() for a in arguments]))
        return MeasureTask(f"{self.key.digest}:{seed}", self.device, arguments, reference)

    def configs(self, config: Config) -> StageConfigs:
        return split(config)


def _smallest_gathered_extent(graph: Graph) -> int:
    """The smallest extent an index array of ``graph`` indexes (a large number if none)."""
    extents = [
        extent
        for node in graph.nodes()
        if node.op is GraphOp.GATHER
        for (kind, _), extent in zip(node.arg.axes, node.src[0].shape)
        if kind == "index"
    ]
    return min(extents, default=1 << 30)


@dataclasses.dataclass(frozen=True)
class TuneResult:
    """What a tuning chose, and how."""

    config: Config  # joint config (see tune.space)
    seconds: float | None  # measured seconds per call of that config (None: not measured)
    default_seconds: float | None
    gflops: float | None
    trials: int  # measured in this call
    total_trials: int  # measured for this signature, earlier tunings included
    how: str
    interrupted: bool = False
    elapsed: float = 0.0
    errors: Mapping[str, int] = dataclasses.field(default_factory=dict)

    @property
    def configs(self) -> StageConfigs:
        return split(self.config)

    @property
    def speedup(self) -> float | None:
        if self.seconds and self.default_seconds:
            return self.default_seconds / self.seconds
        return None


MARGIN = 0.03
"""How much faster than the default schedule a tuned config must have measured to replace it.
Differences below it were within the spread of repeated measurements on a shared 2-core VM;
there the default, the template's studied choice, is the better bet."""


@dataclasses.dataclass
class _Measured:
    """A signature's measurements so far (earlier tunings and this one)."""

    throughput: dict[Config, float] = dataclasses.field(default_factory=dict)  # GFLOP/s, 0 failed
    seconds: dict[Config, float] = dataclasses.field(default_factory=dict)
    features: dict[Config, np.ndarray] = dataclasses.field(default_factory=dict)
    # configs not measured themselves: they schedule to the program of the config they map to
    aliases: dict[Config, Config] = dataclasses.field(default_factory=dict)

    def add(
        self, config: Config, gflops: float, seconds: float | None, features: np.ndarray
    ) -> None:
        self.throughput[config] = gflops
        if seconds is not None:
            self.seconds[config] = seconds
        self.features[config] = features

    def alias(self, config: Config, same: Config, features: np.ndarray) -> None:
        """``config`` schedules to the program ``same`` measured: it shares the result."""
        self.add(config, self.throughput[same], self.seconds.get(same), features)
        self.aliases[config] = same

    @property
    def trials(self) -> int:
        """Configs measured (configs sharing a measured program not counted)."""
        return len(self.throughput) - len(self.aliases)

    def best(self, default: Config | None = None) -> Config | None:
        """The fastest config that ran, or ``default`` if it ran within :data:`MARGIN` of it."""
        good = [c for c, g in self.throughput.items() if g > 0]
        if not good:
            return None
        top = max(good, key=lambda c: (self.throughput[c], repr(c)))
        if default in good and self.throughput[default] * (1 + MARGIN) >= self.throughput[top]:
            return default
        return top

    def train(self, model: CostModel) -> None:
        configs = [c for c in self.throughput if c not in self.aliases]
        if configs:
            model.update(
                np.stack([self.features[c] for c in configs]),
                np.asarray([self.throughput[c] for c in configs]),
            )


def _history(task: TuneTask, rows: Sequence[dict[str, Any]]) -> _Measured:
    """The measurements of this task in earlier tunings. Features are computed again rather
    than read (records round them): a resumed tuning then trains exactly the model an
    uninterrupted one would have."""
    measured = _Measured()
    for row in rows:
        config = from_json(row.get("config"), task.space)
        if config is None:
            continue
        same = from_json(row.get("alias_of"), task.space) if row.get("alias_of") else None
        if same is not None and same in measured.throughput:
            measured.alias(config, same, task.features(config))
        elif same is None:
            seconds = row.get("seconds")
            measured.add(config, float(row.get("gflops") or 0.0), seconds, task.features(config))
    return measured


def _record(
    task: TuneTask, config: Config, trial: int, batch: int, options: TuneOptions
) -> dict[str, Any]:
    """The fields every record of ``config`` has, whatever was measured."""
    return {
        "kernel": task.name,
        "signature": task.signature,
        "family": task.family,
        "kind": task.kind,
        "shape": task.shape,
        "config": to_json(config),
        "features": [round(float(x), 5) for x in task.features(config)],
        "features_version": feature_mod.VERSION,
        "trial": trial,
        "batch": batch,
        "seed": options.seed,
        "strategy": options.strategy,
        "created": time.time(),
    }


def _alias_row(
    task: TuneTask,
    config: Config,
    measured: _Measured,
    trial: int,
    batch: int,
    options: TuneOptions,
) -> dict[str, Any]:
    """A record that ``config`` is the same program as a measured config (costs no trial;
    kept so that a resumed tuning sees exactly what an uninterrupted one saw)."""
    same = measured.aliases[config]
    return _record(task, config, trial, batch, options) | {
        "alias_of": to_json(same),
        "seconds": measured.seconds.get(same),
        "gflops": measured.throughput[same],
        "error": None,
    }


def _row(
    task: TuneTask,
    config: Config,
    result: MeasureResult,
    trial: int,
    batch: int,
    options: TuneOptions,
) -> dict[str, Any]:
    gflops = task.flops / result.seconds / 1e9 if result.ok and result.seconds else 0.0
    return _record(task, config, trial, batch, options) | {
        "seconds": result.seconds if result.ok else None,
        "gflops": gflops,
        "error": None if result.error is None else result.error.value,
        "message": result.message,
        "compile_seconds": result.compile_seconds,
    }


def tune(
    task: TuneTask,
    options: TuneOptions,
    book: RecordBook,
    measurer: Measurer | None = None,
) -> TuneResult:
    """Choose a config for ``task`` within ``options.budget``; see the module docstring."""
    began = time.monotonic()
    measured = _history(task, book.for_key(task.key.digest))
    earlier = measured.trials
    transfer = Transfer()
    if options.transfer:
        transfer = prepare(
            book.all(),
            key=task.key.digest,
            target=task.key.target,
            family=task.family,
            kind=task.kind,
            shape=task.shape,
            space=task.space,
            objective=options.objective,
            seed=options.seed,
        )
    model = CostModel(options.objective, options.seed, base=transfer.base)
    measured.train(model)
    searcher = strategy(options.strategy, options.seed, options.epsilon)

    def state() -> SearchState:
        def score(configs: Sequence[Config]) -> np.ndarray:
            return model.predict(np.stack([task.features(c) for c in configs]))

        return SearchState(task.space, measured.throughput, score, model.trained, transfer.seeds)

    budget = options.budget
    if measurer is None and not can_measure(task.device):
        budget = Budget(trials=0)  # nothing can time this device yet: choose without measuring
    if budget.none:
        return _without_measuring(task, measured, model, state(), transfer, options, began)

    left = None if budget.trials is None else budget.trials - earlier
    deadline = None if budget.seconds is None else began + budget.seconds
    errors: dict[str, int] = {}
    trials = 0
    interrupted = False
    progress = Progress(task.name, budget, earlier, options.progress)
    try:
        if (left is None or left > 0) and len(measured.throughput) < len(task.space):
            measurer = measurer or measurer_for(task.device, options.isolate)
            bench = task.measure_task(options.seed)
            if options.timeout is not None:
                bench.timeout = options.timeout
            batch_number = 0
            while True:
                if left is not None and left <= 0:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
                size = options.batch if left is None else min(options.batch, left)
                aliases_before = len(measured.aliases)
                batch = _next_batch(task, measured, transfer, searcher, state, size)
                rows = [
                    _alias_row(task, config, measured, earlier + trials, batch_number, options)
                    for config in list(measured.aliases)[aliases_before:]
                ]
                if not batch:
                    book.add(task.key, rows)
                    break  # every program of the space is measured
                results = _measure(task, bench, measurer, batch)
                for config, result in zip(batch, results):
                    trials += 1
                    rows.append(_row(task, config, result, earlier + trials, batch_number, options))
                    measured.add(
                        config,
                        rows[-1]["gflops"],
                        result.seconds if result.ok else None,
                        task.features(config),
                    )
                    if result.error is not None:
                        errors[result.error.value] = errors.get(result.error.value, 0) + 1
                book.add(task.key, rows)  # per batch: an interruption loses at most one batch
                batch_number += 1
                if left is not None:
                    left -= len(batch)
                if options.timeout is None and task.default in measured.seconds:
                    # a candidate 100x slower than the default is not worth waiting for
                    bench.timeout = 10.0 + 100.0 * measured.seconds[task.default]
                best = measured.best()
                progress.update(len(batch), measured.throughput[best] if best is not None else 0.0)
                if options.strategy == "model":
                    measured.train(model)
        if trials and (deadline is None or time.monotonic() < deadline):
            rows = []
            for config, result, samples in _confirm(task, bench, measurer, measured, options):
                row = _row(task, config, result, earlier + trials, batch_number, options)
                rows.append(row | {"confirmation": samples})
                measured.add(config, row["gflops"], row["seconds"], task.features(config))
            book.add(task.key, rows)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        progress.close()
    best = measured.best(task.default)
    config = best if best is not None else task.default
    total = measured.trials
    if interrupted:
        how = f"interrupted after {total} trials: best so far"
    else:
        how = f"tuned: {total} trials ({trials} in this call)"
    result = TuneResult(
        config,
        measured.seconds.get(config),
        measured.seconds.get(task.default),
        measured.throughput.get(config),
        trials,
        total,
        how,
        interrupted,
        time.monotonic() - began,
        errors,
    )
    _log_result(task, result)
    return result


def _next_batch(
    task: TuneTask,
    measured: _Measured,
    transfer: Transfer,
    searcher: Any,
    state: Any,
    size: int,
) -> list[Config]:
    """Up to ``size`` configs to measure: the default first (never worse than untuned), then
    transfer seeds, then the strategy's proposals.

    Configs that schedule to a program already measured (in the contraction space, ``kc``
    means nothing with rows outermost, for example) are not measured again: they take that
    program's result and cost no trial.
    """
    batch: list[Config] = []
    programs = {task.program(c): c for c in measured.throughput}
    skipped: set[Config] = set()  # the same program as a config already in this batch

    def offer(config: Config) -> None:
        if config in measured.throughput or config in batch or config in skipped:
            return
        same = programs.get(task.program(config))
        if same is None:
            programs[task.program(config)] = config
            batch.append(config)
        elif same in measured.throughput:
            measured.alias(config, same, task.features(config))
        else:
            skipped.add(config)

    offer(task.default)
    for seed_config in transfer.seeds:
        if len(batch) < size:
            offer(seed_config)
    for attempt in range(12):
        if len(batch) >= size:
            break
        before = (len(batch), len(measured.throughput), len(skipped))
        # ask for more than is missing: some proposals share a program measured before (a
        # model ranks a measured program's aliases as high as the program itself, so the
        # first rounds can bring aliases only: ask for more each round)
        wanted = 4 * (attempt + 1) * (size - len(batch))
        for config in searcher.propose(wanted, state(), set(batch) | skipped):
            if len(batch) < size:
                offer(config)
        if (len(batch), len(measured.throughput), len(skipped)) == before:
            break
    return batch


def _confirm(
    task: TuneTask,
    bench: MeasureTask,
    measurer: Measurer,
    measured: _Measured,
    options: TuneOptions,
) -> list[tuple[Config, MeasureResult, int]]:
    """The best ``options.finalists`` configs and the default, measured again in
    ``options.confirm`` rounds (each in a rotated order), with the fastest of their samples
    in those rounds as their time; returns (config, result, samples) per finalist.

    On a shared machine one measurement can land in a slow or fast spell that lasts
    seconds: a config that was lucky once can beat the default by noise alone (a batched
    matmul's tuned config ran at 0.84 of the default's speed), or the default can be unlucky
    once. Noise only ever adds time to a kernel that does the same work every call, so each
    finalist's fastest sample, from rounds spread over time, is its best estimate: measured
    side by side again, a config that was lucky loses its lead.
    """
    ranked = sorted(
        (c for c, g in measured.throughput.items() if g > 0 and c not in measured.aliases),
        key=lambda c: (-measured.throughput[c], repr(c)),
    )
    finalists = ranked[: options.finalists]
    if task.default in measured.seconds and task.default not in finalists:
        finalists.append(task.default)
    if len(finalists) < 2 or options.confirm <= 0:
        return []
    samples: dict[Config, list[float]] = {c: [] for c in finalists}
    for round_ in range(options.confirm):
        shift = round_ % len(finalists)
        order = finalists[shift:] + finalists[:shift]
        for config, result in zip(order, _measure(task, bench, measurer, order)):
            if result.ok:
                samples[config].append(result.seconds)
    # only the interleaved rounds count: the search's sample of each came at another time
    return [
        (config, MeasureResult(min(times)), len(times))
        for config, times in samples.items()
        if times
    ]


def _measure(
    task: TuneTask, bench: MeasureTask, measurer: Measurer, batch: Sequence[Config]
) -> list[MeasureResult]:
    """Results in batch order; each candidate's source is produced when the measurer asks."""
    return measurer.measure(bench, [functools.partial(task.candidate, c) for c in batch])


def _without_measuring(
    task: TuneTask,
    measured: _Measured,
    model: CostModel,
    state: SearchState,
    transfer: Transfer,
    options: TuneOptions,
    began: float,
) -> TuneResult:
    """Budget 0: the best measured config if any, else the model's top choice, else the default."""
    best = measured.best(task.default)
    if best is not None:
        how = f"budget 0: best of {measured.trials} earlier trials"
        config = best
    else:
        top = None
        if model.trained:
            searcher = ModelSearch(options.seed)
            pool = [*transfer.seeds, *transfer.candidates, task.default]
            top = searcher.choose(state, pool) if transfer.candidates else searcher.top(state, pool)
        if top is not None:
            config = top
            how = f"budget 0: cost model's choice (from {transfer.rows} records of {transfer.tasks} tasks)"
        else:
            config = task.default
            how = "default schedule (untuned: budget 0, no history)"
    return TuneResult(
        config,
        measured.seconds.get(config),
        measured.seconds.get(task.default),
        measured.throughput.get(config),
        0,
        measured.trials,
        how,
        False,
        time.monotonic() - began,
    )


def _log_result(task: TuneTask, result: TuneResult) -> None:
    speed = f"{result.gflops:.1f} GFLOP/s" if result.gflops else "no successful trial"
    speedup = f", {result.speedup:.2f}x the default schedule" if result.speedup else ""
    failed = f", failures {dict(result.errors)}" if result.errors else ""
    log.info(
        "jitune: %s %s: %s in %.1f s, best %s%s%s; config %s",
        task.name,
        task.signature,
        result.how,
        result.elapsed,
        speed,
        speedup,
        failed,
        describe(result.config),
    )
