"""jitune against the libraries a user would pick instead, on a table of float32 workloads.

For each workload every implementation is first called once and its result checked against
NumPy's (``rtol=1e-3``, ``atol=1e-4 * max|NumPy|``); one that fails or raises is reported and
not timed. Then all implementations that passed are timed in one run, interleaved: a few
warm-up calls each, then ``rounds`` rounds in which each implementation takes one sample (a
batch of back-to-back calls, enough to last about 20 ms), in an order shuffled anew each
round (seeded), so that drift (clock, other tenants) hits them all alike. Before each
sample the harness pauses (``--settle``, 0.2 s by default) and, for calls shorter than a
sample, makes one untimed call: the BLAS and OpenMP threads of the library sampled before spin
for a while after its calls, and slowed the next library's first 20 ms by 1.3-2x (jitune's
64 x 128^3 batched matmul, called right after NumPy's or PyTorch's; ``--settle 0`` measures
with that interference). Reported: the
median time per call, GFLOP/s (contractions) or GB/s (the rest), the ratio to the fastest peer and to
NumPy, and the percentage of the roofline bound, ``max(FLOPs / peak, bytes / bandwidth)``,
where ``bytes`` counts the inputs read and the output written once, ``peak`` is measured with
an FMA micro-kernel (see :func:`measure_fma_peak`) and ``bandwidth`` with ``np.copyto`` on
64 MB arrays (see :class:`CopyBandwidth`). jitune's compile time is its first call
(disk cache off, so it really compiles) minus the median warm call.

Peers: NumPy (with its BLAS), ``np.einsum(..., optimize=True)`` for einsum workloads, numexpr
for elementwise chains, a plain ``numba.njit(parallel=True)`` loop version (``prange`` over
rows), and PyTorch and JAX on the CPU when they can be imported (skipped with a note
otherwise).

A second experiment times jitune and NumPy on matmul 1024^3 called alternately (each call
follows the other library's call) against each called alone back to back: OpenBLAS's threads
spin for a while after a call and slow whatever runs next on a 2-core machine.

    python benchmarks/harness.py [--quick] [--only NAME[,NAME]] [--rounds N] [--settle S]
                                 [--output PATH]

Writes the table to stdout and everything (all samples, settings, versions, thread counts)
as JSON to ``benchmarks/results/harness.json``.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import glob
import importlib
import json
import math
import os
import platform
import random
import statistics
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np
from machine import cpu_model
from numba import prange
from workloads import bmm_einsum, dense, gelu, layernorm, matmul, scores_einsum, softmax

import jitune

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "harness.json"
RTOL = 1e-3
ATOL_SCALE = 1e-4  # atol = ATOL_SCALE * max|NumPy result| (entries near zero, summation order)
SAMPLE_SECONDS = 0.02  # a sample is a batch of back-to-back calls lasting about this long
MAX_CALLS_PER_SAMPLE = 200
OTHER_LOAD = 0.15  # cores that other processes used during a workload: warn above this
FLOAT32 = np.float32

# -- the computations (workloads.py) and NumPy as a NumPy user would write the einsum ones ---


def bmm_numpy(a, b):
    return a @ b


def scores_numpy(q, k):
    return q @ k.swapaxes(-1, -2)


# -- numba: plain loops, prange over rows (compiled on first use; cache=True keeps the -------
# -- machine code in __pycache__ for the next run) ------------------------------------------


@numba.njit(parallel=True, cache=True)
def matmul_numba(a, b):
    n, kk = a.shape
    m = b.shape[1]
    c = np.zeros((n, m), dtype=a.dtype)
    for i in prange(n):
        for p in range(kk):
            aip = a[i, p]
            for j in range(m):
                c[i, j] += aip * b[p, j]
    return c


@numba.njit(parallel=True, cache=True)
def bmm_numba(a, b):
    nb, n, kk = a.shape
    m = b.shape[2]
    c = np.zeros((nb, n, m), dtype=a.dtype)
    for z in prange(nb):
        for i in range(n):
            for p in range(kk):
                aip = a[z, i, p]
                for j in range(m):
                    c[z, i, j] += aip * b[z, p, j]
    return c


@numba.njit(parallel=True, cache=True)
def dense_numba(x, w, b):
    n, kk = x.shape
    m = w.shape[1]
    y = np.zeros((n, m), dtype=x.dtype)
    for i in prange(n):
        for p in range(kk):
            xip = x[i, p]
            for j in range(m):
                y[i, j] += xip * w[p, j]
        for j in range(m):
            y[i, j] = max(y[i, j] + b[j], 0)
    return y


@numba.njit(parallel=True, cache=True)
def gelu_numba(x):
    y = np.empty_like(x)
    for i in prange(x.shape[0]):
        v = x[i]
        y[i] = 0.5 * v * (1 + np.tanh(0.7978845608 * (v + 0.044715 * v**3)))
    return y


@numba.njit(parallel=True, cache=True)
def softmax_numba(x):
    n, m = x.shape
    y = np.empty_like(x)
    for i in prange(n):
        top = x[i, 0]
        for j in range(1, m):
            top = max(top, x[i, j])
        total = 0.0
        for j in range(m):
            e = np.exp(x[i, j] - top)
            y[i, j] = e
            total += e
        for j in range(m):
            y[i, j] = y[i, j] / total
    return y


@numba.njit(parallel=True, cache=True)
def layernorm_numba(x):
    n, m = x.shape
    y = np.empty_like(x)
    for i in prange(n):
        total = 0.0
        for j in range(m):
            total += x[i, j]
        mean = total / m
        sq = 0.0
        for j in range(m):
            d = x[i, j] - mean
            sq += d * d
        inv = 1.0 / np.sqrt(sq / m + 1e-5)
        for j in range(m):
            y[i, j] = (x[i, j] - mean) * inv
    return y


@numba.njit(parallel=True, cache=True)
def scores_numba(q, k):
    nb, nh, nq, nd = q.shape
    nk = k.shape[2]
    s = np.empty((nb, nh, nq, nk), dtype=q.dtype)
    for bh in prange(nb * nh):
        b, h = bh // nh, bh % nh
        for i in range(nq):
            for j in range(nk):
                acc = 0.0
                for d in range(nd):
                    acc += q[b, h, i, d] * k[b, h, j, d]
                s[b, h, i, j] = acc
    return s


# -- optional peers ---------------------------------------------------------------------------


def _import_optional(name: str) -> tuple[Any, str | None]:
    try:
        return importlib.import_module(name), None
    except Exception as exc:  # ImportError, or a broken install
        return None, f"{type(exc).__name__}: {exc}"


def _numexpr_gelu(ne: Any) -> Callable[[np.ndarray], np.ndarray]:
    # Python float literals are float64 to numexpr and would make the result float64;
    # float32 scalars keep it in float32, as NumPy's promotion does.
    consts = {
        "half": FLOAT32(0.5),
        "one": FLOAT32(1.0),
        "c": FLOAT32(0.7978845608),
        "a": FLOAT32(0.044715),
    }
    return lambda x: ne.evaluate(
        "half * x * (one + tanh(c * (x + a * x**3)))", local_dict={"x": x, **consts}
    )


def _torch_fns(torch: Any) -> dict[str, Callable[..., Any]]:
    fn = torch.nn.functional
    return {
        "matmul": lambda a, b: a @ b,
        "bmm": lambda a, b: torch.einsum("bij,bjk->bik", a, b),
        "dense": lambda x, w, b: torch.relu(x @ w + b),
        "gelu": lambda x: fn.gelu(x, approximate="tanh"),
        "softmax": lambda x: torch.softmax(x, dim=1),
        "layernorm": lambda x: fn.layer_norm(x, (x.shape[-1],), eps=1e-5),
        "scores": lambda q, k: torch.einsum("bhqd,bhkd->bhqk", q, k),
    }


def _jax_fns(jax: Any) -> dict[str, Callable[..., Any]]:
    jnp = jax.numpy

    def layernorm_jax(x):
        mean = x.mean(axis=1, keepdims=True)
        var = x.var(axis=1, keepdims=True)
        return (x - mean) / jnp.sqrt(var + 1e-5)

    fns = {
        "matmul": lambda a, b: a @ b,
        "bmm": lambda a, b: jnp.einsum("bij,bjk->bik", a, b),
        "dense": lambda x, w, b: jax.nn.relu(x @ w + b),
        "gelu": lambda x: jax.nn.gelu(x, approximate=True),
        "softmax": lambda x: jax.nn.softmax(x, axis=1),
        "layernorm": layernorm_jax,
        "scores": lambda q, k: jnp.einsum("bhqd,bhkd->bhqk", q, k),
    }
    return {name: jax.jit(f) for name, f in fns.items()}


# -- workloads --------------------------------------------------------------------------------


@dataclass
class Workload:
    key: str  # what --only matches
    title: str
    family: str  # matmul, bmm, dense, gelu, softmax, layernorm, scores: selects the peers
    shapes: list[tuple[int, ...]]
    scales: list[float]  # standard deviation of each input
    flops: int
    contraction: bool  # rate in GFLOP/s (else GB/s)
    einsum: str | None = None
    inputs: list[np.ndarray] = field(default_factory=list)
    out_bytes: int = 0

    @property
    def in_bytes(self) -> int:
        return sum(math.prod(s) * 4 for s in self.shapes)


def workloads(quick: bool) -> list[Workload]:
    def mm(key: str, n: int) -> Workload:
        return Workload(
            key, f"matmul {n}^3", "matmul", [(n, n), (n, n)], [1, n**-0.5], 2 * n**3, True
        )

    def bmm(key: str, b: int, n: int) -> Workload:
        return Workload(
            key,
            f"bmm {b}x{n}^3",
            "bmm",
            [(b, n, n), (b, n, n)],
            [1, n**-0.5],
            2 * b * n**3,
            True,
            einsum="bij,bjk->bik",
        )

    d = 512 if quick else 1024
    elems = (1 << 21) if quick else (1 << 24)
    rows, cols = (1024, 1024) if quick else (4096, 1024)
    heads = (2, 8, 256, 64) if quick else (8, 8, 256, 64)
    nb, nh, nq, nd = heads
    return [
        mm("matmul512", 256 if quick else 512),
        mm("matmul1024", 512 if quick else 1024),
        mm("matmul2048", 1024 if quick else 2048),
        bmm("bmm16", 1024 if quick else 4096, 16),
        bmm("bmm128", 16 if quick else 64, 128),
        Workload(
            "dense",
            f"relu(x@w+b) {d}^3",
            "dense",
            [(d, d), (d, d), (d,)],
            [1, d**-0.5, 1],
            2 * d**3 + 2 * d * d,
            True,
        ),
        Workload("gelu", f"gelu tanh {elems >> 20}M", "gelu", [(elems,)], [1], 9 * elems, False),
        Workload(
            "softmax",
            f"softmax {rows}x{cols}",
            "softmax",
            [(rows, cols)],
            [3],
            5 * rows * cols,
            False,
        ),
        Workload(
            "layernorm",
            f"layernorm {rows}x{cols}",
            "layernorm",
            [(rows, cols)],
            [1],
            5 * rows * cols,
            False,
        ),
        Workload(
            "scores",
            "scores " + "x".join(map(str, heads)),
            "scores",
            [heads, heads],
            [1, nd**-0.5],
            2 * nb * nh * nq * nq * nd,
            True,
            einsum="bhqd,bhkd->bhqk",
        ),
    ]


NUMPY_FNS: dict[str, Callable[..., Any]] = {
    "matmul": matmul,
    "bmm": bmm_numpy,
    "dense": dense,
    "gelu": gelu,
    "softmax": softmax,
    "layernorm": layernorm,
    "scores": scores_numpy,
}
JITUNE_FNS: dict[str, Callable[..., Any]] = {
    "matmul": matmul,
    "bmm": bmm_einsum,
    "dense": dense,
    "gelu": gelu,
    "softmax": softmax,
    "layernorm": layernorm,
    "scores": scores_einsum,
}
NUMBA_FNS: dict[str, Callable[..., Any]] = {
    "matmul": matmul_numba,
    "bmm": bmm_numba,
    "dense": dense_numba,
    "gelu": gelu_numba,
    "softmax": softmax_numba,
    "layernorm": layernorm_numba,
    "scores": scores_numba,
}
KERNELS = {family: jitune.kernel(name=family)(fn) for family, fn in JITUNE_FNS.items()}
TUNING_BUDGET: Any = None  # --budget: the first call of each jitune kernel tunes with it
OPENCL_KERNELS = {
    family: jitune.kernel(name=f"{family}_opencl")(fn) for family, fn in JITUNE_FNS.items()
}


@dataclass
class Impl:
    label: str
    run: Callable[[], Any]  # one call, synchronous (JAX results are waited for)
    to_numpy: Callable[[Any], np.ndarray] = np.asarray
    kernel: Any = None  # jitune's Kernel, whose tuning the JSON records


def _opencl_impl(w: Workload, queue: Any) -> Impl:
    """jitune's OpenCL backend on ``queue`` (PoCL on this CPU): inputs uploaded once, each
    call waited for, results copied back only for the check."""
    import pyopencl.array as cl_array

    device_args = [cl_array.to_device(queue, a) for a in w.inputs]
    kernel = OPENCL_KERNELS[w.family]

    def run() -> Any:
        out = kernel(*device_args)
        queue.finish()
        return out

    return Impl("jitune-opencl", run, lambda out: out.get())


def implementations(w: Workload, peers: dict[str, Any]) -> list[Impl]:
    args = w.inputs
    impls = [Impl("jitune", lambda: KERNELS[w.family](*args), kernel=KERNELS[w.family])]
    if peers.get("opencl_queue") is not None:
        impls.append(_opencl_impl(w, peers["opencl_queue"]))
    impls.append(Impl("NumPy", lambda: NUMPY_FNS[w.family](*args)))
    if w.einsum is not None:
        spec = w.einsum
        impls.append(Impl("einsum-opt", lambda: np.einsum(spec, *args, optimize=True)))
    if w.family == "gelu" and peers.get("numexpr") is not None:
        impls.append(Impl("numexpr", lambda: peers["numexpr_gelu"](*args)))
    impls.append(Impl("numba", lambda: NUMBA_FNS[w.family](*args)))
    torch = peers.get("torch")
    if torch is not None:
        targs = [torch.from_numpy(a) for a in args]
        tfn = peers["torch_fns"][w.family]
        impls.append(Impl("torch", lambda: tfn(*targs), lambda t: t.numpy()))
    jax = peers.get("jax")
    if jax is not None:
        jargs = [jax.device_put(a) for a in args]
        jfn = peers["jax_fns"][w.family]
        impls.append(Impl("jax", lambda: jfn(*jargs).block_until_ready()))
    return impls


# -- the machine's roofline -------------------------------------------------------------------


class CopyBandwidth:
    """``np.copyto`` of a 64 MB float32 array into another, bytes read + bytes written.

    Timed on one thread and on every core (each thread copying its own slice), in bursts:
    one at the start, and a short one before each workload, so that the figure stands for the
    whole run rather than one moment (on this shared VM it swings 15-45 GB/s from minute to
    minute). The bandwidth is the median over all bursts of the better of the two ways.
    Write-allocate traffic (reading the destination's lines before writing them) is not
    counted, so this is what a kernel that reads its inputs and writes its output once can
    hope for. The 128 MB touched per copy may partly stay in a large last-level cache (this
    VM reports 300 MB of L3, shared with other tenants), so this is not DRAM bandwidth.
    """

    def __init__(self) -> None:
        n = 16 << 20
        self.src = np.ones(n, dtype=FLOAT32)
        self.dst = np.zeros(n, dtype=FLOAT32)
        self.threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        self.bounds = [n * t // self.threads for t in range(self.threads + 1)]
        self.times: dict[str, list[float]] = {"one_thread": [], "all_threads": []}
        for _ in range(5):  # untimed: page faults, huge pages, caches, thread start-up
            self._one()
            self._parallel()

    def _one(self) -> float:
        t0 = time.perf_counter()
        np.copyto(self.dst, self.src)
        return time.perf_counter() - t0

    def _parallel(self) -> float:
        workers = [
            threading.Thread(target=np.copyto, args=(self.dst[lo:hi], self.src[lo:hi]))
            for lo, hi in zip(self.bounds, self.bounds[1:])
        ]
        t0 = time.perf_counter()
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        return time.perf_counter() - t0

    def sample(self, repeats: int) -> None:
        for _ in range(repeats):
            self.times["one_thread"].append(self._one())
            self.times["all_threads"].append(self._parallel())

    def result(self) -> dict[str, Any]:
        nbytes = 2 * self.src.nbytes
        rates = {k: nbytes / statistics.median(v) / 1e9 for k, v in self.times.items()}
        return {
            "method": "np.copyto, 64 MB float32 -> 64 MB, read+write bytes / median time, "
            "copies in bursts through the run",
            "one_thread_GBps": rates["one_thread"],
            "all_threads_GBps": rates["all_threads"],
            "best_all_threads_GBps": nbytes / min(self.times["all_threads"]) / 1e9,
            "threads": self.threads,
            "GBps": max(rates.values()),
            "samples_s": self.times,
        }


def _fma_ir(lanes: int, accumulators: int) -> str:
    vec = f"<{lanes} x float>"
    fma = f"@llvm.fma.v{lanes}f32"
    mul = f"{vec} <{', '.join(['float 0x3FEFFFFFE0000000'] * lanes)}>"  # 1 - 2^-24
    add = f"{vec} <{', '.join(['float 0x3F50624DE0000000'] * lanes)}>"  # about 0.001
    lines = [
        f"declare {vec} {fma}({vec}, {vec}, {vec})",
        "define float @fma_loop(i64 %n) #0 {",
        "entry:",
        "  br label %loop",
        "loop:",
        "  %i = phi i64 [0, %entry], [%i.next, %loop]",
    ]
    lines += [
        f"  %a{j} = phi {vec} [zeroinitializer, %entry], [%b{j}, %loop]"
        for j in range(accumulators)
    ]
    lines += [f"  %b{j} = call {vec} {fma}({vec} %a{j}, {mul}, {add})" for j in range(accumulators)]
    lines += [
        "  %i.next = add i64 %i, 1",
        "  %more = icmp ult i64 %i.next, %n",
        "  br i1 %more, label %loop, label %done",
        "done:",
    ]
    total = "%b0"
    for j in range(1, accumulators):
        lines.append(f"  %s{j} = fadd {vec} {total}, %b{j}")
        total = f"%s{j}"
    lines += [f"  %r = extractelement {vec} {total}, i32 0", "  ret float %r", "}"]
    width = 32 * lanes
    lines.append(
        f'attributes #0 = {{ "min-legal-vector-width"="{width}" "prefer-vector-width"="{width}" }}'
    )
    return "\n".join(lines)


def measure_fma_peak(repeats: int) -> dict[str, Any]:
    """Float32 FMA throughput of a loop of independent vector FMAs, built with llvmlite.

    The loop keeps 16 accumulators of 8 (AVX2) or 16 (AVX-512) floats in registers, each
    updated by one ``llvm.fma`` per iteration (16 independent chains hide the FMA latency),
    and touches no memory. It runs on one thread and on every core at once (ctypes releases
    the GIL), ``repeats`` runs each. The peak is the best run of the best configuration:
    interference (other tenants of the host, a vCPU sharing a physical core for a while) only
    ever slows a run down, so the fastest run is the closest to what the FMA units sustain at
    the clock they run at. No real kernel reaches it.
    """
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    cpu = llvm.get_host_cpu_name()
    features = llvm.get_host_cpu_features().flatten()
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    accumulators = 16
    lane_options = [8, 16] if "+avx512f" in features.split(",") else [8]
    results: dict[str, Any] = {"cpu": cpu, "accumulators": accumulators, "runs": []}
    best = 0.0
    for lanes in lane_options:
        module = llvm.parse_assembly(_fma_ir(lanes, accumulators))
        module.verify()
        machine = llvm.Target.from_default_triple().create_target_machine(
            cpu=cpu, features=features, opt=3
        )
        engine = llvm.create_mcjit_compiler(module, machine)
        engine.finalize_object()
        loop = ctypes.CFUNCTYPE(ctypes.c_float, ctypes.c_int64)(
            engine.get_function_address("fma_loop")
        )
        flops_per_iter = 2 * lanes * accumulators
        t0 = time.perf_counter()
        loop(1 << 20)
        per_iter = (time.perf_counter() - t0) / (1 << 20)
        iters = max(1 << 16, int(0.05 / max(per_iter, 1e-12)))  # about 50 ms per run

        for nthreads in sorted({1, threads}):

            def run(nthreads: int = nthreads, loop: Any = loop, iters: int = iters) -> float:
                workers = [threading.Thread(target=loop, args=(iters,)) for _ in range(nthreads)]
                t0 = time.perf_counter()
                for t in workers:
                    t.start()
                for t in workers:
                    t.join()
                return time.perf_counter() - t0

            times = [run() for _ in range(repeats)]
            flops = nthreads * iters * flops_per_iter
            results["runs"].append(
                {
                    "lanes": lanes,
                    "threads": nthreads,
                    "GFLOPs": flops / min(times) / 1e9,
                    "median_GFLOPs": flops / statistics.median(times) / 1e9,
                    "samples_s": times,
                }
            )
            best = max(best, flops / min(times))
        del engine
    results["GFLOPs"] = best / 1e9
    results["method"] = (
        f"llvmlite loop of {accumulators} independent <lanes x float> llvm.fma chains "
        "(no memory traffic), 1 thread and every core; best run of the best configuration"
    )
    return results


# -- timing -----------------------------------------------------------------------------------


class CpuMonitor:
    """CPU time the rest of the machine used while we ran, from /proc/stat (Linux only).

    ``other_cores`` is (all busy CPU time - this process's CPU time) / wall time: 0.0 means
    we had the machine to ourselves, 1.0 means another process kept a whole core busy (on a
    2-core machine that halves what a 2-thread library gets and stalls its thread handoffs).
    ``steal_cores`` is time the hypervisor gave our vCPUs to someone else.
    """

    def __init__(self) -> None:
        self.hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def snapshot(self) -> tuple[float, float, float, float] | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
        own = os.times()
        return (
            time.perf_counter(),
            (user + nice + system + irq + softirq) / self.hz,
            steal / self.hz,
            own.user + own.system,
        )

    def since(self, start: tuple[float, float, float, float] | None) -> dict[str, float] | None:
        end = self.snapshot()
        if start is None or end is None or end[0] <= start[0]:
            return None
        wall = end[0] - start[0]
        return {
            "other_cores": max(0.0, (end[1] - start[1]) - (end[3] - start[3])) / wall,
            "steal_cores": (end[2] - start[2]) / wall,
        }


MONITOR = CpuMonitor()


def _timed(fn: Callable[[], Any], number: int = 1) -> float:
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def check(impl: Impl, expected: np.ndarray) -> dict[str, Any]:
    """Call once (jitune compiles here: disk cache off) and compare with NumPy's result."""
    compiles = _jitune_compiles()
    tuning = {} if TUNING_BUDGET is None else {"budget": TUNING_BUDGET}
    try:
        with jitune.config.override(disable_cache=True, **tuning):
            t0 = time.perf_counter()
            out = impl.run()
            first = time.perf_counter() - t0
        got = impl.to_numpy(out)
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:200]}
    row: dict[str, Any] = {"first_call_ms": 1e3 * first}
    if impl.label.startswith("jitune"):
        row["compiled"] = _jitune_compiles() - compiles
        row["tuning_budget"] = str(TUNING_BUDGET or jitune.config.get().budget)
        tuned = impl.kernel.last.tuned if impl.kernel is not None and impl.kernel.last else None
        if tuned is not None:
            row["tuned"] = {"how": tuned.how, "config": str(tuned.config)}
    if got.shape != expected.shape or got.dtype != expected.dtype:
        row.update(
            ok=False,
            error=f"returned {got.dtype}{list(got.shape)}, NumPy "
            f"{expected.dtype}{list(expected.shape)}",
        )
        return row
    scale = float(np.max(np.abs(expected))) or 1.0
    err = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    row["max_rel_err"] = float(np.max(err)) / scale
    row["ok"] = bool(np.all(err <= RTOL * np.abs(expected) + ATOL_SCALE * scale))
    if not row["ok"]:
        bad = int(np.count_nonzero(err > RTOL * np.abs(expected) + ATOL_SCALE * scale))
        row["error"] = (
            f"{bad} elements outside tolerance, max |err| / max|NumPy| = {row['max_rel_err']:.1e}"
        )
    return row


