"""First call of a new signature with the default tuning budget, in a fresh process.

Each size runs in a new Python process (so the worker process starts too, as it would for a
user) with the disk cache off: trace, tune (``JITUNE_BUDGET`` as set, default 32 trials),
compile, run. Prints the wall time of the first call, what tuning did, and the speed-up over
the default schedule.

Run: ``python benchmarks/tuning_first_call.py [256 512 1024]``.
"""

from __future__ import annotations

import os
import subprocess
import sys

CHILD = r"""
import sys, time
import numpy as np
import jitune

n = int(sys.argv[1])

@jitune.kernel
def dense(x, w, b):
    return np.maximum(x @ w + b, 0)

rng = np.random.default_rng(0)
x = rng.random((n, n), dtype=np.float32)
w = rng.random((n, n), dtype=np.float32)
b = rng.random(n, dtype=np.float32)
began = time.perf_counter()
dense(x, w, b)
first = time.perf_counter() - began
tuned = dense.last.tuned
print(
    f"{n}^3: first call {first:.2f} s; {tuned.how}; {tuned.gflops or 0:.1f} GFLOP/s, "
    f"{tuned.speedup or 0:.2f}x the default schedule"
)
"""


def main() -> int:
    sizes = sys.argv[1:] or ["256", "512", "1024"]
    env = dict(os.environ, JITUNE_DISABLE_CACHE="1")
    for n in sizes:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, n], env=env, capture_output=True, text=True
        )
        print(done.stdout.strip() or done.stderr.strip()[-500:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
