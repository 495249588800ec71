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


@jitune.kernel
def _divide(x, y):
    return x / y


def _bits(values: np.ndarray) -> np.ndarray:
    return values.view(np.uint32 if values.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize(
    "dtype, dividend, divisors",
    [
        (np.float64, 5e-324, [1.6584983608322994, 1.25]),  # quotient rounds up to 5e-324
        (np.float32, 1.4e-45, [1.6584983608322994, 1.25]),
        (np.float64, 1e-310, [1e-30, 3.0]),  # subnormal dividend, normal quotient
        (np.float32, 1e-40, [1e-30, 3.0]),
        (np.float64, 2.2250738585072014e-308, [3.0, 1.5]),  # quotient just below normal
        (np.float64, 1.7e308, [0.9999999999999999, 0.75]),  # quotient at the overflow edge
        (np.float32, 3.4e38, [0.99999994, 0.75]),
        (np.float64, -0.0, [1.5, -3.0]),  # the sign of zero
        (np.float32, -0.0, [1.5, -3.0]),
    ],
)
def test_quotients_at_the_ends_of_the_exponent_range(dtype, dividend, divisors):
    """The reciprocal-and-correction fast path was not correctly rounded where the dividend
    or the quotient is subnormal (5e-324 / 1.658 gave 0.0) or the quotient is near overflow,
    and lost the sign of -0.0; every quotient must be NumPy's, bit for bit."""
    x = np.full((2, 16), dividend, dtype=dtype)
    y = np.array(divisors, dtype=dtype).reshape(2, 1)
    with np.errstate(all="ignore"):
        want = x / y
    np.testing.assert_array_equal(_bits(_divide(x, y)), _bits(want))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quotients_over_the_whole_exponent_range_are_bit_identical(dtype):
    """Dividends and divisors spread over every exponent, subnormals included."""
    rng = np.random.default_rng(11)
    info = np.finfo(dtype)
    lowest, highest = int(np.log2(info.smallest_subnormal)), int(np.log2(info.max)) + 1
    rows, columns = 1024, 67
    with np.errstate(all="ignore"):
        signs = rng.choice([-1.0, 1.0], (rows, columns))
        x = (
            signs
            * rng.uniform(1, 2, (rows, columns))
            * 2.0 ** rng.uniform(lowest, highest, (rows, columns))
        ).astype(dtype)
        y = (
            rng.uniform(1, 2, (rows, 1)) * 2.0 ** rng.uniform(lowest / 3, highest / 3, (rows, 1))
        ).astype(dtype)
        want = x / y
    got = _divide(x, y)
    same = (_bits(got) == _bits(want)) | (np.isnan(got) & np.isnan(want))
    assert same.all(), f"{(~same).sum()} quotients differ, first {x[~same][0]!r} / ..."
