"""Contractions: matmul (batched, broadcast batch, 1-D operands), dot, tensordot, einsum
(explicit/implicit output, repeated letters, diagonal, trace, ellipsis, 3 operands) and
``jitune.einsum``."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import check, random_array, with_layout

import jitune

MATMUL_SHAPES = [
    ((3, 4), (4, 5)),
    ((1, 1), (1, 1)),
    ((7, 17), (17, 33)),
    ((16, 16), (16, 16)),
    ((33, 130), (130, 17)),
    ((5, 1), (1, 7)),  # outer product through a length-1 contraction
    ((130, 3), (3, 2)),
    ((4,), (4, 5)),  # 1-D left operand: prepended axis dropped
    ((4, 5), (5,)),  # 1-D right operand: appended axis dropped
    ((17,), (17,)),  # inner product: 0-d result
    ((2, 3, 4), (2, 4, 5)),  # batched
    ((2, 3, 4), (4, 5)),  # batch on one side
    ((3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (5, 4, 6)),  # broadcast batch axes
    ((1, 3, 4), (7, 4, 2)),
    ((2, 3, 4), (4,)),
    ((4,), (2, 4, 5)),
    ((0, 4), (4, 5)),  # empty rows
    ((3, 0), (0, 5)),  # empty contraction: zeros
]


@pytest.mark.parametrize("a_shape, b_shape", MATMUL_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_matmul(a_shape, b_shape, dtype, rng):
    a = random_array(rng, a_shape, dtype)
    b = random_array(rng, b_shape, dtype)
    check(lambda x, y: x @ y, a, b)
    check(np.matmul, a, b)


@pytest.mark.parametrize(
    "a_dtype, b_dtype",
    [
        ("float32", "float64"),
        ("int32", "float32"),
        ("int64", "int32"),
        ("bool", "bool"),
        ("bool", "float32"),
        ("int32", "int32"),
        ("int64", "int64"),
    ],
)
def test_matmul_dtypes(a_dtype, b_dtype, rng):
    """Result dtype is NumPy's promotion of the operands (bool @ bool is bool)."""
    a = random_array(rng, (7, 17), a_dtype)
    b = random_array(rng, (17, 5), b_dtype)
    check(lambda x, y: x @ y, a, b)


@pytest.mark.parametrize("a_layout", ["c", "transposed", "stepped", "reversed", "broadcast"])
@pytest.mark.parametrize("b_layout", ["c", "transposed", "reversed"])
def test_matmul_layouts(a_layout, b_layout, rng):
    a = with_layout(rng, (17, 33), "float32", a_layout)
    b = with_layout(rng, (33, 16), "float32", b_layout)
    check(lambda x, y: x @ y, a, b)


def test_matmul_of_views_inside_the_kernel(rng):
    a = random_array(rng, (16, 33), "float64")
    b = random_array(rng, (16, 33), "float64")
    check(lambda x, y: x @ y.T, a, b)
    check(lambda x, y: x.T @ y, a, b)
    check(lambda x, y: x[::2, ::3] @ y[::-1, ::3].T, a, b)


def test_matmul_with_epilogue_and_prologue(rng):
    x = random_array(rng, (33, 17), "float32")
    w = random_array(rng, (17, 130), "float32")
    b = random_array(rng, (130,), "float32")
    check(lambda x, w, b: np.maximum(x @ w + b, 0), x, w, b)
    check(lambda x, w, b: np.tanh((2 * x) @ np.exp(w) * 0.5) - b, x, w, b)
    check(lambda x, w: (x @ w).sum(axis=1), x, w)  # reduction of a contraction
    check(lambda x, w: (x @ w, x @ w + 1), x, w)  # a contraction read twice


def test_chained_matmuls(rng):
    a = random_array(rng, (7, 16), "float64")
    b = random_array(rng, (16, 17), "float64")
    c = random_array(rng, (17, 3), "float64")
    check(lambda x, y, z: (x @ y) @ z, a, b, c)
    check(lambda x, y, z: np.maximum(x @ y, 0) @ z, a, b, c)


DOT_SHAPES = [
    ((4,), (4,)),
    ((3, 4), (4,)),
    ((4,), (4, 5)),
    ((3, 4), (4, 5)),
    ((2, 3, 4), (4,)),
    ((2, 3, 4), (4, 5)),
    ((2, 3, 4), (6, 4, 5)),  # N-D dot: sum over last of a and second-to-last of b
    ((3, 4), (2, 4, 5)),
    ((), (3, 4)),  # scalar operands multiply
    ((3, 4), ()),
]


@pytest.mark.parametrize("a_shape, b_shape", DOT_SHAPES, ids=str)
def test_dot(a_shape, b_shape, rng):
    a = random_array(rng, a_shape, "float32")
    b = random_array(rng, b_shape, "float32")
    check(np.dot, a, b)
    if a_shape:
        check(lambda x, y: x.dot(y), a, b)


TENSORDOT_CASES = [
    ((3, 4, 5), (4, 5, 6), 2),
    ((3, 4), (4, 5), 1),
    ((3, 4), (5, 6), 0),  # outer product
    ((3, 4, 5), (5, 4, 2), ([1, 2], [1, 0])),
    ((2, 7), (3, 2), ([0], [1])),
    ((4, 3), (4, 3), ([0, 1], [0, 1])),
    ((3, 4, 5), (5,), ([-1], [0])),
]


@pytest.mark.parametrize("a_shape, b_shape, axes", TENSORDOT_CASES, ids=str)
def test_tensordot(a_shape, b_shape, axes, rng):
    a = random_array(rng, a_shape, "float64")
    b = random_array(rng, b_shape, "float64")
    check(lambda x, y: np.tensordot(x, y, axes=axes), a, b)


