"""Obtaining the machine code of one traced signature: from the disk cache, or by tuning and
compiling it (under the cache's build lock, so concurrent processes build it once) and storing
it."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from .. import config
from ..cache import SCHEMA_VERSION, Artifact, CacheKey, open_store
from ..cache.key import describe_signature, signature_of
from ..errors import UnsupportedOperation
from ..ir.compute import BufferLayout, loop_nest_key
from ..ir.graph import GraphOp
from ..ir.key import structural_key
from ..lower.fuse import is_reduction
from ..pipeline import Lowered, compute_program, lower_graph
from ..runtime.base import Device, Program
from ..runtime.interp import GraphProgram
from ..schedule.space import Config
from ..tune import TuneOptions, TuneResult, TuneTask, tune
from ..tune.records import RecordBook
from ..tune.space import from_json, join, split, to_json
from ..version import __version__, code_fingerprint
from .trace import ArgSpec, Traced

log = logging.getLogger("jitune.cache")

How = Literal["compiled", "loaded", "interpreted"]
DEFAULT_CONFIG = {"schedule": "default"}


@dataclasses.dataclass(frozen=True)
class LaunchPlan(BufferLayout):
    """A binary's buffer layout (``ir.compute.BufferLayout``), as the cache stores it."""

    def to_json(self) -> dict[str, Any]:
        return {
            "buffer_count": self.buffer_count,
            "allocations": [[list(shape), dtype] for shape, dtype in self.allocations],
            "results": list(self.results),
            "written": list(self.written),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LaunchPlan:
        return cls(
            int(data["buffer_count"]),
            tuple(
                (tuple(int(d) for d in shape), str(dtype)) for shape, dtype in data["allocations"]
            ),
            tuple(int(k) for k in data["results"]),
            tuple(int(k) for k in data.get("written", ())),
        )


@dataclasses.dataclass(frozen=True)
class Obtained:
    program: Program
    plan: LaunchPlan
    how: How
    seconds: float
    lowered: Lowered | None  # None when the binary came from the cache
    tuned: TuneResult | None = None  # what tuning chose (None: loaded, or not tuned)
    complete: bool = True  # False after an interrupted tuning: not stored, tuned again later


def cache_key(traced: Traced, specs: Sequence[ArgSpec], device: Device) -> CacheKey:
    settings = config.get()
    return CacheKey(
        graph=structural_key(traced.graph),
        signature=signature_of(specs),
        target=device.target().fingerprint(),
        knobs=(("parallel_min_work", settings.parallel_min_work),),
        version=f"{__version__}+{code_fingerprint()}",
    )


def _compile(
    traced: Traced,
    specs: Sequence[ArgSpec],
    device: Device,
    key: CacheKey,
    name: str,
    how: str,
    configs: dict[str, Config] | None = None,
    tuned: TuneResult | None = None,
) -> tuple[Artifact, Lowered]:
    began = time.perf_counter()
    lowered = lower_graph(traced.graph, [s.strides for s in specs], device, configs)
    binary = device.compile(lowered.source)
    meta = {
        "schema": SCHEMA_VERSION,
        "key": key.digest,
        "kernel": name,
        "signature": describe_signature(specs),
        "target": key.target,
        "config": to_json(join(configs)) if configs else DEFAULT_CONFIG,
        "plan": LaunchPlan.of_loops(lowered.loops).to_json(),
        "jitune_version": __version__,
        "created": time.time(),
        "compile_seconds": time.perf_counter() - began,
        "measured_seconds": None if tuned is None else tuned.seconds,
        "how": how,
    }
    if tuned is not None:
        if tuned.gflops and tuned.seconds:
            meta["flops"] = tuned.gflops * 1e9 * tuned.seconds  # for `jitune cache list`
        meta["tuning"] = {
            "trials": tuned.total_trials,
            "default_seconds": tuned.default_seconds,
            "gflops": tuned.gflops,
            "elapsed": tuned.elapsed,
        }
    return Artifact(meta, binary), lowered


def _choose(
    traced: Traced,
    specs: Sequence[ArgSpec],
    device: Device,
    key: CacheKey,
    name: str,
    options: TuneOptions,
    imported: dict[str, Any] | None,
    book: RecordBook,
) -> tuple[dict[str, Config] | None, str, TuneResult | None]:
    """The stage configs to compile: an imported config, or what tuning chooses."""
    try:
        task = TuneTask(
            key,
            name,
            traced.graph,
            [(s.shape, s.dtype, s.strides) for s in specs],
            device,
            describe_signature(specs),
        )
    except Exception as exc:  # noqa: BLE001 - a kernel must still run if its space cannot be built
        log.warning("jitune: cannot tune %s (%s); using the default schedule", name, exc)
        return None, "default schedule (untuned)", None
    if imported is not None:
        config = from_json(imported.get("config"), task.space)
        return (
            (split(config) if config is not None else None),
            "rebuilt from an imported config",
            None,
        )
    try:
        result = tune(task, options, book)
    except Exception as exc:  # noqa: BLE001 - tuning is an optimization, never a failure
        log.warning(
            "jitune: tuning %s failed (%s: %s); using the default schedule",
            name,
            type(exc).__name__,
            exc,
        )
        return None, "default schedule (tuning failed)", None
    return result.configs, result.how, result


def _from_cache(
    artifact: Artifact, traced: Traced, specs: Sequence[ArgSpec], device: Device
) -> tuple[Program, LaunchPlan]:
    """The loaded program and launch plan of a cached artifact; raises on anything amiss."""
    plan = LaunchPlan.from_json(artifact.meta["plan"])
    _check_plan(plan, traced, specs)
    return device.load(artifact.binary, plan.buffer_count), plan


def _check_plan(plan: LaunchPlan, traced: Traced, specs: Sequence[ArgSpec]) -> None:
    """Raise ValueError unless ``plan`` fits the traced signature: one buffer per argument
    and allocation, results in range, each allocated result of the traced output's shape and
    dtype (a plan that allocates less than the kernel writes would let it write past a
    buffer; the checksum catches damage, this catches a plan that cannot be this kernel's)."""
    if plan.buffer_count != len(specs) + len(plan.allocations):
        raise ValueError(f"the plan has {plan.buffer_count} buffers for {len(specs)} arguments")
    if len(plan.results) != len(traced.graph.outputs):
        raise ValueError("the plan's results do not match the kernel's outputs")
    for position, output in zip(plan.results, traced.graph.outputs):
        if not 0 <= position < plan.buffer_count:
            raise ValueError(f"the plan's result buffer {position} does not exist")
        if position >= len(specs):
            shape, dtype = plan.allocations[position - len(specs)]
            if shape != tuple(output.shape) or np.dtype(dtype) != output.dtype:
                raise ValueError(f"the plan allocates {dtype}{list(shape)} for a result")
        elif position not in plan.written or specs[position].shape != tuple(output.shape):
            raise ValueError(f"the plan returns argument {position}, which it does not update")
    if any(not 0 <= position < len(specs) for position in plan.written):
        raise ValueError("the plan updates a buffer that is not an argument")


def _too_large(traced: Traced, specs: Sequence[ArgSpec], device: Device) -> int:
    """The number of distinct loop nests of ``traced`` (at least) when compiling them would
    exceed ``JITUNE_MAX_STAGES`` on this CPU, else 0. GPUs always compile (their arrays
    are not NumPy's)."""
    limit = config.get().max_stages
    graph = traced.graph
    if device.name != "cpu" or limit <= 0:
        return 0
    nodes = graph.nodes()
    if len(nodes) <= limit:
        return 0  # a stage comes from at least one node
    # Updates and reductions are stages of their own: a cheap lower bound, enough to tell
    # a loop unrolled into thousands of them without lowering it (seconds at that size).
    distinct = len(
        {
            (node.op, node.shape, node.dtype, node.arg, tuple(s.shape for s in node.src))
            for node in nodes
            if node.op is GraphOp.UPDATE or is_reduction(node)
        }
    )
    if distinct <= limit:
        compute = compute_program(graph, [s.strides for s in specs], device.target())
        buffers = {decl.name: decl for decl in compute.buffers}
        distinct = len({loop_nest_key(stage, buffers) for stage in compute.stages})
    return distinct if distinct > limit else 0


def _interpreted(traced: Traced, specs: Sequence[ArgSpec], name: str, stages: int) -> Obtained:
    """The program of a kernel too large to compile: its graph, run with NumPy."""
    began = time.perf_counter()
    log.warning(
        "jitune: %s has %d distinct loop nests (JITUNE_MAX_STAGES=%d): it runs with NumPy, "
        "uncompiled; a loop of updates whose slices change with the loop variable makes one "
        "per iteration",
        name,
        stages,
        config.get().max_stages,
    )
    outputs = traced.graph.outputs
    plan = LaunchPlan(
        len(specs) + len(outputs),
        tuple((tuple(out.shape), out.dtype.str) for out in outputs),
        tuple(range(len(specs), len(specs) + len(outputs))),
        (),
    )
    return Obtained(
        GraphProgram(traced.graph), plan, "interpreted", time.perf_counter() - began, None
    )


def _untuned(options: TuneOptions) -> TuneOptions:
    """``options`` with a budget of nothing: no candidate is measured."""
    return dataclasses.replace(options, budget=config.Budget(trials=0))


def _check_device_support(traced: Traced, device: Device) -> None:
    """Refuse what only the CPU's code checks at run time: an index array's bounds (the
    OpenCL and CUDA programs have no status word to report an out-of-bounds element)."""
    if device.name == "cpu":
        return
    for node in traced.graph.nodes():
        if node.op is GraphOp.GATHER:
            raise UnsupportedOperation(
                f"integer-array indexing is supported on NumPy (CPU) arrays only, not yet "
                f"on {device.name} arrays: {node.arg.where}"
            )


def obtain(
    traced: Traced,
    specs: Sequence[ArgSpec],
    device: Device,
    name: str,
    options: TuneOptions | None = None,
    retune: bool = False,
) -> Obtained:
    """A loaded program for ``traced`` on ``device``: from the cache, or tuned within
    ``options.budget`` (the ``JITUNE_*`` settings when None) and compiled.

    ``retune`` skips the cached binary and tunes again (resuming from the records).
    """
    _check_device_support(traced, device)
    stages = _too_large(traced, specs, device)
    if stages:
        return _interpreted(traced, specs, name, stages)
    began = time.perf_counter()
    key = cache_key(traced, specs, device)
    store = open_store(config.get())
    options = options or TuneOptions.from_settings()
    tuned: list[TuneResult | None] = [None]

    def cached() -> Obtained | None:
        artifact = store.load(key) if store is not None else None
        if artifact is None:
            return None
        try:
            program, plan = _from_cache(artifact, traced, specs, device)
        except Exception as exc:  # noqa: BLE001 - a bad entry is rebuilt, whatever the loader raised
            log.warning(
                "jitune: cannot load cached %s (%s: %s); dropped, rebuilding",
                name,
                type(exc).__name__,
                exc,
            )
            store.drop(key)  # type: ignore[union-attr]
            return None
        return Obtained(program, plan, "loaded", time.perf_counter() - began, None)

    def build(tuning: TuneOptions) -> tuple[Artifact, Lowered]:
        imported = store.imported_config(key) if store is not None and not retune else None
        configs, how, result = _choose(
            traced, specs, device, key, name, tuning, imported, RecordBook(store)
        )
        tuned[0] = result
        return _compile(traced, specs, device, key, name, how, configs, result)

    found = None if retune else cached()
    if found is not None:
        return found
    if store is None:
        artifact, lowered = build(options)
    else:
        with store.building(
            key, config.get().cache_wait, lambda: store.load(key) is not None
        ) as owner:
            found = None if retune else cached()
            if found is not None:
                return found
            # A live process still tunes this kernel: compile what the records already
            # suggest, without measuring, rather than tune the same kernel twice.
            artifact, lowered = build(options if owner else _untuned(options))
            interrupted = tuned[0] is not None and tuned[0].interrupted
            if owner and not interrupted:  # an interrupted tuning resumes next time
                store.save(key, artifact)
    plan = LaunchPlan.of_loops(lowered.loops)
    program = device.load(artifact.binary, plan.buffer_count)
    result = tuned[0]
    complete = result is None or not result.interrupted
    return Obtained(
        program, plan, "compiled", time.perf_counter() - began, lowered, result, complete
    )
