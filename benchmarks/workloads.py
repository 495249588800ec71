"""The benchmarked computations, written once in plain NumPy; jitune compiles these very
functions, and the benchmark scripts (``harness.py``, ``opencl_bench.py``, ``gpu_bench.py``)
import them so every table measures the same code."""

from __future__ import annotations

import numpy as np


def matmul(a, b):
    return a @ b


def bmm_einsum(a, b):
    return np.einsum("bij,bjk->bik", a, b)


def dense(x, w, b):
    return np.maximum(x @ w + b, 0)


def gelu(x):
    return 0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def layernorm(x):
    mean = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5)


def scores_einsum(q, k):
    return np.einsum("bhqd,bhkd->bhqk", q, k)
