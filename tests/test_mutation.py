"""In-place updates with NumPy's meaning: augmented assignment and whole-array assignment,
on local arrays and on arguments (written back into the caller's arrays), views that see the
update, scalars that do not, and the clear errors for what is not supported yet. Every test
compares the results and the state of every argument with NumPy's."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import jacobi, same_as_numpy
from hypothesis import given
from hypothesis import strategies as st

import jitune
from jitune.errors import ArgumentError, DTypeError, ShapeError, UnsupportedOperation


def test_augmented_assignment_on_an_argument_updates_the_callers_array():
    def f(a, b):
        a += b
        return a * 2

    a = np.arange(6.0).reshape(2, 3)
    after = same_as_numpy(f, a, np.ones(3))
    assert after[0][0, 0] == 1.0  # the caller's array itself changed


@pytest.mark.parametrize(
    "op", ["+=", "-=", "*=", "/=", "//=", "%=", "**=", "&=", "|=", "^="], ids=str
)
def test_every_augmented_operator(op):
    floats = op not in ("&=", "|=", "^=")
    namespace: dict = {}
    exec(f"def f(a, b):\n    a {op} b\n    return a.sum()", namespace)
    dtype = np.float64 if floats else np.int64
    a = (np.arange(1, 13).reshape(3, 4) % 7 + 1).astype(dtype)
    b = (np.arange(4) % 3 + 1).astype(dtype)
    same_as_numpy(namespace["f"], a, b)


def test_a_kernel_that_returns_nothing_but_writes_its_arguments():
    def gemm(c, a, b, alpha, beta):
        c[:] = alpha * a @ b + beta * c

    rng = np.random.default_rng(0)
    c, a, b = rng.random((5, 6)), rng.random((5, 7)), rng.random((7, 6))
    after = same_as_numpy(gemm, c, a, b, 1.5, 0.5)
    np.testing.assert_allclose(after[0], 1.5 * a @ b + 0.5 * c)


def test_whole_array_assignment_forms_broadcast_and_cast_like_numpy():
    def f(out, x):
        out[...] = x  # broadcast (3,) into (2, 3) and cast float to int
        tmp = out * 2
        out[:] = tmp + 1
        out[:, :] -= 1

    same_as_numpy(f, np.zeros((2, 3), np.int32), np.array([1.7, -2.2, 3.9]))


def test_updates_in_a_loop_and_read_after_write_order():
    def f(u, v):
        for _ in range(5):
            v += u
            u *= 0.5
        return u + v

    same_as_numpy(f, np.ones((4, 4)), np.zeros((4, 4)))


def test_a_view_taken_before_the_update_sees_it():
    def f(x):
        t = x.T
        row = x[1]
        flat = x.reshape(-1)  # a view of a C-contiguous array
        x += 1
        return t, row, flat

    same_as_numpy(f, np.arange(6.0).reshape(2, 3))


def test_an_update_through_a_whole_view_updates_the_owner():
    def f(x):
        v = x[...]
        v *= 3
        x[:] += 1
        return x + 0

    same_as_numpy(f, np.arange(6.0).reshape(2, 3))


def test_copies_and_elements_do_not_see_the_update():
    def f(x):
        c = x.copy()
        e = x[0, 0]  # a NumPy scalar: a copy
        a = x.astype(np.float64)  # a copy, also of the same dtype
        r = x.T.reshape(-1)  # a transposed array reshaped: NumPy copies
        x += 10
        return c, e, a, r

    same_as_numpy(f, np.arange(6.0).reshape(2, 3))


def test_a_strided_argument_and_its_reshape():
    def f(x):
        flat = x.reshape(-1)  # x is a strided view: NumPy copies here
        x *= 2
        return flat

    base = np.arange(24.0).reshape(4, 6)
    same_as_numpy(f, base[:, ::2])


def test_scalars_are_immutable():
    def f(x, s):
        total = x.sum()
        alias = total
        total += 1  # a new value; alias keeps the old one
        s += 2  # a Python scalar argument: rebinding only
        return total, alias, x * s

    same_as_numpy(f, np.arange(4.0), 3)


def test_a_zero_d_array_argument_is_updated():
    def f(x):
        x += 1

    after = same_as_numpy(f, np.array(5.0))
    assert after[0] == 6.0


def test_an_argument_that_is_a_negative_stride_view():
    def f(x, y):
        x += y
        return x.sum()

    base = np.arange(10.0)
    after = same_as_numpy(f, base[::-2], np.ones(5))
    assert after[0][0] == 10.0


def test_a_broadcast_input_still_reads_right_while_another_argument_is_written():
    def f(out, x):
        out += x

    x = np.broadcast_to(np.arange(3.0), (4, 3))
    same_as_numpy(f, np.zeros((4, 3)), x)


@given(
    st.lists(st.sampled_from(["+=", "*=", "-=", "=", "T"]), min_size=1, max_size=6),
    st.tuples(st.integers(1, 4), st.integers(1, 4)),
)
def test_random_update_sequences_match_numpy(ops, shape):
    lines = ["def f(a, b):", "    views = []"]
    for k, op in enumerate(ops):
        if op == "T":
            lines.append("    views.append(a.T)")
        elif op == "=":
            lines.append(f"    a[...] = b * {k + 1}")
        else:
            lines.append(f"    a {op} b + {k}")
    lines.append("    return (a + 0, b + 0, *views)")
    namespace: dict = {}
    exec("\n".join(lines), namespace)
    rng = np.random.default_rng(len(ops))
    same_as_numpy(namespace["f"], rng.random(shape), rng.random(shape[1:]), rtol=1e-9)


# -- errors -----------------------------------------------------------------------------------


def test_assignment_to_parts_of_an_array():
    def f(x):
        b = x * 0
        b[1:-1, ::2] = x[1:-1, ::2] + 1
        b[0] += 5
        b[:, -1] = -x[:, 0]
        b[::-2, 1] = 7
        b[2] = b[1]  # reads the updated value
        b[..., 0] *= 3
        return b

    same_as_numpy(f, np.arange(30.0).reshape(5, 6))


def test_a_stencil_updating_its_argument_in_time_steps():
    rng = np.random.default_rng(1)
    jitune_kernel = jitune.kernel(jacobi)
    a, b = rng.random((9, 11)), rng.random((9, 11))
    expected_a, expected_b = a.copy(), b.copy()
    jacobi(expected_a, expected_b, 4)
    for _ in range(4):  # one step per call, through the same compiled kernel
        jitune_kernel(a, b, 1)
    np.testing.assert_allclose(a, expected_a)
    np.testing.assert_allclose(b, expected_b)


def test_assignment_through_views_reaches_the_owner():
    def f(x):
        v = x[1:]
        v[0] = 5  # x[1]
        t = x.T
        t[0] = -1  # x[:, 0]
        w = x[:, None, 2]  # an added axis of extent 1
        w[...] = 9
        x[::-1][0, 1:] += 100  # x[-1, 1:], through a reversed view
        return v + 0, t + 0

    same_as_numpy(f, np.arange(12.0).reshape(4, 3))


def test_masked_assignment_of_a_scalar():
    def f(x):
        x[x > 2] = 0
        x[x < 1] = -1.5  # cast to the int dtype, as NumPy does
        return x

    same_as_numpy(f, np.arange(6).reshape(2, 3))


@given(
    st.lists(
        st.tuples(
            st.integers(-5, 5), st.integers(-5, 5), st.sampled_from([1, 2, -1, -2]), st.booleans()
        ),
        min_size=1,
        max_size=5,
    ),
    st.integers(1, 7),
)
def test_random_slice_assignments_match_numpy(slices, n):
    lines = ["def f(x, y):"]
    for k, (start, stop, step, augmented) in enumerate(slices):
        op = "+=" if augmented else "="
        lines.append(
            f"    x[{start}:{stop}:{step}, 1:] {op} y[{start}:{stop}:{step}, :-1] * {k + 1}"
        )
    lines.append("    return x.sum(axis=1)")
    namespace: dict = {}
    exec("\n".join(lines), namespace)
    rng = np.random.default_rng(n)
    same_as_numpy(namespace["f"], rng.random((n, 3)), rng.random((n, 3)), rtol=1e-9)


def test_integer_array_assignment_is_a_clear_error_naming_the_line():
    def f(x, i):
        x[i] = 0  # the user's line
        return x

    with pytest.raises(UnsupportedOperation, match=r"(?s)indexing.*x\[i\] = 0"):
        jitune.kernel(f)(np.ones(5), np.array([1, 2]))


def test_masked_augmented_assignment_of_a_scalar():
    def f(x, n):
        n[x > 0.5] += 1
        n[x < 0.2] *= 3
        x[x > 0.9] -= 0.5
        return n.sum()

    rng = np.random.default_rng(3)
    same_as_numpy(f, rng.random((4, 5)), np.ones((4, 5), np.int64))


def test_reading_a_masked_selection_is_a_clear_error():
    def f(x):
        return x[x > 0] + 1

    with pytest.raises(UnsupportedOperation, match="depends on the data"):
        jitune.kernel(f)(np.ones(4))


def _binned_means(data, radius, bins):
    # a published azimuthal integration: the mean of the values in each radial bin
    rmax = radius.max()
    res = np.zeros(bins, dtype=np.float64)
    for i in range(bins):
        inside = np.logical_and(rmax * i / bins <= radius, radius < rmax * (i + 1) / bins)
        res[i] = data[inside].mean()
    return res


def _masked_reductions(x):
    t = x[x > 0.5]
    t += 1  # the selection's updated values are what it sums
    return x[x > 0.5].sum(), np.sum(x[x < 0.2]), np.mean(x[x > 2]), x[x > 0.3].prod(), t.sum()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's "Mean of empty slice"
@pytest.mark.parametrize("dtype", ["float64", "float32", "int64"])
def test_reductions_of_a_masked_selection_match_numpy(dtype):
    rng = np.random.default_rng(4)
    x = (rng.random(50) * (3 if dtype == "int64" else 1)).astype(dtype)
    same_as_numpy(_masked_reductions, x, rtol=1e-6)
    same_as_numpy(_binned_means, x, rng.random(50), 6, rtol=1e-6)


def test_a_masked_selection_reduces_over_its_whole_length_only():
    with pytest.raises(UnsupportedOperation, match="whole selection"):
        jitune.kernel(lambda x: x[x > 0].sum(axis=1))(np.ones((2, 2)))
    with pytest.raises(UnsupportedOperation, match="depends on the data"):
        jitune.kernel(lambda x: x[x > 0].max())(np.ones(4))  # NumPy raises when it is empty


def test_a_masked_assignment_of_an_array_is_refused():
    def f(x, y):
        x[x > 0] = y

    with pytest.raises(UnsupportedOperation, match="depends on the data"):
        jitune.kernel(f)(np.ones(4), np.ones(4))


def test_same_kind_casting_is_enforced_as_in_numpy():
    def f(x):
        x += 1.5

    with pytest.raises(TypeError):
        np_x = np.ones(3, np.int64)
        f(np_x)
    with pytest.raises(DTypeError, match="same_kind"):
        jitune.kernel(f)(np.ones(3, np.int64))


def test_a_result_of_another_shape_cannot_be_stored():
    def f(x, y):
        x += y

    with pytest.raises(ValueError):
        f(np.ones(3), np.ones((2, 3)))
    with pytest.raises(ShapeError, match="non-broadcastable output"):
        jitune.kernel(f)(np.ones(3), np.ones((2, 3)))


def test_a_view_of_unknown_kind_alive_at_an_update_is_an_error_not_a_guess():
    def f(x):
        s = np.squeeze(x)  # NumPy returns a view here, jitune does not track it
        x += 1
        return s

    with pytest.raises(UnsupportedOperation, match="view or a copy"):
        jitune.kernel(f)(np.ones((1, 3)))


def test_overlapping_arguments_are_refused_when_one_is_written():
    def f(x, y):
        x += y

    a = np.arange(6.0)
    kernel = jitune.kernel(f)
    with pytest.raises(ArgumentError, match="shares memory"):
        kernel(a[:3], a[2:5])
    kernel(a[:3], a[3:])  # disjoint views of one buffer are fine
    np.testing.assert_array_equal(a, [3.0, 5.0, 7.0, 3.0, 4.0, 5.0])


def test_a_read_only_argument_cannot_be_written():
    def f(x):
        x += 1

    with pytest.raises(ArgumentError, match="read-only"):
        jitune.kernel(f)(np.broadcast_to(np.ones(3), (2, 3)))


def test_a_scalar_does_not_support_item_assignment():
    def f(x):
        s = x.sum()
        s[...] = 1
        return s

    with pytest.raises(UnsupportedOperation, match="scalar"):
        jitune.kernel(f)(np.ones(3))


def test_the_compiled_kernel_is_reused_and_writes_on_every_call():
    def f(x):
        x *= 2

    kernel = jitune.kernel(f)
    a = np.ones(4)
    for _ in range(3):
        assert kernel(a) is None
    np.testing.assert_array_equal(a, 8.0)
    assert kernel.compile_count == 1


def test_a_kernel_loaded_from_the_disk_cache_writes_its_arguments(cache_dir):
    def f(x, y):
        x *= y
        return x - 1

    first, second = np.full(4, 2.0), np.full(4, 2.0)
    compiled = jitune.kernel(f)
    np.testing.assert_array_equal(compiled(first, np.full(4, 3.0)), 5.0)
    loaded = jitune.kernel(f)
    np.testing.assert_array_equal(loaded(second, np.full(4, 3.0)), 5.0)
    assert (compiled.compile_count, loaded.load_count) == (1, 1)
    np.testing.assert_array_equal(first, 6.0)
    np.testing.assert_array_equal(second, 6.0)


def test_an_assigned_value_with_extra_leading_axes_of_one():
    """NumPy's __setitem__ drops leading axes of extent 1 the target lacks (fuzz seeds
    440525, 441255)."""

    def f(x, y):
        x[0] = y  # y has shape (1, 3) into a row of shape (3,)
        x[1, ...] = y  # and through a view
        return x

    same_as_numpy(f, np.zeros((2, 3)), np.arange(3.0).reshape(1, 3))


def test_an_element_takes_a_scalar_only():
    def f(x, y):
        x[0, 1] = y

    with pytest.raises(ValueError):
        f(np.zeros((2, 3)), np.ones(1))
    with pytest.raises(ShapeError, match="element with a sequence"):
        jitune.kernel(f)(np.zeros((2, 3)), np.ones(1))


def test_views_made_by_numpy_functions_see_the_update():
    def f(x, n):
        t = np.transpose(x)
        r = np.reshape(x, -1)
        flat = np.ravel(x)
        x += 1
        return t, r, flat, np.reshape(n, (1,)) + 0

    same_as_numpy(f, np.arange(6.0).reshape(2, 3), 4)


def test_a_masked_mean_in_an_integer_dtype_is_refused_not_computed_in_floats():
    # NumPy sums in int32 and truncates the quotient: jitune's float mean would differ
    with pytest.raises(UnsupportedOperation, match="only a float dtype"):
        jitune.kernel(lambda x: x[x > 0].mean(dtype=np.int32))(np.arange(5.0))


@pytest.mark.parametrize(
    "make",
    [
        lambda a: a.flatten(),  # always a copy, where ravel may be a view
        lambda a: np.positive(a),
        lambda a: +a,
        lambda a: np.ceil(a),  # of integers: their own values, in a new array
        lambda a: np.floor(a.astype(np.float64)),
    ],
    ids=["flatten", "positive", "unary plus", "ceil of ints", "floor"],
)
def test_a_new_array_with_the_old_values_does_not_see_a_later_update(make):
    def f(a):
        y = make(a)
        a += 1
        return y

    same_as_numpy(f, np.arange(6).reshape(2, 3))


@pytest.mark.parametrize("spec", ["ij->ij", "ij->ji", "ii->i", "ji"])
def test_an_einsum_numpy_answers_with_a_view_refuses_a_later_update(spec):
    def f(a):
        y = np.einsum(spec, a)
        a += 1
        return y

    a = np.arange(9.0).reshape(3, 3)
    assert np.shares_memory(np.einsum(spec, a), a)  # NumPy's result is a view of a
    with pytest.raises(UnsupportedOperation, match=r"(?s)view or a copy.*a \+= 1"):
        jitune.kernel(f)(a)


def test_an_element_taken_with_an_ellipsis_is_a_0d_view():
    """``x[..., 0]`` is a 0-d array in NumPy, not a scalar: an augmented assignment to it is
    an in-place ufunc (same_kind casting), and updating it updates ``x``."""

    def through_view(a):
        y = a[..., 1]
        y += 5
        return a * 1

    same_as_numpy(through_view, np.arange(3.0))

    def bool_minus_int(a):
        v = a.copy()
        v[..., 0] -= 0
        return v

    with pytest.raises(TypeError):
        bool_minus_int(np.array([True, False]))
    with pytest.raises(DTypeError, match="same_kind"):
        jitune.kernel(bool_minus_int)(np.array([True, False]))
