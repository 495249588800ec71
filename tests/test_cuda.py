"""The CUDA backend on a GPU (marked ``cuda``; skipped without one): the CPU property tests'
random programs on CuPy arrays, random configs of every GPU space, and the runtime's
contract (CuPy in, CuPy out on the arrays' device and stream, scalars, errors, the cache)."""

from __future__ import annotations

import random

import numpy as np
import property_bodies as bodies
import pytest
import test_property as tp
from gpu_helpers import check_cuda, expected, gpu_count, lowered, random_configs, to_cupy
from helpers import assert_close
from hypothesis import Phase, given, settings
from test_cuda_codegen import CASES, IDS

import jitune
from jitune.frontend.kernel import _spec
from jitune.pipeline import lower_graph
from jitune.runtime.devices import device_named

# no shrinking: every example compiles a CUDA program, and the GPU time is short
NO_SHRINK = (Phase.explicit, Phase.generate)

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(gpu_count() == 0, reason="needs a CUDA GPU (CuPy sees none)"),
]


@settings(max_examples=100, phases=NO_SHRINK)
@given(case=tp.elementwise_cases())
def test_random_elementwise_expressions_cuda(case):
    bodies.elementwise(case, check_cuda)


@settings(max_examples=100, phases=NO_SHRINK)
@given(case=tp.reduction_cases())
def test_random_reductions_cuda(case):
    bodies.reduction(case, check_cuda)


@settings(max_examples=100, phases=NO_SHRINK)
@given(case=tp.einsum_cases())
def test_random_einsum_cuda(case):
    bodies.einsum(case, check_cuda)


@settings(max_examples=60, phases=NO_SHRINK)
@given(case=tp.program_cases())
def test_random_multi_stage_programs_cuda(case):
    bodies.program(case, check_cuda)


@pytest.mark.parametrize(("fn", "args"), CASES, ids=IDS)
def test_templates_cuda(fn, args):
    check_cuda(fn, *args)


@pytest.mark.parametrize(("fn", "args"), CASES, ids=IDS)
def test_random_configs_cuda(fn, args):
    """Random configs of each stage's GPU space, compiled and run on the GPU."""
    import cupy

    device = device_named("cuda")
    traced, compute = lowered(fn, list(args))
    reference, _, tolerances = expected(fn, list(args), traced.graph)
    strides = [_spec(a, k, "f").strides for k, a in enumerate(args)]
    for configs in random_configs(compute, random.Random(5), 4):
        low = lower_graph(traced.graph, strides, device, configs)
        program = device.load(device.compile(low.source), len(low.loops.buffers))
        arrays = [to_cupy(a) for a in args]
        # NaN-filled: an element a config forgets to write (or reads before it is written)
        # cannot pass by finding the right value left in pooled memory
        arrays += [
            cupy.full(d.shape, np.nan, d.dtype)
            if d.dtype.kind == "f"
            else cupy.empty(d.shape, d.dtype)
            for d in low.loops.buffers[len(args) :]
        ]
        program.launch(*arrays)
        position = {d.name: k for k, d in enumerate(low.loops.buffers)}
        for name, ref, (rtol, atol) in zip(low.loops.outputs, reference, tolerances):
            got = cupy.asnumpy(arrays[position[name]]).reshape(np.shape(ref))
            assert_close(got, ref, rtol=rtol, atol=atol, what=f"{name} with {configs}")


def test_results_are_cupy_arrays_on_the_current_stream():
    import cupy

    f = jitune.kernel(lambda x, y: np.maximum(x @ y, 0) * 2.0)
    x = cupy.random.standard_normal((65, 33), dtype=cupy.float32)
    y = cupy.random.standard_normal((33, 17), dtype=cupy.float32)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        out = f(x, y)
    stream.synchronize()
    assert isinstance(out, cupy.ndarray) and out.device.id == x.device.id
    expected = np.maximum(cupy.asnumpy(x) @ cupy.asnumpy(y), 0) * 2.0
    np.testing.assert_allclose(cupy.asnumpy(out), expected, rtol=1e-4, atol=1e-4)


def test_python_and_numpy_scalars_with_cupy_arrays():
    import cupy

    f = jitune.kernel(lambda x, a, b, c: x * a + b - c)
    x = cupy.arange(10, dtype=cupy.float32)
    out = f(x, 2.0, np.float32(3), np.asarray(1.5, np.float32))
    np.testing.assert_allclose(cupy.asnumpy(out), np.arange(10) * 2 + 3 - 1.5)
    out = f(x, 3, np.int32(1), 0.5)  # another signature; a NumPy int32 is not "weak"
    assert out.dtype == np.float64
    np.testing.assert_allclose(cupy.asnumpy(out), np.arange(10) * 3 + 1 - 0.5)


def test_numpy_and_cupy_arrays_in_one_call_is_an_error():
    import cupy

    f = jitune.kernel(lambda x, y: x + y)
    with pytest.raises(jitune.ArgumentError, match="numpy.*cupy|cupy.*numpy"):
        f(cupy.ones(3), np.ones(3))


def test_arrays_on_two_gpus_are_an_error():
    import cupy

    if gpu_count() < 2:
        pytest.skip("needs two GPUs")
    with cupy.cuda.Device(1):
        y = cupy.ones(3)
    with pytest.raises(jitune.ArgumentError, match="different devices"):
        jitune.kernel(lambda a, b: a + b)(cupy.ones(3), y)


def test_misaligned_views_are_handled():
    import cupy

    f = jitune.kernel(lambda x: x * 2 + 1)
    base = cupy.arange(1 + 4 * 64, dtype=cupy.float32)
    view = base[1:].reshape(64, 4)  # 4-byte offset: vector loads need a 16-byte aligned copy
    np.testing.assert_allclose(cupy.asnumpy(f(view)), cupy.asnumpy(view) * 2 + 1)


@pytest.mark.parametrize("isolate", [True, False])
def test_tuning_measures_on_the_gpu(isolate):
    """The tuner measures CUDA candidates with CUDA events, in the worker process (isolate)
    or in this one, and the chosen kernel is correct."""
    import cupy

    f = jitune.kernel(lambda a, b: np.maximum(a @ b, 0), budget=4)
    rows = 96 if isolate else 80  # another signature: records of the first are not reused
    a = cupy.random.standard_normal((rows, 40), dtype=cupy.float32)
    b = cupy.random.standard_normal((40, 72), dtype=cupy.float32)
    with jitune.config.override(isolate=isolate):
        result = f.tune(a, b)
    assert result is not None and result.trials >= 1
    assert result.seconds is not None and result.seconds > 0
    assert not result.errors, result.errors
    expected = np.maximum(cupy.asnumpy(a) @ cupy.asnumpy(b), 0)
    np.testing.assert_allclose(cupy.asnumpy(f(a, b)), expected, rtol=1e-4, atol=1e-4)


def test_a_warm_process_loads_the_cubin_from_the_cache(cache_dir):
    import cupy

    def fn(x):
        return np.exp(x) - 1

    x = cupy.linspace(0, 1, 1000, dtype=cupy.float32)
    first = jitune.kernel(fn)
    first(x)
    assert first.compile_count == 1
    second = jitune.kernel(fn)
    out = second(x)
    assert second.compile_count == 0 and second.load_count == 1
    np.testing.assert_allclose(
        cupy.asnumpy(out), np.expm1(np.linspace(0, 1, 1000)), rtol=1e-5, atol=1e-6
    )
