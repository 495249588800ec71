"""The measuring worker: a persistent child process, and the measurer that talks to it.

Why not ``multiprocessing.Process``: its spawn and forkserver start methods import the
caller's ``__main__`` in the child, so a script that calls a kernel at top level (no
``if __name__ == "__main__"`` guard, which a lazily tuning library cannot demand) would run
again in the worker. ``python -m jitune.tune.worker`` imports only jitune; the two processes
talk through a socket pair with ``multiprocessing.connection.Connection`` (pickled messages
of plain data). The worker runs in its own session, so Ctrl-C in the terminal reaches the
caller only; it exits when the caller closes the socket or dies.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from .measure import (
    Bench,
    Build,
    Candidate,
    ErrorKind,
    MeasureResult,
    MeasureTask,
    bench_for,
    resolve,
)

START_SECONDS = 120.0  # start-up plus receiving a task's arrays


class WorkerMeasurer:
    """Measures in a worker process that is restarted after a crash or a timeout."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._connection: Connection | None = None
        self._task: str | None = None
        self.restarts = 0
        atexit.register(self.close)

    # -- lifecycle -------------------------------------------------------------------------
    def _start(self) -> Connection:
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        # the worker imports jitune (and anything a test's device refers to) from where
        # this process does
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "jitune.tune.worker", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        theirs.close()
        self._connection = Connection(ours.detach())
        self._task = None
        return self._connection

    def _stop(self) -> None:
        """Kill the worker (it crashed, hung, or was interrupted); the next candidate
        starts a new one."""
        if self._process is not None:
            self.restarts += 1
        if self._connection is not None:
            with contextlib.suppress(OSError):
                self._connection.close()
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(5)
        self._process = None
        self._connection = None
        self._task = None

    def close(self) -> None:
        """Stop the worker; it exits on its own when its socket closes."""
        if self._connection is not None:
            with contextlib.suppress(OSError):
                self._connection.send(("exit",))
            with contextlib.suppress(OSError):
                self._connection.close()
            self._connection = None
        if self._process is not None:
            try:
                self._process.wait(2)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    # -- measuring ------------------------------------------------------------------------------
    def _ask(self, message: tuple[Any, ...], timeout: float) -> tuple[Any, ...] | ErrorKind:
        connection = self._connection
        assert connection is not None
        try:
            connection.send(message)
        except OSError:
            self._stop()
            return ErrorKind.CRASH
        return self._answer(timeout)

    def _ensure(self, task: MeasureTask) -> ErrorKind | None:
        if self._connection is None or self._process is None or self._process.poll() is not None:
            self._stop()
            self._start()
        if self._task != task.ident:
            reply = self._ask(("task", task), START_SECONDS)
            if isinstance(reply, ErrorKind):
                return reply
            self._task = task.ident
        return None

    def measure(
        self, task: MeasureTask, candidates: Sequence[Build | Candidate]
    ) -> list[MeasureResult]:
        """Measure in order. While the worker compiles one candidate this process renders
        the next; while the worker times one, this process waits, so timings are quiet."""
        results: list[MeasureResult] = []
        upcoming = resolve(candidates[0]) if candidates else None
        for index in range(len(candidates)):
            current = upcoming
            if isinstance(current, MeasureResult):
                results.append(current)
                upcoming = resolve(candidates[index + 1]) if index + 1 < len(candidates) else None
                continue
            assert current is not None
            failed = self._ensure(task)
            if failed is not None:
                results.append(MeasureResult(None, failed, "the worker could not take the task"))
                upcoming = resolve(candidates[index + 1]) if index + 1 < len(candidates) else None
                continue
            began = time.perf_counter()
            connection = self._connection
            assert connection is not None
            try:
                connection.send(("build", current))
            except OSError:
                pass  # the worker is gone: the answer below says so
            # render the next candidate while the worker compiles this one
            upcoming = resolve(candidates[index + 1]) if index + 1 < len(candidates) else None
            reply = self._answer(task.timeout)
            if not isinstance(reply, ErrorKind) and reply[1] is None:
                reply = self._ask(("run",), task.timeout)
            results.append(self._result(reply, task, began))
        return results

    def _answer(self, timeout: float) -> tuple[Any, ...] | ErrorKind:
        """The worker's reply to a message already sent."""
        connection = self._connection
        assert connection is not None
        try:
            if not connection.poll(timeout):
                self._stop()
                return ErrorKind.TIMEOUT
            return connection.recv()
        except (EOFError, OSError):
            self._stop()
            return ErrorKind.CRASH
        except BaseException:
            # interrupted while the worker is busy: its answer would arrive out of turn
            self._stop()
            raise

    def _result(
        self, reply: tuple[Any, ...] | ErrorKind, task: MeasureTask, began: float
    ) -> MeasureResult:
        if reply is ErrorKind.TIMEOUT:
            return MeasureResult(None, reply, f"no result within {task.timeout:.1f} s")
        if reply is ErrorKind.CRASH:
            code = "" if self._process is None else f" ({self._process.returncode})"
            elapsed = time.perf_counter() - began
            return MeasureResult(None, reply, f"the worker died{code} after {elapsed:.2f} s")
        return reply[1]  # type: ignore[index]


def serve(connection: Connection) -> int:
    """The worker's loop: receive a task or a candidate, answer; stop on EOF or "exit"."""
    bench: Bench | None = None
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return 0
        kind = message[0]
        if kind == "exit":
            return 0
        if kind == "task":
            bench = bench_for(message[1])  # the device's bench (CUDA: CuPy arrays, events)
            connection.send(("ok",))
        elif kind == "build":
            assert bench is not None
            connection.send(("built", bench.build(message[1])))
        elif kind == "run":
            assert bench is not None
            connection.send(("result", bench.run()))


def _watch_parent(parent: int) -> None:
    """Exit when the caller is gone, even while a hung candidate runs (generated code runs
    without the GIL, so this thread still gets to check)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def main(argv: Sequence[str]) -> int:
    # Ctrl-C belongs to the caller, which decides what to do with a half-finished tuning
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    return serve(Connection(int(argv[1])))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
