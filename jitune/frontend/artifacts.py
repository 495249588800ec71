"""Obtaining the machine code of one traced signature: from the disk cache, or by compiling
it (under the cache's build lock, so concurrent processes build it once) and storing it."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import Any, Literal

from .. import config
from ..cache import SCHEMA_VERSION, Artifact, CacheKey, open_store
from ..cache.key import describe_signature, signature_of
from ..errors import CompileError
from ..ir.key import structural_key
from ..ir.loops import LoopProgram
from ..pipeline import Lowered, lower_graph
from ..runtime.base import Device, Program
from ..version import __version__, code_fingerprint
from .trace import ArgSpec, Traced

log = logging.getLogger("jitune.cache")

How = Literal["compiled", "loaded"]
DEFAULT_CONFIG = {"schedule": "default"}


@dataclasses.dataclass(frozen=True)
class LaunchPlan:
    """What running a binary needs besides the arguments: buffers to allocate, results."""

    buffer_count: int
    allocations: tuple[tuple[tuple[int, ...], str], ...]  # (shape, dtype) of non-inputs
    results: tuple[int, ...]  # buffer positions of the function's results

    @classmethod
    def of(cls, loops: LoopProgram) -> LaunchPlan:
        buffers = loops.buffers
        position = {d.name: k for k, d in enumerate(buffers)}
        return cls(
            len(buffers),
            tuple((d.shape, d.dtype.str) for d in buffers if d.role != "input"),
            tuple(position[name] for name in loops.outputs),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "buffer_count": self.buffer_count,
            "allocations": [[list(shape), dtype] for shape, dtype in self.allocations],
            "results": list(self.results),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LaunchPlan:
        return cls(
            int(data["buffer_count"]),
            tuple(
                (tuple(int(d) for d in shape), str(dtype)) for shape, dtype in data["allocations"]
            ),
            tuple(int(k) for k in data["results"]),
        )


@dataclasses.dataclass(frozen=True)
class Obtained:
    program: Program
    plan: LaunchPlan
    how: How
    seconds: float
    lowered: Lowered | None  # None when the binary came from the cache


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
) -> tuple[Artifact, Lowered]:
    began = time.perf_counter()
    lowered = lower_graph(traced.graph, [s.strides for s in specs], device)
    binary = device.compile(lowered.source)
    meta = {
        "schema": SCHEMA_VERSION,
        "key": key.digest,
        "kernel": name,
        "signature": describe_signature(specs),
        "target": key.target,
        "config": DEFAULT_CONFIG,
        "plan": LaunchPlan.of(lowered.loops).to_json(),
        "jitune_version": __version__,
        "created": time.time(),
        "compile_seconds": time.perf_counter() - began,
        "measured_seconds": None,
        "how": how,
    }
    return Artifact(meta, binary), lowered


def _from_cache(artifact: Artifact, device: Device) -> tuple[Program, LaunchPlan]:
    plan = LaunchPlan.from_json(artifact.meta["plan"])
    return device.load(artifact.binary, plan.buffer_count), plan


def obtain(traced: Traced, specs: Sequence[ArgSpec], device: Device, name: str) -> Obtained:
    """A loaded program for ``traced`` on ``device``, from the cache or freshly compiled."""
    began = time.perf_counter()
    key = cache_key(traced, specs, device)
    store = open_store(config.get())

    def cached() -> Obtained | None:
        artifact = store.load(key) if store is not None else None
        if artifact is None:
            return None
        try:
            program, plan = _from_cache(artifact, device)
        except (CompileError, KeyError, TypeError, ValueError) as exc:
            log.warning("jitune: cannot load cached %s (%s); rebuilding", name, exc)
            store.drop(key)  # type: ignore[union-attr]
            return None
        return Obtained(program, plan, "loaded", time.perf_counter() - began, None)

    def build() -> tuple[Artifact, Lowered]:
        imported = store.imported_config(key) if store is not None else None
        how = "rebuilt from an imported config" if imported else "default schedule (untuned)"
        return _compile(traced, specs, device, key, name, how)

    found = cached()
    if found is not None:
        return found
    if store is None:
        artifact, lowered = build()
    else:
        with store.building(
            key, config.get().cache_wait, lambda: store.load(key) is not None
        ) as owner:
            found = cached()
            if found is not None:
                return found
            artifact, lowered = build()
            if owner:
                store.save(key, artifact)
    plan = LaunchPlan.of(lowered.loops)
    program = device.load(artifact.binary, plan.buffer_count)
    return Obtained(program, plan, "compiled", time.perf_counter() - began, lowered)
