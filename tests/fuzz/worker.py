"""The worker process: reads program seeds (one JSON line each) on stdin, runs each program,
answers one JSON line per program on its own copy of stdout.

Each worker compiles into a fresh private disk cache (a temporary JITUNE_CACHE_DIR), so the
third run of every program is a real load of the cached binary.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from typing import Any

from .compare import Finding, run_program
from .generate import generate
from .known import known_bug
from .shrink import shrink


def examine(seed: int, cache_dir: str, shrink_seconds: float, shrunk: set[str]) -> dict[str, Any]:
    """Run the program of ``seed``; on a finding, also which known bug it is and (once per
    distinct finding in this worker) a shrunk reproducer."""
    began = time.perf_counter()
    program = generate(seed)
    finding = run_program(program, cache_dir)
    answer: dict[str, Any] = {"seed": seed, "finding": None}
    if finding is not None:
        entry = known_bug(program, finding)
        key = entry.name if entry else finding.signature()
        answer["finding"] = {"kind": finding.kind, "message": finding.message,
                             "exception": finding.exception,
                             "known": entry.name if entry else None}  # fmt: skip
        if key not in shrunk and shrink_seconds > 0:
            shrunk.add(key)

            def same(candidate: Any) -> bool:
                again = run_program(candidate, cache_dir)
                return again is not None and again.signature() == finding.signature()

            small = shrink(program, same, shrink_seconds)
            answer["finding"]["reproducer"] = small.reproducer()
            answer["finding"]["shrunk_message"] = (run_program(small, cache_dir) or finding).message
    answer["seconds"] = time.perf_counter() - began
    return answer


def main() -> None:
    """The worker loop (``python -m tests.fuzz --worker``)."""
    # the answers get a private copy of stdout; anything printed by the code under test
    # (C or Python) goes to stderr instead of corrupting the protocol
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    shrink_seconds = float(os.environ.get("JITUNE_FUZZ_SHRINK_SECONDS", "10"))
    shrunk: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="jitune-fuzz-cache-") as cache_dir:
        for line in sys.stdin:
            seed = int(json.loads(line)["seed"])
            try:
                answer = examine(seed, cache_dir, shrink_seconds, shrunk)
            except Exception:  # noqa: BLE001 - a fuzzer defect: reported, not a worker crash
                answer = {
                    "seed": seed,
                    "failure": "harness error",
                    "stderr": traceback.format_exc(),
                }
            answers.write(json.dumps(answer) + "\n")


def finding_from(data: dict[str, Any]) -> Finding:
    return Finding(data["kind"], data["message"], data.get("exception", ""))
