"""Known open bugs the fuzzer finds, so that CI (``--known``) stays green while they are
being fixed. Each entry names its bug; remove it with the fix, so the table shrinks to empty.

A finding matches an entry by its kind, its message and the program's source; the match is
kept narrow so that a new bug of the same shape is not hidden for long.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from .compare import Finding
from .program import Program


@dataclasses.dataclass(frozen=True)
class Known:
    name: str
    bug: str
    matches: Callable[[Program, Finding], bool]


def _source(program: Program) -> str:
    return program.function_source()


KNOWN: tuple[Known, ...] = (
    Known(
        "python-scalar-arithmetic-strong",
        "arithmetic on a Python scalar argument (n % 5, n + 1) makes a strong int64/float64 "
        "value, so int32_array ** (n % 5) is int64 (NumPy, where n % 5 is a Python int: int32)",
        lambda p, f: (
            f.kind == "mismatch"
            and bool(re.search(r"dtype (int64|float64), NumPy (int32|float32|bool)", f.message))
            and any(i.kind == "python" for i in p.inputs)
        ),
    ),
)


def known_bug(program: Program, finding: Finding) -> Known | None:
    """The entry of ``KNOWN`` this finding is an instance of, or None."""
    for entry in KNOWN:
        if entry.matches(program, finding):
            return entry
    return None
