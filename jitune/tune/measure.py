"""Measuring candidates: build, check against the reference evaluator, time.

A :class:`Bench` holds one task's inputs and reference outputs and measures candidates in
the process it lives in. A :class:`Measurer` decides where that process is: in-process
(:class:`LocalMeasurer`) or a persistent worker process (:class:`~.worker.WorkerMeasurer`),
which survives nothing a faulty candidate does to it but is restarted for the next one.
Measurers are chosen per device (:func:`measurer_for`), so a GPU backend registers its own.

What travels to the measuring process is plain data (source text, shapes, arrays), never IR:
IR nodes cache their hashes, and string hashes differ between processes.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from ..ir.compute import BufferLayout
from ..runtime.base import Device
from ..runtime.pool import aligned_empty


class ErrorKind(str, enum.Enum):
    """Why a candidate has no time (AutoTVM's MeasureErrorNo, for jitune's failure modes)."""

    COMPILE_ERROR = "compile_error"  # scheduling, rendering, LLVM or loading failed
    RUNTIME_ERROR = "runtime_error"  # running it raised
    CRASH = "crash"  # the measuring process died
    TIMEOUT = "timeout"  # it did not finish in time (the worker is restarted)
    WRONG_ANSWER = "wrong_answer"  # its output differs from the reference evaluator's


@dataclasses.dataclass(frozen=True)
class MeasureResult:
    """Seconds per call (median of repeats), or the error that took the candidate out."""

    seconds: float | None
    error: ErrorKind | None = None
    message: str = ""
    compile_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and self.seconds is not None


Plan = BufferLayout
"""Buffers one candidate's binary takes: inputs (given), then fresh non-input buffers."""


@dataclasses.dataclass(frozen=True)
class Candidate:
    """What the measuring process needs of one config: the source and its buffer plan."""

    source: str
    plan: Plan


@dataclasses.dataclass(frozen=True)
class Timing:
    """How long to measure: at least ``min_repeats`` repeats and ``min_seconds`` in all."""

    min_seconds: float = 0.02
    min_repeats: int = 3
    max_repeats: int = 50
    repeat_seconds: float = 1e-3  # calls per repeat are chosen so a repeat lasts this long


@dataclasses.dataclass
class MeasureTask:
    """One program's measuring setup: inputs, reference outputs, device, tolerance.

    ``ident`` names the task (the cache key's digest) so a worker keeps its arrays between
    candidates. ``timeout`` bounds one candidate (build, check and timing) in a worker.
    """

    ident: str
    device: Device
    arguments: tuple[StridedInput, ...]
    reference: tuple[np.ndarray, ...]
    timing: Timing = Timing()
    timeout: float = 60.0
    rtol: float = 1e-3


@dataclasses.dataclass(frozen=True)
class StridedInput:
    """An input array as its flat storage and a view of it.

    Pickling a strided view copies it into a contiguous array, but a candidate is compiled
    for the signature's strides (transposes, broadcasts), so the storage travels instead.
    """

    base: np.ndarray  # one-dimensional, or 0-d for a scalar
    start: int  # element offset of the view's first element
    shape: tuple[int, ...]
    strides: tuple[int, ...]  # in elements

    def view(self, base: np.ndarray | None = None, writeable: bool = False) -> np.ndarray:
        """The input over ``base`` (default: the storage itself)."""
        base = self.base if base is None else base
        if not self.shape:
            return base
        itemsize = base.dtype.itemsize
        return np.lib.stride_tricks.as_strided(
            base[self.start :],
            self.shape,
            tuple(s * itemsize for s in self.strides),
            writeable=writeable,
        )

    def copy(self) -> np.ndarray:
        """A writable view of the same layout over a copy of the storage (for a program that
        updates this input in place)."""
        return self.view(self.base.copy(), writeable=True)


def random_input(
    shape: tuple[int, ...],
    dtype: np.dtype,
    strides: tuple[int, ...],
    rng: np.random.Generator,
    int_high: int = 5,
) -> StridedInput:
    """A random array of ``shape`` and ``dtype`` with these element strides (views such as
    transposes and broadcasts are part of a signature, so the candidate must read them).
    Integers lie in ``[-4, int_high)`` (``[0, int_high)`` if unsigned or if ``int_high`` is
    below 5: a program whose integers index arrays gets values in bounds)."""
    dtype = np.dtype(dtype)
    if not shape:
        value = _random_values(1, dtype, rng, int_high)[0]
        return StridedInput(np.asarray(value, dtype=dtype), 0, (), ())
    low = sum(min(0, (n - 1) * s) for n, s in zip(shape, strides))
    high = sum(max(0, (n - 1) * s) for n, s in zip(shape, strides))
    return StridedInput(_random_values(high - low + 1, dtype, rng, int_high), -low, shape, strides)


