"""Helpers of the GPU tests: the CUDA templates run in the lockstep simulator (no GPU) or on a
GPU through CuPy, compared with the reference evaluator like ``helpers.check`` does."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from helpers import _as_list, assert_close, graph_tolerance

import jitune
from jitune.frontend.kernel import _spec
from jitune.frontend.trace import trace
from jitune.ir.loops import LoopProgram
from jitune.lower import lower
from jitune.runtime import nvrtc
from jitune.runtime.cuda import default_target
from jitune.runtime.interp import evaluate
from jitune.runtime.simt import Simulator
from jitune.schedule import gpu
from jitune.schedule.space import Config

TARGET = default_target()


def has_nvrtc() -> bool:
    return nvrtc.load() is not None


def gpu_count() -> int:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount()
    except Exception:  # no cupy, no driver, no device
        return 0


def lowered(fn: Callable[..., Any], args: list[Any]):  # noqa: ANN201
    """(traced, compute IR) of ``fn`` for ``args``."""
    specs = [_spec(a, k, "f") for k, a in enumerate(args)]
    traced = trace(fn, specs)
    return traced, lower(traced.graph, [s.strides for s in specs])


def loops_for(compute, configs: Mapping[str, Config] | None = None) -> LoopProgram:  # noqa: ANN001
    return gpu.schedule(compute, TARGET, configs)


def random_configs(compute, rng, count: int) -> list[dict[str, Config]]:  # noqa: ANN001
    """``count`` configs of every stage, drawn from each stage's GPU space."""
    buffers = {d.name: d for d in compute.buffers}
    return [
        {s.out: gpu.space(s, TARGET, buffers).sample(rng) for s in compute.stages}
        for _ in range(count)
    ]


def expected(fn: Callable[..., Any], args: list[Any], graph) -> tuple[list, list, list]:  # noqa: ANN001
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _, numpy_items = _as_list(fn(*args))
    return evaluate(graph, args), numpy_items, graph_tolerance(graph, args)


def check_simulated(
    fn: Callable[..., Any], *args: Any, configs: Mapping[str, Config] | None = None
) -> None:
    """Run ``fn``'s GPU loop IR in the simulator; compare with the reference and NumPy."""
    if isinstance(fn, jitune.Kernel):
        fn = fn.fn
    args = list(args)
    traced, compute = lowered(fn, args)
    loops = loops_for(compute, configs)
    arrays = list(args)
    arrays += [np.zeros(d.shape, d.dtype) for d in loops.buffers[len(args) :]]
    Simulator(loops).run(arrays)
    position = {d.name: k for k, d in enumerate(loops.buffers)}
    actual = [arrays[position[name]] for name in loops.outputs]
    reference, numpy_items, tolerances = expected(fn, args, traced.graph)
    for k, (a, ref, exp, (rtol, atol)) in enumerate(
        zip(actual, reference, numpy_items, tolerances)
    ):
        assert_close(a, ref, rtol=rtol, atol=atol, what=f"output {k} vs reference ({configs})")
        assert_close(a, exp, rtol=rtol, atol=atol, what=f"output {k} vs NumPy ({configs})")


def to_cupy(value: Any) -> Any:
    """``value`` on the GPU with the same strides (views stay views of a copied base)."""
    import cupy

    if not isinstance(value, np.ndarray):
        return value  # Python and NumPy scalars are passed by value
    if value.ndim == 0:
        return cupy.asarray(value)
    item = value.itemsize
    strides = tuple(s // item for s in value.strides)
    low = sum(min(0, (n - 1) * s) for n, s in zip(value.shape, strides))
    high = sum(max(0, (n - 1) * s) for n, s in zip(value.shape, strides))
    if value.size == 0:
        return cupy.asarray(value)
    flat = np.zeros(high - low + 1, value.dtype)
    view = np.lib.stride_tricks.as_strided(flat[-low:], value.shape, value.strides)
    view[...] = value
    base = cupy.asarray(flat)
    return cupy.ndarray(value.shape, value.dtype, base.data + (-low) * item, value.strides)


def check_cuda(fn: Callable[..., Any], *args: Any, kernel: jitune.Kernel | None = None) -> Any:
    """Run ``fn`` compiled for CUDA on CuPy copies of ``args``; compare with the reference
    evaluator and NumPy on the NumPy ``args``."""
    import cupy

    if isinstance(fn, jitune.Kernel):
        kernel, fn = fn, fn.fn
    compiled = kernel if kernel is not None else jitune.kernel(fn)
    device_args = [to_cupy(a) for a in args]
    if args and not any(isinstance(a, cupy.ndarray) for a in device_args):
        # scalars alone run on the CPU: make one a 0-d GPU array so the call runs on the GPU
        device_args[0] = cupy.asarray(np.asarray(args[0]))
    actual = compiled(*device_args)
    cupy.cuda.get_current_stream().synchronize()
    structure, actual_items = _as_list(actual)
    graph = compiled.lower(*args).graph
    reference, numpy_items, tolerances = expected(fn, list(args), graph)
    assert len(actual_items) == len(reference)
    for k, (a, ref, exp, (rtol, atol)) in enumerate(
        zip(actual_items, reference, numpy_items, tolerances)
    ):
        assert isinstance(a, cupy.ndarray), f"output {k} is a {type(a).__name__}"
        host = cupy.asnumpy(a)
        assert_close(host, ref, rtol=rtol, atol=atol, what=f"output {k} vs reference")
        assert_close(host, exp, rtol=rtol, atol=atol, what=f"output {k} vs NumPy")
    return actual
