"""Measuring candidates on devices with their own memory (OpenCL, CUDA): inputs are uploaded
once per task, outputs are allocated on the device and copied back for the check against the
reference, and times come from the device's clock (OpenCL profiling events, CUDA events),
not from the host's.

Where measurement runs:

- CUDA: in the persistent worker process by default, like the CPU (the worker takes the
  bench registered for the device, :class:`CudaBench`; see ``measure.bench_for``). A faulty
  kernel can leave a CUDA context unusable; it is the worker's context, which dies with the
  worker, never the caller's. ``JITUNE_ISOLATE=0`` measures in the caller's process.
- OpenCL: in the calling process always (``JITUNE_ISOLATE`` does not apply): the arrays'
  context cannot be handed to another process. The OpenCL runtime reports faults as errors.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .measure import (
    Bench,
    ErrorKind,
    LocalMeasurer,
    MeasureResult,
    MeasureTask,
    Plan,
    StridedInput,
    Timing,
    agrees,
    register_bench,
    register_measurer,
    worker_or_local,
)


class DeviceBench(Bench):
    """:class:`Bench` for a device with its own memory. Subclasses say how to upload, allocate,
    download and time; checking and the repeat policy are shared."""

    def __init__(self, task: MeasureTask) -> None:
        self.task = task
        self.inputs = [self.upload(argument) for argument in task.arguments]
        self._built = None

    # -- what a device says ---------------------------------------------------------------------
    def upload(self, argument: StridedInput) -> Any:
        raise NotImplementedError

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        raise NotImplementedError

    def download(self, array: Any) -> np.ndarray:
        raise NotImplementedError

    def elapsed(self, program: Any, arrays: Sequence[Any]) -> float:
        """Device seconds of one launch of ``program``, waited for."""
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------
    def run(self) -> MeasureResult:
        assert self._built is not None, "run() needs a successful build()"
        program, plan, compiled = self._built
        self._built = None
        try:
            arrays = self._device_arrays(plan)
            self.elapsed(program, arrays)  # warm-up, and the output that is checked
            for position, expected in zip(plan.results, self.task.reference):
                if not agrees(self.download(arrays[position]), expected, self.task.rtol):
                    return MeasureResult(
                        None, ErrorKind.WRONG_ANSWER, "output differs from the reference", compiled
                    )
            seconds = self._time(program, arrays, self.task.timing)
        except Exception as exc:  # noqa: BLE001 - a failing candidate costs one trial
            return MeasureResult(
                None, ErrorKind.RUNTIME_ERROR, f"{type(exc).__name__}: {exc}"[:500], compiled
            )
        return MeasureResult(seconds, None, "", compiled)

    def _device_arrays(self, plan: Plan) -> list[Any]:
        arrays: list[Any] = list(self.inputs)
        for shape, dtype in plan.allocations:
            array = self.empty(shape, np.dtype(dtype))
            if array.dtype.kind == "f":
                array.fill(np.nan)  # an element the candidate never writes cannot pass
            arrays.append(array)
        return arrays

    def _time(self, program: Any, arrays: Sequence[Any], timing: Timing) -> float:
        """Median device seconds per launch over at least ``min_repeats`` launches and
        ``min_seconds`` of wall time."""
        samples: list[float] = []
        began = time.perf_counter()
        while len(samples) < timing.max_repeats and (
            len(samples) < timing.min_repeats or time.perf_counter() - began < timing.min_seconds
        ):
            samples.append(self.elapsed(program, arrays))
        return statistics.median(samples)


class OpenclBench(DeviceBench):
    """OpenCL: candidates built and launched on a profiling queue of the arrays' context,
    timed between markers."""

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
        super().__init__(dataclasses.replace(task, device=OpenclDevice(self.queue)))

    def upload(self, argument: StridedInput) -> Any:
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

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        return self.cl_array.empty(self.queue, shape, dtype)

    def download(self, array: Any) -> np.ndarray:
        return array.get()

    def elapsed(self, program: Any, arrays: Sequence[Any]) -> float:
        start = self.cl.enqueue_marker(self.queue)
        program.launch(*arrays)
        end = self.cl.enqueue_marker(self.queue)
        end.wait()
        return max(end.profile.end - start.profile.end, 1) * 1e-9


class CudaBench(DeviceBench):
    """CUDA: CuPy arrays on the current device, launches timed between two CUDA events."""

    def __init__(self, task: MeasureTask) -> None:
        import cupy

        self.cupy = cupy
        super().__init__(task)

    def upload(self, argument: StridedInput) -> Any:
        if not argument.shape:
            return argument.base
        cupy = self.cupy
        base = cupy.asarray(np.ascontiguousarray(argument.base))
        itemsize = argument.base.dtype.itemsize
        return cupy.ndarray(
            argument.shape,
            argument.base.dtype,
            base.data + argument.start * itemsize,
            tuple(s * itemsize for s in argument.strides),
        )

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        return self.cupy.empty(shape, dtype)

    def download(self, array: Any) -> np.ndarray:
        return self.cupy.asnumpy(array)

    def elapsed(self, program: Any, arrays: Sequence[Any]) -> float:
        start, end = self.cupy.cuda.Event(), self.cupy.cuda.Event()
        start.record()
        program.launch(*arrays)
        end.record()
        end.synchronize()
        return self.cupy.cuda.get_elapsed_time(start, end) * 1e-3


register_bench("opencl", OpenclBench)
register_bench("cuda", CudaBench)
register_measurer("opencl", lambda isolate: LocalMeasurer())  # the context stays here
register_measurer("cuda", worker_or_local)
