"""np.flip (and fliplr/flipud), np.outer, ufunc.outer and ufunc.reduce against NumPy: results,
dtypes and views (a flipped array is a view that updates reach, as in NumPy)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import same_as_numpy
from hypothesis import given, settings
from hypothesis import strategies as st

import jitune

shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


@settings(max_examples=15, deadline=None)
@given(shape=shapes, data=st.data())
def test_flip_matches_numpy_on_every_axis_choice(shape, data):
    axis = data.draw(
        st.one_of(
            st.none(),
            st.integers(-len(shape), len(shape) - 1),
            st.lists(
                st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape), unique=True
            ).map(tuple),
        )
    )
    a = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    same_as_numpy(lambda x: np.flip(x, axis) * 2, a)


def test_flip_is_a_view_that_updates_reach():
    def f(a, r):
        b = a.copy()
        np.flip(b)[0] = 7.0
        a[:3] += 2 * np.flip(a[:3])
        return b, np.dot(np.flip(r[:3]), a[:3]), np.fliplr(b[None]) + np.flipud(b)

    rng = np.random.default_rng(0)
    same_as_numpy(f, rng.random(6), rng.random(6))


@pytest.mark.parametrize("ufunc", [np.add, np.subtract, np.multiply, np.maximum, np.less])
def test_ufunc_outer_matches_numpy(ufunc):
    rng = np.random.default_rng(1)
    a, b = rng.random((3, 2)), rng.random(4)
    same_as_numpy(lambda x, y: ufunc.outer(x, y), a, b)
    same_as_numpy(lambda x, y: np.outer(x, y), a, b)


def test_outer_of_integers_keeps_their_dtype():
    same_as_numpy(lambda x, y: np.outer(x, y), np.arange(3), np.arange(4, dtype=np.int32))


@pytest.mark.parametrize("ufunc", [np.add, np.multiply, np.maximum, np.minimum])
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_ufunc_reduce_matches_numpy(ufunc, axis):
    a = np.random.default_rng(2).random((3, 5)) + 0.5
    fn = (lambda x: ufunc.reduce(x)) if axis == 0 else (lambda x: ufunc.reduce(x, axis=axis))
    same_as_numpy(fn, a)


def test_other_ufunc_methods_are_refused_by_name():
    kernel = jitune.kernel(lambda a: np.add.accumulate(a))
    with pytest.raises(jitune.UnsupportedOperation, match=r"np\.add\.accumulate"):
        kernel(np.ones(3))


def test_flip_of_an_axis_that_does_not_exist():
    with pytest.raises(jitune.ShapeError, match="flip"):
        jitune.kernel(lambda a: np.flip(a, 2))(np.ones((2, 2)))


@pytest.mark.parametrize(
    "options", [{}, {"rowvar": False}, {"bias": True}, {"ddof": 0}, {"ddof": 2, "rowvar": False}]
)
@pytest.mark.parametrize(
    "m",
    [
        np.random.default_rng(3).random((4, 6)),
        np.random.default_rng(4).random(5),
        np.random.default_rng(5).random((1, 5)),
        np.random.default_rng(6).integers(0, 9, (3, 4)),
        np.random.default_rng(7).random((3, 4)).astype(np.float32),
    ],
    ids=["2d", "1d", "one-row", "int", "float32"],
)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's, for N - ddof <= 0
def test_cov_matches_numpy(m, options):
    same_as_numpy(lambda x: np.cov(x, **options), m, rtol=1e-12, atol=1e-15)


def test_cov_options_it_does_not_take_are_refused_by_name():
    kernel = jitune.kernel(lambda x, w: np.cov(x, aweights=w))
    with pytest.raises(jitune.UnsupportedOperation, match="np.cov"):
        kernel(np.ones((2, 3)), np.ones(3))