def _jitune_compiles() -> int:
    return sum(k.compile_count for k in KERNELS.values())


def run_workload(
    w: Workload, peers: dict[str, Any], rounds: int, warmup: int, settle: float
) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    w.inputs = [
        (s * rng.standard_normal(shape)).astype(FLOAT32) for shape, s in zip(w.shapes, w.scales)
    ]
    impls = implementations(w, peers)
    expected = NUMPY_FNS[w.family](*w.inputs)
    w.out_bytes = expected.nbytes
    rows: dict[str, dict[str, Any]] = {}
    timed: list[Impl] = []
    for impl in impls:
        rows[impl.label] = check(impl, expected)
        if rows[impl.label]["ok"]:
            timed.append(impl)
        else:
            print(f"  {w.key}: {impl.label} FAILED its check: {rows[impl.label]['error']}")

    numbers: dict[str, int] = {}
    for impl in timed:  # warm-up, then as many calls per sample as last ~SAMPLE_SECONDS
        warm = [_timed(impl.run) for _ in range(warmup)]
        per_call = statistics.median(warm)
        numbers[impl.label] = max(1, min(MAX_CALLS_PER_SAMPLE, round(SAMPLE_SECONDS / per_call)))
        rows[impl.label]["warmup_ms"] = [1e3 * t for t in warm]

    samples: dict[str, list[float]] = {impl.label: [] for impl in timed}
    for r in range(rounds):
        for impl in random.Random(r).sample(timed, len(timed)):
            if settle:
                time.sleep(settle)  # lets the previous library's threads stop spinning
            if numbers[impl.label] > 1:  # calls shorter than a sample: the switch from the
                impl.run()  # previous library (cold caches, its threads) is not counted
            samples[impl.label].append(_timed(impl.run, numbers[impl.label]))

    for impl in timed:
        row = rows[impl.label]
        xs = samples[impl.label]
        med = statistics.median(xs)
        q = statistics.quantiles(xs, n=4) if len(xs) >= 2 else [med, med, med]
        row.update(
            calls_per_sample=numbers[impl.label],
            samples_ms=[1e3 * x for x in xs],
            median_ms=1e3 * med,
            iqr_pct=100 * (q[2] - q[0]) / med,
            GFLOPs=w.flops / med / 1e9,
            GBps=(w.in_bytes + w.out_bytes) / med / 1e9,
        )
        if impl.label.startswith("jitune") and row.get("compiled"):
            row["compile_ms"] = row["first_call_ms"] - row["median_ms"]
    return {
        "title": w.title,
        "family": w.family,
        "shapes": [list(s) for s in w.shapes],
        "flops": w.flops,
        "bytes": w.in_bytes + w.out_bytes,
        "contraction": w.contraction,
        "impls": rows,
    }


