"""Dispatch: one compilation per call signature, fresh outputs, result structures, scalar and
0-d arguments, the decorator forms and ``lower`` without data."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from helpers import assert_close, check, random_array

import jitune


def test_same_signature_compiles_once(rng):
    @jitune.kernel
    def scale(x, y):
        return x * 2 + y

    x, y = random_array(rng, (7, 17), "float32"), random_array(rng, (17,), "float32")
    for _ in range(10):
        check(scale, x, y)
    assert scale.compile_count == 1
    # new arrays with the same shape, dtype and strides reuse the compiled code
    for _ in range(3):
        scale(random_array(rng, (7, 17), "float32"), random_array(rng, (17,), "float32"))
    assert scale.compile_count == 1


def test_each_new_signature_compiles_once(rng):
    @jitune.kernel
    def double(x):
        return x + x

    base = random_array(rng, (6, 8), "float32")
    variants = [
        base,
        random_array(rng, (6, 9), "float32"),  # shape
        random_array(rng, (6,), "float32"),  # rank
        base.astype(np.float64),  # dtype
        base.astype(np.int32),
        np.asfortranarray(base),  # strides
        base[::2],  # strides and shape
        random_array(rng, (12, 8), "float32")[::2],  # base's shape, other strides
        base[::-1],  # negative strides
        np.broadcast_to(base[:1], (6, 8)),  # zero stride
    ]
    for count, x in enumerate(variants, start=1):
        check(double, x, kernel=double)
        check(double, x, kernel=double)
        assert double.compile_count == count, f"variant {count - 1} ({x.shape}, {x.strides})"
    # going back to an earlier signature compiles nothing
    double(base.copy())
    double(np.asfortranarray(base).copy(order="A"))
    assert double.compile_count == len(variants)


def test_scalar_kinds_are_distinct_signatures():
    @jitune.kernel
    def add(x, s):
        return x + s

    x = np.arange(4, dtype=np.float32)
    results = [
        check(add, x, 2),  # Python int: weak
        check(add, x, 3),  # same signature as above
        check(add, x, 2.5),  # Python float: weak
        check(add, x, True),  # Python bool
        check(add, x, np.float64(2.5)),  # NumPy scalar: strong (-> float64)
        check(add, x, np.array(2.5)),  # 0-d array: strong too
    ]
    assert add.compile_count == 5
    assert [r.dtype for r in results] == [np.float32] * 4 + [np.float64] * 2


def test_scalar_values_are_not_baked_into_the_code():
    @jitune.kernel
    def add(x, s):
        return x + s

    x = np.arange(4, dtype=np.int64)
    for s in range(-3, 4):
        check(add, x, s)
    for s in (0.5, -1.25, 1e10):
        check(add, x, s)
    assert add.compile_count == 2


def test_outputs_are_fresh_arrays(rng):
    @jitune.kernel
    def inc(x):
        return x + 1

    x = random_array(rng, (5, 3), "float64")
    first = check(inc, x)
    second = check(inc, x)
    assert first is not second
    assert not np.shares_memory(first, second)
    assert not np.shares_memory(first, x)
    assert first.flags.c_contiguous and first.flags.writeable and first.flags.owndata
    first[...] = -1  # writing one result changes neither the input nor the other result
    assert_close(second, x + 1)
    assert_close(inc(x), x + 1)


@pytest.mark.parametrize(
    "fn",
    [
        pytest.param(lambda x: x, id="identity"),
        pytest.param(lambda x: x.T, id="transpose"),
        pytest.param(lambda x: x[::2], id="slice"),
        pytest.param(lambda x: x.reshape(-1), id="reshape"),
        pytest.param(lambda x: (x, x), id="twice"),
    ],
)
def test_returning_an_input_returns_a_copy(fn, rng):
    x = random_array(rng, (4, 6), "int32")
    kernel = jitune.kernel(fn)
    out = check(fn, x, kernel=kernel)
    outs = out if isinstance(out, tuple) else (out,)
    for o in outs:
        assert not np.shares_memory(o, x)
        o[...] = 0
    assert not np.all(x == 0)


def test_tuple_and_list_outputs(rng):
    x = random_array(rng, (3, 5), "float32")

    @jitune.kernel
    def as_tuple(x):
        return x + 1, x.sum(axis=1), x > 0

    @jitune.kernel
    def as_list(x):
        return [x * 2, x.max()]

    @jitune.kernel
    def single_tuple(x):
        return (x - 1,)

    out = check(as_tuple.fn, x, kernel=as_tuple)
    assert type(out) is tuple and len(out) == 3
    assert [o.dtype for o in out] == [np.float32, np.float32, np.bool_]
    out = check(as_list.fn, x, kernel=as_list)
    assert type(out) is list and len(out) == 2
    out = check(single_tuple.fn, x, kernel=single_tuple)
    assert type(out) is tuple and len(out) == 1


def test_scalar_results_are_zero_dim_arrays(rng):
    x = random_array(rng, (17,), "float64")
    out = check(lambda a: a.sum(), x)
    assert isinstance(out, np.ndarray) and out.shape == ()
    out = check(lambda a: (a.max(), a.argmax()), x)
    assert all(isinstance(o, np.ndarray) and o.shape == () for o in out)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "bool"])
def test_zero_dim_array_arguments(dtype, rng):
    x0 = np.asarray(random_array(rng, (), dtype))
    v = random_array(rng, (7,), dtype)
    out = check(lambda a, b: np.maximum(a, b), x0, v)
    assert out.shape == (7,)
    out = check(lambda a: np.minimum(a, a), x0)
    assert out.shape == ()


@pytest.mark.parametrize(
    "scalar",
    [np.float32(1.5), np.float64(-2.0), np.int32(3), np.int64(-4), np.bool_(True), 7, -2.5, False],
)
def test_scalar_arguments(scalar, rng):
    v = random_array(rng, (5, 3), "float32")
    check(lambda s, x: x * s - s, scalar, v)
    if isinstance(scalar, np.generic):  # (Python scalars alone would do Python arithmetic)
        check(lambda s: s * s, scalar)


def test_decorator_with_name(rng):
    @jitune.kernel(name="my_dense")
    def dense(x, w):
        return x @ w

    assert dense.name == "my_dense"
    assert "my_dense" in repr(dense)
    x, w = random_array(rng, (3, 4), "float64"), random_array(rng, (4, 2), "float64")
    check(dense.fn, x, w, kernel=dense)
    assert dense.compile_count == 1
    assert "1 compiled" in repr(dense)


def test_plain_decorator_uses_the_function_name():
    @jitune.kernel
    def some_function(x):
        return x

    assert some_function.name == "some_function"
    assert isinstance(some_function, jitune.Kernel)


def test_lower_with_spec_needs_no_data():
    @jitune.kernel
    def f(x):
        return np.exp(x).sum(axis=1)

    low = f.lower(jitune.spec((4, 5), "float32"))
    assert isinstance(low, jitune.Lowered)
    assert low.graph.inputs[0].shape == (4, 5)
    assert low.graph.outputs[0].shape == (4,)
    assert low.graph.outputs[0].dtype == np.float32
    text = str(low)
    for title in ("graph IR", "compute IR", "loop IR", "LLVM IR"):
        assert f"== {title}" in text
    assert str(low.graph) in text and str(low.compute) in text and str(low.loops) in text
    assert low.source in text
    assert "define" in low.source  # LLVM IR text


def test_lower_accepts_arrays_scalars_and_specs_alike(rng):
    @jitune.kernel
    def f(x, s):
        return x * s

    x = random_array(rng, (4, 5), "float32")
    from_data = f.lower(x, 2.0)
    from_spec = f.lower(jitune.spec((4, 5), np.float32), 2.0)
    assert from_data.source == from_spec.source
    assert str(from_data.compute) == str(from_spec.compute)
    spec_1d = jitune.spec(6)
    assert spec_1d.shape == (6,) and spec_1d.dtype == np.float64
    assert f.lower(spec_1d, 1).graph.outputs[0].dtype == np.float64


def test_lower_reflects_strides(rng):
    @jitune.kernel
    def f(x):
        return x + 1

    x = random_array(rng, (4, 6), "float32")
    assert "strides=(6, 1)" in str(f.lower(x).compute)
    assert "strides=(1, 4)" in str(f.lower(x.T.copy().T).compute)
    assert "strides=(-6, -1)" in str(f.lower(x[::-1, ::-1]).compute)


def test_concurrent_calls_from_threads(rng):
    @jitune.kernel
    def f(x):
        return np.tanh(x) * 2

    inputs = [random_array(rng, (64, 33), "float32") for _ in range(8)]
    expected = [np.tanh(x) * 2 for x in inputs]
    results: list = [None] * len(inputs)

    def work(k):
        for _ in range(20):
            results[k] = f(inputs[k])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        assert_close(got, want)
    for x in inputs[:2]:
        check(f, x)  # and the same kernel against the reference evaluator


# Regression: an MCJIT engine owns the target machine it is created with; a shared, cached
# one was freed with the first dropped kernel and the next compilation crashed the process.
# Run in a fresh interpreter so a crash fails this test instead of killing the test run.
def test_compiling_after_a_kernel_is_freed():
    script = textwrap.dedent(
        """
        import gc
        import numpy as np
        import jitune

        def once():
            jitune.kernel(lambda x: x + 1)(np.ones(3))

        once()
        gc.collect()
        assert (jitune.kernel(lambda x: x * 2)(np.ones(3)) == 2).all()
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]
