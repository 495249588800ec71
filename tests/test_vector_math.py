"""Vectorized float32 exp, log, tanh, sin, cos: error in ulp against float64 references over
the float32 range, special values, and no scalar libm call in the vector loop."""

from __future__ import annotations

import numpy as np
import pytest

import jitune

F32 = np.float32


def _ulp_error(actual: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """|actual - exact| in units of the float32 spacing at the exact value."""
    exact32 = exact.astype(F32)
    spacing = np.spacing(np.abs(exact32)).astype(np.float64)
    spacing = np.maximum(spacing, np.finfo(F32).smallest_subnormal)
    return np.abs(actual.astype(np.float64) - exact) / spacing


def _grid(low: float, high: float, count: int = 200_003) -> np.ndarray:
    """Values spread over [low, high]: linear near zero, logarithmic beyond."""
    linear = np.linspace(low, high, count)
    magnitudes = np.geomspace(1e-38, max(abs(low), abs(high)), count // 2)
    values = np.concatenate([linear, magnitudes, -magnitudes])
    return values[(values >= low) & (values <= high)].astype(F32)


SPECIALS = np.array(
    [
        0.0,
        -0.0,
        np.inf,
        -np.inf,
        np.nan,
        1e-45,
        -1e-45,
        1.17549435e-38,
        3.4028235e38,
        -3.4028235e38,
        1.0,
        -1.0,
    ],
    dtype=F32,
)

CASES = {
    "exp": (np.exp, _grid(-104.0, 89.0), 3.0),
    "log": (
        np.log,
        np.concatenate([_grid(0.0, 3.4e38), np.geomspace(1e-45, 1e-37, 1001).astype(F32)]),
        3.0,
    ),
    "tanh": (np.tanh, _grid(-20.0, 20.0), 3.0),
    "sin": (np.sin, _grid(-2048.0, 2048.0), 3.0),
    "cos": (np.cos, _grid(-2048.0, 2048.0), 3.0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_error_in_ulp_over_the_range(name):
    function, values, limit = CASES[name]
    kernel = jitune.kernel(function)
    actual = kernel(values)
    with np.errstate(all="ignore"):
        exact = function(values.astype(np.float64))
        expected32 = function(values)
    finite = np.isfinite(exact) & (np.abs(exact) < 3.4e38)
    error = _ulp_error(actual[finite], exact[finite])
    worst = int(np.argmax(error))
    assert error.max() <= limit, (
        f"{name}: {error.max():.2f} ulp at x={values[finite][worst]!r}: "
        f"{actual[finite][worst]!r} vs {exact[finite][worst]!r}"
    )
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected32))
    np.testing.assert_array_equal(np.isinf(actual), np.isinf(expected32))


@pytest.mark.parametrize("name", sorted(CASES))
def test_special_values_match_numpy(name):
    function = CASES[name][0]
    values = np.tile(SPECIALS, 3)  # whole vectors and a scalar tail
    with np.errstate(all="ignore"):
        expected = function(values)
    actual = jitune.kernel(function)(values)
    np.testing.assert_allclose(actual, expected, rtol=3e-7, atol=0, equal_nan=True)
    zeros = expected == 0
    np.testing.assert_array_equal(np.signbit(actual[zeros]), np.signbit(expected[zeros]))


@pytest.mark.parametrize("name", ["sin", "cos"])
def test_large_arguments_take_the_exact_path(name):
    function = CASES[name][0]
    values = np.array([1e4, -3e5, 1e10, 3.0e38, 2049.0, 2.0, 1e20, -7.5e6] * 3, dtype=F32)
    actual = jitune.kernel(function)(values)
    exact = function(values.astype(np.float64))
    assert _ulp_error(actual, exact).max() <= 3.0


@pytest.mark.parametrize("name", sorted(CASES))
def test_vector_loop_calls_no_libm(name):
    function = CASES[name][0]
    source = jitune.kernel(function).lower(jitune.spec((4096,), "float32")).source
    vector_loop = source.split("<16 x float>", 1)[1] if "<16 x float>" in source else source
    for libm in ("@expf", "@logf", "@tanhf"):
        assert libm not in vector_loop
    if name in ("sin", "cos"):  # only behind the branch for |x| > 2048
        assert "llvm.vector.reduce.or" in source or "<16 x" not in source


def test_half_and_negative_integer_powers():
    x = np.concatenate([_grid(-100.0, 100.0, 2001), SPECIALS]).astype(F32)
    for exponent in (0.5, -1.0, 2, 3, 4):
        with np.errstate(all="ignore"):
            expected = x ** F32(exponent) if isinstance(exponent, float) else x**exponent
        actual = jitune.kernel(lambda v, e=exponent: v**e)(x)
        # products of subnormals round twice: one subnormal step apart at most
        np.testing.assert_allclose(actual, expected, rtol=4e-7, atol=3e-45, equal_nan=True)


@pytest.mark.parametrize("name", ["exp", "tanh"])
def test_avx512_scaling_gives_the_portable_forms_values(name):
    """exp (and tanh through it) scale by 2**n with vscalefps where AVX-512 is present: the
    results must be bit for bit those of the portable shift-and-multiply form."""
    from jitune.codegen import llvm as llvm_codegen
    from jitune.runtime import cpu

    features = cpu.host_target().enabled_features()
    if "avx512f" not in features:
        pytest.skip("the host CPU has no AVX-512")
    function, values, _ = CASES[name]
    values = np.concatenate(
        [values, np.tile(SPECIALS, 3), np.array([88.7, 88.73, -87.4, -103.9], F32)]
    )
    loops = jitune.kernel(function).lower(values).loops
    results = []
    for enabled in (frozenset(), features):
        source = llvm_codegen.render(loops, cpu.data_offset(), enabled)
        assert ("scalef" in source) == bool(enabled)
        program = cpu.CpuProgram(cpu.load_object(cpu.compile_object(source)), len(loops.buffers))
        out = np.empty_like(values)
        program.launch(values, out)
        results.append(out)
    np.testing.assert_array_equal(results[0], results[1])
