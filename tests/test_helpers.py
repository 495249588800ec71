"""The comparison helpers must be able to fail: each kind of mismatch is caught."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close, check, graph_tolerance, tolerance, with_layout

import jitune


def test_shape_is_checked_first():
    with pytest.raises(AssertionError, match="shape"):
        assert_close(np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float64))


def test_dtype_is_checked():
    with pytest.raises(AssertionError, match="dtype"):
        assert_close(np.zeros(3, np.float32), np.zeros(3, np.float64))
    with pytest.raises(AssertionError, match="dtype"):
        assert_close(np.zeros(3, np.int32), np.zeros(3, np.int64))


def test_integers_and_bools_are_exact():
    with pytest.raises(AssertionError, match="differ"):
        assert_close(np.array([1, 2, 3]), np.array([1, 2, 4]))
    with pytest.raises(AssertionError, match="differ"):
        assert_close(np.array([True, False]), np.array([True, True]))
    assert_close(np.array([1, 2, 3]), np.array([1, 2, 3]))


def test_nan_positions_must_match():
    with pytest.raises(AssertionError, match="NaN"):
        assert_close(np.array([np.nan, 1.0]), np.array([1.0, np.nan]))
    with pytest.raises(AssertionError, match="NaN"):
        assert_close(np.array([0.0, 1.0]), np.array([np.nan, 1.0]))
    assert_close(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]))


def test_infinities_must_match_in_sign():
    with pytest.raises(AssertionError, match="infinities"):
        assert_close(np.array([np.inf]), np.array([-np.inf]))
    with pytest.raises(AssertionError, match="infinities"):
        assert_close(np.array([1e308]), np.array([np.inf]))


@pytest.mark.parametrize("dtype, rel", [("float32", 1e-3), ("float64", 1e-9)])
def test_float_tolerance_per_dtype(dtype, rel):
    expected = np.array([1.0, 100.0, -3.0], dtype)
    with pytest.raises(AssertionError, match="tolerance"):
        assert_close(expected * (1 + rel), expected)
    assert_close(expected * (1 + rel / 1000), expected)


def test_tolerance_grows_with_reduction_length_and_scale():
    assert tolerance("float32", 1000)[1] == pytest.approx(1000 * tolerance("float32")[1])
    assert tolerance("float64", 1, scale=50.0)[1] == pytest.approx(50 * tolerance("float64")[1])
    assert tolerance("int32", 10**6) == (0.0, 0.0)
    assert tolerance("bool") == (0.0, 0.0)


def test_graph_tolerance_uses_the_least_precise_float():
    kernel = jitune.kernel(lambda x, y: x.sum() + y)  # a float32 sum feeding a float64 result
    x, y = np.ones(100, np.float32), np.ones(3, np.float64)
    ((rtol, atol),) = graph_tolerance(kernel.lower(x, y).graph, (x, y))
    assert rtol == tolerance("float32")[0]
    assert np.all(atol >= 100 * tolerance("float32")[1])


def test_check_catches_a_wrong_kernel():
    wrong = jitune.kernel(lambda x: x + 1.001)
    with pytest.raises(AssertionError, match="outside tolerance"):
        check(lambda x: x + 1, np.ones(4), kernel=wrong)


def test_check_catches_a_wrong_structure():
    wrong = jitune.kernel(lambda x: [x + 1])
    with pytest.raises(AssertionError, match="list"):
        check(lambda x: (x + 1,), np.ones(4), kernel=wrong)


@pytest.mark.parametrize("layout", ["c", "transposed", "stepped", "reversed", "broadcast"])
def test_layouts_have_the_requested_shape_and_strides(layout):
    rng = np.random.default_rng(0)
    x = with_layout(rng, (4, 5), "float32", layout)
    assert x.shape == (4, 5)
    contiguous = layout == "c"
    assert x.flags.c_contiguous == contiguous