def _random_values(
    count: int, dtype: np.dtype, rng: np.random.Generator, int_high: int = 5
) -> np.ndarray:
    if dtype.kind == "b":
        return rng.random(count) < 0.5
    if dtype.kind in "iu":
        # small values: products and sums of them stay far from overflow
        low = 0 if dtype.kind == "u" or int_high < 5 else -4
        return rng.integers(low, max(int_high, 1), count).astype(dtype)
    # in [0.5, 1.5): no zeros for divisions, logs of positive values stay defined
    return (rng.random(count) + 0.5).astype(dtype)


def agrees(output: np.ndarray, reference: np.ndarray, rtol: float) -> bool:
    """Whether a candidate's output matches the reference, to a tolerance scaled by the
    reference's magnitude (summation order differs between schedules)."""
    if output.shape != reference.shape or output.dtype != reference.dtype:
        return False
    if reference.dtype.kind not in "fc":
        return bool(np.array_equal(output, reference))
    scale = float(np.nanmax(np.abs(reference), initial=0.0)) if reference.size else 0.0
    tol = rtol if reference.dtype.itemsize <= 4 else 1e-9
    return bool(
        np.allclose(output, reference, rtol=tol, atol=tol * max(scale, 1.0), equal_nan=True)
    )


Build = Callable[[], Candidate]
"""Produces a candidate when called: the worker measurer renders the next candidate while
the worker compiles the current one."""


def resolve(build: Build | Candidate) -> Candidate | MeasureResult:
    """The candidate, or a compile error if producing its source failed."""
    if isinstance(build, Candidate):
        return build
    try:
        return build()
    except Exception as exc:  # noqa: BLE001 - a template that fails costs one trial
        return MeasureResult(None, ErrorKind.COMPILE_ERROR, _say(exc))


class Bench:
    """Measures candidates of one task in the current process: :meth:`build` then
    :meth:`run` (two steps, so a worker can compile while its caller renders)."""

    def __init__(self, task: MeasureTask) -> None:
        self.task = task
        self.inputs = [argument.view() for argument in task.arguments]
        self._built: tuple[Any, Plan, float] | None = None

    def measure(self, candidate: Candidate) -> MeasureResult:
        failed = self.build(candidate)
        return failed if failed is not None else self.run()

    def build(self, candidate: Candidate) -> MeasureResult | None:
        """Compile and load ``candidate``; a result only if that failed."""
        self._built = None
        began = time.perf_counter()
        try:
            binary = self.task.device.compile(candidate.source)
            program = self.task.device.load(binary, candidate.plan.buffer_count)
        except Exception as exc:  # noqa: BLE001 - any failure to build is this candidate's
            return MeasureResult(None, ErrorKind.COMPILE_ERROR, _say(exc))
        self._built = (program, candidate.plan, time.perf_counter() - began)
        return None

    def run(self) -> MeasureResult:
        """Check the built candidate against the reference, then time it."""
        task = self.task
        assert self._built is not None, "run() needs a successful build()"
        program, plan, compiled = self._built
        self._built = None
        candidate = Candidate("", plan)
        try:
            arrays = self._arrays(candidate.plan)
            program.launch(*arrays)  # warm-up, and the output that is checked
            for position, expected in zip(candidate.plan.results, task.reference):
                if not agrees(arrays[position], expected, task.rtol):
                    return MeasureResult(
                        None, ErrorKind.WRONG_ANSWER, "output differs from the reference", compiled
                    )
            seconds = _time(program.launch, arrays, task.timing)
        except Exception as exc:  # noqa: BLE001
            return MeasureResult(None, ErrorKind.RUNTIME_ERROR, _say(exc), compiled)
        return MeasureResult(seconds, None, "", compiled)

    def _arrays(self, plan: Plan) -> list[Any]:
        arrays: list[Any] = list(self.inputs)
        for position in plan.written:  # updated in place: each run starts from the inputs
            arrays[position] = self.task.arguments[position].copy()
        for shape, dtype in plan.allocations:
            array = aligned_empty(shape, np.dtype(dtype))  # as calls get them (runtime/pool.py)
            if array.dtype.kind == "f":
                array.fill(np.nan)  # an element the candidate never writes cannot pass the check
            arrays.append(array)
        return arrays


