"""The OpenCL backend on the OpenCL devices pyopencl finds (PoCL's CPU device in CI; skipped
with a reason where there is none): the CPU property tests' random programs on pyopencl
arrays, random configs of every GPU template, and the runtime's contract (pyopencl in,
pyopencl out on the arrays' queue, scalars, errors, the cache, tuning)."""

from __future__ import annotations

import dataclasses
import random
import subprocess
import sys
import textwrap

import numpy as np
import property_bodies as bodies
import pytest
import test_property as tp
from gpu_helpers import expected, lowered
from helpers import _as_list, assert_close
from hypothesis import Phase, given, settings
from test_cuda_codegen import CASES, IDS

import jitune
from jitune.frontend.kernel import _spec
from jitune.pipeline import compute_program, lower_graph, stage_spaces
from jitune.runtime import opencl as opencl_runtime


def _queue():
    """A queue on the device jitune itself would choose (the first that builds programs)."""
    devices = opencl_runtime.working_devices()
    if not devices:
        return None
    import pyopencl as cl

    return cl.CommandQueue(cl.Context(devices[:1]))


QUEUE = _queue()
pytestmark = [
    pytest.mark.opencl,
    pytest.mark.skipif(
        QUEUE is None,
        reason="needs an OpenCL device that builds programs: "
        + (opencl_runtime.unavailable_reason() if QUEUE is None else ""),
    ),
]
# each example builds an OpenCL program (about a second on PoCL): few examples, no shrinking
FEW = settings(max_examples=8, phases=(Phase.explicit, Phase.generate), deadline=None)


def to_device(value):
    """``value`` as a pyopencl array with the same shape (scalars stay host values)."""
    import pyopencl.array as cl_array

    if not isinstance(value, np.ndarray):
        return value
    return cl_array.to_device(QUEUE, value.copy(order="C"))


def check_opencl(fn, *args):
    """Run ``fn`` compiled for OpenCL on device copies of ``args``; compare with the
    reference evaluator and NumPy."""
    import pyopencl.array as cl_array

    if isinstance(fn, jitune.Kernel):
        fn = fn.fn
    compiled = jitune.kernel(fn)
    device_args = [to_device(a) for a in args]
    # only scalars: the call runs on the CPU, as NumPy scalars would
    on_device = any(isinstance(a, cl_array.Array) for a in device_args)
    actual = compiled(*device_args)
    host_args = [a.copy(order="C") if isinstance(a, np.ndarray) else a for a in args]
    graph = compiled.lower(*host_args).graph
    reference, numpy_items, tolerances = expected(fn, list(args), graph)
    _, actual_items = _as_list(actual)
    assert len(actual_items) == len(reference)
    for k, (a, ref, exp, (rtol, atol)) in enumerate(
        zip(actual_items, reference, numpy_items, tolerances)
    ):
        if on_device:
            assert isinstance(a, cl_array.Array), f"output {k} is a {type(a).__name__}"
            assert a.queue is QUEUE
        host = a.get() if on_device else a
        assert_close(host, ref, rtol=rtol, atol=atol, what=f"output {k} vs reference")
        assert_close(host, exp, rtol=rtol, atol=atol, what=f"output {k} vs NumPy")


@FEW
@given(case=tp.elementwise_cases())
def test_random_elementwise_expressions_opencl(case):
    bodies.elementwise(case, check_opencl)


@FEW
@given(case=tp.reduction_cases())
def test_random_reductions_opencl(case):
    bodies.reduction(case, check_opencl)


@FEW
@given(case=tp.einsum_cases())
def test_random_einsum_opencl(case):
    bodies.einsum(case, check_opencl)


@FEW
@given(case=tp.program_cases())
def test_random_multi_stage_programs_opencl(case):
    bodies.program(case, check_opencl)


@pytest.mark.parametrize(("fn", "args"), CASES, ids=IDS)
def test_templates_opencl(fn, args):
    check_opencl(fn, *args)


def _device(templates: str):
    """An OpenCL device on QUEUE: its own choice of templates ("own": the CPU templates as
    work-groups on a CPU device such as PoCL), or the GPU templates whatever the device."""
    from jitune.runtime.opencl import OpenclDevice

    device = OpenclDevice(QUEUE)
    if templates == "gpu":
        target = device.target()
        limits = tuple(item for item in target.limits if item[0] != "cpu_device")
        gpu_target = dataclasses.replace(target, limits=limits, vector_bytes=16)
        device.target = lambda: gpu_target  # type: ignore[method-assign]
    return device


@pytest.mark.parametrize("templates", ["own", "gpu"])
@pytest.mark.parametrize(("fn", "args"), CASES[::3], ids=IDS[::3])
def test_random_configs_opencl(fn, args, templates):
    """Random configs of each stage's space on this device, built and run."""
    import pyopencl.array as cl_array

    device = _device(templates)
    inputs = [to_device(a) for a in args]  # C-contiguous copies: their strides are compiled
    strides = [_spec(x, k, "f").strides for k, x in enumerate(inputs)]
    traced, _ = lowered(fn, list(args))
    compute = compute_program(traced.graph, strides, device.target())
    reference, _, tolerances = expected(fn, list(args), traced.graph)
    spaces = stage_spaces(compute, device)
    rng = random.Random(11)
    for _ in range(2):
        configs = {name: space.sample(rng) for name, space in spaces.items()}
        low = lower_graph(traced.graph, strides, device, configs)
        program = device.load(device.compile(low.source), len(low.loops.buffers))
        arrays = list(inputs)
        arrays += [cl_array.empty(QUEUE, d.shape, d.dtype) for d in low.loops.buffers[len(args) :]]
        program.launch(*arrays)
        position = {d.name: k for k, d in enumerate(low.loops.buffers)}
        for name, ref, (rtol, atol) in zip(low.loops.outputs, reference, tolerances):
            got = arrays[position[name]].get().reshape(np.shape(ref))
            assert_close(got, ref, rtol=rtol, atol=atol, what=f"{name} with {configs}")


