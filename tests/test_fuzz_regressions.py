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


# -- integers to negative integer powers ------------------------------------------------------


@pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
@pytest.mark.parametrize(
    "fn",
    [lambda x: x**-1, lambda x: np.power(x, np.int64(-3)), lambda x: (x**-2).sum()],
    ids=["x**-1", "power(x, int64(-3))", "sum(x**-2)"],
)
def test_integer_to_negative_constant_power_is_refused(fn, dtype):
    """NumPy raises ValueError; jitune returned zeros. A constant exponent is refused while
    tracing, with a message naming np.power and the base's dtype and shape."""
    x = np.arange(1, 7).astype(dtype)
    with pytest.raises(ValueError, match="negative integer powers"):
        fn(x)
    kernel = jitune.kernel(fn)
    with pytest.raises(jitune.DomainError, match=r"np\.power.*\[6\]") as excinfo:
        kernel(x)
    assert isinstance(excinfo.value, ValueError)
    assert kernel.compile_count == 0


@pytest.mark.parametrize("dtype", ["int32", "int64"])
@pytest.mark.parametrize("where", [0, 18, 36], ids=["first", "vector-body", "tail"])
def test_integer_to_negative_array_power_raises_when_run(dtype, where):
    """An exponent array is only known when the kernel runs: the compiled code reports a
    negative element and the call raises; the same compiled signature still runs valid
    exponents afterwards (37 elements: vector bodies and a tail)."""
    x = np.arange(1, 38).astype(dtype) % 7
    good = (np.arange(37) % 5).astype(dtype)
    bad = good.copy()
    bad[where] = -1

    kernel = jitune.kernel(lambda x, e: x**e)
    check(kernel, x, good)
    with pytest.raises(ValueError, match="negative integer powers"):
        _ = x**bad
    with pytest.raises(jitune.DomainError, match=rf"{dtype}\[37\].*np\.power") as excinfo:
        kernel(x, bad)
    assert isinstance(excinfo.value, ValueError)
    check(kernel, x, good)  # no status left over from the failed call
    assert kernel.compile_count == 1


@pytest.mark.parametrize(
    "fn, exponent",
    [
        (lambda x, e: x**e, -2),  # a Python int argument: its value is passed at run time
        (lambda x, e: (x**e).sum(axis=1), np.array([2, 1, -1, 0])),  # in a reduction
        (lambda x, e: np.maximum(x**e, 3), np.array([[2], [-4], [1]])),  # broadcast exponent
    ],
    ids=["scalar-argument", "reduction", "broadcast"],
)
def test_negative_power_found_at_run_time_in_other_contexts(fn, exponent):
    x = np.arange(1, 13).reshape(3, 4)
    with pytest.raises(ValueError, match="negative integer powers"):
        fn(x, exponent)
    kernel = jitune.kernel(fn)
    with pytest.raises(jitune.DomainError, match="negative integer powers"):
        kernel(x, exponent)
    positive = np.abs(exponent) if isinstance(exponent, np.ndarray) else abs(exponent)
    check(kernel, x, positive)


def test_negative_power_found_by_parallel_threads():
    """A kernel large enough to run on the worker threads: one bad element in the last chunk."""
    x = np.ones(1 << 20, dtype=np.int64)
    exponent = np.ones_like(x)
    exponent[-3] = -5
    kernel = jitune.kernel(lambda x, e: x**e + 1)
    with pytest.raises(jitune.DomainError, match="negative integer powers"):
        kernel(x, exponent)
    exponent[-3] = 5
    check(kernel, x, exponent)


def test_float_powers_with_negative_exponents_still_compute():
    x = np.arange(1.0, 6.0)
    check(lambda x, e: x**e, x, -np.arange(5.0))
    check(lambda x: x**-3, x)
    check(lambda x: x.astype(np.int64) ** -1.0, x)  # a float exponent makes it float


# -- einsum: a repeated index's extents must agree within an operand ---------------------------


