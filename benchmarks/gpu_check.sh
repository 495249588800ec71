#!/usr/bin/env bash
# One prepared GPU check: the cuda tests, then the GPU benchmarks; results under $OUT
# (default ./gpu_out): nvidia-smi.txt, env.txt, tests.log, bench.log, gpu_bench.json.
#
#     bash benchmarks/gpu_check.sh            # from the repository root, on a GPU machine
#
# Works offline: wheels the machine lacks (diskcache, platformdirs, xgboost-cpu) are taken
# from ./.whl if it exists. Each step has its own time limit, so the whole script ends
# within about 400 s (TESTS_S + BENCH_S + setup).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
TESTS_S=${TESTS_S:-150}
BENCH_S=${BENCH_S:-230}
PY=${PYTHON:-python3}

if compgen -G ".whl/*.whl" > /dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1 JITUNE_BUDGET=0 JITUNE_DISABLE_CACHE=1 PYTHONDONTWRITEBYTECODE=1

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
{
    date -u
    $PY - <<'PY'
import platform, numpy, cupy
print("python", platform.python_version(), "numpy", numpy.__version__, "cupy", cupy.__version__)
print("gpu", cupy.cuda.runtime.getDeviceProperties(0)["name"])
print("runtime", cupy.cuda.runtime.runtimeGetVersion(), "driver", cupy.cuda.runtime.driverGetVersion())
from jitune.runtime import nvrtc
lib = nvrtc.load()
print("nvrtc", lib and lib.path, lib and lib.version)
from jitune.runtime.devices import device_named
print("target", device_named("cuda").target().fingerprint())
import time, numpy as np, jitune
x = cupy.arange(1000, dtype=cupy.float32)
began = time.time()
y = jitune.kernel(lambda a: a * 2 + 1)(x)
cupy.cuda.runtime.deviceSynchronize()
print("smoke: first call", round(time.time() - began, 3), "s; correct:",
      bool((cupy.asnumpy(y) == np.arange(1000, dtype=np.float32) * 2 + 1).all()))
PY
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

echo "== cuda tests (limit ${TESTS_S}s)"
timeout -k 5 "$TESTS_S" $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py \
    --maxfail=10 2>&1 | tee "$OUT/tests.log"
echo "tests exit: ${PIPESTATUS[0]}" | tee -a "$OUT/tests.log"

echo "== benchmarks (limit ${BENCH_S}s)"
timeout -k 5 "$BENCH_S" $PY benchmarks/gpu_bench.py --out "$OUT/gpu_bench.json" \
    --budget $((BENCH_S - 25)) ${BENCH_ARGS:---compile} 2>&1 | tee "$OUT/bench.log"
echo "bench exit: ${PIPESTATUS[0]}" | tee -a "$OUT/bench.log"
