"""Regressions found by a differential fuzzer (jitune against NumPy).

Each test pins one defect: a silent difference from NumPy (value, dtype, shape), a program
NumPy runs that jitune refused with an internal error, or an error NumPy raises that jitune
did not raise. Results are compared with :func:`helpers.check` (compiled vs. the reference
evaluator vs. NumPy) where NumPy gives a result.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check

import jitune
from jitune.ir.expr import const

# -- constants are told apart by their bits ---------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_negative_and_positive_zero_constants_stay_apart(dtype):
    """-0.0 == 0.0, so an IR table keyed on float equality merged the two constants and
    (x + -0.0) / 0.0 divided by -0.0: -inf where NumPy gives inf."""
    x = np.array([1.0, -2.0, 3.5], dtype=dtype)
    with np.errstate(divide="ignore"):
        got = check(lambda x: (x + -0.0) / 0.0, x)
        np.testing.assert_array_equal(got, np.array([np.inf, -np.inf, np.inf], dtype=dtype))
        # the other order: the first constant seen must not win either
        got = check(lambda x: (x + 0.0) / -0.0, x)
        np.testing.assert_array_equal(got, np.array([-np.inf, np.inf, -np.inf], dtype=dtype))


def test_expression_constants_compare_by_bits():
    """The IR's constant nodes: equal bits are equal (NaNs too), -0.0 is not 0.0."""
    f8 = np.dtype(np.float64)
    assert const(-0.0, f8) != const(0.0, f8)
    assert len({const(-0.0, f8), const(0.0, f8)}) == 2
    nan = const(float("nan"), f8)
    assert nan == const(float("nan"), f8)
    assert hash(nan) == hash(const(float("nan"), f8))
    assert nan != const(-float("nan"), f8)
    assert const(1.0, f8) == const(1.0, f8)
    assert const(1.0, f8) != const(1.0, np.dtype(np.float32))


def test_nan_constants_of_either_sign_get_their_own_cache_entry(cache_dir):
    """The structural key printed every NaN as 'nan': a kernel adding -nan loaded the binary
    of one adding +nan from the disk cache, and the sign of the result's NaNs flipped."""
    negative = -np.float64(np.nan)
    assert np.signbit(negative)
    x = np.ones(3)

    plus = jitune.kernel(lambda x: x + np.float64(np.nan))
    minus = jitune.kernel(lambda x: x + negative)
    np.testing.assert_array_equal(np.signbit(plus(x)), np.signbit(x + np.float64(np.nan)))
    np.testing.assert_array_equal(np.signbit(minus(x)), np.signbit(x + negative))
    assert minus.compile_count == 1 and minus.load_count == 0