def finish(result: dict[str, Any], peak: float, bandwidth: float) -> None:
    """Add ratios and roofline percentages (peak in FLOP/s, bandwidth in B/s)."""
    rows = result["impls"]
    times = {label: r["median_ms"] for label, r in rows.items() if "median_ms" in r}
    peers = {label: t for label, t in times.items() if not label.startswith("jitune")}
    best_peer = min(peers, key=peers.__getitem__) if peers else None
    bound_s = max(result["flops"] / peak, result["bytes"] / bandwidth)
    result["best_peer"] = best_peer
    result["roofline_ms"] = 1e3 * bound_s
    result["roofline_limit"] = (
        "compute" if result["flops"] / peak >= result["bytes"] / bandwidth else "memory"
    )
    numpy_samples = rows.get("NumPy", {}).get("samples_ms")
    for label, t in times.items():
        row = rows[label]
        row["vs_best_peer"] = t / peers[best_peer] if best_peer else None
        row["vs_numpy"] = t / times["NumPy"] if "NumPy" in times else None
        # the median of the rounds' own ratios: a slow spell of the machine slows both
        # samples of a round, so this moves less with the spells than the ratio of medians
        row["vs_numpy_paired"] = (
            statistics.median(x / y for x, y in zip(row["samples_ms"], numpy_samples))
            if numpy_samples
            else None
        )
        row["roofline_pct"] = 100 * 1e3 * bound_s / t


