"""The CPU parallel runtime: splits a kernel's parallel loop over worker threads.

Generated code calls ``jitune_parallel_for(kernel, bufs, extent)``; that symbol is bound to
:data:`PARALLEL_FOR_ADDRESS`, a ctypes callback. It runs the first chunk on the calling thread
and the others on persistent daemon threads, each calling the kernel through ctypes (which
releases the GIL for the duration of the call). Workers block on a queue when idle, so they
never spin and never hold cores that BLAS or NumPy want.
"""

from __future__ import annotations

import ctypes
import os
import queue
import threading
from collections.abc import Callable

from .. import config

KernelFunction = Callable[[int, int, int], None]
_KERNEL_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)


class _Pool:
    def __init__(self) -> None:
        self.tasks: queue.SimpleQueue = queue.SimpleQueue()
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
            function, bufs, start, end, done = self.tasks.get()
            try:
                function(bufs, start, end)
            finally:
                done.release()

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
        done = threading.Semaphore(0)
        bounds = [extent * k // threads for k in range(threads + 1)]
        for k in range(1, threads):
            self.tasks.put((function, bufs, bounds[k], bounds[k + 1], done))
        function(bufs, bounds[0], bounds[1])
        for _ in range(threads - 1):
            done.acquire()


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
