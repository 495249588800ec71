"""Kernels large enough to run on the thread pool match NumPy, with the default thread count,
with ``num_threads=1`` and with an uneven split (3 threads).

Kernels are module-level objects: the thread count is chosen at run time, so each signature
compiles once and runs under every setting.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from helpers import assert_close, check, random_array

import jitune

THREADS = [
    pytest.param(None, id="default-threads"),
    pytest.param(1, id="1-thread"),
    pytest.param(3, id="3-threads"),
]


def _run(kernel, *args, threads):
    if threads is None:
        return check(kernel, *args)
    with jitune.config.override(num_threads=threads):
        return check(kernel, *args)


def _is_parallel(kernel, *args) -> bool:
    return any(k.parallel for k in kernel.lower(*args).loops.kernels)


@pytest.fixture(scope="module")
def big():
    rng = np.random.default_rng(2048)
    return (random_array(rng, (2048, 2048), "float32"), random_array(rng, (2048, 2048), "float32"))


@jitune.kernel
def mix(a, b):
    return np.tanh(a * b + 0.5) * np.maximum(a, 0) - b / 3


@jitune.kernel
def axpy(x, y):
    return x * 2 + y


@jitune.kernel
def matmul(x, y):
    return x @ y


@jitune.kernel
def dense_relu(x, w, b):
    return np.maximum(x @ w + b, 0)


@jitune.kernel
def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@jitune.kernel
def reductions(x):
    return x.sum(axis=0), x.argmax(axis=1), x.min()


@pytest.mark.parametrize("threads", THREADS)
def test_large_elementwise(big, threads):
    a, b = big
    assert _is_parallel(mix, a, b)
    _run(mix, a, b, threads=threads)


@pytest.mark.parametrize("threads", THREADS)
def test_large_elementwise_non_contiguous(big, threads):
    a, b = big
    assert _is_parallel(axpy, a.T, b[::-1])
    _run(axpy, a.T, b[::-1], threads=threads)


@pytest.fixture(scope="module")
def square():
    rng = np.random.default_rng(512)
    return (
        random_array(rng, (512, 512), "float32", -1, 1),
        random_array(rng, (512, 512), "float32", -1, 1),
    )


@pytest.mark.parametrize("threads", THREADS)
def test_large_matmul(square, threads):
    a, b = square
    assert _is_parallel(matmul, a, b)
    _run(matmul, a, b, threads=threads)


@pytest.mark.parametrize("threads", THREADS)
def test_large_matmul_with_epilogue_and_odd_sizes(threads):
    rng = np.random.default_rng(513)
    x = random_array(rng, (517, 263), "float64", -1, 1)
    w = random_array(rng, (263, 130), "float64", -1, 1)
    b = random_array(rng, (130,), "float64")
    assert _is_parallel(dense_relu, x, w, b)
    _run(dense_relu, x, w, b, threads=threads)


@pytest.mark.parametrize("threads", THREADS)
def test_large_row_reductions(threads):
    rng = np.random.default_rng(7)
    x = random_array(rng, (1001, 777), "float32")
    assert _is_parallel(softmax, x)
    _run(softmax, x, threads=threads)
    _run(reductions, x, threads=threads)


def test_parallel_loop_shorter_than_the_thread_count():
    """3 outer iterations, lots of work each: fewer chunks than threads."""
    rng = np.random.default_rng(3)
    x = random_array(rng, (3, 200000), "float32")
    with jitune.config.override(num_threads=8):
        check(lambda a: np.sqrt(np.abs(a)) + 1, x)
        check(lambda a: a.sum(axis=1), x)


def test_results_do_not_depend_on_the_thread_count(big):
    """Integer work is exact, so every split must give identical results."""
    a, _ = big
    ints = (a * 1000).astype(np.int64)
    kernel = jitune.kernel(lambda x: (x * 3 - 7) // 2 + x.sum(axis=1, keepdims=True))
    assert _is_parallel(kernel, ints)
    results = []
    for threads in (1, 2, 3, 5):
        with jitune.config.override(num_threads=threads):
            results.append(kernel(ints))
    assert kernel.compile_count == 1  # the thread count is a runtime choice
    check(kernel, ints)
    for other in results[1:]:
        np.testing.assert_array_equal(results[0], other)


def test_concurrent_calls_to_a_parallel_kernel(big):
    a, b = big
    expected = mix.fn(a, b)
    results: list = [None] * 4
    errors: list = []

    def work(k):
        try:
            results[k] = mix(a, b)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "parallel calls deadlocked"
    assert not errors
    for got in results:
        assert_close(got, expected)
    check(mix, a, b)  # and against the reference evaluator