def alternation(w: Workload, blocks: int, calls: int) -> dict[str, Any]:
    """jitune and NumPy on one matmul: strictly alternating calls against each alone.

    Three kinds of block, ``calls`` calls each, in a rotating order, ``blocks`` times over:
    jitune and NumPy alternating call by call; jitune alone back to back; NumPy alone back
    to back (after one untimed call, which follows the other library's). Short blocks, many
    times over, so that the machine's slow and fast spells fall on all three alike.
    """
    rng = np.random.default_rng(1)
    a, b = [
        (s * rng.standard_normal(shape)).astype(FLOAT32) for shape, s in zip(w.shapes, w.scales)
    ]
    kernel = KERNELS["matmul"]
    fns = {"jitune": lambda: kernel(a, b), "NumPy": lambda: a @ b}
    for fn in fns.values():
        for _ in range(3):
            fn()
    times: dict[str, list[float]] = {
        "jitune alternating": [],
        "NumPy alternating": [],
        "jitune alone": [],
        "NumPy alone": [],
    }

    def alternating() -> None:
        for _ in range(calls):
            times["jitune alternating"].append(_timed(fns["jitune"]))
            times["NumPy alternating"].append(_timed(fns["NumPy"]))

    def alone(label: str) -> Callable[[], None]:
        def go() -> None:
            fns[label]()  # lead-in, untimed: it follows the other library's call
            for _ in range(calls):
                times[f"{label} alone"].append(_timed(fns[label]))

        return go

    plan = [alternating, alone("jitune"), alone("NumPy")]
    for blk in range(blocks):
        for step in plan[blk % 3 :] + plan[: blk % 3]:
            step()
    return {
        "workload": w.title,
        "blocks": blocks,
        "calls_per_block": calls,
        "median_ms": {k: 1e3 * statistics.median(v) for k, v in times.items()},
        "samples_ms": {k: [1e3 * x for x in v] for k, v in times.items()},
    }