def test_cpu_devices_run_the_cpu_templates_as_work_groups():
    if not QUEUE.device.type & __import__("pyopencl").device_type.CPU:
        pytest.skip("the OpenCL device is not a CPU")
    f = jitune.kernel(lambda a, b: a @ b)
    low = f.lower(
        to_device(np.ones((64, 48), np.float32)), to_device(np.ones((48, 80), np.float32))
    )
    assert "__local" not in low.source and "barrier(" not in low.source
    (kernel,) = [k for k in low.loops.kernels if k.launch[0][0] > 1] or low.loops.kernels[-1:]
    assert kernel.launch[1] == (1, 1, 1)  # one work-item per work-group


def test_scalars_with_pyopencl_arrays():
    f = jitune.kernel(lambda x, a, b, flag: np.where(flag, x * a + b, x))
    x = to_device(np.arange(37, dtype=np.float32))
    out = f(x, 2.0, np.float32(3), True)
    np.testing.assert_allclose(out.get(), np.arange(37) * 2 + 3)
    out = f(x, 3, np.int32(1), False)
    np.testing.assert_allclose(out.get(), np.arange(37))


def test_numpy_and_pyopencl_arrays_in_one_call_is_an_error():
    f = jitune.kernel(lambda x, y: x + y)
    with pytest.raises(jitune.ArgumentError, match="numpy.*pyopencl|pyopencl.*numpy"):
        f(to_device(np.ones(3)), np.ones(3))


def test_integer_array_indexing_is_refused_on_opencl_arrays():
    # no status word on the device reports an out-of-bounds index: refused, never unchecked
    f = jitune.kernel(lambda x, i: x[i] + 1)
    with pytest.raises(jitune.UnsupportedOperation, match=r"(?s)integer-array.*opencl.*x\[i\]"):
        f(to_device(np.ones(5)), to_device(np.array([0, 4])))


def test_arrays_of_two_contexts_are_an_error():
    import pyopencl as cl
    import pyopencl.array as cl_array

    other = cl.CommandQueue(cl.Context([QUEUE.device]))
    f = jitune.kernel(lambda x, y: x + y)
    with pytest.raises(jitune.ArgumentError, match="different OpenCL contexts"):
        f(to_device(np.ones(3)), cl_array.to_device(other, np.ones(3)))


def test_offset_views_are_read_from_their_start():
    import pyopencl.array as cl_array

    base = cl_array.to_device(QUEUE, np.arange(40, dtype=np.float32))
    view = base[8:]
    out = jitune.kernel(lambda x: x * 2)(view)
    np.testing.assert_allclose(out.get(), np.arange(8, 40) * 2)


def test_lower_renders_opencl_source_for_specs():
    f = jitune.kernel(lambda a, b: np.maximum(a @ b, 0))
    source = f.lower(
        jitune.spec((65, 33), np.float32), jitune.spec((33, 17), np.float32), target="opencl"
    ).source
    assert "__kernel void k0(" in source and "__global" in source
    assert "__syncthreads" not in source and "blockIdx" not in source


def test_tuning_measures_on_the_device():
    f = jitune.kernel(lambda a, b: a @ b, budget=3)
    a = np.random.default_rng(0).random((40, 24), dtype=np.float32)
    b = np.random.default_rng(1).random((24, 40), dtype=np.float32)
    out = f(to_device(a), to_device(b))
    np.testing.assert_allclose(out.get(), a @ b, rtol=1e-5, atol=1e-5)
    assert f.compile_count == 1


def test_a_warm_process_builds_nothing(cache_dir):
    script = textwrap.dedent(
        """
        import numpy as np, pyopencl as cl, pyopencl.array as cla, jitune
        from jitune.runtime.opencl import working_devices
        queue = cl.CommandQueue(cl.Context(working_devices()[:1]))
        f = jitune.kernel(lambda x: np.exp(x) + 1)
        out = f(cla.to_device(queue, np.linspace(0, 1, 100, dtype=np.float32)))
        assert np.allclose(out.get(), np.exp(np.linspace(0, 1, 100)) + 1, rtol=1e-5)
        print(f.compile_count, f.load_count)
        """
    )
    env = {"JITUNE_CACHE_DIR": str(cache_dir), "JITUNE_BUDGET": "0"}

    def run() -> str:
        import os

        result = subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, **env, "JITUNE_DISABLE_CACHE": "0"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.split()[-2:]

    assert run() == ["1", "0"]
    assert run() == ["0", "1"]


def test_an_updated_pyopencl_argument_is_written_back_on_its_device():
    def f(a, b):
        a += b
        return a * 2

    a, b = np.arange(6, dtype=np.float32), np.ones(6, np.float32)
    da, db = to_device(a), to_device(b)
    out = jitune.kernel(f)(da, db)
    np.testing.assert_allclose(out.get(), (a + b) * 2)
    np.testing.assert_allclose(da.get(), a + b)  # the argument itself, on its queue
    np.testing.assert_allclose(db.get(), b)
