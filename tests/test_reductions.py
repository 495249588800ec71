"""Reductions: sum/prod/max/min/mean/var/std/argmax/argmin over axes, with keepdims,
dtypes, layouts, empty axes and fused pre/post elementwise work."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import SUPPORTED_DTYPES, check, random_array, with_layout

import jitune

REDUCTIONS = {
    "sum": lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims),
    "prod": lambda x, axis, keepdims: np.prod(x, axis=axis, keepdims=keepdims),
    "max": lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims),
    "min": lambda x, axis, keepdims: np.min(x, axis=axis, keepdims=keepdims),
    "amax": lambda x, axis, keepdims: np.amax(x, axis=axis, keepdims=keepdims),
    "mean": lambda x, axis, keepdims: np.mean(x, axis=axis, keepdims=keepdims),
    "var": lambda x, axis, keepdims: np.var(x, axis=axis, keepdims=keepdims),
    "std": lambda x, axis, keepdims: np.std(x, axis=axis, keepdims=keepdims),
    "x.sum": lambda x, axis, keepdims: x.sum(axis=axis, keepdims=keepdims),
    "x.max": lambda x, axis, keepdims: x.max(axis=axis, keepdims=keepdims),
    "x.mean": lambda x, axis, keepdims: x.mean(axis=axis, keepdims=keepdims),
}
ARG_REDUCTIONS = {
    "argmax": lambda x, axis, keepdims: np.argmax(x, axis=axis, keepdims=keepdims),
    "argmin": lambda x, axis, keepdims: np.argmin(x, axis=axis, keepdims=keepdims),
    "x.argmax": lambda x, axis, keepdims: x.argmax(axis=axis, keepdims=keepdims),
}

AXES_3D = [None, 0, 1, 2, -1, -3, (0, 1), (1, 2), (0, 2), (2, 0), (0, 1, 2), ()]


def _values(rng, shape, dtype, name):
    # keep products from overflowing: prod of 130 values in [0.9, 1.1] stays finite
    if name == "prod" and np.dtype(dtype).kind == "f":
        return rng.uniform(0.9, 1.1, shape).astype(dtype)
    if name == "prod" and np.dtype(dtype).kind in "iu":
        return rng.integers(-2, 3, shape).astype(dtype)
    return random_array(rng, shape, dtype)


CORE = ("sum", "prod", "max", "min", "mean", "var")  # every axis form
SPELLINGS = ("amax", "std", "x.sum", "x.max", "x.mean")  # the same code paths: a few axes
AXIS_CASES = [(name, axis) for name in CORE for axis in AXES_3D] + [
    (name, axis) for name in SPELLINGS for axis in (None, 1, (0, 2))
]


@pytest.mark.parametrize("name, axis", AXIS_CASES, ids=[f"{n}-{a}" for n, a in AXIS_CASES])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reduction_axes(name, axis, keepdims, rng):
    x = _values(rng, (3, 7, 17), "float32", name)
    check(lambda a: REDUCTIONS[name](a, axis, keepdims), x)


@pytest.mark.parametrize("name", sorted(ARG_REDUCTIONS))
@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_arg_reduction_axes(name, axis, keepdims, rng):
    x = random_array(rng, (3, 7, 17), "float64")
    check(lambda a: ARG_REDUCTIONS[name](a, axis, keepdims), x)


@pytest.mark.parametrize(
    "name, dtype",
    [
        pytest.param(name, dtype, id=f"{name}-{dtype}")
        for name in ["sum", "prod", "max", "min", "mean", "argmax", "argmin"]
        for dtype in SUPPORTED_DTYPES
    ],
)
def test_reduction_dtypes(name, dtype, rng):
    """Result dtypes follow NumPy: int32/bool sums -> int64, int means -> float64, ..."""
    fn = {**REDUCTIONS, **ARG_REDUCTIONS}[name]
    x = _values(rng, (7, 33), dtype, name)
    for axis in (None, 0, 1):
        check(lambda a, axis=axis: fn(a, axis, False), x)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 16, 17, 33, 130, 1000])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_reduction_lengths(size, dtype, rng):
    """Lengths around the vector width and unroll factor (vector body + scalar tail)."""
    x = random_array(rng, (3, size), dtype)
    check(lambda a: (a.sum(axis=1), a.max(axis=1), a.min(axis=-1), a.argmax(axis=1)), x)
    check(lambda a: (a.sum(axis=0), a.max(axis=0), a.argmin(axis=0)), x)
    check(lambda a: (a.sum(), a.max(), a.argmax()), x)


@pytest.mark.parametrize("layout", ["transposed", "stepped", "reversed", "broadcast"])
@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)], ids=str)
def test_reduction_non_contiguous(layout, axis, rng):
    x = with_layout(rng, (17, 33), "float32", layout)
    check(lambda a: (np.sum(a, axis=axis), np.max(a, axis=axis), np.mean(a, axis=axis)), x)
    if not isinstance(axis, tuple):
        check(lambda a: np.argmax(a, axis=axis), x)


def test_sum_with_dtype_argument(rng):
    x = random_array(rng, (7, 33), "int32")
    check(lambda a: np.sum(a, axis=1, dtype=np.int32), x)
    check(lambda a: np.sum(a, dtype=np.float64), x)
    f = random_array(rng, (7, 33), "float32")
    check(lambda a: a.sum(axis=0, dtype=np.float64), f)
    check(lambda a: np.mean(a, axis=1, dtype=np.float64), f)


def test_var_std_ddof(rng):
    x = random_array(rng, (7, 33), "float64")
    check(lambda a: (np.var(a, axis=1, ddof=1), np.std(a, axis=0, ddof=1), a.var(), a.std()), x)
    i = random_array(rng, (5, 16), "int64")
    check(lambda a: (np.var(a, axis=0), np.std(a)), i)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nan_handling(dtype):
    x = np.array(
        [
            [1.0, np.nan, 3.0, -1.0] * 5,
            [2.0, 1.0, np.nan, np.nan] * 5,
            [np.inf, -np.inf, 0.0, 1.0] * 5,
        ],
        dtype=dtype,
    )
    check(
        lambda a: (a.max(axis=1), a.min(axis=1), a.sum(axis=1), a.argmax(axis=1), a.argmin(axis=1)),
        x,
    )
    check(lambda a: (a.max(axis=0), a.argmax(axis=0), a.argmin(axis=0), a.argmax()), x)


def test_argmax_returns_first_of_ties():
    x = np.array([[3, 1, 3, 3], [0, 0, 0, 0], [-1, 5, 5, -1]], dtype=np.int32)
    check(lambda a: (a.argmax(axis=1), a.argmin(axis=1), a.argmax(axis=0), a.argmax()), x)
    b = np.array([[False, True, True], [False, False, False]])
    check(lambda a: a.argmax(axis=1), b)


def test_argmin_of_bool():
    check(lambda a: a.argmin(), np.array([True, False]))


def test_extreme_values_are_reduced_correctly():
    """The identity of max/min must not leak: all -inf rows, int minimum values."""
    f = np.full((3, 17), -np.inf, np.float32)
    check(lambda a: (a.max(axis=1), a.argmax(axis=1), (-a).min(axis=0)), f)
    i = np.full((2, 33), np.iinfo(np.int32).min, np.int32)
    check(lambda a: (a.max(axis=1), a.argmax(axis=1), a.min(), a.argmin()), i)
    j = np.full((2, 33), np.iinfo(np.int64).max, np.int64)
    check(lambda a: (a.min(axis=1), a.argmin(axis=1), a.max()), j)


@pytest.mark.parametrize(
    "shape, axis",
    [((0,), None), ((0, 5), 0), ((0, 5), 1), ((5, 0), 1), ((5, 0), None), ((3, 0, 2), (0, 1))],
    ids=str,
)
def test_empty_reductions(shape, axis, rng):
    """sum/prod/mean of nothing: 0, 1, NaN (NumPy warns; both must agree)."""
    x = random_array(rng, shape, "float32")
    check(lambda a: (np.sum(a, axis=axis), np.prod(a, axis=axis)), x)
    check(lambda a: np.mean(a, axis=axis), x)
    i = random_array(rng, shape, "int32")
    check(lambda a: (np.sum(a, axis=axis), np.prod(a, axis=axis)), i)


def test_max_over_nonempty_axis_of_empty_array(rng):
    x = random_array(rng, (0, 5), "float32")
    check(lambda a: (a.max(axis=1), a.argmax(axis=1)), x)


def test_zero_dim_reductions():
    x = np.array(2.5, np.float32)
    check(lambda a: (a.sum(), a.max(), a.mean(), np.argmax(a)), x)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax(dtype, rng):
    def softmax(x):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    out = check(softmax, random_array(rng, (33, 130), dtype))
    np.testing.assert_allclose(out.sum(axis=-1), 1, rtol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layernorm(dtype, rng):
    def layernorm(x, g, b):
        mu = x.mean(axis=-1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-5) * g + b

    check(
        layernorm,
        random_array(rng, (17, 33), dtype),
        random_array(rng, (33,), dtype),
        random_array(rng, (33,), dtype),
    )
    # normalized rows (the absolute tolerance above scales with the row sums; this is tight)
    ones, zeros = np.ones(33, dtype), np.zeros(33, dtype)
    out = check(layernorm, random_array(rng, (17, 33), dtype), ones, zeros)
    np.testing.assert_allclose(out.mean(axis=-1), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=-1), 1, rtol=1e-4)


def test_reduction_of_elementwise_and_elementwise_of_reduction(rng):
    x = random_array(rng, (16, 17), "float32")
    y = random_array(rng, (16, 17), "float32")
    check(lambda a, b: np.sqrt((a * b + 1) ** 2).sum(axis=1) * 0.5 + a.max(axis=1), x, y)
    check(lambda a: a - a.mean(axis=0), x)
    check(lambda a: (a.sum(axis=0) / a.shape[0], a.sum(axis=1).max()), x)


def test_reduction_of_a_view(rng):
    x = random_array(rng, (6, 8, 5), "float64")
    check(lambda a: a.T.sum(axis=0), x)
    check(lambda a: a[::2, ::-1].max(axis=1), x)
    check(lambda a: a.reshape(48, 5).argmax(axis=0), x)
    check(lambda a: np.broadcast_to(a[:, :1], (6, 8, 5)).sum(axis=(0, 2)), x)


# mean/var/std in a given integer dtype: NumPy sums in that dtype, divides in float64 and
# casts the quotient back (truncating toward zero); the values are chosen so that truncation
# and rounding differ (negative quotients with remainders)
_INTEGER_DTYPE_STATISTICS = {
    "x.astype(int32).mean(dtype=int32)": lambda x: x.astype(np.int32).mean(dtype=np.int32),
    "mean(axis=0, dtype=int32)": lambda x: x.astype(np.int32).mean(axis=0, dtype=np.int32),
    "mean(axis=1, keepdims, dtype=int64)": lambda x: np.mean(
        x.astype(np.int32), axis=1, keepdims=True, dtype=np.int64
    ),
    "float mean(dtype=int32)": lambda x: x.mean(axis=1, dtype=np.int32),
    "bool mean(dtype=bool)": lambda x: (x > 0).mean(axis=1, dtype=bool),
    "var(axis=0, dtype=int32)": lambda x: x.astype(np.int32).var(axis=0, dtype=np.int32),
    "float var(dtype=int64, ddof=1)": lambda x: x.var(axis=1, dtype=np.int64, ddof=1),
    "float64 var(dtype=float32)": lambda x: x.var(axis=1, dtype=np.float32),
    "std(dtype=int64), full": lambda x: x.std(dtype=np.int64),
    "int32 std(dtype=int32), full": lambda x: np.std(x.astype(np.int32), dtype=np.int32),
}


@pytest.mark.parametrize("name", sorted(_INTEGER_DTYPE_STATISTICS))
def test_statistics_in_an_integer_dtype(name, rng):
    """x.astype(np.int32).mean(dtype=np.int32) raised a bare NotImplementedError (TRUEDIV
    on i32); NumPy gives an int32 result."""
    x = rng.integers(-50, 50, (5, 7)).astype(np.float64) + 0.5
    fn = _INTEGER_DTYPE_STATISTICS[name]
    check(fn, x)


def test_integer_mean_truncates_toward_zero():
    """-7 / 4 = -1.75: NumPy's int32 mean is -1 (a cast of the float64 quotient), not -2."""
    x = np.array([[1, 2, -3, -7], [5, 5, 5, 6]], dtype=np.int32)
    got = check(lambda x: x.mean(axis=1, dtype=np.int32), x)
    np.testing.assert_array_equal(got, np.array([-1, 5], dtype=np.int32))
    got = check(lambda x: x[0].mean(dtype=np.int32), x)
    assert got.dtype == np.int32 and got == -1


def test_std_in_an_integer_dtype_along_an_axis_is_refused_like_numpy():
    """NumPy's sqrt(ret, out=ret) cannot cast float64 into an int result array."""
    x = np.arange(12, dtype=np.int32).reshape(3, 4)

    def fn(x):
        return x.std(axis=0, dtype=np.int32)

    with pytest.raises(TypeError):
        fn(x)
    with pytest.raises(jitune.DTypeError, match=r"np\.std.*int32.*\(4,\)"):
        jitune.kernel(fn)(x)
