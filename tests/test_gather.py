"""Integer-array indexing (``x[idx]``) against NumPy: index arrays that are arguments,
computed in the kernel or written as lists; several of them broadcasting together, beside
slices, integers and ``None``, adjacent or not; negative values; an out-of-bounds value
raising IndexError at run time (compiled and uncompiled) without reading outside the array;
the tuner's random inputs; and the clear errors for what stays unsupported."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check, same_as_numpy
from hypothesis import given, settings
from hypothesis import strategies as st

import jitune
from jitune.errors import IndexingError, UnsupportedOperation
from jitune.runtime.interp import GraphProgram

RNG = np.random.default_rng(7)
A = RNG.random((6, 7, 5))
ROWS = np.array([[0, 5], [-1, 2]])
COLS = np.array([3, -7])


@pytest.mark.parametrize(
    "fn",
    [
        lambda a, r, c: a[r],
        lambda a, r, c: a[r, c],
        lambda a, r, c: a[:, c],
        lambda a, r, c: a[1:, c, ::2],
        lambda a, r, c: a[r, :, 1],  # an int and an array separated by a slice: index dims lead
        lambda a, r, c: a[r, 2:5, c[0]],
        lambda a, r, c: a[2, c],  # adjacent int and array: in place
        lambda a, r, c: a[None, r, c],
        lambda a, r, c: a[..., c[:1] + 1],
        lambda a, r, c: a[r][:, :, 1:3, 0],
        lambda a, r, c: a[r, c, None],
        lambda a, r, c: a[[0, -1, 3]],  # a constant list: no progression
        lambda a, r, c: a[:, [1, 2, 3]],  # a progression
        lambda a, r, c: a[[[0], [5]], [1, 3]],
        lambda a, r, c: a[np.array([2, 2, 2])],
        lambda a, r, c: a[np.argmax(a[:, 0, 0])],  # a 0-d index computed in the kernel
        lambda a, r, c: a[(r + 1) % 6, c],
        lambda a, r, c: (a * 2)[r].sum(axis=1) + 1,
        lambda a, r, c: a.T[c % 5],
        lambda a, r, c: a[r, c].astype(np.float32).max(),
    ],
    ids=lambda f: f.__code__.co_firstlineno,
)
def test_integer_array_reads_match_numpy(fn):
    check(fn, A, ROWS, COLS)


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_index_dtypes(dtype):
    x = np.arange(40.0).reshape(8, 5)
    idx = np.array([7, 0, 3, 3], dtype=dtype)
    check(lambda x, i: x[i] + x[:, i[2:]].sum(), x, idx)


@pytest.mark.parametrize("dtype", ["float32", "int32", "bool"])
def test_gathered_dtypes(dtype):
    x = (RNG.random((9, 4)) * 10).astype(dtype)
    check(lambda x, i: x[i], x, np.array([8, -9, 4]))


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    index_shape=st.lists(st.integers(0, 4), min_size=0, max_size=2),
    axis=st.integers(0, 2),
    seed=st.integers(0, 2**31),
)
def test_random_gathers_match_numpy(shape, index_shape, axis, seed):
    axis %= len(shape)
    rng = np.random.default_rng(seed)
    x = rng.random(shape)
    extent = shape[axis]
    idx = rng.integers(-extent, extent, size=index_shape)
    key = (slice(None),) * axis + (idx,)

    def f(x, idx):
        return x[(slice(None),) * axis + (idx,)] * 3.0

    check(f, x, idx)
    np.testing.assert_array_equal(jitune.kernel(f)(x, idx), x[key] * 3.0)


def test_a_gather_of_a_strided_argument_and_a_gathered_result_written_to_an_argument():
    def f(x, idx, out):
        out[:] = x[::-2][idx] + 1
        y = x[idx]
        y[0] = -1.0  # the gather is a copy: x keeps its value
        return y

    x = np.arange(12.0)
    same_as_numpy(f, x, np.array([0, 5, -1]), np.zeros(3))


@pytest.mark.parametrize("bad", [[0, 10], [-11], [3, -1000]])
def test_an_out_of_bounds_index_raises_index_error_naming_the_line(bad):
    def f(x, idx):
        return x[idx] * 2  # the gathering line

    x = np.arange(10.0)
    with pytest.raises(IndexError):
        x[np.array(bad)]
    kernel = jitune.kernel(f)
    with pytest.raises(IndexingError, match=r"(?s)out of bounds.*x\[idx\] \* 2"):
        kernel(x, np.array(bad, dtype=np.int64))
    # the same compiled signature still works with indices in bounds
    np.testing.assert_array_equal(kernel(x, np.array([9, -10])), x[[9, -10]] * 2)


def test_an_out_of_bounds_index_leaves_the_arguments_unchanged():
    def f(x, idx):
        x += 1
        return x[idx]

    x = np.zeros(4)
    with pytest.raises(IndexingError):
        jitune.kernel(f)(x, np.array([4]))
    # NumPy would have added 1 before raising; jitune raises before writing back
    np.testing.assert_array_equal(x, np.zeros(4))


def test_an_out_of_bounds_index_in_a_vectorized_loop_and_in_several_threads():
    x = np.arange(1 << 16, dtype=np.float32)
    idx = np.arange(1 << 16)[::-1].copy()
    kernel = jitune.kernel(lambda x, i: x[i] + 1)
    np.testing.assert_array_equal(kernel(x, idx), x[idx] + 1)
    idx[12345] = 1 << 16
    with pytest.raises(IndexingError):
        kernel(x, idx)


def test_the_uncompiled_tier_raises_the_same_error():
    def f(x, idx):
        return x[idx].sum() + x.max()

    kernel = jitune.kernel(f)
    x = np.arange(6.0)
    with jitune.config.override(max_stages=1):
        np.testing.assert_allclose(kernel(x, np.array([1, -1])), f(x, np.array([1, -1])))
        assert isinstance(kernel.last.program, GraphProgram)
        with pytest.raises(IndexingError, match=r"(?s)out of bounds.*x\[idx\]\.sum"):
            kernel(x, np.array([6]))


def test_constant_out_of_bounds_and_empty_axes_are_refused_while_tracing():
    with pytest.raises(IndexingError, match="index 5 is out of bounds"):
        jitune.kernel(lambda x, i: x[i, 5])(np.ones((3, 4)), np.array([0]))
    with pytest.raises(IndexingError, match="size 0"):
        jitune.kernel(lambda x, i: x[:, i])(np.ones((3, 0)), np.array([0]))
    # an empty index of an empty axis reads nothing, as in NumPy
    check(lambda x, i: x[:, i], np.ones((3, 0)), np.zeros(0, dtype=np.int64))
    # nor does a constant array broadcast with an empty one (NumPy checks no value of it),
    # while a Python int is checked all the same
    empty = np.zeros(0, dtype=np.int64)
    check(lambda x, i: x[i, [5]], np.ones((3, 4)), empty)
    check(lambda x, i: x[i, [0]], np.ones((3, 0)), empty)
    with pytest.raises(IndexingError, match="index 5 is out of bounds"):
        jitune.kernel(lambda x, i: x[i, 5])(np.ones((3, 4)), empty)


def test_tuning_a_gather_draws_indices_in_bounds():
    def f(x, idx):
        return x[idx] * x[idx[::-1]]

    kernel = jitune.kernel(f, budget=4)
    x = np.arange(3.0)  # smaller than the tuner's usual integers reach
    check(kernel, x, np.array([2, 0, 1, 1, 2, 0, 0, 2]))
    assert kernel.last.tuned is not None and not kernel.last.tuned.errors


@pytest.mark.parametrize(
    "fn, error, pattern",
    [
        (lambda x, i: x[i.astype(np.float64)], IndexingError, "must be of integer"),
        (lambda x, i: x[[1.5]], IndexingError, "must be of integer"),
        (lambda x, i: x[i, i], IndexingError, "too many indices"),
        (lambda x, i: x[x > 0, None], UnsupportedOperation, "depends on the data"),
        (lambda x, i: x[np.array([True, False] * 3)], UnsupportedOperation, "boolean"),
        (lambda x, i: x.reshape(2, 3)[i, i[:2]], IndexingError, "could not be broadcast"),
        (lambda x, i: x[np.arange(2000) % 6], None, None),  # computed: fine at any size
        (lambda x, i: x[list(range(2000))], UnsupportedOperation, "as an argument"),
    ],
)
def test_what_stays_refused_is_a_clear_error(fn, error, pattern):
    x, i = np.arange(6.0), np.array([1, 2, 3])
    if error is None:
        check(fn, x, i)
        return
    with pytest.raises(error, match=pattern):
        jitune.kernel(fn)(x, i)


def test_a_scatter_is_a_clear_error():
    def f(x, i):
        x[i] += 1

    with pytest.raises(UnsupportedOperation, match=r"(?s)scatter.*x\[i\] \+= 1"):
        jitune.kernel(f)(np.ones(5), np.array([1, 2]))


@pytest.mark.parametrize(
    "fn",
    [
        lambda x, i: np.broadcast_to(x[:1], (4,))[i],  # a base that does not move with i
        lambda x, i: np.zeros_like(x)[i],  # a constant base
        lambda x, i: x[i][0],  # only one element of the gather is used
        lambda x, i: x[i][:0] + 1,  # none is
        lambda x, i: (x[i], x)[1] * 2,  # the gather is never used
        lambda x, i: (x[i[2]], x)[1] * 2,  # nor is this one, of a 0-d index
        lambda x, i: x.reshape(1, 4)[:0, i],  # the result is empty, the index is not
        lambda x, i: np.where(x > 9, x[i], x),  # a branch never taken
    ],
    ids=lambda f: f.__code__.co_firstlineno,
)
def test_every_index_value_is_checked_as_numpy_checks_it(fn):
    x, good, bad = np.arange(4.0), np.array([3, 0, 1, 2]), np.array([3, 0, 7, 2])
    check(fn, x, good)
    with pytest.raises(IndexError):
        fn(x, bad)
    with pytest.raises(IndexingError):
        jitune.kernel(fn)(x, bad)


def test_a_broadcast_argument_as_the_base_still_checks_its_index():
    x = np.broadcast_to(np.float32(5.0), (2,))  # stride 0: the address ignores the index
    kernel = jitune.kernel(lambda x, i: x[i])
    np.testing.assert_array_equal(kernel(x, np.array([[1, -2]])), x[[[1, -2]]])
    with pytest.raises(IndexingError):
        kernel(x, np.array([[1, 3]]))


def test_a_gather_feeding_a_contraction_and_a_reduction():
    rng = np.random.default_rng(3)
    table, w = rng.random((10, 8)), rng.random((8, 6))
    rows = np.array([9, 0, 4, 4, -1])
    check(lambda t, r, w: t[r] @ w + t[r].max(axis=1, keepdims=True), table, rows, w)
