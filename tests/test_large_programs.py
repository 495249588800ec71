"""Kernels too large to compile: a Python loop unrolled into more distinct loop nests than
JITUNE_MAX_STAGES runs its graph with NumPy (the reference evaluator), uncompiled. Results
and argument state stay NumPy's; the evaluator updates arrays in place only where nothing
else can see it."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from helpers import same_as_numpy
from test_published_kernels import CASES

import jitune

# ruff: noqa: N803, N806 - the kernels keep their published form


def lu(A):
    for i in range(A.shape[0]):
        for j in range(i):
            A[i, j] -= A[i, :j] @ A[:j, j]
            A[i, j] /= A[j, j]
        for j in range(i, A.shape[0]):
            A[i, j] -= A[i, :i] @ A[:i, j]


def _diagonally_dominant(n: int) -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.random((n, n)) + n * np.eye(n)


@pytest.mark.parametrize("fn, args", CASES, ids=[fn.__name__ for fn, _ in CASES])
def test_published_kernels_run_uncompiled_past_the_limit(fn, args):
    with jitune.config.override(max_stages=1):
        same_as_numpy(fn, *args, rtol=1e-10, atol=1e-12)


def test_a_triangular_loop_runs_uncompiled_and_says_so(caplog):
    A = _diagonally_dominant(12)
    kernel = jitune.kernel(lu)
    with jitune.config.override(max_stages=16), caplog.at_level(logging.WARNING):
        got = A.copy()
        assert kernel(got) is None
    want = A.copy()
    lu(want)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert kernel.last.how == "interpreted" and kernel.compile_count == 0
    assert "distinct loop nests" in caplog.text and "lu" in caplog.text
    again = A.copy()
    kernel(again)  # the same program serves the next call
    np.testing.assert_array_equal(again, got)


def test_repeated_time_steps_count_once_and_compile():
    def jacobi(steps, A, B):
        for _ in range(steps):
            B[1:-1, 1:-1] = 0.2 * (A[1:-1, 1:-1] + A[1:-1, :-2] + A[1:-1, 2:] + A[2:, 1:-1])
            A[1:-1, 1:-1] = 0.2 * (B[1:-1, 1:-1] + B[1:-1, :-2] + B[1:-1, 2:] + B[2:, 1:-1])

    kernel = jitune.kernel(jacobi)
    rng = np.random.default_rng(1)
    A, B = rng.random((10, 10)), rng.random((10, 10))
    with jitune.config.override(max_stages=8):  # 60 stages, one loop nest
        kernel(30, A.copy(), B.copy())
    assert kernel.last.how == "compiled"


def _alive_view(a):
    b = a + 0
    v = b[1:4]
    b[2] = 9.0
    b[3] += 1
    return v * 1, b


def _overlapping_self_assignment(a):
    b = a * 2
    b[1:] = b[:-1]
    b[0] = 5
    b[2:4] += b[1:3]
    return b


def _argument_through_a_negative_stride(a, c):
    a[::-1] += c
    a[0] = a[-1]
    return a.sum()


@pytest.mark.parametrize(
    "fn", [_alive_view, _overlapping_self_assignment, _argument_through_a_negative_stride]
)
def test_in_place_evaluation_never_changes_what_another_value_sees(fn):
    rng = np.random.default_rng(2)
    args = (rng.random(7), rng.random(7))[: fn.__code__.co_argcount]
    with jitune.config.override(max_stages=1):
        same_as_numpy(fn, *args)


def test_an_integer_to_a_negative_power_is_a_jitune_error_uncompiled_too():
    def f(x, y):
        z = x + 0
        z[0] = 1
        z[1] = 2
        return z**y

    kernel = jitune.kernel(f)
    with jitune.config.override(max_stages=1):
        np.testing.assert_array_equal(
            kernel(np.arange(4), np.arange(4)), f(np.arange(4), np.arange(4))
        )
        with pytest.raises(jitune.DomainError, match="negative integer powers"):
            kernel(np.arange(4), -np.arange(4))
    assert kernel.last.how == "interpreted"