@pytest.mark.parametrize(
    "spec, shapes",
    [
        ("ii->i", [(3, 1)]),
        ("ii->i", [(1, 3)]),
        ("ii", [(2, 1)]),
        ("iij->j", [(4, 1, 2)]),
        ("ii,i->i", [(3, 1), (3,)]),
    ],
)
def test_einsum_diagonal_with_unequal_extents_is_refused(spec, shapes):
    """An extent-1 axis broadcasts against other operands, never against its own diagonal
    partner: NumPy raises, jitune returned [1, 1, 1] for 'ii->i' on a (3, 1) array."""
    operands = [np.ones(shape) for shape in shapes]
    with pytest.raises(ValueError):
        np.einsum(spec, *operands)
    kernel = jitune.kernel(lambda *ops: np.einsum(spec, *ops))
    with pytest.raises(jitune.ShapeError, match=r"einsum\('.*'\).*index 'i'.*\(") as excinfo:
        kernel(*operands)
    assert str(shapes[0]) in str(excinfo.value)


@pytest.mark.parametrize(
    "spec, shapes",
    [
        ("ii->i", [(3, 3)]),
        ("ii->i", [(1, 1)]),
        ("ii,i->i", [(3, 3), (1,)]),
        ("ij,j->i", [(3, 1), (4,)]),
    ],
)
def test_einsum_repeated_and_broadcast_indices_that_numpy_accepts(spec, shapes, rng):
    operands = [rng.standard_normal(shape) for shape in shapes]
    check(lambda *ops: np.einsum(spec, *ops), *operands)


# -- einsums that sum nothing, feeding other ops ------------------------------------------------

_ELEMENTWISE_EINSUMS = {
    "d,d->d": [(5,), (5,)],
    "i,i->i": [(37,), (37,)],
    "ij,ij->ij": [(3, 17), (3, 17)],
    "ij,j->ij": [(4, 9), (9,)],
    "ij,ij->ji": [(3, 5), (3, 5)],
    "i,j->ij": [(6,), (7,)],
    "ii->i": [(6, 6)],
    "ij->ji": [(4, 3)],
}

_CONSUMERS = {
    "+": lambda e, c: e + c,
    "*": lambda e, c: c * e,
    "maximum": lambda e, c: np.maximum(e, c),
    "where": lambda e, c: np.where(e > 0, e, c),
    "exp": lambda e, c: np.exp(e) - c,
    "sum": lambda e, c: (e + c).sum(axis=-1),
    "sum-all": lambda e, c: e.sum() + c,
    "mean": lambda e, c: (e * c).mean(axis=0),
}


@pytest.mark.parametrize("consumer", sorted(_CONSUMERS))
@pytest.mark.parametrize("spec", sorted(_ELEMENTWISE_EINSUMS))
def test_einsum_without_a_summed_index_feeds_other_ops(spec, consumer, rng):
    """einsum('d,d->d', a, b) + c raised KeyError: 'i0' in code generation: the einsum was a
    reduction stage without reduce axes, fused with its consumer as an epilogue. It is
    elementwise (a product of operands at permuted, repeated or broadcast indices)."""
    shapes = _ELEMENTWISE_EINSUMS[spec]
    operands = [rng.standard_normal(shape) for shape in shapes]
    out_shape = np.einsum(spec, *operands).shape
    c = rng.standard_normal(out_shape)
    use = _CONSUMERS[consumer]

    def fn(*args):
        return use(np.einsum(spec, *args[:-1]), args[-1])

    check(fn, *operands, c)


@pytest.mark.parametrize("spec", sorted(_ELEMENTWISE_EINSUMS))
def test_einsum_without_a_summed_index_alone_and_reused(spec, rng):
    """The einsum as an output of its own, and read by two consumers (one a reduction)."""
    operands = [
        rng.standard_normal(shape).astype(np.float32) for shape in _ELEMENTWISE_EINSUMS[spec]
    ]
    check(lambda *ops: np.einsum(spec, *ops), *operands)

    def two_uses(*ops):
        e = np.einsum(spec, *ops)
        return e * 2, e.max(axis=0)

    check(two_uses, *operands)


def test_integer_elementwise_einsum_feeds_a_binary_op():
    a = np.arange(12, dtype=np.int32).reshape(3, 4)
    b = np.arange(4, dtype=np.int64)
    check(lambda a, b: np.einsum("ij,j->ij", a, b) - b, a, b)


# -- full_like with an array fill value of more axes -------------------------------------------


