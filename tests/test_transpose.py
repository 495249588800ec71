"""Copies that transpose (``x.T.copy()``, packing a transposed operand of a product) run as
register transposes of ``lanes x lanes`` blocks; results are exact, whatever the dtype and
whether or not the extents divide into blocks."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check

import jitune
from jitune.runtime.cpu import host_target


@jitune.kernel
def transposed(x):
    return x.T.copy()


@jitune.kernel
def batched_swap(x):
    return np.swapaxes(x, 1, 2).copy()


@jitune.kernel
def linear(x, w):
    return x @ w.T


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "bool"])
@pytest.mark.parametrize("shape", [(64, 48), (37, 50), (1, 40), (128, 256)])
def test_transposed_copies_are_exact(dtype, shape):
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 50).astype(dtype)
    result = transposed(x)
    np.testing.assert_array_equal(result, x.T)
    assert result.flags.c_contiguous


def test_whole_blocks_become_register_transposes():
    # a block is as many lanes square as the host's vectors hold floats (16 with AVX-512,
    # 8 with AVX2); its transpose takes lanes * log2(lanes) shuffles
    lanes = host_target().lanes(4)
    x = np.zeros((64, 48), np.float32)
    lowered = transposed.lower(x)
    text = str(lowered.loops)
    assert f"for r_ in 0..{lanes}:  # unrolled" in text
    assert f"for l_ in 0..{lanes}:  # vectorized" in text
    assert lowered.source.count("shufflevector") >= lanes * (lanes.bit_length() - 1)


def test_batched_transposes_keep_the_batch_axis_outside():
    x = np.random.default_rng(3).standard_normal((3, 32, 80)).astype(np.float32)
    np.testing.assert_array_equal(batched_swap(x), np.swapaxes(x, 1, 2))
    assert "shufflevector" in batched_swap.lower(x).source


@pytest.mark.parametrize(("m", "k", "n"), [(300, 512, 640), (33, 100, 70), (8, 64, 32)])
def test_products_with_a_transposed_operand(m, k, n):
    rng = np.random.default_rng(m + k + n)
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((n, k)).astype(np.float32)
    check(linear, x, w)
