"""Command line: ``python -m tests.fuzz --programs 1000 --jobs 2 --time-limit 170 --known``.

Prints the seed (a fresh one unless ``--seed``), progress, every finding with its seed and
a shrunk standalone reproducer, and a summary line; exits 1 on any finding that is not a
known bug (``--known``: see ``known.py``), 0 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import sys
import time
from typing import Any

from .known import KNOWN

LONG_PROGRAMS = 100_000


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--programs", type=int, default=1000, help="programs to run (default 1000)")
    parser.add_argument(
        "--long",
        action="store_true",
        help=f"an overnight batch: {LONG_PROGRAMS} programs, no time limit",
    )
    parser.add_argument(
        "--seed", type=int, help="seed of the first program (default: random); program k has seed+k"
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=0,
        help="stop starting programs after this many seconds (0: none)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=120,
        help="seconds one program may take before it counts as a hang",
    )
    parser.add_argument(
        "--budget",
        type=int,
        default=0,
        help="tuning trials per program (default 0: the default schedule); every candidate "
        "of a tuning is checked against the reference, and the tuned kernel against NumPy",
    )
    parser.add_argument(
        "--known", action="store_true", help="known open bugs (known.py) do not fail the run"
    )
    parser.add_argument(
        "--shrink-seconds", type=float, default=10, help="time to shrink each distinct finding"
    )
    parser.add_argument(
        "--chunk", type=int, default=250, help="programs per worker process before a fresh one"
    )
    parser.add_argument(
        "--list-known", action="store_true", help="print the known-bug table and exit"
    )
    parser.add_argument(
        "--replay", type=int, metavar="SEED", help="run one program in this process and print it"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


class _Tally:
    """Answers as they come: counts, progress lines, findings printed once per kind."""

    def __init__(self, total: int, known_ok: bool) -> None:
        self.total = total
        self.known_ok = known_ok
        self.began = time.monotonic()
        self.last_progress = self.began
        self.done = 0
        self.known: collections.Counter[str] = collections.Counter()
        self.new: list[dict[str, Any]] = []
        self.printed: set[str] = set()

    def __call__(self, answer: dict[str, Any]) -> None:
        self.done += 1
        seed = answer["seed"]
        if "failure" in answer:  # a worker crashed or hung
            self.new.append(answer)
            print(
                f"\nFINDING seed={seed}: worker {answer['failure']} ({answer.get('isolated', '')}, "
                f"exit code {answer.get('returncode')})\n{answer.get('stderr', '')}\n"
                f"reproduce: python -m tests.fuzz --programs 1 --jobs 1 --seed {seed}",
                flush=True,
            )
        elif answer["finding"] is not None:
            finding = answer["finding"]
            key = finding["known"] or f"{finding['kind']}:{finding['exception']}"
            if finding["known"]:
                self.known[finding["known"]] += 1
            else:
                self.new.append(answer)
            label = f"known bug {finding['known']}" if finding["known"] else "FINDING"
            print(f"\n{label} seed={seed}: {finding['kind']}: {finding['message']}", flush=True)
            if "reproducer" in finding and key not in self.printed:
                self.printed.add(key)
                print(
                    f"shrunk: {finding['shrunk_message']}\n--- reproducer ---\n"
                    f"{finding['reproducer']}------------------",
                    flush=True,
                )
        now = time.monotonic()
        if now - self.last_progress >= 10 or self.done == self.total:
            self.last_progress = now
            print(
                f"[{self.done}/{self.total}] {now - self.began:.1f} s, "
                f"{self.done / max(now - self.began, 1e-9):.1f} programs/s, "
                f"{len(self.new)} new findings, {sum(self.known.values())} known",
                flush=True,
            )

    def failed(self) -> bool:
        return bool(self.new) or (bool(self.known) and not self.known_ok)


def _replay(seed: int) -> int:
    """Run the program of ``seed`` here (no worker): its source, inputs and verdict."""
    import tempfile

    from .compare import run_program
    from .generate import generate

    program = generate(seed)
    print(program.reproducer())
    with tempfile.TemporaryDirectory(prefix="jitune-fuzz-cache-") as cache_dir:
        finding = run_program(program, cache_dir)
    print(f"verdict: {finding or 'matches NumPy'}")
    return 1 if finding else 0


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if args.worker:
        from .worker import main as worker_main

        worker_main()
        return 0
    if args.list_known:
        for entry in KNOWN:
            print(f"{entry.name}: {entry.bug}")
        return 0
    if args.replay is not None:
        return _replay(args.replay)
    from .pool import run_pool, worker_environment

    programs = LONG_PROGRAMS if args.long else args.programs
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    limit = 0 if args.long else args.time_limit
    print(
        f"fuzz: seed {seed}, {programs} programs (seeds {seed}..{seed + programs - 1}), "
        f"{args.jobs} workers, budget {args.budget}{f', time limit {limit:g} s' if limit else ''}",
        flush=True,
    )
    tally = _Tally(programs, args.known)
    deadline = time.monotonic() + limit if limit else float("inf")
    env = worker_environment(args.shrink_seconds, args.budget)
    run_pool(
        iter(range(seed, seed + programs)),
        args.jobs,
        env,
        args.timeout,
        deadline,
        args.chunk,
        tally,
    )
    elapsed = time.monotonic() - tally.began
    known = ", ".join(f"{name} x{count}" for name, count in sorted(tally.known.items())) or "none"
    cut = f" (time limit reached after {tally.done} of {programs})" if tally.done < programs else ""
    print(
        f"\nfuzz summary: seed {seed}, {tally.done} programs in {elapsed:.1f} s "
        f"({tally.done / max(elapsed, 1e-9):.1f} programs/s){cut}; {len(tally.new)} new findings; "
        f"known bugs: {known}",
        flush=True,
    )
    return 1 if tally.failed() else 0


if __name__ == "__main__":
    sys.exit(main())
