#!/usr/bin/env bash
# The OpenCL backend on an NVIDIA GPU: pyopencl through the driver's OpenCL library, the
# OpenCL tests, then the OpenCL benchmark beside CuPy; results under $OUT (default
# ./gpu_out): opencl_env.txt, opencl_tests.log, opencl_bench.log, opencl_bench.json.
#
#     bash benchmarks/opencl_gpu_check.sh     # from the repository root, on a GPU machine
#
# Works offline: wheels the machine lacks are taken from ./.whl (diskcache, platformdirs,
# xgboost) and ./.oclwhl (pyopencl, pytools, siphash24). When the driver installed no ICD
# file, one is written that names the driver's libnvidia-opencl.so. About 300 s at most.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
TESTS_S=${TESTS_S:-110}
BENCH_S=${BENCH_S:-170}
PY=${PYTHON:-python3}

wheels=$(ls .whl/*.whl .oclwhl/*.whl 2>/dev/null)
if [[ -n "$wheels" ]]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site $wheels && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1 JITUNE_BUDGET=0 JITUNE_DISABLE_CACHE=1 PYTHONDONTWRITEBYTECODE=1

if [[ -z "${OCL_ICD_VENDORS:-}" && ! -e /etc/OpenCL/vendors/nvidia.icd ]]; then
    library=$(find / -xdev \( -name 'libnvidia-opencl.so.1' -o -name 'libnvidia-opencl.so' \) \
        2>/dev/null | head -n 1)
    if [[ -z "$library" ]]; then
        library=$(find / \( -name 'libnvidia-opencl.so.1' -o -name 'libnvidia-opencl.so' \) \
            2>/dev/null | head -n 1)
    fi
    mkdir -p /tmp/icd && echo "$library" > /tmp/icd/nvidia.icd
    export OCL_ICD_VENDORS=/tmp/icd
fi

{
    date -u
    echo "OCL_ICD_VENDORS=${OCL_ICD_VENDORS:-} ($(cat "${OCL_ICD_VENDORS:-/dev/null}"/*.icd 2>/dev/null))"
    $PY - <<'PY'
import pyopencl as cl
for p in cl.get_platforms():
    for d in p.get_devices():
        print(p.name, p.version, "|", d.name, "|", d.version, "| driver", d.driver_version,
              "| max work-group", d.max_work_group_size, "| local mem", d.local_mem_size)
PY
} > "$OUT/opencl_env.txt" 2>&1
cat "$OUT/opencl_env.txt"

echo "== opencl tests (limit ${TESTS_S}s)"
timeout -k 5 "$TESTS_S" $PY -m pytest -q -p no:cacheprovider tests/test_opencl.py \
    --maxfail=10 2>&1 | tee "$OUT/opencl_tests.log"
echo "tests exit: ${PIPESTATUS[0]}" | tee -a "$OUT/opencl_tests.log"

echo "== opencl benchmark (limit ${BENCH_S}s)"
timeout -k 5 "$BENCH_S" $PY benchmarks/opencl_bench.py --device gpu --budget "${BUDGET:-12}" \
    --rounds 5 --out "$OUT/opencl_bench.json" 2>&1 | tee "$OUT/opencl_bench.log"
echo "bench exit: ${PIPESTATUS[0]}" | tee -a "$OUT/opencl_bench.log"
