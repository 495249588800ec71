"""Random input values and memory layouts: special floats (nan, ±inf, ±0, subnormals, huge
and tiny magnitudes), integer extremes, and strided, negative-stride, transposed and
broadcast (stride 0) views."""

from __future__ import annotations

import numpy as np

from .program import Input

DTYPES = ("bool", "int32", "int64", "float32", "float64")  # README: "Dtypes"
SIZES = (0, 1, 1, 2, 2, 3, 3, 4, 5)  # small: 1,000 programs must fit in a CI step


def special_floats(dtype: np.dtype) -> np.ndarray:
    """Values where implementations tend to differ."""
    info = np.finfo(dtype)
    values = [
        np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5,
        info.smallest_subnormal, -info.smallest_subnormal, info.smallest_subnormal * 3,
        info.tiny, -info.tiny, info.max, -info.max, info.eps,
        1e30 if dtype == np.float32 else 1e300, 1e-30 if dtype == np.float32 else 1e-300,
        88.7, -103.9, 709.8, 1e4,
    ]  # fmt: skip
    return np.array(values, dtype)


def special_ints(dtype: np.dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.array([info.min, info.max, info.min + 1, info.max - 1, -1, 0, 1, 2, 31, 63], dtype)


def random_values(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Values of ``dtype``: ordinary ones with a random share of specials."""
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return rng.random(shape) < rng.choice([0.1, 0.5, 0.9])
    if dt.kind == "i":
        values = rng.integers(-20, 21, shape).astype(dt)
        specials = special_ints(dt)
    else:
        values = rng.uniform(-3, 3, shape).astype(dt)
        specials = special_floats(dt)
    share = rng.choice([0.0, 0.0, 0.1, 0.3])
    mask = rng.random(shape) < share
    values[mask] = rng.choice(specials, int(mask.sum()))
    return values


def random_shape(rng: np.random.Generator, max_ndim: int = 3) -> tuple[int, ...]:
    ndim = int(rng.choice([0, 1, 1, 2, 2, 2, 3][: max_ndim * 2 + 1]))
    return tuple(int(rng.choice(SIZES)) for _ in range(ndim))


def _layout(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[tuple[int, ...], str]:
    """(base shape, view expression) giving an array of ``shape``."""
    ndim = len(shape)
    choice = rng.choice(["c", "c", "c", "transposed", "stepped", "reversed", "broadcast"])
    if ndim == 0 or choice == "c":
        return shape, "base"
    if choice == "transposed":
        return shape[::-1], "base.T"
    if choice == "broadcast":
        return (1,) + shape[1:], f"np.broadcast_to(base, {shape})"
    steps = [int(rng.choice([1, 2, 3, -1, -2])) for _ in shape]
    if choice == "reversed":
        steps = [-abs(s) for s in steps]
    # a base axis of d * |step| elements viewed with that step (from the start for positive
    # steps, from the end for negative ones) has exactly d elements
    index = ", ".join(f"::{s}" for s in steps)
    base = tuple(d * abs(s) for d, s in zip(shape, steps))
    return base, f"base[{index}]"


def random_input(
    rng: np.random.Generator, name: str, shape: tuple[int, ...], dtype: str, scalars: bool = True
) -> Input:
    """An input of ``shape`` and ``dtype`` with a random layout; a 0-d one may be a NumPy or
    Python scalar (Python scalars promote weakly, so they are a dtype case of their own)."""
    if shape == () and scalars and rng.random() < 0.5:
        kind = "python" if rng.random() < 0.5 else "numpy"
        return Input(name, kind, dtype, random_values(rng, (), dtype))
    base_shape, view = _layout(rng, shape)
    return Input(name, "array", dtype, random_values(rng, base_shape, dtype), view)
