"""A reduction's costly summand is stored once into the later stage that needs it again
(lower/reuse.py); results must match the reference whichever axes the summand is placed on."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check, random_array

import jitune


def _exp_count(fn, *specs):
    return str(jitune.kernel(fn).lower(*specs).compute).count("exp(")


def column_softmax(x):
    e = np.exp(x - x.max(axis=0))
    return e / e.sum(axis=0)


def batched_softmax(x):
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def log_normalised(x):
    y = np.log(x)
    return y - y.mean(axis=1, keepdims=True)


def widened(x):
    e = np.exp(x)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float64)


@pytest.mark.parametrize("fn", [column_softmax, batched_softmax, log_normalised])
@pytest.mark.parametrize("shape", [(7, 33), (1, 130), (3, 5, 17)])
def test_shared_summands_match_the_reference(fn, shape, rng):
    if fn is not batched_softmax and len(shape) == 3:
        shape = shape[1:]
    x = random_array(rng, shape, np.float32)
    if fn is log_normalised:
        x = np.abs(x) + np.float32(0.5)
    check(fn, x)


def test_the_exponential_is_computed_once():
    spec = jitune.spec((6, 40), np.float32)
    assert _exp_count(column_softmax, spec) == 1
    assert _exp_count(batched_softmax, jitune.spec((2, 6, 40), np.float32)) == 1


def test_a_consumer_of_another_dtype_recomputes(rng):
    spec = jitune.spec((6, 40), np.float32)
    assert _exp_count(widened, spec) == 2  # the output is float64, the summand float32
    check(widened, random_array(rng, (6, 40), np.float32))


def layernorm(x):
    mean = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, keepdims=True)  # NumPy's var computes its own mean
    return (x - mean) / np.sqrt(var + 1e-5)


@pytest.mark.parametrize("shape", [(4096, 1024), (5, 7)])
def test_layernorm_sums_each_row_once_and_is_one_kernel(shape):
    from jitune.ir.compute import StageKind

    low = jitune.kernel(layernorm).lower(jitune.spec(shape, np.float32))
    kinds = [s.kind for s in low.compute.stages]
    # the mean, the sum of squares (a reduction, not a contraction), the output
    assert kinds == [StageKind.REDUCTION, StageKind.REDUCTION, StageKind.ELEMENTWISE]
    assert len(low.loops.kernels) == 1
    assert len([b for b in low.compute.buffers if b.role == "temp"]) == 2


def test_merged_stages_give_the_reference(rng):
    check(layernorm, random_array(rng, (33, 130), np.float32))
