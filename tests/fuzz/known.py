"""Known open bugs the fuzzer finds, so that CI (``--known``) stays green while they are
being fixed. Each entry names its bug; remove it with the fix, so the table shrinks to empty.

A finding matches an entry by its kind, its message and the program's source; the match is
kept narrow so that a new bug of the same shape is not hidden for long.
"""

from __future__ import annotations

import dataclasses
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


KNOWN: tuple[Known, ...] = ()


def known_bug(program: Program, finding: Finding) -> Known | None:
    """The entry of ``KNOWN`` this finding is an instance of, or None."""
    for entry in KNOWN:
        if entry.matches(program, finding):
            return entry
    return None
