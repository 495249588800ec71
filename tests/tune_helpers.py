"""Shared pieces of the tuner tests: tasks of small kernels, a fake measurer with known costs."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import numpy as np

from jitune.frontend.artifacts import cache_key
from jitune.frontend.trace import ArgSpec, trace
from jitune.runtime.cpu import CpuDevice
from jitune.schedule.space import Config
from jitune.tune import TuneTask
from jitune.tune.measure import Candidate, MeasureResult, MeasureTask, Plan, resolve
from jitune.tune.space import join, split


def matmul(x, w):
    return x @ w


def dense_relu(x, w, b):
    return np.maximum(x @ w + b, 0)


def specs_of(*shapes: tuple[int, ...], dtype: str = "float32") -> list[ArgSpec]:
    specs = []
    for shape in shapes:
        strides = tuple(int(np.prod(shape[k + 1 :])) for k in range(len(shape)))
        specs.append(ArgSpec(shape, np.dtype(dtype), strides))
    return specs


def make_task(fn: Callable, *shapes: tuple[int, ...], cls: type = TuneTask) -> TuneTask:
    specs = specs_of(*shapes)
    traced = trace(fn, specs)
    device = CpuDevice()
    key = cache_key(traced, specs, device)
    inputs = [(s.shape, s.dtype, s.strides) for s in specs]
    return cls(key, fn.__name__, traced.graph, inputs, device, str(shapes))


class LabelledTask(TuneTask):
    """A task whose candidates carry their config as their source, for fake measurers."""

    def candidate(self, config: Config) -> Candidate:
        self.features(config)
        return Candidate(
            json.dumps({s: dict(c) for s, c in split(config).items()}), Plan(0, (), (), ())
        )


def config_of(candidate: Candidate) -> Config:
    return join({stage: Config(values) for stage, values in json.loads(candidate.source).items()})


def known_cost(config: Config, k: int = 600) -> float:
    """Seconds of a made-up machine: best at mr=6, nv=3, pack, cols_outer, kc=256.

    A function of the program, not of the knobs: knobs that schedule to the same loop IR
    (``order`` with one-row tiles, ``kc`` with rows outermost or ``kc >= k``) cost the same.
    """
    values = {name.split("/")[1]: value for name, value in config.items()}
    order = values["order"] if values["mr"] > 1 else "none"
    kc = values["kc"] if order == "cols_outer" and values["kc"] < k else 0
    cost = 1.0
    cost += 0.15 * abs(values["mr"] - 6) + 0.3 * abs(values["nv"] - 3)
    cost += 0.0 if values["pack"] else 0.5
    cost += 0.0 if order == "cols_outer" else 0.4
    cost += {0: 0.3, 128: 0.1, 256: 0.0, 512: 0.2}[kc]
    return cost * 1e-3


class FakeMeasurer:
    """Known costs, no compiling; remembers every config it was asked about, in order."""

    def __init__(
        self, cost: Callable[[Config], float] = known_cost, interrupt_after: int | None = None
    ) -> None:
        self.cost = cost
        self.seen: list[Config] = []
        self.interrupt_after = interrupt_after

    def measure(self, task: MeasureTask, candidates: Sequence[Candidate]) -> list[MeasureResult]:
        results = []
        for candidate in candidates:
            if self.interrupt_after is not None and len(self.seen) >= self.interrupt_after:
                raise KeyboardInterrupt
            config = config_of(resolve(candidate))
            self.seen.append(config)
            results.append(MeasureResult(self.cost(config)))
        return results

    def close(self) -> None:
        pass
