"""Wall time of a new process's first kernel call: a disk-cache hit against a miss.

Each measurement starts a fresh Python process that imports jitune, builds a float32 dense
layer ``relu(x @ w + b)`` (256x256x256) and calls it once; the script inside the process
reports its own times (import, first call), so interpreter start-up is left out. Three
kinds of process, interleaved, each repeated:

- import only      -- ``import jitune`` and nothing else
- miss             -- an empty cache directory: trace, lower, compile with LLVM, store, run
- hit              -- the directory a miss left behind: trace, load the object code, run

Run: ``python benchmarks/warm_start.py [--repeats 7]``. Writes benchmarks/results/warm_start.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, time
began = time.perf_counter()
import numpy as np
import jitune
imported = time.perf_counter()
if sys.argv[1] == "import":
    print(json.dumps({"import": imported - began}))
    raise SystemExit
@jitune.kernel
def dense(x, w, b):
    return np.maximum(x @ w + b, 0)
rng = np.random.default_rng(0)
x, w = rng.random((256, 256), dtype=np.float32), rng.random((256, 256), dtype=np.float32)
b = rng.random(256, dtype=np.float32)
start = time.perf_counter()
out = dense(x, w, b)
done = time.perf_counter()
assert np.allclose(out, np.maximum(x @ w + b, 0), rtol=1e-4, atol=1e-4)
print(json.dumps({"import": imported - began, "first_call": done - start,
                  "compiled": dense.compile_count, "loaded": dense.load_count}))
"""


def _run(kind: str, cache: Path) -> dict:
    # budget 0: a cache miss compiles the default schedule (what this benchmark times), it
    # does not tune
    env = dict(os.environ, JITUNE_CACHE_DIR=str(cache), JITUNE_DISABLE_CACHE="0", JITUNE_BUDGET="0")
    result = subprocess.run(
        [sys.executable, "-c", CHILD, kind], env=env, check=True, capture_output=True, text=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    samples: dict[str, list[dict]] = {"import": [], "miss": [], "hit": []}
    root = Path(tempfile.mkdtemp(prefix="jitune-warm-"))
    try:
        for n in range(args.repeats):
            cache = root / f"cache{n}"
            samples["import"].append(_run("import", cache))
            miss = _run("call", cache)
            assert miss["compiled"] == 1, miss
            samples["miss"].append(miss)
            hit = _run("call", cache)
            assert hit["loaded"] == 1 and hit["compiled"] == 0, hit
            samples["hit"].append(hit)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    def median(kind: str, field: str) -> float:
        return 1e3 * statistics.median(s[field] for s in samples[kind])

    print(f"new process, float32 relu(x @ w + b) 256^3, median of {args.repeats} (ms)")
    print(f"{'process':<14}{'import jitune':>15}{'first call':>12}")
    print(f"{'import only':<14}{median('import', 'import'):>15.1f}{'-':>12}")
    for kind in ("miss", "hit"):
        print(
            f"{'cache ' + kind:<14}{median(kind, 'import'):>15.1f}{median(kind, 'first_call'):>12.1f}"
        )
    print(
        f"a cache hit adds {median('hit', 'first_call'):.1f} ms beyond `import jitune` "
        f"(a miss: {median('miss', 'first_call'):.1f} ms)"
    )
    out = Path(__file__).parent / "results" / "warm_start.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(samples, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