# -- reporting --------------------------------------------------------------------------------


def _openblas_threads() -> int | None:
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__) + ".libs", "*openblas*"))
    for path in libs:
        lib = ctypes.CDLL(path)
        for symbol in (
            "scipy_openblas_get_num_threads64_",
            "openblas_get_num_threads64_",
            "openblas_get_num_threads",
        ):
            fn = getattr(lib, symbol, None)
            if fn is not None:
                fn.restype = ctypes.c_int
                return int(fn())
    return None


def _opencl_queue() -> tuple[Any, str | None]:
    """A queue on the first OpenCL CPU device that builds programs, or (None, why not)."""
    cl, why = _import_optional("pyopencl")
    if cl is None:
        return None, why
    from jitune.runtime.opencl import unavailable_reason, working_devices

    for device in working_devices():
        if device.type & cl.device_type.CPU:
            return cl.CommandQueue(cl.Context([device])), None
    return None, f"no OpenCL CPU device that builds programs ({unavailable_reason()})"


def load_peers() -> tuple[dict[str, Any], list[str]]:
    """numexpr, PyTorch and JAX where they import; a note for each one that does not."""
    peers: dict[str, Any] = {}
    notes: list[str] = []
    ne, why = _import_optional("numexpr")
    if ne is None:
        notes.append(f"numexpr skipped ({why})")
    else:
        peers.update(numexpr=ne, numexpr_gelu=_numexpr_gelu(ne))
    torch, why = _import_optional("torch")
    if torch is None:
        notes.append(f"PyTorch skipped ({why})")
    else:
        peers.update(torch=torch, torch_fns=_torch_fns(torch))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jax, why = _import_optional("jax")
    if jax is None:
        notes.append(f"JAX skipped ({why})")
    else:
        try:
            jax.config.update("jax_platforms", "cpu")
            peers.update(jax=jax, jax_fns=_jax_fns(jax))
        except Exception as exc:
            notes.append(f"JAX skipped ({type(exc).__name__}: {exc})")
    return peers, notes


