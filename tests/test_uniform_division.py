"""Division by a value shared by all lanes (a row's sum, a norm) skips the vector divide; its
result must still be NumPy's correctly rounded quotient, special values included."""

from __future__ import annotations

import re

import numpy as np
import pytest

import jitune


@jitune.kernel
def _divide_rows(x, y):
    return x / y.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quotients_are_bit_identical_to_numpy(dtype):
    rng = np.random.default_rng(7)
    rows = 512
    # magnitudes spread over most of the exponent range, both signs
    exponents = rng.uniform(-30, 30, size=(rows, 257))
    x = (rng.standard_normal((rows, 257)) * 2.0**exponents).astype(dtype)
    y = (rng.standard_normal((rows, 3)) * 2.0 ** rng.uniform(-30, 30, size=(rows, 1))).astype(dtype)
    got = _divide_rows(x, y)
    want = x / y.sum(axis=1, keepdims=True)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values_follow_ieee(dtype):
    info = np.finfo(dtype)
    x = np.ones((8, 33), dtype)
    x[:, :6] = [np.inf, -np.inf, np.nan, 0.0, info.max, info.tiny]
    y = np.ones((8, 2), dtype)
    y[0] = 0.0  # x / 0: inf, nan for 0/0
    y[1, 0] = np.inf  # x / inf: 0
    y[2, 0] = np.nan
    y[3] = [info.smallest_subnormal, 0.0]  # reciprocal overflows: takes the divide
    y[4] = [info.max, 0.0]  # reciprocal subnormal: takes the divide
    y[5] = [0.25, 0.0]  # quotient overflows for info.max
    y[6] = [-0.0, 0.0]
    with np.errstate(all="ignore"):
        want = x / y.sum(axis=1, keepdims=True)
    got = _divide_rows(x, y)
    np.testing.assert_array_equal(got, want)


def test_softmax_has_no_vector_divide():
    @jitune.kernel
    def softmax(x):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    source = softmax.lower(jitune.spec((64, 256), np.float32)).source
    assert "fdiv float" in source  # the row's reciprocal, once
    assert re.search(r"fdiv <\d+ x float>", source.split("div_slow")[0]) is None
