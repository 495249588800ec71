"""Elementwise ufuncs, operators, promotion and broadcasting, table-driven.

Every case is compared against the reference evaluator and plain NumPy by ``check``.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import FLOAT_DTYPES, INT_DTYPES, SUPPORTED_DTYPES, check, random_array, with_layout

import jitune

# Sizes around the vector widths (16 float32 lanes with AVX-512, 8 with AVX2): tails matter.
SIZES = (1, 2, 3, 7, 16, 17, 33, 130)

# name -> (function, dtypes it is valid for in both NumPy and jitune)
UNARY = {
    "negative": (lambda x: -x, FLOAT_DTYPES + INT_DTYPES),
    "positive": (lambda x: +x, FLOAT_DTYPES + INT_DTYPES),
    "abs": (lambda x: abs(x), SUPPORTED_DTYPES),
    "np.abs": (np.abs, SUPPORTED_DTYPES),
    "np.fabs": (np.fabs, FLOAT_DTYPES),
    "exp": (np.exp, FLOAT_DTYPES + INT_DTYPES),
    "log(abs+1)": (lambda x: np.log(np.abs(x) + 1), FLOAT_DTYPES + INT_DTYPES),
    "log1p(abs)": (lambda x: np.log1p(np.abs(x)), FLOAT_DTYPES + INT_DTYPES),
    "expm1": (np.expm1, FLOAT_DTYPES + INT_DTYPES),
    "sqrt(abs)": (lambda x: np.sqrt(np.abs(x)), FLOAT_DTYPES + INT_DTYPES),
    "tanh": (np.tanh, FLOAT_DTYPES + INT_DTYPES),
    "sin": (np.sin, FLOAT_DTYPES + INT_DTYPES),
    "cos": (np.cos, FLOAT_DTYPES + INT_DTYPES),
    "floor": (np.floor, SUPPORTED_DTYPES),
    "ceil": (np.ceil, SUPPORTED_DTYPES),
    "sign": (np.sign, FLOAT_DTYPES + INT_DTYPES),
    "reciprocal": (np.reciprocal, FLOAT_DTYPES),
    "square": (np.square, FLOAT_DTYPES + INT_DTYPES),
    "logical_not": (np.logical_not, SUPPORTED_DTYPES),
    "invert": (lambda x: ~x, INT_DTYPES + ("bool",)),
    "isnan": (np.isnan, SUPPORTED_DTYPES),
    "clip": (lambda x: np.clip(x, -1, 2), FLOAT_DTYPES + INT_DTYPES),
    "clip(min=)": (lambda x: np.clip(x, min=-0.5), FLOAT_DTYPES),
    "x.clip": (lambda x: x.clip(-2.5, 0.5), FLOAT_DTYPES),
    "x**2": (lambda x: x**2, FLOAT_DTYPES + INT_DTYPES),
    "x**3": (lambda x: x**3, FLOAT_DTYPES + INT_DTYPES),
    "x**0.5 (positive base)": (lambda x: (np.abs(x) + 1) ** 0.5, FLOAT_DTYPES),
    "x**-1.5 (positive base)": (lambda x: (np.abs(x) + 1) ** -1.5, FLOAT_DTYPES),
    "2.0**x": (lambda x: 2.0**x, FLOAT_DTYPES),
}

UNARY_CASES = [
    pytest.param(name, dtype, id=f"{name}-{dtype}")
    for name, (_, dtypes) in UNARY.items()
    for dtype in dtypes
]


@pytest.mark.parametrize("name, dtype", UNARY_CASES)
def test_unary(name, dtype, rng):
    fn = UNARY[name][0]
    check(fn, random_array(rng, (3, 33), dtype))


@pytest.mark.parametrize("name", [n for n, (_, d) in UNARY.items() if "float32" in d])
def test_unary_float_special_values(name):
    fn = UNARY[name][0]
    values = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 1e-30, 1e30, 88.0, -104.0]
    for dtype in FLOAT_DTYPES:
        # 17 elements: a vector and a scalar tail, each with specials
        x = np.array(values + values[:4], dtype=dtype)
        check(fn, x)


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "truediv": lambda a, b: a / b,
    "floordiv": lambda a, b: a // b,
    "mod": lambda a, b: a % b,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "logical_and": np.logical_and,
    "logical_or": np.logical_or,
    "logical_xor": np.logical_xor,
    "arctan2": np.arctan2,
}
BITWISE = {"and": lambda a, b: a & b, "or": lambda a, b: a | b, "xor": lambda a, b: a ^ b}

DTYPE_PAIRS = [
    ("float32", "float32"),
    ("float64", "float64"),
    ("int32", "int32"),
    ("int64", "int64"),
    ("float32", "float64"),
    ("float32", "int32"),  # -> float64
    ("float32", "int64"),  # -> float64
    ("int32", "int64"),
    ("int32", "float64"),
    ("bool", "float32"),
    ("bool", "int32"),
    ("bool", "bool"),
]


def _numpy_accepts(fn, a_dtype, b_dtype) -> bool:
    try:
        with np.errstate(all="ignore"):
            result = np.asarray(fn(np.ones(2, a_dtype), np.ones(2, b_dtype)))
    except TypeError:
        return False
    return result.dtype.name in SUPPORTED_DTYPES


BINARY_CASES = [
    pytest.param(name, a, b, id=f"{name}-{a}-{b}")
    for name, fn in BINARY.items()
    for a, b in DTYPE_PAIRS
    if _numpy_accepts(fn, a, b)
]


@pytest.mark.parametrize("name, a_dtype, b_dtype", BINARY_CASES)
def test_binary(name, a_dtype, b_dtype, rng):
    a = random_array(rng, (7, 17), a_dtype)
    b = random_array(rng, (7, 17), b_dtype)
    if np.dtype(b_dtype).kind in "iu":
        b[0, :3] = 0  # integer division and modulo by zero give 0 in NumPy
    check(BINARY[name], a, b)


def test_binary_case_table_is_not_empty():
    # numpy rejects a few pairs (bool - bool, ...): make sure filtering did not drop them all
    assert len(BINARY_CASES) > 150


@pytest.mark.parametrize("name", sorted(BITWISE))
@pytest.mark.parametrize("dtype", ("bool", "int32", "int64"))
def test_bitwise(name, dtype, rng):
    check(BITWISE[name], random_array(rng, (33,), dtype), random_array(rng, (33,), dtype))


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_integer_floordiv_mod_semantics(dtype):
    """Floor (not truncating) division; division by zero gives 0; MIN // -1 wraps."""
    info = np.iinfo(dtype)
    a = np.array(
        [7, -7, 7, -7, 0, 5, -5, info.min, info.min, info.max, 3, -3, 1, 0, 9, -9, 2], dtype=dtype
    )
    b = np.array([2, 2, -2, -2, 3, 0, 0, -1, 1, -1, 7, 7, -1, 0, 3, -3, -5], dtype=dtype)
    check(lambda x, y: x // y, a, b)
    check(lambda x, y: x % y, a, b)
    check(lambda x, y: (x // y, x % y), a, b)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_float_floordiv_mod_semantics(dtype):
    """NumPy's float // and % : sign of the divisor, inf/nan for zero divisors."""
    a = np.array(
        [
            7.5,
            -7.5,
            7.5,
            -7.5,
            0.0,
            -0.0,
            1.0,
            -1.0,
            np.inf,
            5.0,
            np.nan,
            1e-30,
            6.0,
            -6.0,
            0.3,
            2.0,
            1e30,
        ],
        dtype=dtype,
    )
    b = np.array(
        [
            2.0,
            2.0,
            -2.0,
            -2.0,
            3.0,
            3.0,
            0.0,
            0.0,
            2.0,
            np.inf,
            1.0,
            3.0,
            3.0,
            3.0,
            0.1,
            -np.inf,
            7.0,
        ],
        dtype=dtype,
    )
    check(lambda x, y: x // y, a, b)
    check(lambda x, y: x % y, a, b)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_sign_of_negative_zero_is_positive_zero(dtype):
    x = np.array([-0.0, 0.0, -1.0, -0.0], dtype)
    out = check(np.sign, x)  # values compare equal: -0.0 == 0.0
    np.testing.assert_array_equal(np.signbit(out), np.signbit(np.sign(x)))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_maximum_minimum_propagate_nan(dtype):
    a = np.array([np.nan, 1.0, np.nan, -np.inf, 2.0] * 4, dtype=dtype)
    b = np.array([0.0, np.nan, np.nan, 1.0, -0.0] * 4, dtype=dtype)
    check(np.maximum, a, b)
    check(np.minimum, a, b)
    check(lambda x, y: (x < y, x == y, x != y, x >= y), a, b)


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_integer_overflow_wraps_like_numpy(dtype):
    info = np.iinfo(dtype)
    a = np.array([info.max, info.min, info.max, -1, info.min] * 4, dtype=dtype)
    b = np.array([1, -1, info.max, info.min, info.min] * 4, dtype=dtype)
    check(lambda x, y: (x + y, x - y, x * y, -x, abs(x)), a, b)


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("exponent", [0, 1, 2, 3, 5, 8])
def test_integer_power_by_constant(dtype, exponent, rng):
    x = rng.integers(-9, 10, 33).astype(dtype)
    check(lambda a: a**exponent, x)


# -- Python scalars are weak; NumPy scalars are not -----------------------------------------

# (array dtype, scalar) -> NumPy's result dtype, checked here so the table documents it
WEAK_PROMOTION = [
    ("float32", 2.0, "float32"),
    ("float32", 2, "float32"),
    ("float32", True, "float32"),
    ("int32", 2, "int32"),
    ("int32", 2.0, "float64"),
    ("int64", 3, "int64"),
    ("bool", 2, "int64"),
    ("bool", 2.5, "float64"),
    ("bool", True, "bool"),
    ("float64", 0.1, "float64"),
    ("float32", np.float64(2.0), "float64"),  # a NumPy scalar promotes like an array
    ("float32", np.float32(2.0), "float32"),
    ("int32", np.int64(2), "int64"),
]


@pytest.mark.parametrize(
    "dtype, scalar, result",
    [
        pytest.param(*case, id=f"{case[0]}-{type(case[1]).__name__}{case[1]!r}")
        for case in WEAK_PROMOTION
    ],
)
@pytest.mark.parametrize("where", ["constant", "argument"])
def test_scalar_promotion(dtype, scalar, result, where, rng):
    x = random_array(rng, (17,), dtype)
    if where == "constant":
        out = check(lambda a: a * scalar + scalar, x)
    else:
        out = check(lambda a, s: a * s + s, x, scalar)
    assert out.dtype == np.dtype(result)


@pytest.mark.parametrize("scalar", [2, 2.5, True, np.float32(1.5), np.int32(3), np.float64(-1)])
def test_scalar_arguments_only(scalar):
    out = check(lambda a, b: a * b + 1, scalar, scalar)
    assert out.shape == ()


def test_reflected_operators_with_python_scalars(rng):
    x = random_array(rng, (7, 3), "float32") + 4
    check(lambda a: (2 - a, 2 / a, 2 // a, 2 % a, 2**a, 2 + a, 2 * a), x)
    i = random_array(rng, (7, 3), "int32")
    check(lambda a: (2 - a, 2 + a, 2 * a, 1 & a, 1 | a, 1 ^ a), i)


# -- broadcasting and shapes ------------------------------------------------------------------

BROADCAST_SHAPES = [
    ((), (7,)),
    ((1,), (17,)),
    ((7, 1), (1, 33)),
    ((3, 1, 17), (16, 1)),
    ((2, 3, 4), (4,)),
    ((1, 1), (130, 3)),
    ((0, 5), (1, 5)),
    ((0, 5), (5,)),
    ((3, 0), (3, 1)),
    ((1,), (0,)),
]


@pytest.mark.parametrize("a_shape, b_shape", BROADCAST_SHAPES)
def test_broadcasting(a_shape, b_shape, rng):
    a = random_array(rng, a_shape, "float32")
    b = random_array(rng, b_shape, "float64")
    check(lambda x, y: x * y - x, a, b)
    check(lambda x, y: np.where(x > y, x, y), a, b)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES)
def test_vector_tail_sizes(size, dtype, rng):
    x = random_array(rng, (size,), dtype)
    y = random_array(rng, (3, size), dtype)
    check(lambda a, b: (np.maximum(a, b), a == b), x, y)


@pytest.mark.parametrize("layout", ["transposed", "stepped", "reversed", "broadcast"])
@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES)
def test_non_contiguous_inputs(layout, dtype, rng):
    x = with_layout(rng, (17, 7), dtype, layout)
    y = with_layout(rng, (17, 7), dtype, "c")
    check(lambda a, b: np.minimum(a, b) != b, x, y)
    if dtype != "bool":
        check(lambda a, b: a * b + a, x, y)


def test_where_variants(rng):
    x = random_array(rng, (7, 17), "float32")
    y = random_array(rng, (17,), "int32")
    c = random_array(rng, (7, 1), "bool")
    check(lambda a, b, m: np.where(m, a, b), x, y, c)  # -> float64
    check(lambda a: np.where(a > 0, a, 0.0), x)  # weak scalar keeps float32
    check(lambda a: np.where(a > 0, 1, -1), y)  # int scalars with an int condition
    check(lambda a, b: np.where(b, a, 2.5), y, y)  # non-bool condition: truthiness
    check(lambda m: np.where(m, True, False), c)


def test_clip_with_array_bounds(rng):
    x = random_array(rng, (7, 17), "float32")
    lo = random_array(rng, (17,), "float32") - 1
    hi = random_array(rng, (7, 1), "float32") + 1
    check(lambda a, b, c: np.clip(a, b, c), x, lo, hi)
    check(lambda a, b: np.clip(a, b, None), x, lo)
    check(lambda a, c: np.clip(a, None, c), x, hi)


def test_elementwise_chain_with_shared_subexpressions(rng):
    x = random_array(rng, (33, 17), "float32")

    def gelu(a):
        inner = 0.7978845608 * (a + 0.044715 * a**3)
        return 0.5 * a * (1.0 + np.tanh(inner))

    check(gelu, x)
    check(lambda a: 1 / (1 + np.exp(-a)), x)  # sigmoid
    check(lambda a: a * (1 / (1 + np.exp(-a))), x.astype(np.float64))  # silu


def test_returns_bool_from_mixed_comparisons(rng):
    x = random_array(rng, (17,), "float32")
    y = random_array(rng, (17,), "int64")
    out = check(lambda a, b: (a > b) & (a < 2) | ~(b == 0), x, y)
    assert out.dtype == np.bool_


def test_float64_constant_is_not_rounded_to_float32():
    # 0.1 as a weak scalar against float64 must keep full precision
    x = np.full(5, 3.0)
    out = check(lambda a: a * 0.1, x)
    assert out[0] == 3.0 * 0.1


def test_kernel_wraps_numpy_function_metadata():
    def documented(x):
        """docstring survives"""
        return x + 1

    k = jitune.kernel(documented)
    assert k.__doc__ == "docstring survives"
    assert k.__name__ == "documented"