def thread_counts(peers: dict[str, Any], ran_numba: bool) -> dict[str, Any]:
    ne, torch, jax = peers.get("numexpr"), peers.get("torch"), peers.get("jax")
    return {
        "jitune": jitune.config.threads(),
        "numpy_openblas": _openblas_threads(),
        "numba": numba.get_num_threads(),
        "numba_threading_layer": numba.threading_layer() if ran_numba else None,
        "numexpr": ne.get_num_threads() if ne is not None else None,
        "torch": torch.get_num_threads() if torch is not None else None,
        "torch_interop": torch.get_num_interop_threads() if torch is not None else None,
        "jax": "XLA CPU default: a thread pool of one thread per core" if jax else None,
    }


def choose_peak(fma: dict[str, Any], results: dict[str, dict[str, Any]]) -> tuple[float, str]:
    """The FLOP/s peak for the roofline, and where it came from.

    The micro-kernel's figure, raised to the best rate any implementation reached if that is
    higher (the micro-kernel then ran slow); without a micro-kernel figure, the best rate any
    implementation reached on the largest matmul, a lower bound of the true peak.
    """
    rates = {
        key: max((r["GFLOPs"] for r in res["impls"].values() if "GFLOPs" in r), default=0.0)
        for key, res in results.items()
        if res["contraction"]
    }
    best_seen = max(rates.values(), default=0.0)
    if fma.get("GFLOPs"):
        if best_seen > fma["GFLOPs"]:
            return best_seen, "best rate an implementation reached, above the micro-kernel's"
        return fma["GFLOPs"], "FMA micro-kernel"
    matmuls = [key for key in rates if key.startswith("matmul")]
    if matmuls:
        return rates[matmuls[-1]], "LOWER BOUND: best rate on the largest matmul (no micro-kernel)"
    return best_seen, "LOWER BOUND: best rate on any contraction (no micro-kernel)"