@pytest.mark.parametrize(
    "shape, fill_shape",
    [
        ((), (1,)),
        ((), (1, 1)),
        ((3,), (1, 1, 3)),
        ((2, 3), (1, 3)),
        ((2, 3), (1, 1, 1)),
        ((4,), ()),
    ],
)
def test_full_like_drops_leading_unit_axes_of_the_fill_value(shape, fill_shape, rng):
    """np.full_like(np.ones(()), np.ones(1)) is array(1.) in NumPy (its copyto ignores
    leading axes of extent 1); jitune raised ShapeError."""
    a = np.zeros(shape)
    fill = rng.standard_normal(fill_shape)
    check(lambda a, f: np.full_like(a, f), a, fill)
    check(lambda a, f: np.full_like(a, f, dtype=np.float32) + 1, a, fill)


@pytest.mark.parametrize("shape, fill_shape", [((3,), (2, 3)), ((), (2,)), ((3,), (4,))])
def test_full_like_with_a_fill_value_that_does_not_fit_is_refused(shape, fill_shape):
    a, fill = np.zeros(shape), np.ones(fill_shape)
    with pytest.raises(ValueError):
        np.full_like(a, fill)
    with pytest.raises(jitune.ShapeError, match=r"np\.full_like"):
        jitune.kernel(lambda a, f: np.full_like(a, f))(a, fill)


# -- axes of a 0-d array ------------------------------------------------------------------------

_ZERO_D_AXIS_REFUSED = {
    "swapaxes": lambda x: np.swapaxes(x.sum(), 0, 0),
    "swapaxes-method": lambda x: x.sum().swapaxes(0, -1),
    "moveaxis": lambda x: np.moveaxis(x.sum(), 0, 0),
    "mean-axis0": lambda x: np.mean(x.sum(), axis=0),
    "var-axis-1": lambda x: np.var(x.sum(), axis=-1),
    "std-axis0": lambda x: np.std(x.sum(), axis=0),
    "max-tuple": lambda x: np.max(x.sum(), axis=(0,)),
    "sum-tuple": lambda x: np.sum(x.sum(), axis=(0, -1)),
    "sum-axis1": lambda x: np.sum(x.sum(), axis=1),
    "squeeze-axis1": lambda x: np.squeeze(x.sum(), 1),
    "expand_dims-axis2": lambda x: np.expand_dims(x.sum(), 2),
}


@pytest.mark.parametrize("name", sorted(_ZERO_D_AXIS_REFUSED))
def test_an_axis_of_a_zero_d_array_that_numpy_refuses(name):
    """np.swapaxes of a full reduction raised a bare IndexError (the axes were normalized as
    np.sum's, which takes axis 0 of a 0-d array, and then indexed); NumPy raises AxisError,
    as it does for np.mean/var/std with any axis of a 0-d array (they accepted axis 0)."""
    fn = _ZERO_D_AXIS_REFUSED[name]
    x = np.ones(3)
    with pytest.raises(np.exceptions.AxisError):
        fn(x)
    with pytest.raises(jitune.ShapeError, match=r"out of bounds for an array of shape \(\)"):
        jitune.kernel(fn)(x)


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: np.sum(x.sum(), axis=0),
        lambda x: np.prod(x.sum(), axis=-1),
        lambda x: np.max(x.sum(), axis=-1),
        lambda x: np.argmin(x.sum(), axis=-1),
        lambda x: np.squeeze(x.sum(), -1),
        lambda x: np.squeeze(x.sum(), 0),
        lambda x: np.expand_dims(x.sum(), (0, -1)),
    ],
)
def test_an_axis_of_a_zero_d_array_that_numpy_accepts(fn):
    """NumPy's ufunc reductions and squeeze take a bare axis 0 or -1 of a 0-d array
    (squeeze(x, -1) was refused)."""
    check(fn, np.arange(3.0))


# -- full_like with a fill value the dtype cannot hold --------------------------------------------


@pytest.mark.parametrize("fill", [np.nan, np.inf, -np.inf, 1e30, -2.7, np.int64(2**40)])
@pytest.mark.parametrize(
    "dtype, option", [("int32", None), ("int64", None), ("bool", None), ("float32", "int64")]
)
def test_full_like_casts_an_unrepresentable_fill_as_numpy_does(fill, dtype, option):
    """np.full_like(int_array, nan) raised a bare ValueError (inf, 1e30: OverflowError) from
    Python's int(); NumPy's copyto casts unsafely (a RuntimeWarning) to what the C cast gives."""
    kwargs = {} if option is None else {"dtype": option}

    def fn(a):
        return np.full_like(a, fill, **kwargs)

    a = np.zeros((2, 3), dtype=dtype)
    with np.errstate(invalid="ignore"):
        want = fn(a)
    got = jitune.kernel(fn)(a)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype, fill", [("int32", 2**40), ("int64", 2**63), ("bool", 2**64)])
