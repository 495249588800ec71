"""Known open bugs the fuzzer finds, so that CI (``--known``) stays green while they are
being fixed. Each entry names its bug; remove it with the fix, so the table shrinks to empty.

A finding matches an entry by its kind, its message and the program's source; the match is
kept narrow so that a new bug of the same shape is not hidden for long.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from .compare import Finding
from .program import Program


@dataclasses.dataclass(frozen=True)
class Known:
    name: str
    bug: str
    matches: Callable[[Program, Finding], bool]


def _source(program: Program) -> str:
    return program.function_source()


def _static_scalar_made_an_array(program: Program, finding: Finding) -> bool:
    """A scalar argument whose value indexes (``v1[a0 % 3]``) becomes static, and the
    function is traced again with its value: NumPy functions of it (``np.broadcast_to(a0,
    (3,))``) then give concrete arrays, which the tracer refuses as if they were globals."""
    return (
        finding.kind == "unsupported"
        and "a concrete array of shape" in finding.message
        and any(np.ndim(i.make()) == 0 for i in program.inputs)
    )


KNOWN: tuple[Known, ...] = (
    Known(
        "static scalar made an array",
        "values computed with NumPy from an argument made static are concrete arrays, "
        "refused inside the kernel (they depend only on the signature: they could be "
        "constants)",
        _static_scalar_made_an_array,
    ),
)


def known_bug(program: Program, finding: Finding) -> Known | None:
    """The entry of ``KNOWN`` this finding is an instance of, or None."""
    for entry in KNOWN:
        if entry.matches(program, finding):
            return entry
    return None
