"""Compiled code outlives nothing it depends on: kernels can be created, dropped and rebuilt."""

import gc

import numpy as np

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