def test_full_like_refuses_a_python_int_fill_out_of_range(dtype, fill):
    """NumPy raises OverflowError for a Python int fill out of the dtype's range."""

    def fn(a):
        return np.full_like(a, fill)

    a = np.zeros(3, dtype=dtype)
    with pytest.raises(OverflowError):
        fn(a)
    with pytest.raises(jitune.DomainError, match="full_like"):
        jitune.kernel(fn)(a)


# -- np.clip promotes its three operands at once ------------------------------------------------

_CLIPS = {
    "bool,-0.5,float32": (lambda a, b: np.clip(a, -0.5, b), "bool", "float32"),
    "bool-method,-1,int32": (lambda a, b: a.clip(-1, b), "bool", "int32"),
    "int32,-0.5,float32": (lambda a, b: np.clip(a, -0.5, b), "int32", "float32"),
    "float32,int32,2": (lambda a, b: np.clip(a, b, 2), "float32", "int32"),
    "int32,-2**40,int32": (lambda a, b: np.clip(a, -(2**40), b), "int32", "int32"),
    "int32,int32,2**40": (lambda a, b: np.clip(a, b, 2**40), "int32", "int32"),
    "int32,None,None": (lambda a, b: np.clip(a, None, None) + b, "int32", "int32"),
}


@pytest.mark.parametrize("name", sorted(_CLIPS))
def test_clip_dtype_is_numpys_three_way_promotion(name):
    """np.clip(bool_array, -0.5, float32_array) was float64 (NumPy: float32): clip was traced
    as maximum then minimum, so the weak -0.5 made a float64 intermediate first. NumPy's
    clip ufunc promotes all three operands together; a Python int bound beyond an integer
    array's range is dropped."""
    fn, a_dtype, b_dtype = _CLIPS[name]
    a = np.array([[-3, 0, 1], [2, 5, -1]]).astype(a_dtype)
    b = np.array([0, 3, -2]).astype(b_dtype)
    got = check(fn, a, b)
    assert got.dtype == fn(a, b).dtype


def test_clip_of_bool_without_bounds_is_refused():
    """np.clip(bool_array, None, None) is np.positive, which NumPy refuses for bool."""

    def fn(a):
        return a.clip(None, None)

    a = np.array([True, False])
    with pytest.raises(TypeError):
        fn(a)
    with pytest.raises(jitune.DTypeError, match="positive"):
        jitune.kernel(fn)(a)


@pytest.mark.parametrize(
    "fn",
    [lambda a: a + 2**40, lambda a: np.clip(a, -1, -(2**40)), lambda a: np.maximum(a, 2**31)],
)
def test_python_int_out_of_range_of_the_array_dtype_is_a_jitune_error(fn):
    """NumPy 2 raises OverflowError; jitune's constant folding let the bare one escape."""
    a = np.arange(3, dtype=np.int32)
    with pytest.raises(OverflowError):
        fn(a)
    with pytest.raises(jitune.DomainError, match="does not fit in int32"):
        jitune.kernel(fn)(a)


@pytest.mark.parametrize("value", [2**40, 2**31, -(2**63), 7])
def test_where_casts_a_python_int_operand_unsafely_as_numpy_does(value):
    """np.where converts a Python int through a C long and casts it unsafely to the result
    dtype (2**40 into int32 is 0), where a ufunc would raise OverflowError."""

    def fn(a):
        return np.where(a > 1, a, value)

    a = np.arange(4, dtype=np.int32)
    got = jitune.kernel(fn)(a)
    want = fn(a)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


# -- Python operators between Python scalars stay Python scalars (weak) -------------------------

