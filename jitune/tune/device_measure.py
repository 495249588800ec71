"""Measuring candidates on a device with its own memory (OpenCL): inputs are uploaded once
per task, outputs are allocated on the device and copied back for the check against the
reference, and times come from the device's own clock (OpenCL profiling events on a
profiling queue of the same context), not from the host's.

Measurement runs in the calling process (``JITUNE_ISOLATE`` does not apply): a device
context cannot be shared with a worker process. A candidate that fails to build or run
costs its trial as on the CPU; the OpenCL runtime reports faults as errors rather than
taking the process down.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .measure import (
    Bench,
    Build,
    Candidate,
    ErrorKind,
    MeasureResult,
    MeasureTask,
    Plan,
    Timing,
    agrees,
    register_measurer,
    resolve,
)


class OpenclBench(Bench):
    """:class:`Bench` for an OpenCL device: device arrays, event timing."""

    def __init__(self, task: MeasureTask) -> None:
        import pyopencl as cl
        import pyopencl.array as cl_array

        from ..runtime.opencl import OpenclDevice

        self.cl, self.cl_array = cl, cl_array
        user_queue = task.device._queue()  # type: ignore[attr-defined]
        self.queue = cl.CommandQueue(
            user_queue.context,
            user_queue.device,
            properties=cl.command_queue_properties.PROFILING_ENABLE,
        )
        # candidates are built and launched on the profiling queue
        self.task = MeasureTask(
            task.ident,
            OpenclDevice(self.queue),
            task.arguments,
            task.reference,
            task.timing,
            task.timeout,
            task.rtol,
        )
        self.original = task
        self.inputs = [self._upload(argument) for argument in task.arguments]
        self._built = None

    def _upload(self, argument: Any) -> Any:
        if not argument.shape:
            return argument.base  # scalars are passed by value
        base = self.cl_array.to_device(self.queue, np.ascontiguousarray(argument.base))
        itemsize = argument.base.dtype.itemsize
        return self.cl_array.Array(
            self.queue,
            argument.shape,
            argument.base.dtype,
            strides=tuple(s * itemsize for s in argument.strides),
            data=base.base_data,
            offset=argument.start * itemsize,
        )

    def run(self) -> MeasureResult:
        assert self._built is not None, "run() needs a successful build()"
        program, plan, compiled = self._built
        self._built = None
        try:
            arrays = self._device_arrays(plan)
            program.launch(*arrays)
            self.queue.finish()
            for position, expected in zip(plan.results, self.task.reference):
                if not agrees(arrays[position].get(), expected, self.task.rtol):
                    return MeasureResult(
                        None, ErrorKind.WRONG_ANSWER, "output differs from the reference", compiled
                    )
            seconds = self._time(program, arrays, self.task.timing)
        except Exception as exc:  # noqa: BLE001 - a failing candidate costs one trial
            return MeasureResult(None, ErrorKind.RUNTIME_ERROR, f"{type(exc).__name__}: {exc}")
        return MeasureResult(seconds, None, "", compiled)

    def _device_arrays(self, plan: Plan) -> list[Any]:
        arrays: list[Any] = list(self.inputs)
        for shape, dtype in plan.allocations:
            array = self.cl_array.empty(self.queue, shape, np.dtype(dtype))
            if array.dtype.kind == "f":
                array.fill(np.nan)  # an element the candidate never writes cannot pass
            arrays.append(array)
        return arrays

    def _time(self, program: Any, arrays: Sequence[Any], timing: Timing) -> float:
        """Median device seconds per call, between profiling markers around each repeat."""
        cl = self.cl
        samples: list[float] = []
        began = time.perf_counter()
        while len(samples) < timing.max_repeats and (
            len(samples) < timing.min_repeats or time.perf_counter() - began < timing.min_seconds
        ):
            start = cl.enqueue_marker(self.queue)
            program.launch(*arrays)
            end = cl.enqueue_marker(self.queue)
            end.wait()
            samples.append(max(end.profile.end - start.profile.end, 1) * 1e-9)
        return statistics.median(samples)


class OpenclMeasurer:
    """Measures OpenCL candidates in this process, one :class:`OpenclBench` per task."""

    def __init__(self, isolate: bool = False) -> None:
        self._bench: OpenclBench | None = None

    def measure(
        self, task: MeasureTask, candidates: Sequence[Build | Candidate]
    ) -> list[MeasureResult]:
        if self._bench is None or self._bench.original is not task:
            self._bench = OpenclBench(task)
        results = []
        for build in candidates:
            candidate = resolve(build)
            results.append(
                candidate
                if isinstance(candidate, MeasureResult)
                else self._bench.measure(candidate)
            )
        return results

    def close(self) -> None:
        self._bench = None


register_measurer("opencl", OpenclMeasurer)
