"""Shared test helpers: tolerances, array makers and the three-way comparison
(compiled kernel vs. the reference evaluator vs. plain NumPy).

Every numeric test goes through :func:`check`, which

1. compiles and runs the function with ``jitune.kernel``,
2. evaluates the traced graph with the NumPy reference evaluator
   (``jitune.runtime.interp.evaluate``),
3. runs the plain NumPy function,

and compares the compiled result against both with :func:`assert_close` (shape, then dtype,
then values). Float tolerances depend on the least precise float dtype anywhere in the
graph, on how many terms the graph's reductions add up, and on the magnitude of the
intermediate values (cancellation can only be resolved to the precision of the largest
value that took part).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import jitune
from jitune.ir.graph import Graph, GraphOp
from jitune.runtime.interp import evaluate

SUPPORTED_DTYPES = ("bool", "int32", "int64", "float32", "float64")
FLOAT_DTYPES = ("float32", "float64")
INT_DTYPES = ("int32", "int64")

# (rtol, atol per unit of magnitude and per reduced term)
_FLOAT_TOLERANCE = {
    np.dtype(np.float32): (1e-5, 1e-6),
    np.dtype(np.float64): (1e-12, 1e-13),
}


# -- tolerances ------------------------------------------------------------------------------


def tolerance(dtype: Any, reduce_len: int = 1, scale: Any = 1.0) -> tuple[float, Any]:
    """(rtol, atol) for results of ``dtype`` that summed ``reduce_len`` terms of magnitude
    up to ``scale`` (a number, or an array broadcastable to the result)."""
    dtype = np.dtype(dtype)
    if dtype not in _FLOAT_TOLERANCE:
        return 0.0, 0.0
    rtol, unit = _FLOAT_TOLERANCE[dtype]
    return rtol, unit * max(1, int(reduce_len)) * np.maximum(scale, 1.0)


def _finite_abs(value: np.ndarray) -> np.ndarray:
    value = np.asarray(value)
    if value.dtype.kind == "b":
        return value.astype(np.float64)
    magnitude = np.abs(value.astype(np.float64))
    return np.where(np.isfinite(magnitude), magnitude, 0.0)


def graph_tolerance(graph: Graph, args: Sequence[Any]) -> list[tuple[float, Any]]:
    """(rtol, atol) for each output of ``graph`` evaluated on ``args``.

    - precision: the least precise float dtype of any node (a float32 intermediate limits a
      float64 result); integer and bool graphs are compared exactly;
    - reduce_len: the number of terms every reduction and contraction adds, summed;
    - scale: per output element, the largest finite magnitude of any intermediate value at
      that element (nodes of another shape contribute their overall maximum).
    """
    nodes = graph.nodes()
    floats = [np.dtype(n.dtype) for n in nodes if np.dtype(n.dtype).kind == "f"]
    if not floats:
        return [(0.0, 0.0) for _ in graph.outputs]
    precision = min(floats, key=lambda d: d.itemsize)
    reduce_len = 0
    for node in nodes:
        if node.op is GraphOp.REDUCE:
            source = node.src[0].shape
            reduce_len += int(np.prod([source[a] for a in node.arg.axes], dtype=np.int64))
        elif node.op is GraphOp.CONTRACT:
            sizes: dict[str, int] = {}
            for letters, operand in zip(node.arg.inputs, node.src):
                for letter, extent in zip(letters, operand.shape):
                    sizes[letter] = max(sizes.get(letter, 1), extent)
            summed = [c for c in sizes if c not in node.arg.output]
            reduce_len += int(np.prod([sizes[c] for c in summed], dtype=np.int64))
    values = evaluate(Graph(graph.inputs, tuple(nodes)), args)
    result = []
    for out in graph.outputs:
        scale = np.zeros(out.shape)
        for value in values:
            magnitude = _finite_abs(value)
            if magnitude.size == 0:
                continue
            try:
                scale = np.maximum(scale, np.broadcast_to(magnitude, out.shape))
            except ValueError:
                scale = np.maximum(scale, magnitude.max())
        if np.dtype(out.dtype).kind != "f":
            result.append((0.0, 0.0))  # ints and bools: exact
        else:
            result.append(tolerance(precision, reduce_len, scale))
    return result


# -- comparison ------------------------------------------------------------------------------


def assert_close(
    actual: Any,
    expected: Any,
    *,
    reduce_len: int = 1,
    scale: Any = 1.0,
    rtol: float | None = None,
    atol: Any = None,
    what: str = "result",
) -> None:
    """Assert ``actual`` matches ``expected``: same shape, then same dtype, then values.

    Floats: NaN positions and signed infinities must match; finite values within
    ``atol + rtol * |expected|`` (defaults from :func:`tolerance`). Ints and bools: exact.
    """
    actual_arr, expected_arr = np.asarray(actual), np.asarray(expected)
    assert actual_arr.shape == expected_arr.shape, (
        f"{what}: shape {actual_arr.shape} != expected {expected_arr.shape}"
    )
    assert actual_arr.dtype == expected_arr.dtype, (
        f"{what}: dtype {actual_arr.dtype} != expected {expected_arr.dtype}"
    )
    if expected_arr.dtype.kind != "f":
        if not np.array_equal(actual_arr, expected_arr):
            bad = np.argwhere(actual_arr != expected_arr)
            first = tuple(bad[0]) if bad.size else ()
            raise AssertionError(
                f"{what}: {len(bad)} of {expected_arr.size} elements differ (exact dtype "
                f"{expected_arr.dtype}); first at {first}: {actual_arr[first]!r} != "
                f"{expected_arr[first]!r}"
            )
        return
    default_rtol, default_atol = tolerance(expected_arr.dtype, reduce_len, scale)
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    a_nan, e_nan = np.isnan(actual_arr), np.isnan(expected_arr)
    if not np.array_equal(a_nan, e_nan):
        where = tuple(np.argwhere(a_nan != e_nan)[0])
        raise AssertionError(
            f"{what}: NaN positions differ; first at {where}: {actual_arr[where]!r} vs "
            f"expected {expected_arr[where]!r}"
        )
    a_inf, e_inf = np.isinf(actual_arr), np.isinf(expected_arr)
    same_inf = np.array_equal(a_inf, e_inf) and np.array_equal(
        actual_arr[a_inf], expected_arr[e_inf]
    )
    if not same_inf:
        where = tuple(np.argwhere((a_inf != e_inf) | (a_inf & (actual_arr != expected_arr)))[0])
        raise AssertionError(
            f"{what}: infinities differ; first at {where}: {actual_arr[where]!r} vs "
            f"expected {expected_arr[where]!r}"
        )
    finite = ~(e_nan | e_inf)
    with np.errstate(all="ignore"):
        error = np.abs(actual_arr.astype(np.float64) - expected_arr.astype(np.float64))
        limit = np.broadcast_to(atol, expected_arr.shape) + rtol * np.abs(
            expected_arr.astype(np.float64)
        )
    bad = finite & ~(error <= limit)
    if bad.any():
        where = tuple(np.argwhere(bad)[0])
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {expected_arr.size} elements outside tolerance "
            f"(rtol={rtol:g}); first at {where}: {actual_arr[where]!r} vs expected "
            f"{expected_arr[where]!r} (|error| {error[where]:.3g} > limit {limit[where]:.3g})"
        )


def _as_list(value: Any) -> tuple[str, list[Any]]:
    if isinstance(value, tuple):
        return "tuple", list(value)
    if isinstance(value, list):
        return "list", list(value)
    return "single", [value]


def check(
    fn: Callable[..., Any],
    *args: Any,
    kernel: jitune.Kernel | None = None,
    reduce_len: int | None = None,
) -> Any:
    """Run ``fn`` compiled, in the reference evaluator and in NumPy; compare; return the
    compiled result. ``fn`` may be a ``jitune.Kernel`` (or pass ``kernel=``) to reuse it.

    Also checks that the inputs were not modified and that every compiled output is a
    fresh ndarray owning its data (not an input, not a view of one).
    """
    if isinstance(fn, jitune.Kernel):  # a kernel object: reuse its compiled signatures
        kernel, fn = fn, fn.fn
    compiled = kernel if kernel is not None else jitune.kernel(fn)
    before = [copy.deepcopy(a) for a in args]
    actual = compiled(*args)
    for position, (arg, saved) in enumerate(zip(args, before)):
        if isinstance(arg, np.ndarray):
            assert np.array_equal(arg, saved, equal_nan=True), f"input {position} was modified"

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice" and the like
        expected = fn(*args)
    graph = compiled.lower(*args).graph
    reference = evaluate(graph, args)
    tolerances = graph_tolerance(graph, args)

    structure, actual_items = _as_list(actual)
    expected_structure, expected_items = _as_list(expected)
    reference = reference[: len(expected_items)]  # after the results: hidden index checks
    assert structure == expected_structure, f"returned a {structure}, NumPy a {expected_structure}"
    assert len(actual_items) == len(expected_items) == len(reference)
    for position, (a, ref, exp, (rtol, atol)) in enumerate(
        zip(actual_items, reference, expected_items, tolerances)
    ):
        assert type(a) is np.ndarray, f"output {position} is a {type(a).__name__}, not ndarray"
        assert not any(np.shares_memory(a, arg) for arg in args if isinstance(arg, np.ndarray)), (
            f"output {position} shares memory with an input"
        )
        if reduce_len is not None:
            rtol, atol = tolerance(a.dtype, reduce_len)
        assert_close(a, ref, rtol=rtol, atol=atol, what=f"output {position} vs reference")
        assert_close(a, exp, rtol=rtol, atol=atol, what=f"output {position} vs NumPy")
    return actual


# -- inputs ----------------------------------------------------------------------------------


def random_array(
    rng: np.random.Generator, shape: Sequence[int], dtype: Any, low: float = -3.0, high: float = 3.0
) -> np.ndarray:
    """Random values of ``dtype``: floats uniform in [low, high), ints in [-20, 20], bools."""
    dtype = np.dtype(dtype)
    shape = tuple(shape)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        return rng.integers(-20, 21, shape).astype(dtype)
    return rng.uniform(low, high, shape).astype(dtype)


LAYOUTS = ("c", "transposed", "stepped", "reversed", "broadcast")


def with_layout(
    rng: np.random.Generator, shape: Sequence[int], dtype: Any, layout: str, **kw: Any
) -> np.ndarray:
    """An array of ``shape`` whose memory layout is ``layout``:

    - ``c``: C-contiguous
    - ``transposed``: the ``.T`` of a C-contiguous array (reversed strides)
    - ``stepped``: ``base[::2]`` along the first axis (and ``::3`` on the last for ndim >= 2)
    - ``reversed``: ``base[::-1, ..., ::-1]`` (negative strides)
    - ``broadcast``: ``np.broadcast_to`` of a size-1 first axis (stride 0)
    """
    shape = tuple(shape)
    ndim = len(shape)
    if ndim == 0 or layout == "c":
        return random_array(rng, shape, dtype, **kw)
    if layout == "transposed":
        return random_array(rng, shape[::-1], dtype, **kw).T
    if layout == "stepped":
        base_shape = (2 * shape[0],) + shape[1:-1] + ((3 * shape[-1],) if ndim >= 2 else ())
        index = (slice(None, None, 2),) + (slice(None),) * (ndim - 2)
        index += (slice(None, None, 3),) if ndim >= 2 else ()
        view = random_array(rng, base_shape, dtype, **kw)[index]
        assert view.shape == shape
        return view
    if layout == "reversed":
        return random_array(rng, shape, dtype, **kw)[(slice(None, None, -1),) * ndim]
    if layout == "broadcast":
        return np.broadcast_to(random_array(rng, (1,) + shape[1:], dtype, **kw), shape)
    raise ValueError(layout)


# -- functions that update their arguments ----------------------------------------------------


def _copies(args: Sequence[Any]) -> list[Any]:
    return [a.copy() if isinstance(a, np.ndarray) else a for a in args]


def same_as_numpy(fn: Any, *args: Any, rtol: float = 1e-12, atol: float = 0.0) -> list[Any]:
    """Run ``fn`` on copies of ``args`` with NumPy and with jitune; results and every
    argument's state afterwards must agree."""
    expected_args, actual_args = _copies(args), _copies(args)
    expected = fn(*expected_args)
    actual = jitune.kernel(fn)(*actual_args)
    if expected is None:
        assert actual is None
    else:
        expected_items = expected if isinstance(expected, tuple) else (expected,)
        actual_items = actual if isinstance(actual, tuple) else (actual,)
        assert len(actual_items) == len(expected_items)
        for got, want in zip(actual_items, expected_items):
            assert (
                np.shape(got) == np.shape(want) and np.asarray(got).dtype == np.asarray(want).dtype
            )
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    for position, (got, want) in enumerate(zip(actual_args, expected_args)):
        if isinstance(want, np.ndarray):
            assert got.dtype == want.dtype, position
            np.testing.assert_allclose(
                got, want, rtol=rtol, atol=atol, err_msg=f"argument {position}"
            )
    return actual_args


def jacobi(a, b, steps):
    """A 2-D Jacobi stencil with time steps, written as published (PolyBench's jacobi_2d):
    it updates both of its arguments in place and returns nothing."""
    for _ in range(steps):
        b[1:-1, 1:-1] = 0.2 * (
            a[1:-1, 1:-1] + a[1:-1, :-2] + a[1:-1, 2:] + a[2:, 1:-1] + a[:-2, 1:-1]
        )
        a[1:-1, 1:-1] = 0.2 * (
            b[1:-1, 1:-1] + b[1:-1, :-2] + b[1:-1, 2:] + b[2:, 1:-1] + b[:-2, 1:-1]
        )
