"""How calls reach a kernel: keyword arguments and defaults, static arguments (declared,
inferred from a scalar used as a shape, loop count or axis, and non-array values), kernels
called inside kernels, decorated methods, and jitune errors raised inside NumPy's code."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check

import jitune
from jitune.errors import ArgumentError, UnsupportedOperation

X = np.arange(12.0).reshape(3, 4)


def test_keyword_arguments_and_defaults():
    @jitune.kernel
    def scaled(x, y, alpha=2.0, *, shift=1.0):
        return alpha * x + y + shift

    np.testing.assert_allclose(scaled(X, X), 2 * X + X + 1)
    np.testing.assert_allclose(scaled(X, y=X, shift=5.0), 2 * X + X + 5)
    np.testing.assert_allclose(scaled(X, y=X, shift=-1.0), 2 * X + X - 1)
    np.testing.assert_allclose(scaled(y=X, x=X * 2, alpha=0.5), X + X + 1)
    # a left-out parameter takes its default as a constant of the trace: which parameters a
    # call supplies is part of its signature; a supplied float is a run-time value
    assert scaled.compile_count == 3
    with pytest.raises(ArgumentError, match="scaled"):
        scaled(X)


def test_an_int_used_as_a_loop_count_becomes_static():
    @jitune.kernel
    def repeated(x, n):
        for _ in range(n):
            x = x * 2
        return x

    for n in (1, 3, 1):
        np.testing.assert_allclose(repeated(X, n), X * 2**n)
    assert repeated.compile_count == 2  # one kernel per value


def test_an_int_used_as_an_axis_or_index_or_shape_becomes_static():
    @jitune.kernel
    def pick(x, axis, i, rows):
        return x.sum(axis=axis)[i] + x.reshape(rows, -1).T[0]

    for axis, i, rows in ((0, 1, 2), (1, 2, 6)):
        want = X.sum(axis=axis)[i] + X.reshape(rows, -1).T[0]
        np.testing.assert_allclose(pick(X, axis, i, rows), want)


def test_declared_static_arguments_by_name_and_position():
    @jitune.kernel(static=("k",))
    def power(x, k):
        return x**k

    np.testing.assert_allclose(power(X, 3), X**3)
    np.testing.assert_allclose(power(X, 2), X**2)
    assert power.compile_count == 2
    with pytest.raises(ArgumentError, match="names no parameter"):
        jitune.kernel(lambda x: x, static=("nope",))


def test_strings_tuples_and_none_are_static():
    @jitune.kernel
    def reduce(x, how, axes, bias=None):
        out = x.max(axis=axes) if how == "max" else x.sum(axis=axes)
        return out if bias is None else out + bias

    check(
        lambda x: x.max(axis=(0, 1)), X, kernel=jitune.kernel(lambda x: reduce.fn(x, "max", (0, 1)))
    )
    np.testing.assert_allclose(reduce(X, "sum", (1,)), X.sum(axis=1))
    np.testing.assert_allclose(reduce(X, "max", (0,), 1.0), X.max(axis=0) + 1)
    with pytest.raises(ArgumentError, match="unhashable"):
        reduce(X, "sum", [0])


def test_a_kernel_called_inside_a_kernel_is_inlined():
    @jitune.kernel
    def inner(x, scale=3.0):
        return x * scale

    @jitune.kernel
    def outer(x):
        return inner(x) + inner(x, scale=0.5)

    np.testing.assert_allclose(outer(X), X * 3 + X * 0.5)
    assert inner.compile_count == 0 and outer.compile_count == 1


def test_a_decorated_method():
    class Layer:
        def __init__(self, scale):
            self.scale = scale

        @jitune.kernel
        def apply(self, x):
            return np.maximum(x * self.scale, 1.0)

    a, b = Layer(2.0), Layer(0.5)
    np.testing.assert_allclose(a.apply(X), np.maximum(X * 2, 1))
    np.testing.assert_allclose(b.apply(X), np.maximum(X * 0.5, 1))
    np.testing.assert_allclose(Layer.apply(a, X), np.maximum(X * 2, 1))


def test_a_traced_size_in_a_numpy_function_is_a_jitune_error():
    @jitune.kernel
    def made(x):
        return np.zeros(x.argmax()) + 1  # NumPy calls back into the tracer and re-raises

    with pytest.raises(UnsupportedOperation, match="control flow") as excinfo:
        made(X)
    assert "np.zeros(x.argmax())" in str(excinfo.value)


def test_a_branch_on_array_data_points_to_static_arguments():
    @jitune.kernel
    def branch(x):
        return x if x.max() > 0 else -x

    with pytest.raises(UnsupportedOperation, match=r"static"):
        branch(X)