def print_table(results: dict[str, dict[str, Any]]) -> None:
    header = (
        f"{'workload':<22} {'impl':<13} {'ms':>8} {'IQR%':>5} {'rate':>12} "
        f"{'/best peer':>10} {'/NumPy':>7} {'paired':>7} {'%roof':>6} {'compile ms':>10}  check"
    )
    print(header)
    print("-" * len(header))
    for res in results.values():
        for n, (label, row) in enumerate(res["impls"].items()):
            name = res["title"] if n == 0 else ""
            if "median_ms" not in row:
                print(f"{name:<22} {label:<13} {'-':>8} {'':>62}  FAIL: {row.get('error', '?')}")
                continue
            if res["contraction"]:
                rate = f"{row['GFLOPs']:7.1f} GF/s"
            else:
                rate = f"{row['GBps']:7.1f} GB/s"
            best = "" if row["vs_best_peer"] is None else f"{row['vs_best_peer']:.2f}x"
            vs_np = "" if row["vs_numpy"] is None else f"{row['vs_numpy']:.2f}x"
            paired = "" if row["vs_numpy_paired"] is None else f"{row['vs_numpy_paired']:.2f}x"
            compile_ms = f"{row['compile_ms']:.0f}" if "compile_ms" in row else ""
            mark = "  <- best peer" if label == res["best_peer"] else ""
            print(
                f"{name:<22} {label:<13} {row['median_ms']:8.2f} {row['iqr_pct']:5.0f} "
                f"{rate:>12} {best:>10} {vs_np:>7} {paired:>7} {row['roofline_pct']:5.0f}% "
                f"{compile_ms:>10}  ok{mark}"
            )


