"""Compiled code outlives nothing it depends on: kernels can be created, dropped and rebuilt."""

import gc

import numpy as np
import pytest

import jitune


def test_many_kernels_created_and_dropped() -> None:
    # Regression: every MCJIT engine owns its target machine; a shared one was freed with the
    # first dropped kernel and the next compile crashed the process.
    x = np.arange(37, dtype=np.float32)
    for scale in range(6):
        kernel = jitune.kernel(lambda a, scale=scale: a * scale + 1)
        np.testing.assert_array_equal(kernel(x), x * scale + 1)
        del kernel
        gc.collect()


def test_lowered_assembly_after_dropped_kernels() -> None:
    kernel = jitune.kernel(lambda a: np.exp(a))
    gc.collect()
    assembly = kernel.lower(jitune.spec((64,), "float32")).assembly
    assert "jitune_entry" in assembly


def test_program_with_more_buffers_than_a_call_passes(monkeypatch) -> None:
    # Regression: an unrolled loop of hundreds of updates made an entry of 1,500 parameters,
    # and ctypes refused it ("too many arguments") as a plain ArgumentError. Past the limit
    # the arrays travel packed; a limit of 3 sends this kernel's five buffers that way.
    from jitune.codegen import llvm

    monkeypatch.setattr(llvm, "MAX_DIRECT_BUFFERS", 3)

    def f(a, b):
        c = a * 2
        d = np.exp(c).sum(axis=1)
        return c + d[:, None] + b, d.sum()

    kernel = jitune.kernel(f)
    rng = np.random.default_rng(3)
    a, b = rng.random((30, 40)), rng.random((30, 40))
    assert "ptr %objs" in kernel.lower(a, b).source
    for got, want in zip(kernel(a, b), f(a, b)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_packed_program_reports_its_status(monkeypatch) -> None:
    from jitune.codegen import llvm

    monkeypatch.setattr(llvm, "MAX_DIRECT_BUFFERS", 1)
    kernel = jitune.kernel(lambda x, n: (x * 2) ** n)
    x = np.arange(5)
    np.testing.assert_array_equal(kernel(x, np.int64(2)), (x * 2) ** 2)
    with pytest.raises(jitune.DomainError, match="negative integer powers"):
        kernel(x, np.int64(-1))
