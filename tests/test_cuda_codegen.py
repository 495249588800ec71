"""The CUDA backend without a GPU: every GPU template (and random configs of each space, on
awkward extents) renders CUDA C that NVRTC compiles for sm_90, and computes the reference's
results in the lockstep simulator (``jitune.runtime.simt``), which also checks barriers.
``f.lower(..., target="cuda")`` renders for NumPy arrays and ``jitune.spec`` shapes."""

from __future__ import annotations

import random

import numpy as np
import pytest
from gpu_helpers import check_simulated, has_nvrtc, loops_for, lowered, random_configs

import jitune
from jitune.codegen import c_source, cuda
from jitune.runtime import nvrtc
from jitune.runtime.cuda import compile_source, unpack

needs_nvrtc = pytest.mark.skipif(
    not has_nvrtc(), reason="NVRTC not installed (pip install nvidia-cuda-nvrtc-cu12)"
)


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def layernorm(x):
    mu = x.mean(axis=1, keepdims=True)
    d = x - mu
    return d / np.sqrt((d * d).mean(axis=1, keepdims=True) + 1e-5)


def gelu(x):
    return 0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))


def dense_relu(x, w, b):
    return np.maximum(x @ w + b, 0)


def matmul(a, b):
    return a @ b


def bmm(a, b):
    return np.einsum("bij,bjk->bik", a, b)


def column_sum(x):
    return x.sum(axis=0)


def row_max(x):
    return x.max(axis=-1)


def total(x):
    return x.sum()


def argmax_rows(x):
    return np.argmax(x, axis=1)


def scaled_row_sum(x, y):
    return x.sum(axis=1) * y  # a reduction whose epilogue loads at the output index


