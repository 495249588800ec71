"""Reuse of large CPU buffers: outputs the caller has dropped, and per-call temporaries.

A new NumPy array of more than 32 MiB is a fresh ``mmap`` from the C library, and every page of
it faults on first write: the kernel zeroes 64 MiB before a GELU can write its 64 MiB result,
which made the call twice as slow as the kernel itself (18 ms against 9 ms on 16M float32).
Smaller blocks come back from the C library's heap without that cost, but a packing buffer or an
output in the tens of MiB does not.

The pool keeps the blocks it hands out. A block is free again when nothing but the pool refers
to it: every array made from a pool block (the result, any view of it, anything holding that
view) keeps a reference to the block as its ``base``, so the block's reference count says
exactly whether the caller still holds any of it. The pool never frees a block the caller can
still reach, and reuse is exact-size only, so a loop that calls one kernel on one shape finds
its block every time. Pooled memory stays with the process up to ``JITUNE_BUFFER_POOL`` bytes
(default 1 GiB; ``0`` turns the pool off); :func:`release` returns the free blocks.

Every buffer from here starts on a 64-byte cache line, where NumPy's start 16 bytes into
one: a 1024^3 matmul whose output and packed panels straddled lines ran at 152 GFLOP/s
against 170 aligned (two threads, median of 30).
"""

from __future__ import annotations

import math
import sys
import threading
from typing import Any

import numpy as np

from .. import config

MIN_BYTES = 4 << 20
"""Blocks below this are not pooled: the C library's heap already reuses them cheaply, and
the pool's scan would cost more than it saves on short calls."""


ALIGNMENT = 64
"""Pooled buffers start on a cache line (NumPy's own start 16 bytes into one): a 64-byte
vector load or store that straddles two lines costs two cache accesses."""


ALIGNED_MIN_BYTES = 64 << 10
"""Buffers from this size up are aligned (a kernel on them takes far longer than the
microsecond the alignment costs); smaller ones come from ``np.empty`` as they are."""


def _aligned(block: np.ndarray, nbytes: int) -> np.ndarray:
    start = -block.__array_interface__["data"][0] % ALIGNMENT
    return block[start : start + nbytes]


def aligned_empty(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Like ``np.empty(shape, dtype)``, starting on a cache line (not pooled)."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    return _aligned(np.empty(nbytes + ALIGNMENT, np.uint8), nbytes).view(dtype).reshape(shape)


def _references(block: np.ndarray) -> int:
    return sys.getrefcount(block)


def _unused_references() -> int:
    """What :func:`_references` says of a block only the pool holds, counted the way the pool
    counts (its list, the loop variable, the call): measured, since interpreters differ."""
    blocks = [np.empty(1, np.uint8)]
    for block in blocks:
        return _references(block)
    raise AssertionError("unreachable")


_UNUSED_REFS = _unused_references()


class BufferPool:
    """Hands out arrays over pooled blocks of memory, keyed by exact byte size."""

    def __init__(self) -> None:
        self._blocks: dict[int, list[np.ndarray]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """An uninitialized C-contiguous array, like ``np.empty(shape, dtype)``."""
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes < MIN_BYTES:
            return aligned_empty(shape, dtype)
        with self._lock:
            blocks = self._blocks.setdefault(nbytes, [])
            for block in blocks:
                if _references(block) == _UNUSED_REFS:
                    # the view is made under the lock: from here on the block counts as in use
                    return _aligned(block, nbytes).view(dtype).reshape(shape)
            if self._bytes + nbytes > config.get().buffer_pool:
                return aligned_empty(shape, dtype)
            block = np.empty(nbytes + ALIGNMENT, np.uint8)
            blocks.append(block)
            self._bytes += nbytes
            return _aligned(block, nbytes).view(dtype).reshape(shape)

    def release(self) -> int:
        """Drop every block nothing else refers to; returns the bytes given back."""
        freed = 0
        with self._lock:
            for nbytes, blocks in self._blocks.items():
                kept = []
                for block in blocks:
                    if _references(block) > _UNUSED_REFS:
                        kept.append(block)
                freed += nbytes * (len(blocks) - len(kept))
                blocks[:] = kept
            self._bytes -= freed
        return freed

    @property
    def pooled_bytes(self) -> int:
        """Bytes of all blocks the pool keeps, in use or not."""
        return self._bytes


POOL = BufferPool()


def release() -> int:
    """Return the memory of pooled CPU buffers that no array uses any more to the system.

    Returns the number of bytes released. Blocks still in use stay in the pool.
    """
    return POOL.release()