_I32 = np.array([7, -3, 0], np.int32)
_F32 = np.array([1.5, -2.0, 0.25], np.float32)
_BOOL = np.array([True, False, True])
_PYTHON_ARITHMETIC = {
    "int32 ** (n % 5)": (lambda a, n: a ** (n % 5), _I32, -8),
    "int32 + (n + 1)": (lambda a, n: a + (n + 1), _I32, 3),
    "int32 + (5 - n)": (lambda a, n: a + (5 - n), _I32, 3),
    "int32 * (2 ** n)": (lambda a, n: a * (2**n), _I32, 3),
    "int32 + (n // 2)": (lambda a, n: a + (n // 2), _I32, -7),
    "int32 + -n": (lambda a, n: a + -n, _I32, 7),
    "int32 + abs(n)": (lambda a, n: a + abs(n), _I32, -7),
    "int32 + ~n": (lambda a, n: a + ~n, _I32, 7),
    "int32 + (n < 3)": (lambda a, n: a + (n < 3), _I32, 7),
    "int32 + (x == x)": (lambda a, x: a + (x == x), _I32, 2.0),
    "int32 + -b": (lambda a, b: a + -b, _I32, True),
    "bool + (b + b)": (lambda a, b: a + (b + b), _BOOL, True),
    "bool & (b & b)": (lambda a, b: a & (b & b), _BOOL, True),
    "float32 * (x - 0.5)": (lambda a, x: a * (x - 0.5), _F32, 3.25),
    "float32 * (n / 2)": (lambda a, n: a * (n / 2), _F32, 3),
    "float32 * (n ** -1)": (lambda a, n: a * (n**-1), _F32, 4),
    "float32 * (n % 5.0)": (lambda a, n: a * (n % 5.0), _F32, -3),
    "float32 * np.remainder(n, 5)": (lambda a, n: a * np.remainder(n, 5), _F32, 3),
    "int32 * np.negative(n)": (lambda a, n: a * np.negative(n), _I32, 3),
}


@pytest.mark.parametrize("name", sorted(_PYTHON_ARITHMETIC))
def test_python_operators_on_python_scalar_arguments_promote_weakly(name):
    """With n a Python int argument, ``int32_array ** (n % 5)`` was int64: every operation
    on a traced Python scalar made a strong int64/float64 value. In NumPy a Python operator
    between Python scalars is Python arithmetic, whose Python result promotes weakly again
    (NEP 50); a NumPy function of one (np.remainder(n, 5)) gives a strong NumPy scalar."""
    fn, a, n = _PYTHON_ARITHMETIC[name]
    got = check(fn, a, n)
    assert got.dtype == np.asarray(fn(a, n)).dtype


@pytest.mark.parametrize(
    "fn, error",
    [
        (lambda a, x: a + x[...], jitune.UnsupportedOperation),
        (lambda a, x: a + x.sum(), jitune.UnsupportedOperation),
        (lambda a, x: a + x.reshape(1), jitune.UnsupportedOperation),
        (lambda a, x: a + (x & 1.0), jitune.DTypeError),
        (lambda a, x: a + (x % 0), jitune.DomainError),
    ],
    ids=["index", "method", "reshape", "float-and", "mod-zero"],
)
def test_what_python_refuses_for_a_python_scalar_argument_is_a_jitune_error(fn, error):
    """``a0[...]`` of a Python float argument returned the float as an array; Python raises
    TypeError ('float' object is not subscriptable), AttributeError or ZeroDivisionError."""
    a = np.ones(2, np.float32)
    with pytest.raises((TypeError, AttributeError, ZeroDivisionError)):
        fn(a, 2.0)
    with pytest.raises(error):
        jitune.kernel(fn)(a, 2.0)


@pytest.mark.parametrize("dtype", ["bool", "int32", "int64"])
def test_integer_to_negative_constant_power_of_an_empty_array(dtype):
    """NumPy checks the exponent in its inner loop, which an empty array never enters:
    np.power(empty, -1) is an empty result, not the DomainError jitune raised."""
    check(lambda a: np.power(a, -1), np.ones((2, 0), dtype=dtype))


def test_a_numpy_function_of_a_python_scalar_argument_is_a_numpy_value():
    """np.clip(n, None, None) and np.positive(n) of a Python int are np.int64 values with
    ndarray methods (seed 427724: .argmax() of it was refused as a Python int's)."""
    for fn in (lambda n: np.clip(n, None, None).argmax(), lambda n: np.positive(n).sum()):
        assert jitune.kernel(fn)(-19) == fn(-19)
    # and it promotes strongly: int32 array + np.positive(python int) is int64
    f = jitune.kernel(lambda x, n: x + np.positive(n))
    assert f(np.ones(3, np.int32), 2).dtype == (np.ones(3, np.int32) + np.positive(2)).dtype