def mixed(x, y, s):
    return np.where(x > 0, x // 3 + y % 4, -x) * s


def angle(x, y):
    return np.arctan2(x, y) * 2


def f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def cases(rng):
    """(function, args): every template, awkward extents (1, 7, 33, 130)."""
    return [
        (gelu, [f32(rng, 130)]),
        (gelu, [f32(rng, 7, 36)]),
        (softmax, [f32(rng, 7, 130)]),
        (softmax, [f32(rng, 1, 33)]),
        (layernorm, [f32(rng, 33, 7)]),
        (dense_relu, [f32(rng, 33, 7), f32(rng, 7, 130), f32(rng, 130)]),
        (dense_relu, [f32(rng, 16, 8), f32(rng, 8, 64), f32(rng, 64)]),
        (matmul, [f32(rng, 130, 33), f32(rng, 33, 7)]),
        (matmul, [f32(rng, 1, 33), f32(rng, 33, 1)]),
        (matmul, [f32(rng, 64, 32).T, f32(rng, 64, 48)]),  # A stored column-major
        (
            matmul,
            [
                rng.integers(-9, 9, (33, 7)).astype(np.int32),
                rng.integers(-9, 9, (7, 16)).astype(np.int32),
            ],
        ),
        (matmul, [rng.standard_normal((17, 33)), rng.standard_normal((33, 9))]),  # float64
        (bmm, [f32(rng, 3, 16, 16), f32(rng, 3, 16, 16)]),
        (bmm, [f32(rng, 2, 7, 33), f32(rng, 2, 33, 1)]),
        (column_sum, [f32(rng, 33, 130)]),
        (row_max, [f32(rng, 7, 33)]),
        (total, [f32(rng, 130, 7)]),
        (argmax_rows, [f32(rng, 7, 33)]),
        (scaled_row_sum, [f32(rng, 7, 36), f32(rng, 7)]),
        (
            mixed,
            [
                rng.integers(-20, 20, (7, 33)).astype(np.int64),
                rng.integers(-5, 5, 33).astype(np.int64),
                2,
            ],
        ),
        (mixed, [f32(rng, 33)[::-1], f32(rng, 33), np.float32(0.5)]),
        (angle, [f32(rng, 7, 33), f32(rng, 33)]),
        (angle, [rng.standard_normal(130), rng.standard_normal(130)]),
    ]


CASES = cases(np.random.default_rng(7))
IDS = [f"{fn.__name__}-{'x'.join(map(str, np.shape(args[0])))}" for fn, args in CASES]


@pytest.mark.parametrize(("fn", "args"), CASES, ids=IDS)
def test_default_schedule_simulated(fn, args):
    check_simulated(fn, *args)


@pytest.mark.parametrize(("fn", "args"), CASES, ids=IDS)
def test_random_configs_simulated(fn, args):
    rng = random.Random(hash(fn.__name__) % 1000)
    _, compute = lowered(fn, list(args))
    for configs in random_configs(compute, rng, 4):
        check_simulated(fn, *args, configs=configs)


@needs_nvrtc
@pytest.mark.parametrize(("fn", "args"), CASES, ids=IDS)
def test_nvrtc_compiles_default_and_random_configs(fn, args):
    _, compute = lowered(fn, list(args))
    rng = random.Random(3)
    for configs in [None, *random_configs(compute, rng, 3)]:
        source = cuda.render(loops_for(compute, configs))
        meta, cubin = unpack(compile_source(source, "sm_90"))
        assert cubin.startswith(b"\x7fELF")
        assert [k["name"] for k in meta["kernels"]] == [
            f"k{n}" for n in range(len(meta["kernels"]))
        ]


@needs_nvrtc
def test_nvrtc_compiles_the_benchmark_shapes():
    """The tiles of the GPU benchmark (4096^3 matmul, 16384 x 1024 rows), default configs."""
    spec = jitune.spec
    for fn, shapes in [
        (dense_relu, [(4096, 4096), (4096, 4096), (4096,)]),
        (bmm, [(4096, 16, 16), (4096, 16, 16)]),
        (softmax, [(16384, 1024)]),
        (layernorm, [(16384, 1024)]),
        (gelu, [(1 << 26,)]),
    ]:
        source = (
            jitune.kernel(fn).lower(*[spec(s, "float32") for s in shapes], target="cuda").source
        )
        compile_source(source, "sm_90")


def test_lower_for_cuda_without_a_gpu():
    x = np.ones((64, 32), np.float32)
    lowered_ = jitune.kernel(dense_relu).lower(
        x, jitune.spec((32, 48), "float32"), jitune.spec((48,), "float32"), target="cuda"
    )
    assert lowered_.target.name == "cuda" and lowered_.target.arch.startswith("sm_")
    assert 'extern "C" __global__' in lowered_.source
    meta = c_source.read_launch(lowered_.source)
    assert meta["buffers"] == ["in0", "in1", "in2", "out0"]
    assert "gpu_block" in str(lowered_.loops) and "CUDA C" in str(lowered_)
    # the CPU rendering of the same function is unchanged
    assert "define" in jitune.kernel(dense_relu).lower(x, x.T, np.ones(64, np.float32)).source


def test_unknown_target_is_an_error():
    with pytest.raises(jitune.ArgumentError, match="unknown jitune target"):
        jitune.kernel(gelu).lower(np.ones(3), target="tpu")


@needs_nvrtc
def test_nvrtc_reports_errors():
    library = nvrtc.load()
    with pytest.raises(jitune.CompileError, match="could not compile"):
        library.compile('extern "C" __global__ void k() { undefined_thing(); }', "sm_90")


def test_cupy_arrays_without_a_usable_gpu_give_a_clear_error():
    cupy = pytest.importorskip("cupy")
    from gpu_helpers import gpu_count

    if gpu_count():
        pytest.skip("a GPU is present")
    with pytest.raises(jitune.ArgumentError, match="cuda backend"):
        jitune.kernel(gelu)(cupy.ones(3))


# -- the CPU property tests' random programs, on the GPU templates in the simulator ----------
import property_bodies as bodies  # noqa: E402
import test_property as tp  # noqa: E402
from hypothesis import given, settings  # noqa: E402


@settings(max_examples=40)
@given(case=tp.elementwise_cases())
def test_random_elementwise_expressions_simulated(case):
    bodies.elementwise(case, check_simulated)


@settings(max_examples=40)
@given(case=tp.reduction_cases())
def test_random_reductions_simulated(case):
    bodies.reduction(case, check_simulated)


@settings(max_examples=40)
@given(case=tp.einsum_cases())
def test_random_einsum_simulated(case):
    bodies.einsum(case, check_simulated)


@settings(max_examples=25)
@given(case=tp.program_cases())
def test_random_multi_stage_programs_simulated(case):
    bodies.program(case, check_simulated)


def test_buffers_written_and_read_by_one_kernel_are_not_restrict():
    """A row kernel stores the row's max from one thread and every thread reads it after a
    barrier; with ``__restrict__`` on that buffer NVVM moved the reads above the barrier."""

    def softmax_rows(x):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    source = (
        jitune.kernel(softmax_rows).lower(jitune.spec((300, 1024), "float32"), target="cuda").source
    )
    params = source.split("void k0(", 1)[1].split(")", 1)[0]
    assert "const float* __restrict__ in0" in params
    assert "float* t0" in params and "float* t1" in params  # written and read: no restrict
    assert "float* __restrict__ out0" in params  # only written
