"""Updates in place: an assignment to part of an array whose old value nothing reads
afterwards stores its region into the old value's buffer (for an argument, the caller's
array) instead of writing a new array. Every test compares results and the state of every
argument with NumPy's; the structural ones also check which stages store into views."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import jacobi, same_as_numpy

import jitune
from jitune.errors import IndexingError


def _views(kernel: jitune.Kernel, *args):
    """The views of the compute IR and the stage outputs that are views."""
    compute = kernel.lower(*args).compute
    views = {d.name: d for d in compute.buffers if d.view_of is not None}
    return views, [s.out for s in compute.stages if s.out in views]


def test_a_stencil_with_time_steps_stores_into_the_callers_arrays():
    rng = np.random.default_rng(0)
    a, b = rng.random((14, 11)), rng.random((14, 11))
    kernel = jitune.kernel(jacobi, static=("steps",))
    views, stored = _views(kernel, a, b, 4)
    assert len(stored) == 8  # every update stores into its region, none copies the array
    assert {views[name].view_of for name in stored} == {"in0", "in1"}
    assert all(views[name].shape == (12, 9) for name in stored)
    assert {views[name].offset for name in stored} == {11 + 1}
    expected_a, expected_b = a.copy(), b.copy()
    jacobi(expected_a, expected_b, 4)
    assert kernel(a, b, 4) is None
    np.testing.assert_allclose(a, expected_a, rtol=1e-13)
    np.testing.assert_allclose(b, expected_b, rtol=1e-13)


def _shift(a):
    a[1:] = a[:-1]  # NumPy reads all of the value before storing any of it


def _stencil(a):
    a[1:-1] = a[:-2] + a[2:]


def _reverse(a):
    a[::-1] = a


def _accumulate(a):
    a[1:] += a[:-1]


def _swap_rows(a):
    a[0], a[1] = a[1].copy(), a[0].copy()


def _diagonal_read(a):
    a[:4, 0] = a[0, :]


def _strided(a):
    a[::2] = a[1::2]


def _same_element(a):
    a[1:-1] += 1  # reads only the element it replaces: stored in place


def _old_value_read_later(a):
    a[0] = 5
    c = a * 2
    a[1] = 3
    d = a + 1
    return d, c  # the old value (c's) is computed after the second update's stage


def _copy_before_update(a):
    a[0] = 1
    c = a.copy()
    a[1] = 2
    return c


def _local_columns(a):
    out = np.zeros((a.shape[0], 3))
    out[:, 0] = a[:, 0]
    out[:, 1] = a[:, 1] * 2
    out[:, 2] = out[:, 0] + out[:, 1]
    return out


def _negative_step(a):
    a[1:3, ::-1] = a[0] * 3


def _through_views(a):
    v = a[1:]
    v[0] += 4
    a.T[0] = 7
    return v.sum()


def _returned_and_updated(a):
    a *= 2
    return a


@pytest.mark.parametrize(
    "fn",
    [
        _shift,
        _stencil,
        _reverse,
        _accumulate,
        _swap_rows,
        _diagonal_read,
        _strided,
        _same_element,
        _old_value_read_later,
        _copy_before_update,
        _local_columns,
        _negative_step,
        _through_views,
        _returned_and_updated,
    ],
    ids=lambda fn: fn.__name__,
)
@pytest.mark.parametrize("layout", ["C", "F", "reversed"])
def test_updates_read_what_numpy_reads(fn, layout):
    a = np.arange(24.0).reshape(6, 4) % 7 + 1
    if layout == "F":
        a = np.asfortranarray(a)
    elif layout == "reversed":
        a = np.ascontiguousarray(a[::-1])[::-1]
    same_as_numpy(fn, a)


@pytest.mark.parametrize(
    ("fn", "in_place"),
    [(_same_element, True), (_returned_and_updated, True), (_shift, False), (_stencil, False)],
    ids=lambda x: getattr(x, "__name__", str(x)),
)
def test_a_value_that_reads_other_elements_of_the_old_value_is_not_stored_in_place(fn, in_place):
    _, stored = _views(jitune.kernel(fn), np.ones((6, 4)))
    assert bool(stored) is in_place


def test_a_result_that_is_an_updated_argument_is_that_argument():
    a = np.arange(5.0)
    assert jitune.kernel(_returned_and_updated)(a) is a  # as NumPy returns it
    np.testing.assert_array_equal(a, np.arange(5.0) * 2)


def test_a_local_array_filled_column_by_column_is_updated_in_its_buffer():
    a = np.arange(12.0).reshape(4, 3)
    views, stored = _views(jitune.kernel(_local_columns), a)
    # the first assignment writes the whole new array (its old value is a constant); the
    # second stores one column into that buffer; the third reads other columns of the old
    # value, so it makes a new array
    assert len(stored) == 1 and views[stored[0]].shape == (4, 1)
    same_as_numpy(_local_columns, a)


def test_an_argument_is_not_updated_in_place_where_the_kernel_may_stop_with_an_error():
    def f(a, i):
        a[1:] += 1
        return a[i]

    kernel = jitune.kernel(f)
    a = np.zeros(4)
    _, stored = _views(kernel, a, np.array([0, 1]))
    assert not stored
    with pytest.raises(IndexingError):
        kernel(a, np.array([0, 9]))
    np.testing.assert_array_equal(a, np.zeros(4))  # the update is not half-applied


def test_parallel_stores_into_views(monkeypatch):
    rng = np.random.default_rng(1)
    a, b = rng.random((130, 70)), rng.random((130, 70))
    with jitune.config.override(parallel_min_work=1):
        kernel = jitune.kernel(jacobi, static=("steps",))
        loops = kernel.lower(a, b, 3).loops
        assert any(k.parallel for k in loops.kernels)
        expected_a, expected_b = a.copy(), b.copy()
        jacobi(expected_a, expected_b, 3)
        kernel(a, b, 3)
    np.testing.assert_allclose(a, expected_a, rtol=1e-13)
    np.testing.assert_allclose(b, expected_b, rtol=1e-13)


def test_tuning_measures_updates_in_place_on_fresh_copies_of_the_inputs():
    def f(a, b):
        a[1:-1] += 2 * b[1:-1]

    a, b = np.ones((64, 32)), np.full((64, 32), 3.0)
    kernel = jitune.kernel(f)
    result = kernel.tune(a, b, budget=3)
    assert result is not None and result.trials > 0
    assert not result.errors  # a candidate checked on inputs an earlier one updated fails
    np.testing.assert_array_equal(a, np.ones((64, 32)))  # tuning leaves the arguments alone
    same_as_numpy(f, a, b)


def test_a_summand_is_not_stored_into_an_argument_before_its_old_value_is_read():
    """The softmax summand ``exp(b - m)`` is shared with the stage that stores into ``a``:
    stored at the reduction's place, it would overwrite ``a`` before ``a.min`` reads it."""

    def f(a, b):
        m = b.max(axis=1, keepdims=True)
        s = np.exp(b - m).sum(axis=1, keepdims=True)
        q = a.min(axis=1, keepdims=True)
        a[...] = np.exp(b - m) / s * q

    rng = np.random.default_rng(2)
    same_as_numpy(f, rng.random((4, 6)) + 1, rng.random((4, 6)), rtol=1e-12)
