"""The pipeline of one signature: graph IR -> compute IR -> loop IR -> LLVM IR -> program.

Each step is a pure function of the step before; :class:`Lowered` keeps every level so users
(``f.lower(...)``) and tests can look at what jitune made of a function.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence

from . import config
from .errors import CompileError, JituneError
from .ir.compute import ComputeProgram
from .ir.graph import Graph
from .ir.loops import LoopProgram
from .lower import lower
from .runtime import cpu
from .runtime.base import Device
from .runtime.target import Target
from .schedule import gpu, schedule
from .schedule.default import default_config
from .schedule.default import space as stage_space
from .schedule.space import Config, Space
from .schedule.work_groups import as_work_groups

GPU_TARGETS = frozenset({"cuda", "opencl"})
"""Targets scheduled by the GPU templates (``schedule/gpu.py``); the rest by the CPU's."""


def gpu_templates(target: Target) -> bool:
    """Whether ``target`` is scheduled with the GPU templates: GPU targets other than OpenCL
    CPU devices (limit ``cpu_device``), which run the CPU templates as work-groups."""
    return target.name in GPU_TARGETS and not target.limit("cpu_device", 0)


def _schedule(
    compute: ComputeProgram, target: Target, configs: Mapping[str, Config] | None
) -> LoopProgram:
    """Loop IR of ``compute`` with the templates of ``target``'s family."""
    if gpu_templates(target):
        return gpu.schedule(compute, target, configs)
    loops = schedule(compute, target, config.get().parallel_min_work, configs)
    return as_work_groups(loops) if target.name in GPU_TARGETS else loops


_SOURCE_NAME = {"cuda": "CUDA C", "opencl": "OpenCL C"}


@dataclasses.dataclass(frozen=True)
class Lowered:
    """Every IR level of one kernel signature, and the generated source."""

    graph: Graph
    compute: ComputeProgram
    loops: LoopProgram
    source: str  # LLVM IR text (CUDA C for a CUDA target)
    target: Target

    @functools.cached_property
    def assembly(self) -> str:
        """Optimized machine code for the host CPU (computed on first access)."""
        return cpu.emit_assembly(self.source)

    def __str__(self) -> str:
        parts = [
            ("graph IR", str(self.graph)),
            ("compute IR", str(self.compute)),
            ("loop IR", str(self.loops)),
            (f"{_SOURCE_NAME.get(self.target.name, 'LLVM IR')} ({self.target.arch})", self.source),
        ]
        return "\n\n".join(f"== {title} ==\n{text}" for title, text in parts)


# The last lowering: one build asks for it up to three times (the size check before the cache,
# the tuner, the pipeline), which for a loop unrolled into a thousand stages is seconds each.
_last_compute: tuple[Graph, tuple[tuple[int, ...], ...], Target, ComputeProgram] | None = None


def compute_program(
    graph: Graph, strides: Sequence[tuple[int, ...]], target: Target
) -> ComputeProgram:
    """The compute IR the pipeline schedules for ``target`` (the tuner must see the same)."""
    global _last_compute
    layouts = tuple(tuple(s) for s in strides)
    last = _last_compute  # one read: another thread may replace it
    if last is not None and last[0] is graph and last[1] == layouts and last[2] == target:
        return last[3]
    compute = lower(
        graph,
        strides,
        store_summands=not gpu_templates(target),
        in_place=target.name not in GPU_TARGETS,  # views: the CPU's code generation only
    )
    _last_compute = (graph, layouts, target, compute)
    return compute


def lower_graph(
    graph: Graph,
    strides: Sequence[tuple[int, ...]],
    device: Device,
    configs: Mapping[str, Config] | None = None,
) -> Lowered:
    """Run the pipeline from graph IR to source text for ``device``.

    ``configs`` chooses the schedule of stages by output buffer name (default schedule else).
    Raises :class:`CompileError` (naming the step and the original error) for anything that
    goes wrong past tracing: a graph that traced is a valid program, so any other exception
    here is a jitune bug, never the user's (a bare ``KeyError: 'i0'`` told them nothing).
    """
    target = device.target()
    step = "lowering"
    try:
        compute = compute_program(graph, strides, target)
        step = "scheduling"
        loops = _schedule(compute, target, configs)
        step = f"code generation for {device.name}"
        source = device.render(loops)
    except JituneError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported as what it is: a jitune bug
        inputs = ", ".join(f"{i.dtype}{list(i.shape)}" for i in graph.inputs)
        raise CompileError(
            f"jitune failed in {step} of a kernel with inputs ({inputs}): "
            f"{type(exc).__name__}: {exc} (a jitune bug; please report it)"
        ) from exc
    return Lowered(graph, compute, loops, source, target)


def schedule_loops(
    compute: ComputeProgram, device: Device, configs: Mapping[str, Config] | None = None
) -> LoopProgram:
    """Loop IR of ``compute`` on ``device`` with ``configs`` (what the tuner's features read)."""
    return _schedule(compute, device.target(), configs)


def stage_spaces(compute: ComputeProgram, device: Device) -> dict[str, Space]:
    """The tunable knobs of each stage of ``compute`` on ``device``, by output buffer name.

    The tuner asks here rather than the CPU templates directly, so that a device-aware version
    can route each device to its own templates' spaces.
    """
    target = device.target()
    if gpu_templates(target):
        buffers = {decl.name: decl for decl in compute.buffers}
        return {stage.out: gpu.space(stage, target, buffers) for stage in compute.stages}
    return {stage.out: stage_space(stage) for stage in compute.stages}


def default_configs(compute: ComputeProgram, device: Device) -> dict[str, Config]:
    """The untuned config of each stage (what :func:`lower_graph` uses when given none)."""
    target = device.target()
    buffers = {decl.name: decl for decl in compute.buffers}
    if gpu_templates(target):
        return {stage.out: gpu.default_config(stage, target, buffers) for stage in compute.stages}
    return {stage.out: default_config(stage, target, buffers) for stage in compute.stages}
