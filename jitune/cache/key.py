"""``CacheKey``: everything that can change a compiled kernel, hashed once."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from typing import Any

SCHEMA_VERSION = 1
"""Bumped whenever code generation or the entry format changes: old entries stop matching.
(An artifact format that old entries fail on their own, as a new ``artifact.MAGIC`` does, is
not bumped here: the tuning records of a signature, keyed by its digest, then stay usable.)"""


@dataclasses.dataclass(frozen=True)
class CacheKey:
    graph: str  # structural hash of the traced graph (ir/key.py)
    signature: tuple[tuple[Any, ...], ...]  # per argument: shape, dtype, strides, weak kind
    target: str  # Target.fingerprint()
    knobs: tuple[tuple[str, Any], ...]  # settings that change generated code
    version: str  # jitune's version
    schema: int = SCHEMA_VERSION

    @property
    def digest(self) -> str:
        text = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def signature_of(specs: Sequence[Any]) -> tuple[tuple[Any, ...], ...]:
    """The part of a key that the arguments contribute (shapes, dtypes, strides, weak kinds)."""
    return tuple(
        (tuple(s.shape), str(s.dtype), tuple(s.strides), s.weak.__name__ if s.weak else None)
        for s in specs
    )


def describe_signature(specs: Sequence[Any]) -> str:
    """Human-readable signature, e.g. ``float32[64,32], float32[32], float``."""
    parts = []
    for s in specs:
        if s.weak is not None:
            parts.append(s.weak.__name__)
        else:
            parts.append(f"{s.dtype}[{','.join(map(str, s.shape))}]")
    return ", ".join(parts)