EINSUM_CASES = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk", [(3, 4), (4, 5)]),  # implicit output: sorted letters appearing once
    ("ij,kj", [(3, 4), (5, 4)]),
    ("ba,ca", [(3, 4), (5, 4)]),  # implicit output is alphabetical: "bc"
    ("ij->ji", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("ij->i", [(3, 4)]),
    ("ij", [(3, 4)]),
    ("ji", [(3, 4)]),  # implicit transpose
    ("ii", [(5, 5)]),  # trace
    ("ii->i", [(5, 5)]),  # diagonal
    ("iij->ij", [(3, 3, 4)]),
    ("iii->i", [(3, 3, 3)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]),  # elementwise product
    ("ij,ij->", [(3, 4), (3, 4)]),
    ("i,i", [(17,), (17,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,j", [(3,), (4,)]),
    ("ij,j->i", [(3, 4), (4,)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bij,bjk->bki", [(2, 3, 4), (2, 4, 5)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 5, 4), (2, 3, 6, 4)]),  # attention scores
    ("ij,ij,ij->i", [(3, 4), (3, 4), (3, 4)]),
    ("ij,jk,kl->il", [(3, 4), (4, 5), (5, 6)]),
    ("ij,jk,kl", [(3, 4), (4, 5), (5, 6)]),
    ("bi,bij,bj->b", [(2, 3), (2, 3, 4), (2, 4)]),
    ("i,i,i->", [(7,), (7,), (7,)]),
    ("ab,cd,ef->abcdef", [(2, 1), (1, 3), (2, 2)]),
    ("...ij,...jk->...ik", [(2, 3, 4, 5), (3, 5, 6)]),  # broadcast batch under ellipsis
    ("...ij,jk", [(2, 3, 4), (4, 5)]),
    ("i...,i...->...", [(4, 3, 5), (4, 3, 5)]),
    ("...i,...i", [(2, 3), (3,)]),
    ("...->...", [(2, 3)]),
    ("...", [(2, 3)]),
    ("...ii->...i", [(2, 4, 4)]),
    ("ij,jk->ik", [(1, 4), (4, 5)]),
    ("ij,jk->ik", [(3, 1), (4, 5)]),  # extent-1 'j' broadcasts against 4
    ("ij,ij->i", [(1, 4), (3, 4)]),
    (" ij , jk -> ik ", [(3, 4), (4, 5)]),  # spaces are ignored
    ("ij,jk->ik", [(0, 4), (4, 5)]),
    ("ij,jk->ik", [(3, 0), (0, 5)]),
]


@pytest.mark.parametrize("spec, shapes", EINSUM_CASES, ids=[c[0] for c in EINSUM_CASES])
@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_einsum(spec, shapes, dtype, rng):
    operands = [random_array(rng, shape, dtype) for shape in shapes]
    check(lambda *xs: np.einsum(spec, *xs), *operands)


@pytest.mark.parametrize("spec, shapes", EINSUM_CASES[:20], ids=[c[0] for c in EINSUM_CASES[:20]])
def test_jitune_einsum(spec, shapes, rng):
    operands = [random_array(rng, shape, "float64") for shape in shapes]
    check(lambda *xs: jitune.einsum(spec, *xs), *operands)
    # outside a kernel, jitune.einsum is np.einsum
    np.testing.assert_array_equal(jitune.einsum(spec, *operands), np.einsum(spec, *operands))


@pytest.mark.parametrize("spec", ["i...->i", "...i->i", "i...->", "...->"])
def test_einsum_sums_ellipsis_axes_left_out_of_the_output(spec, rng):
    """NumPy's C einsum rejects these; its optimized path (and jitune) sums the axes."""
    x = random_array(rng, (3, 4, 5), "float32")
    check(lambda a: np.einsum(spec, a, optimize=True), x)


def test_einsum_mixed_dtypes_and_layouts(rng):
    a = with_layout(rng, (5, 7), "float32", "transposed")
    b = with_layout(rng, (7, 3), "int32", "reversed")
    c = with_layout(rng, (3,), "bool", "stepped")
    check(lambda x, y, z: np.einsum("ij,jk,k->i", x, y, z), a, b, c)  # -> float64


def test_einsum_inside_larger_expression(rng):
    q = random_array(rng, (2, 5, 4), "float32")
    k = random_array(rng, (2, 6, 4), "float32")
    v = random_array(rng, (2, 6, 3), "float32")

    def attention(q, k, v):
        s = np.einsum("bqd,bkd->bqk", q, k) * 0.5
        p = np.exp(s - s.max(axis=-1, keepdims=True))
        p = p / p.sum(axis=-1, keepdims=True)
        return np.einsum("bqk,bkd->bqd", p, v)

    check(attention, q, k, v)


@pytest.mark.parametrize("spec", ["i...->i", "...ij,...jk->ik"])
def test_einsum_unlisted_ellipsis_is_an_error_like_numpy(spec, rng):
    """Without optimize, NumPy refuses an output that drops the '...' axes; so does jitune."""
    operands = [random_array(rng, (2, 3, 3), "float64")] * spec.split("->")[0].count(",")
    operands.append(random_array(rng, (2, 3, 3), "float64"))
    with pytest.raises(ValueError):
        np.einsum(spec, *operands)
    kernel = jitune.kernel(lambda *xs: np.einsum(spec, *xs))
    with pytest.raises(jitune.ShapeError, match="einsum"):
        kernel(*operands)
