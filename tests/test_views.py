"""Views and shape functions: transpose, swapaxes, moveaxis, reshape, expand_dims, squeeze,
broadcast_to, basic indexing; astype; zeros_like/ones_like/full_like.

A view is tested returned directly (the result must be a fresh C array, not an alias) and
feeding arithmetic (so it is inlined into a loop as an index map).
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import SUPPORTED_DTYPES, check, random_array, with_layout

# name -> function of one (2, 3, 4) array
VIEWS = {
    "T": lambda x: x.T,
    "transpose()": lambda x: x.transpose(),
    "transpose(1,0,2)": lambda x: x.transpose(1, 0, 2),
    "transpose((2,0,1))": lambda x: x.transpose((2, 0, 1)),
    "np.transpose axes": lambda x: np.transpose(x, (0, 2, 1)),
    "np.transpose negative axes": lambda x: np.transpose(x, (-1, 0, 1)),
    "swapaxes": lambda x: x.swapaxes(0, 2),
    "np.swapaxes neg": lambda x: np.swapaxes(x, -1, 1),
    "moveaxis": lambda x: np.moveaxis(x, 0, -1),
    "moveaxis list": lambda x: np.moveaxis(x, [0, 1], [-1, -2]),
    "moveaxis same": lambda x: np.moveaxis(x, 1, 1),
    "reshape": lambda x: x.reshape(6, 4),
    "reshape tuple": lambda x: x.reshape((4, 6)),
    "reshape -1": lambda x: x.reshape(-1, 2),
    "reshape split and merge": lambda x: x.reshape(3, 8),
    "reshape add ones": lambda x: x.reshape(1, 2, 1, 12, 1),
    "np.reshape": lambda x: np.reshape(x, (24,)),
    "np.reshape shape=": lambda x: np.reshape(x, shape=(2, 12)),
    "ravel": lambda x: x.ravel(),
    "np.ravel": lambda x: np.ravel(x),
    "flatten": lambda x: x.flatten(),
    "reshape of transpose": lambda x: x.T.reshape(12, 2),
    "transpose of reshape": lambda x: x.reshape(6, 4).T,
    "expand_dims": lambda x: np.expand_dims(x, 1),
    "expand_dims neg": lambda x: np.expand_dims(x, -1),
    "expand_dims tuple": lambda x: np.expand_dims(x, (0, 4)),
    "squeeze after expand": lambda x: np.squeeze(np.expand_dims(x, (0, 2))),
    "squeeze axis": lambda x: np.expand_dims(x, 0).squeeze(0),
    "broadcast_to": lambda x: np.broadcast_to(x, (5, 2, 3, 4)),
    "broadcast_to size-1": lambda x: np.broadcast_to(x[:, :1], (2, 3, 4)),
    "slice": lambda x: x[1:, 1:3],
    "slice step": lambda x: x[:, ::2, 1::2],
    "slice negative step": lambda x: x[::-1, ::-2],
    "slice negative bounds": lambda x: x[-1:, -3:-1, -1:0:-1],
    "slice out of range": lambda x: x[0:100, -100:2],
    "slice empty": lambda x: x[:, 2:1],
    "int index": lambda x: x[1],
    "negative int index": lambda x: x[-1, -2],
    "int index all": lambda x: x[1, 2, 3],
    "None": lambda x: x[None],
    "None middle": lambda x: x[:, None, 1:, None],
    "Ellipsis": lambda x: x[..., 1],
    "Ellipsis middle": lambda x: x[0, ..., ::-1],
    "Ellipsis and None": lambda x: x[..., None],
    "np.int64 index": lambda x: x[np.int64(1), np.int32(-1)],
    "slice of slice": lambda x: x[:, ::-1][:, 1:][::-1],
    "copy": lambda x: x.copy(),
    "np.copy": lambda x: np.copy(x),
    "identity": lambda x: x,
    "positive": lambda x: +x,
}

VIEW_CASES = [pytest.param(name, id=name) for name in VIEWS]


@pytest.mark.parametrize("name", VIEW_CASES)
@pytest.mark.parametrize("layout", ["c", "transposed", "reversed"])
def test_view_returned(name, layout, rng):
    x = with_layout(rng, (2, 3, 4), "float32", layout)
    check(VIEWS[name], x)


@pytest.mark.parametrize("name", VIEW_CASES)
def test_view_in_arithmetic(name, rng):
    x = random_array(rng, (2, 3, 4), "float64")
    fn = VIEWS[name]
    check(lambda a: fn(a) * 2 + 1, x)
    check(lambda a: fn(a).sum(), x)


@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES)
def test_views_of_each_dtype(dtype, rng):
    x = random_array(rng, (4, 17), dtype)
    check(lambda a: (a.T, a[::-1, 3:], a.reshape(17, 4), a[None, 2]), x)


def test_view_combined_with_its_source(rng):
    """x + x.T and friends read one buffer through two index maps."""
    x = random_array(rng, (17, 17), "float32")
    check(lambda a: a + a.T, x)
    check(lambda a: a[::-1] * a, x)
    check(lambda a: a[1:] - a[:-1], x)
    check(lambda a: a.reshape(17 * 17)[::2] + 1, x)


def test_reshape_of_non_contiguous_input(rng):
    x = with_layout(rng, (6, 8), "float32", "transposed")
    check(lambda a: a.reshape(4, 12), x)
    check(lambda a: a.reshape(-1), x)
    y = with_layout(rng, (6, 8), "int64", "stepped")
    check(lambda a: a.reshape(2, 3, 2, 4), y)
    z = with_layout(rng, (6, 8), "float64", "broadcast")
    check(lambda a: a.reshape(48), z)


def test_static_attributes(rng):
    x = random_array(rng, (3, 5), "int32")
    check(lambda a: a * a.itemsize + a.nbytes + a.size + a.ndim + len(a) + a.shape[1], x)


def test_zero_size_views(rng):
    x = random_array(rng, (0, 3), "float32")
    check(lambda a: (a.T, a.reshape(3, 0), a[None], a * 2, a[:, ::-1]), x)


def test_zero_dim_views():
    x = np.array(3.5, np.float64)
    check(lambda a: (a.reshape(1, 1), a[None], a[...], a.T, np.broadcast_to(a, (2, 3))), x)


ASTYPE_CASES = [(src, dst) for src in SUPPORTED_DTYPES for dst in SUPPORTED_DTYPES]


@pytest.mark.parametrize("src, dst", ASTYPE_CASES, ids=[f"{s}->{d}" for s, d in ASTYPE_CASES])
def test_astype(src, dst, rng):
    # floats in a range every integer dtype holds (out-of-range casts are unspecified in NumPy)
    x = random_array(rng, (33,), src)
    if src != "bool":
        x = (x * 50).astype(src)
        x[:3] = [0, -0.5, 2.75]
    assert x.dtype == np.dtype(src)
    check(lambda a: a.astype(dst), x)
    check(lambda a: a.astype(dst) * 1 if dst != "bool" else a.astype(dst), x)


def test_astype_variants(rng):
    x = random_array(rng, (7, 5), "float64")
    check(lambda a: a.astype(np.float32) + np.float32(1), x)
    check(lambda a: a.astype("int32"), x)
    check(lambda a: np.astype(a, np.int64), x)
    check(lambda a: a.astype(np.dtype("bool")), x)
    check(lambda a: a.T.astype(np.float32), x)


def test_astype_int64_to_float_rounding():
    big = np.array([2**53 + 1, -(2**60) - 1, 2**62 + 12345, 3], np.int64)
    check(lambda a: (a.astype(np.float64), a.astype(np.float32)), big)


FILLED = {
    "zeros_like": lambda x: np.zeros_like(x),
    "ones_like": lambda x: np.ones_like(x),
    "full_like": lambda x: np.full_like(x, 7),
    "full_like float fill int array": lambda x: np.full_like(x, 2.5),
    "zeros_like dtype": lambda x: np.zeros_like(x, dtype=np.float32),
    "ones_like dtype": lambda x: np.ones_like(x, dtype=bool),
    "full_like dtype": lambda x: np.full_like(x, -3, dtype=np.int64),
    "full_like positional dtype": lambda x: np.full_like(x, 1.5, np.float64),
    "zeros_like of view": lambda x: np.zeros_like(x.T[1:]),
    "zeros_like plus": lambda x: np.zeros_like(x) + x,
    "ones_like times": lambda x: np.ones_like(x) * 3,
    "full_like shape": lambda x: np.full_like(x, 7, shape=(4, 2)),
    "ones_like int shape": lambda x: np.ones_like(x, shape=5),
    "zeros_like all positional": lambda x: np.zeros_like(x, np.int32, "C", True, (3,)),
    "full_like fill_value=": lambda x: np.full_like(x, fill_value=-2),
    "full_like traced fill": lambda x: np.full_like(x, x[0]),  # broadcasts, like NumPy
    "full_like traced 0-d fill": lambda x: np.full_like(x, x.max(), dtype=np.float64),
    "empty_like shape only": lambda x: np.empty_like(x).shape[0] * np.ones_like(x),
}


@pytest.mark.parametrize("name", list(FILLED))
@pytest.mark.parametrize("dtype", ["float32", "int32", "bool"])
def test_filled_like(name, dtype, rng):
    check(FILLED[name], random_array(rng, (3, 17), dtype))
