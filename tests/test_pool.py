"""The CPU buffer pool: a dropped result's memory is reused, a result (or any view of it) the
caller still holds never is, and the pool stays within ``JITUNE_BUFFER_POOL``."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from helpers import check

import jitune
from jitune.runtime.pool import MIN_BYTES, BufferPool

BIG = (MIN_BYTES // 4 + 1024,)  # float32 elements: just above the pool's threshold


@jitune.kernel
def scaled(x):
    return x * 2 + 1


@jitune.kernel
def product(a, b):
    return a @ b


def test_a_dropped_block_is_handed_out_again():
    pool = BufferPool()
    first = pool.empty(BIG, np.float32)
    address = first.ctypes.data
    del first
    again = pool.empty(BIG, np.float32)
    assert again.ctypes.data == address
    assert again.shape == BIG and again.dtype == np.float32 and again.flags.c_contiguous


def test_a_held_block_or_a_view_of_it_is_never_handed_out():
    pool = BufferPool()
    held = pool.empty(BIG, np.float32)
    view = pool.empty(BIG, np.float32)[::3]  # only the view survives
    addresses = {held.ctypes.data, view.base.ctypes.data}
    fresh = pool.empty(BIG, np.float32)
    assert fresh.ctypes.data not in addresses
    assert pool.pooled_bytes == 3 * BIG[0] * 4


def test_small_buffers_and_other_sizes_do_not_share_blocks():
    pool = BufferPool()
    pool.empty((16,), np.float32)
    assert pool.pooled_bytes == 0  # small buffers are not pooled
    block = pool.empty(BIG, np.float32)
    address = block.ctypes.data
    del block
    other = pool.empty((BIG[0] + 16,), np.float32)
    assert other.ctypes.data != address


def test_the_pool_keeps_to_its_limit_and_releases_only_unused_blocks():
    pool = BufferPool()
    nbytes = BIG[0] * 4
    with jitune.config.override(buffer_pool=2 * nbytes):
        kept = [pool.empty(BIG, np.float32) for _ in range(3)]
        assert pool.pooled_bytes == 2 * nbytes  # the third is not pooled
        del kept[0]
        assert pool.release() == nbytes
        assert pool.pooled_bytes == nbytes
    with jitune.config.override(buffer_pool=0):
        off = BufferPool()
        off.empty(BIG, np.float32)
        assert off.pooled_bytes == 0


def test_results_held_across_calls_keep_their_values():
    x = np.arange(BIG[0], dtype=np.float32)
    results = [scaled(x + k) for k in range(3)]
    for k, result in enumerate(results):
        np.testing.assert_array_equal(result, (x + k) * 2 + 1)
    assert len({r.ctypes.data for r in results}) == 3


def test_a_view_keeps_its_block_while_the_result_is_dropped():
    x = np.arange(BIG[0], dtype=np.float32)
    tail = scaled(x)[-5:]
    expected = tail.copy()
    for _ in range(3):
        check(scaled, -x)
    np.testing.assert_array_equal(tail, expected)


def test_a_dropped_result_is_reused_by_the_next_call():
    x = np.ones(BIG, np.float32)
    address = scaled(x).ctypes.data
    np.testing.assert_array_equal(scaled(x), 3)
    assert scaled(x).ctypes.data == address


def test_products_with_pooled_packing_buffers_stay_correct():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((300, 1100), dtype=np.float32)
    b = rng.standard_normal((1100, 1030), dtype=np.float32)  # packed panel above 4 MiB
    for _ in range(3):
        check(product, a, b)


def test_concurrent_callers_never_share_a_block():
    x = np.arange(BIG[0], dtype=np.float32)
    errors = []

    def call(k: int) -> None:
        for _ in range(5):
            y = scaled(x + k)
            if not np.array_equal(y, (x + k) * 2 + 1):
                errors.append(k)

    threads = [threading.Thread(target=call, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@pytest.mark.parametrize(("raw", "expected"), [("0", 0), ("512M", 512 << 20), ("2G", 2 << 30)])
def test_the_limit_is_read_from_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv("JITUNE_BUFFER_POOL", raw)
    assert jitune.config.from_environment().buffer_pool == expected


def test_a_bad_limit_names_the_variable(monkeypatch):
    monkeypatch.setenv("JITUNE_BUFFER_POOL", "lots")
    with pytest.raises(jitune.ConfigError, match="JITUNE_BUFFER_POOL"):
        jitune.config.from_environment()


def test_release_buffers_gives_back_dropped_results():
    result = scaled(np.ones(BIG, np.float32))
    del result
    assert jitune.release_buffers() >= BIG[0] * 4


@pytest.mark.parametrize("shape", [(7,), (50_000,), (333, 777), BIG])
def test_buffers_of_a_signature_start_on_a_cache_line(shape):
    """Outputs and temporaries from 64 KiB up are 64-byte aligned, pooled or not (NumPy's
    own start 16 bytes into a line, and 64-byte vectors across two lines cost two accesses)."""
    from jitune.runtime.cpu import CpuDevice
    from jitune.runtime.pool import ALIGNED_MIN_BYTES, aligned_empty

    dtype = np.dtype(np.float32)
    allocate = CpuDevice().allocator_for((), shape, dtype)
    array = allocate(shape, dtype)
    assert array.shape == shape and array.dtype == dtype and array.flags.c_contiguous
    if array.nbytes >= ALIGNED_MIN_BYTES:
        assert array.ctypes.data % 64 == 0
    else:
        assert allocate is np.empty  # the short-call path pays for nothing more
    assert aligned_empty(shape, dtype).ctypes.data % 64 == 0
