"""Shrinking a failing program: fewer statements, fewer and smaller inputs, plain layouts,
while the same kind of failure remains, within a time budget."""

from __future__ import annotations

import dataclasses
import re
import time
import warnings
from collections.abc import Callable, Iterator

import numpy as np

from .program import Input, Node, Program

_NAME = re.compile(r"\b[av]\d+\b")


def _prune(program: Program) -> Program:
    """Without statements and inputs the outputs do not depend on."""
    needed = set(program.outputs)
    kept: list[Node] = []
    for node in reversed(program.nodes):
        if node.name in needed:
            kept.append(node)
            needed.update(_NAME.findall(node.expr))
    inputs = tuple(i for i in program.inputs if i.name in needed)
    return dataclasses.replace(program, inputs=inputs, nodes=tuple(reversed(kept)))


def _smaller_input(item: Input) -> Iterator[Input]:
    """Contiguous layout first, then each axis cut to one element or to half."""
    if item.kind != "array":
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = np.ascontiguousarray(item.make())
    if item.view != "base":
        yield dataclasses.replace(item, base=value, view="base")
        return
    for axis, extent in enumerate(value.shape):
        for keep in sorted({1, extent // 2} - {0, extent}):
            index = (slice(None),) * axis + (slice(0, keep),)
            cut = np.ascontiguousarray(value[index])
            yield dataclasses.replace(item, base=cut)


def _candidates(program: Program) -> Iterator[Program]:
    if len(program.outputs) > 1:
        yield _prune(dataclasses.replace(program, outputs=program.outputs[:1]))
    for node in program.nodes[:-1]:  # an earlier value as the result: later statements go
        yield _prune(dataclasses.replace(program, outputs=(node.name,)))
    if program.parallel:
        yield dataclasses.replace(program, parallel=False)
    for position, item in enumerate(program.inputs):
        for smaller in _smaller_input(item):
            inputs = list(program.inputs)
            inputs[position] = smaller
            yield dataclasses.replace(program, inputs=tuple(inputs))


def shrink(
    program: Program, still_fails: Callable[[Program], bool], seconds: float = 10.0
) -> Program:
    """The smallest variant of ``program`` found for which ``still_fails`` holds (greedy:
    take the first smaller candidate that fails, start over, until none or time is up)."""
    deadline = time.monotonic() + seconds
    best = _prune(program)
    improved = True
    while improved and time.monotonic() < deadline:
        improved = False
        for candidate in _candidates(best):
            if time.monotonic() >= deadline:
                break
            if candidate.size() >= best.size():
                continue
            try:
                fails = still_fails(candidate)
            except Exception:  # noqa: BLE001 - a candidate the harness cannot run is no smaller case
                fails = False
            if fails:
                best, improved = candidate, True
                break
    return best
