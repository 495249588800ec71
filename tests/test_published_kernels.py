"""Scientific NumPy kernels as they are published (linear algebra, stencils with time steps,
Gram-Schmidt, a convolution written with a loop, a Mandelbrot-style iteration), each run
unchanged through jitune.kernel and compared with NumPy: results and the state of every
argument afterwards."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import same_as_numpy

# ruff: noqa: N803, N806, B007 - the kernels keep their published form


def gesummv(alpha, beta, A, B, x):
    return alpha * A @ x + beta * B @ x


def atax(A, x):
    return (A @ x) @ A


def bicg(A, p, r):
    return r @ A, A @ p


def mvt(x1, x2, y_1, y_2, A):
    x1 += A @ y_1
    x2 += y_2 @ A


def jacobi_1d(TSTEPS, A, B):
    for t in range(1, TSTEPS):
        B[1:-1] = 0.33333 * (A[:-2] + A[1:-1] + A[2:])
        A[1:-1] = 0.33333 * (B[:-2] + B[1:-1] + B[2:])


def heat_3d(TSTEPS, A, B):
    for t in range(1, TSTEPS):
        B[1:-1, 1:-1, 1:-1] = (
            0.125 * (A[2:, 1:-1, 1:-1] - 2.0 * A[1:-1, 1:-1, 1:-1] + A[:-2, 1:-1, 1:-1])
            + 0.125 * (A[1:-1, 2:, 1:-1] - 2.0 * A[1:-1, 1:-1, 1:-1] + A[1:-1, :-2, 1:-1])
            + 0.125 * (A[1:-1, 1:-1, 2:] - 2.0 * A[1:-1, 1:-1, 1:-1] + A[1:-1, 1:-1, 0:-2])
            + A[1:-1, 1:-1, 1:-1]
        )
        A[1:-1, 1:-1, 1:-1] = (
            0.125 * (B[2:, 1:-1, 1:-1] - 2.0 * B[1:-1, 1:-1, 1:-1] + B[:-2, 1:-1, 1:-1])
            + 0.125 * (B[1:-1, 2:, 1:-1] - 2.0 * B[1:-1, 1:-1, 1:-1] + B[1:-1, :-2, 1:-1])
            + 0.125 * (B[1:-1, 1:-1, 2:] - 2.0 * B[1:-1, 1:-1, 1:-1] + B[1:-1, 1:-1, 0:-2])
            + B[1:-1, 1:-1, 1:-1]
        )


def syrk(alpha, beta, C, A):
    for i in range(A.shape[0]):
        C[i, : i + 1] *= beta
        for k in range(A.shape[1]):
            C[i, : i + 1] += alpha * A[i, k] * A[: i + 1, k]


def go_fast(a):
    trace = 0.0
    for i in range(a.shape[0]):
        trace += np.tanh(a[i, i])
    return a + trace


def softmax(x):
    tmp_max = np.max(x, axis=-1, keepdims=True)
    tmp_out = np.exp(x - tmp_max)
    tmp_sum = np.sum(tmp_out, axis=-1, keepdims=True)
    return tmp_out / tmp_sum


def doitgen(NR, NQ, NP, A, C4):
    for r in range(NR):
        A[r, :, :] = np.reshape(np.reshape(A[r], (NQ, 1, NP)) @ C4, (NQ, NP))


def gramschmidt_like(A):
    m, n = A.shape
    Q = np.zeros_like(A)
    R = np.zeros((n, n), dtype=A.dtype)
    for k in range(n):
        nrm = np.dot(A[:, k], A[:, k])
        R[k, k] = np.sqrt(nrm)
        Q[:, k] = A[:, k] / R[k, k]
        for j in range(k + 1, n):
            R[k, j] = np.dot(Q[:, k], A[:, j])
            A[:, j] -= Q[:, k] * R[k, j]
    return Q, R


def conv_like(x, w):
    out = np.empty((x.shape[0] - w.shape[0] + 1,))
    for i in range(out.shape[0]):
        out[i] = np.sum(x[i : i + w.shape[0]] * w)
    return out


def mandel_like(c, maxiter):
    z = np.zeros_like(c)
    n = np.zeros(c.shape, dtype=np.int64)
    for it in range(maxiter):
        mask = np.abs(z) < 2
        z = np.where(mask, z * z + c, z)
        n[mask] += 1
    return n


def _cases():
    rng = np.random.default_rng(0)
    N = 8
    cases = [
        (gesummv, (1.5, 1.2, rng.random((N, N)), rng.random((N, N)), rng.random(N))),
        (atax, (rng.random((N, N + 2)), rng.random(N + 2))),
        (bicg, (rng.random((N, N + 1)), rng.random(N + 1), rng.random(N))),
        (mvt, (rng.random(N), rng.random(N), rng.random(N), rng.random(N), rng.random((N, N)))),
        (jacobi_1d, (5, rng.random(20), rng.random(20))),
        (heat_3d, (3, rng.random((6, 6, 6)), rng.random((6, 6, 6)))),
        (syrk, (1.5, 1.2, rng.random((5, 5)), rng.random((5, 4)))),
        (go_fast, (rng.random((6, 6)),)),
        (softmax, (rng.random((4, 7)),)),
        (doitgen, (3, 4, 5, rng.random((3, 4, 5)), rng.random((5, 5)))),
        (gramschmidt_like, (rng.random((6, 4)),)),
        (conv_like, (rng.random(10), rng.random(3))),
        (mandel_like, (rng.random((4, 4)) * 2 - 1, 5)),
    ]
    return cases


CASES = _cases()


@pytest.mark.parametrize("fn, args", CASES, ids=[fn.__name__ for fn, _ in CASES])
def test_published_kernel_runs_unchanged(fn, args):
    same_as_numpy(fn, *args, rtol=1e-10, atol=1e-12)