def print_report(report: dict[str, Any]) -> None:
    roof, env = report["roofline"], report["environment"]
    bw, fma, th = roof["bandwidth"], roof["fma_peak"], env["threads"]
    print()
    print(
        f"float32; median per call over {report['rounds']} interleaved rounds after "
        f"{report['warmup_calls']} warm-up calls"
        + (f", {report['settle_s']} s pause before each sample" if report["settle_s"] else "")
        + f"; checked against NumPy (rtol {RTOL:g}, atol {ATOL_SCALE:g} x max|NumPy|)"
    )
    print(
        f"bandwidth {roof['bandwidth_GBps_used']:.1f} GB/s: np.copyto 64 MB, read + write, "
        "median through the run "
        f"(1 thread {bw['one_thread_GBps']:.1f}, {bw['threads']} threads "
        f"{bw['all_threads_GBps']:.1f})"
    )
    runs = ", ".join(
        f"{r['lanes'] * 32}-bit x{r['threads']} {r['GFLOPs']:.0f}" for r in fma.get("runs", [])
    )
    print(
        f"peak {roof['peak_GFLOPs_used']:.0f} GFLOP/s: {roof['peak_source']}"
        + (f" (FMA loop, vector bits x threads: {runs})" if runs else "")
    )
    print(
        f"threads: jitune {th['jitune']}, NumPy/OpenBLAS {th['numpy_openblas']}, numba "
        f"{th['numba']} ({th['numba_threading_layer']}), numexpr {th['numexpr']}, torch "
        f"{th['torch']}, JAX {'XLA default' if th['jax'] else None}"
    )
    print(
        "rate: GFLOP/s for contractions, else GB/s (inputs read + output written once); "
        "/NumPy: median / NumPy's median; paired: median over rounds of the round's time / "
        "NumPy's in that round; %roof: roofline bound / time; compile: jitune's first call - "
        "a warm call"
    )
    print()
    results = report["workloads"]
    print_table(results)
    if any(
        r.get("roofline_pct", 0) > 100 for res in results.values() for r in res["impls"].values()
    ):
        print(
            "%roof above 100: the data stayed in cache between calls, where it moves faster "
            "than in the 64 MB copy"
        )
    alt = report["alternation"]
    if alt is not None:
        m = alt["median_ms"]
        print()
        print(
            f"{alt['workload']}, jitune and NumPy called alternately vs each alone back to back "
            f"({alt['blocks']} blocks x {alt['calls_per_block']} calls, median ms per call):"
        )
        for lib, other in (("jitune", "NumPy"), ("NumPy", "jitune")):
            solo, mixed = m[f"{lib} alone"], m[f"{lib} alternating"]
            print(
                f"  {lib:<7} alone {solo:7.2f}   alternating with {other:<6} {mixed:7.2f}"
                f"   ({mixed / solo:.2f}x)"
            )
    for note in report["notes"]:
        print(f"note: {note}")
    if report["failed_checks"]:
        print(f"failed checks (not timed): {', '.join(report['failed_checks'])}")
    print(
        f"total {report['total_seconds']:.0f} s; load average before "
        f"{env['load_average_before'][0]:.2f}, after {env['load_average_after'][0]:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    began = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated workload names or prefixes: matmul512 matmul1024 matmul2048 "
        "bmm16 bmm128 dense gelu softmax layernorm scores alternation",
    )
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per workload")
    parser.add_argument(
        "--settle",
        type=float,
        default=0.2,
        help="seconds to pause before each sample, so that the previous library's threads "
        "stop spinning (default 0.2; 0: each sample right after the previous library's)",
    )
    parser.add_argument(
        "--budget",
        default=None,
        help="tune each jitune kernel first with this JITUNE_BUDGET (trials or seconds); "
        "default: the environment's budget, spent on the first call",
    )
    parser.add_argument(
        "--opencl",
        action="store_true",
        help="add jitune's OpenCL backend on the first OpenCL CPU device (PoCL) as a column",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON file to write")
    args = parser.parse_args(argv)

    rounds = args.rounds or (3 if args.quick else 25)
    warmup = 1 if args.quick else 3
    table = workloads(args.quick)
    names = [w.key for w in table] + ["alternation"]
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in wanted if not any(n.startswith(s) for n in names)]
    if unknown:
        parser.error(f"unknown workload {', '.join(unknown)}; known: {' '.join(names)}")

    def selected(name: str) -> bool:
        return not wanted or any(name.startswith(s) for s in wanted)

    load_before = os.getloadavg()
    print(
        f"jitune {jitune.__version__}, NumPy {np.__version__}, numba {numba.__version__}; "
        f"{cpu_model()}, {os.cpu_count()} CPUs; load average {load_before[0]:.2f}"
    )
    cpu0 = MONITOR.snapshot()
    time.sleep(1.0)
    idle = MONITOR.since(cpu0)
    if idle and idle["other_cores"] > OTHER_LOAD:
        print(f"note: other processes use {idle['other_cores']:.2f} cores: timings will be noisy")
    peers, notes = load_peers()
    if args.opencl:
        peers["opencl_queue"], why = _opencl_queue()
        if why:
            notes.append(f"jitune-opencl skipped ({why})")
    global TUNING_BUDGET
    if args.budget is not None:
        TUNING_BUDGET = jitune.config.parse_budget(args.budget, "--budget")
    for note in notes:
        print(f"note: {note}")

    print("measuring the roofline ...", flush=True)
    copies = CopyBandwidth()
    copies.sample(repeats=5 if args.quick else 10)
    try:
        fma = measure_fma_peak(repeats=3 if args.quick else 7)
    except Exception as exc:
        fma = {"error": f"{type(exc).__name__}: {exc}", "GFLOPs": None}
        print(f"note: FMA peak not measured ({fma['error']})")

    results: dict[str, dict[str, Any]] = {}
    for w in table:
        if not selected(w.key):
            continue
        print(f"  {w.key}: {w.title} ...", flush=True)
        copies.sample(repeats=2)
        t0, cpu0 = time.perf_counter(), MONITOR.snapshot()
        results[w.key] = run_workload(w, peers, rounds, warmup, args.settle)
        results[w.key]["seconds"] = time.perf_counter() - t0
        results[w.key]["machine_load"] = MONITOR.since(cpu0)

    bandwidth = copies.result()
    del copies
    peak_gflops, peak_source = choose_peak(fma, results)
    for res in results.values():
        finish(res, peak_gflops * 1e9, bandwidth["GBps"] * 1e9)

    alt = None
    if selected("alternation"):
        w = next(x for x in table if x.key == "matmul1024")
        print(f"  alternation: {w.title} ...", flush=True)
        cpu0 = MONITOR.snapshot()
        alt = alternation(w, blocks=4 if args.quick else 10, calls=6 if args.quick else 10)
        alt["machine_load"] = MONITOR.since(cpu0)

    busy = {key: res["machine_load"] for key, res in results.items()}
    if alt is not None:
        busy["alternation"] = alt["machine_load"]
    noisy = {k: v["other_cores"] for k, v in busy.items() if v and v["other_cores"] > OTHER_LOAD}
    if noisy:
        notes.append(
            "other processes kept cores busy during "
            + ", ".join(f"{k} ({v:.2f} cores)" for k, v in noisy.items())
            + ": those timings are suspect"
        )
    elif any(busy.values()):
        worst = max(v["other_cores"] for v in busy.values() if v)
        notes.append(f"other processes used at most {worst:.2f} cores during any workload")
    failed = [
        f"{key}/{label}"
        for key, res in results.items()
        for label, row in res["impls"].items()
        if not row["ok"]
    ]
    report = {
        "benchmark": "harness",
        "quick": args.quick,
        "rounds": rounds,
        "warmup_calls": warmup,
        "settle_s": args.settle,
        "sample_seconds": SAMPLE_SECONDS,
        "check": {"rtol": RTOL, "atol": f"{ATOL_SCALE} * max|NumPy result|"},
        "roofline": {
            "bandwidth": bandwidth,
            "fma_peak": fma,
            "peak_GFLOPs_used": peak_gflops,
            "peak_source": peak_source,
            "bandwidth_GBps_used": bandwidth["GBps"],
        },
        "workloads": results,
        "alternation": alt,
        "notes": notes,
        "failed_checks": failed,
        "total_seconds": time.perf_counter() - began,
        "environment": {
            "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "versions": {
                "jitune": jitune.__version__,
                "numpy": np.__version__,
                "numba": numba.__version__,
                **{
                    name: getattr(peers.get(name), "__version__", None)
                    for name in ("numexpr", "torch", "jax")
                },
            },
            "threads": thread_counts(peers, ran_numba=bool(results)),
            "platform": platform.platform(),
            "cpu": cpu_model(),
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "other_cores_at_start": idle and idle["other_cores"],
            "load_average_after": os.getloadavg(),
            "env": {
                k: v
                for k, v in os.environ.items()
                if k.startswith(
                    ("JITUNE_", "OMP_", "OPENBLAS_", "MKL_", "NUMBA_", "NUMEXPR_", "XLA_")
                )
            },
        },
    }
    print_report(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 1 if any(f.endswith("/jitune") for f in failed) else 0  # a peer failing is news only


if __name__ == "__main__":
    sys.exit(main())