def _time(launch: Callable[..., None], arrays: Sequence[Any], timing: Timing) -> float:
    """Median seconds per call over repeats of ``number`` calls each."""
    began = time.perf_counter()
    launch(*arrays)
    once = max(time.perf_counter() - began, 1e-7)
    number = max(1, math.ceil(timing.repeat_seconds / once))
    samples: list[float] = []
    spent = 0.0
    while len(samples) < timing.max_repeats and (
        len(samples) < timing.min_repeats or spent < timing.min_seconds
    ):
        began = time.perf_counter()
        for _ in range(number):
            launch(*arrays)
        elapsed = time.perf_counter() - began
        spent += elapsed
        samples.append(elapsed / number)
    # the median: one interrupted repeat (another process, a page fault) does not move it
    return statistics.median(samples)


def _say(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) < 500 else text[:497] + "..."


class Measurer(Protocol):
    """Measures candidates of a task; one instance per device kind and process."""

    def measure(
        self, task: MeasureTask, candidates: Sequence[Build | Candidate]
    ) -> list[MeasureResult]:
        """One result per candidate, in order; never raises for a faulty candidate."""
        ...

    def close(self) -> None:
        """Release what the measurer holds (a worker process)."""
        ...


BenchFactory = Callable[[MeasureTask], Bench]
_bench_types: dict[str, BenchFactory] = {}


def register_bench(device_name: str, factory: BenchFactory) -> None:
    """Make ``factory(task)`` the bench of tasks on devices named ``device_name`` (devices
    with their own memory upload inputs and time with the device's clock)."""
    _bench_types[device_name] = factory


def bench_for(task: MeasureTask) -> Bench:
    """The bench that measures ``task`` in this process (the worker uses it too)."""
    return _bench_types.get(task.device.name, Bench)(task)


class LocalMeasurer:
    """Measures in this process: no start-up cost, but a candidate that crashes or hangs
    takes the caller with it (``JITUNE_ISOLATE=0``)."""

    def __init__(self) -> None:
        self._bench: Bench | None = None
        self._task: MeasureTask | None = None

    def measure(
        self, task: MeasureTask, candidates: Sequence[Build | Candidate]
    ) -> list[MeasureResult]:
        if self._bench is None or self._task is not task:
            self._bench, self._task = bench_for(task), task
        results = []
        for build in candidates:
            candidate = resolve(build)
            if isinstance(candidate, MeasureResult):
                results.append(candidate)
            else:
                results.append(self._bench.measure(candidate))
        return results

    def close(self) -> None:
        self._bench = self._task = None


MeasurerFactory = Callable[[bool], Measurer]
_factories: dict[str, MeasurerFactory] = {}
_instances: dict[tuple[str, bool], Measurer] = {}


def register_measurer(device_name: str, factory: MeasurerFactory) -> None:
    """Make ``factory(isolate)`` the measurer of devices named ``device_name``."""
    _factories[device_name] = factory
    for key in [k for k in _instances if k[0] == device_name]:
        _instances.pop(key).close()


def worker_or_local(isolate: bool) -> Measurer:
    """The worker process when isolating, else this process (the CPU's and CUDA's choice)."""
    if isolate:
        from .worker import WorkerMeasurer

        return WorkerMeasurer()
    return LocalMeasurer()


register_measurer("cpu", worker_or_local)


def can_measure(device: Device) -> bool:
    """Whether a measurer is registered for ``device`` (tuning without one measures nothing)."""
    return device.name in _factories


def measurer_for(device: Device, isolate: bool) -> Measurer:
    """The measurer of ``device`` (kept for the process: a worker is started once)."""
    key = (device.name, isolate)
    if key not in _instances:
        factory = _factories.get(device.name)
        if factory is None:
            raise NotImplementedError(f"no measurer for {device.name} devices")
        _instances[key] = factory(isolate)
    return _instances[key]


def close_all() -> None:
    """Close every measurer this process opened."""
    while _instances:
        _instances.popitem()[1].close()
