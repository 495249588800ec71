"""Arrays made inside a kernel (np.zeros, np.ones, np.empty, np.full, np.eye, np.identity,
np.arange, np.linspace) match NumPy's, can be filled in place, and NumPy is untouched outside
traces and in other threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jitune
from jitune.errors import UnsupportedOperation


def same(fn, *args):
    expected = fn(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    actual = jitune.kernel(fn)(*args)
    expected = expected if isinstance(expected, tuple) else (expected,)
    actual = actual if isinstance(actual, tuple) else (actual,)
    for got, want in zip(actual, expected):
        assert got.shape == want.shape and got.dtype == want.dtype
        # a multiply-add may round once (FMA) where NumPy rounds twice: an ulp of the span
        np.testing.assert_allclose(
            got, want, rtol=1e-15, atol=1e-14 * max(1.0, np.abs(want).max(initial=0))
        )


def test_every_creation_function():
    def f(x, n):
        return (
            np.zeros((n, 2)),
            np.zeros(n, dtype=np.int32),
            np.ones((2, n), np.float32),
            np.full(n, 7, dtype=np.int32),
            np.full((2, n), 2.5),
            np.full((n,), x[0]),
            np.eye(n),
            np.eye(n, n + 2, k=-1, dtype=np.int64),
            np.identity(n),
            np.arange(n),
            np.arange(2, 3 * n, 3),
            np.arange(0.5, n, 0.25),
            np.arange(n, dtype=np.float32),
            np.linspace(0, 1, n),
            np.linspace(-2, 5, 7, endpoint=False),
            x + np.zeros_like(x),
        )

    same(f, np.arange(5.0), 5)


@given(st.integers(-20, 20), st.integers(-20, 20), st.integers(1, 33), st.booleans())
def test_linspace_and_arange_values_are_numpys(start, stop, num, endpoint):
    def f(x):
        return np.linspace(start, stop, num, endpoint=endpoint) + x, np.arange(start, stop + 0.5)

    same(f, np.zeros(num))


def test_empty_then_filled_is_the_common_pattern():
    def f(x):
        n = x.shape[0]
        out = np.empty((n, 3))
        out[:, 0] = x
        out[:, 1] = x * 2
        out[:, 2] = np.arange(n)
        return out

    same(f, np.linspace(0, 1, 6))


def test_an_accumulator_in_a_loop():
    def f(x, steps):
        acc = np.zeros_like(x)
        total = np.zeros(x.shape[1:])
        for k in range(steps):
            acc += x * k
            total += acc[0]
        return acc, total

    same(f, np.arange(12.0).reshape(3, 4), 4)


def test_numpy_is_untouched_outside_a_trace_and_in_other_threads():
    original = np.zeros
    seen = []
    started, release = threading.Event(), threading.Event()

    def other_thread():
        started.set()
        release.wait(30)
        seen.append(type(np.zeros(3)))  # while the main thread traces

    @jitune.kernel
    def f(x):
        release.set()
        thread.join(30)
        return x + np.zeros(3)

    thread = threading.Thread(target=other_thread)
    thread.start()
    started.wait(30)
    np.testing.assert_array_equal(f(np.ones(3)), np.ones(3))
    assert seen == [np.ndarray]
    assert np.zeros is original


def test_a_function_imported_by_name_gives_a_concrete_array_and_a_clear_error():
    from numpy import zeros

    def f(x):
        return x + zeros(3)

    with pytest.raises(UnsupportedOperation, match="concrete array"):
        jitune.kernel(f)(np.ones(3))


def test_a_traced_value_stored_into_np_ndarray_points_to_np_empty():
    def f(x):
        out = np.ndarray((3,), dtype=x.dtype)  # a real NumPy array: it cannot hold tracers
        out[:] = x * 2
        return out

    with pytest.raises(jitune.UnsupportedOperation, match=r"np\.ndarray.*np\.empty"):
        jitune.kernel(f)(np.ones(3))
