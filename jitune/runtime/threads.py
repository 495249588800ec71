"""The CPU parallel runtime: splits a kernel's parallel loop over worker threads.

Generated code calls ``jitune_parallel_for(kernel, bufs, extent)``; that symbol is bound to
:data:`PARALLEL_FOR_ADDRESS`, a ctypes callback. It cuts the loop into a few chunks per thread
and hands them out on demand: the calling thread and persistent daemon threads each take the
next chunk until none is left, calling the kernel through ctypes (which releases the GIL for the
duration of the call). Chunks taken on demand keep both cores busy when one of them is slowed
by something else (a BLAS or OpenMP thread of another library still spinning after its call,
another process): with one fixed half per thread the whole call waits for the slower half.
Workers block on a queue when idle, so they never spin and never hold cores that BLAS or NumPy
want.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import queue
import threading
from collections.abc import Callable

from .. import config

KernelFunction = Callable[[int, int, int], None]
_KERNEL_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)

CHUNKS_PER_THREAD = 4
"""How finely a parallel loop is cut: enough that a thread on a busy core takes fewer chunks
than its partner, few enough that the per-chunk cost (a ctypes call, about a microsecond) and
the loss of locality between chunks stay small."""


class _Loop:
    """One parallel loop in flight: chunks handed out in order to whichever thread asks."""

    __slots__ = ("function", "bufs", "bounds", "taken", "finished", "done")

    def __init__(self, function: KernelFunction, bufs: int, extent: int, chunks: int) -> None:
        self.function = function
        self.bufs = bufs
        self.bounds = [extent * k // chunks for k in range(chunks + 1)]
        # next() of an itertools.count is atomic under the GIL: no lock on the hot path
        self.taken = itertools.count()
        self.finished = itertools.count(1)
        self.done = threading.Event()

    def work(self) -> None:
        """Run chunks until none is left; the thread that finishes the last one says so."""
        chunks = len(self.bounds) - 1
        while (k := next(self.taken)) < chunks:
            self.function(self.bufs, self.bounds[k], self.bounds[k + 1])
            if next(self.finished) == chunks:
                self.done.set()


class _Pool:
    def __init__(self) -> None:
        self.tasks: queue.SimpleQueue[_Loop] = queue.SimpleQueue()
        self.workers: list[threading.Thread] = []
        self.lock = threading.Lock()
        self.kernels: dict[int, KernelFunction] = {}

    def ensure(self, count: int) -> None:
        with self.lock:
            while len(self.workers) < count:
                worker = threading.Thread(target=self._work, name="jitune-worker", daemon=True)
                worker.start()
                self.workers.append(worker)

    def _work(self) -> None:
        while True:
            self.tasks.get().work()

    def kernel(self, address: int) -> KernelFunction:
        function = self.kernels.get(address)
        if function is None:
            function = self.kernels[address] = _KERNEL_TYPE(address)
        return function

    def run(self, address: int, bufs: int, extent: int) -> None:
        function = self.kernel(address)
        threads = min(config.threads(), extent)
        if threads <= 1:
            function(bufs, 0, extent)
            return
        self.ensure(threads - 1)
        loop = _Loop(function, bufs, extent, min(extent, threads * CHUNKS_PER_THREAD))
        for _ in range(threads - 1):
            self.tasks.put(loop)
        loop.work()
        loop.done.wait()


_POOL = _Pool()


def _reset_after_fork() -> None:
    # A forked child has none of the parent's threads: start a fresh pool on demand.
    global _POOL
    _POOL = _Pool()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


@ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
def _parallel_for(kernel: int, bufs: int, extent: int) -> None:
    _POOL.run(kernel, bufs, extent)


PARALLEL_FOR_ADDRESS = ctypes.cast(_parallel_for, ctypes.c_void_p).value
"""Address of the callback that generated code calls to run a parallel loop."""
