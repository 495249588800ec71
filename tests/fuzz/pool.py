"""A pool of worker processes that run programs by seed, one request at a time, so a crash
or a hang is pinned on the program in flight; each worker is reused for a chunk of programs
(starting one costs about a second: importing jitune and LLVM)."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

_PACKAGE = __package__ or "tests.fuzz"
_ROOT = Path(__file__).resolve().parents[len(_PACKAGE.split("."))]


def worker_environment(shrink_seconds: float, budget: int = 0) -> dict[str, str]:
    """The workers' environment: tuning with ``budget`` trials per signature (0: none),
    two threads per worker, and this package importable."""
    env = dict(os.environ)
    env.update(
        JITUNE_BUDGET=str(budget),
        JITUNE_DISABLE_CACHE="0",
        JITUNE_NUM_THREADS=env.get("JITUNE_NUM_THREADS", "2"),
        JITUNE_PROGRESS="0",
        JITUNE_FUZZ_SHRINK_SECONDS=str(shrink_seconds),
        PYTHONPATH=os.pathsep.join([str(_ROOT)] + [p for p in [env.get("PYTHONPATH")] if p]),
    )
    return env


class Worker:
    """One ``python -m <package> --worker`` process."""

    def __init__(self, env: dict[str, str]) -> None:
        self.log = tempfile.TemporaryFile()  # its stderr: the tail goes into crash reports
        self.process = subprocess.Popen(
            [sys.executable, "-m", _PACKAGE, "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
            text=True,
        )
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.process.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]

    def ask(self, seed: int, timeout: float) -> dict[str, Any]:
        """The worker's answer for ``seed``, or {"seed", "failure": "crash"|"hang", ...}."""
        try:
            self.process.stdin.write(json.dumps({"seed": seed}) + "\n")  # type: ignore[union-attr]
            self.process.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, OSError):
            return self._failed(seed, "crash")
        if not self.selector.select(timeout):
            return self._failed(seed, "hang")
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        if not line:
            return self._failed(seed, "crash")
        return json.loads(line)

    def _failed(self, seed: int, how: str) -> dict[str, Any]:
        if self.process.poll() is None:
            self.process.kill()  # hung: no polite ending
        self.close()
        self.log.seek(0)
        tail = self.log.read().decode(errors="replace")[-1500:]
        code = self.process.returncode
        return {"seed": seed, "failure": how, "returncode": code, "stderr": tail}

    def close(self) -> None:
        """End the process: politely (closing its stdin lets it remove its cache
        directory), or by force if it does not exit."""
        if self.process.poll() is None:
            try:
                self.process.stdin.close()  # type: ignore[union-attr]
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
        self.process.wait()
        self.selector.close()


def isolate(seed: int, earlier: list[int], env: dict[str, str], timeout: float) -> dict[str, Any]:
    """After a worker crashed or hung on ``seed``: run it alone in a fresh worker; if it
    passes there, rerun the worker's chunk (``earlier`` then ``seed``) one program at a time
    in a fresh worker, to find the program that really fails."""
    worker = Worker(env)
    answer = worker.ask(seed, timeout)
    worker.close()
    if "failure" in answer:
        answer["isolated"] = "fails alone in a fresh worker"
        return answer
    worker = Worker(env)
    for other in earlier + [seed]:
        answer = worker.ask(other, timeout)
        if "failure" in answer:
            worker.close()
            answer["isolated"] = f"fails after the {len(earlier)} programs before it in one worker"
            return answer
    worker.close()
    return {"seed": seed, "failure": "flaky", "isolated": "did not fail again when rerun"}


def run_pool(
    seeds: Iterator[int],
    jobs: int,
    env: dict[str, str],
    timeout: float,
    deadline: float,
    chunk: int,
    report: Callable[[dict[str, Any]], None],
) -> None:
    """Run ``seeds`` on ``jobs`` workers until they are used up or ``deadline``
    (time.monotonic) passes; ``report`` gets every answer (called under a lock)."""
    lock = threading.Lock()

    def next_seed() -> int | None:
        with lock:
            if time.monotonic() >= deadline:
                return None
            return next(seeds, None)

    def loop() -> None:
        worker: Worker | None = None
        ran: list[int] = []
        while (seed := next_seed()) is not None:
            if worker is None:
                worker, ran = Worker(env), []
            answer = worker.ask(seed, timeout)
            if answer.get("failure") in ("crash", "hang"):
                answer = isolate(seed, ran, env, timeout)
                worker = None
            else:
                ran.append(seed)
                if len(ran) >= chunk:
                    worker.close()
                    worker = None
            with lock:
                report(answer)
        if worker is not None:
            worker.close()

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(max(1, jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
