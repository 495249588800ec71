"""An artifact: a compiled kernel's binary with the JSON metadata needed to run it.

Stored as one bytes value, so an entry is either whole or absent::

    MAGIC | 8-byte big-endian length of the JSON header | JSON header (UTF-8) | binary

The header holds a sha256 of the binary, checked before the binary is handed to a loader.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

MAGIC = b"JITUNE-ARTIFACT\n"


class CorruptArtifact(ValueError):
    """Bytes that are not a complete, intact artifact."""


@dataclasses.dataclass(frozen=True)
class Artifact:
    meta: dict[str, Any]
    binary: bytes

    def pack(self) -> bytes:
        meta = dict(self.meta, binary_sha256=hashlib.sha256(self.binary).hexdigest())
        header = json.dumps(meta, sort_keys=True).encode()
        return MAGIC + len(header).to_bytes(8, "big") + header + self.binary


def read_meta(data: bytes) -> tuple[dict[str, Any], int]:
    """The header of packed artifact bytes and the offset of its binary."""
    if not isinstance(data, bytes) or not data.startswith(MAGIC):
        raise CorruptArtifact("not a jitune artifact")
    start = len(MAGIC) + 8
    length = int.from_bytes(data[len(MAGIC) : start], "big")
    if start + length > len(data):
        raise CorruptArtifact("truncated artifact header")
    try:
        meta = json.loads(data[start : start + length])
    except ValueError as exc:
        raise CorruptArtifact(f"unreadable artifact header: {exc}") from None
    if not isinstance(meta, dict):
        raise CorruptArtifact("artifact header is not an object")
    return meta, start + length


def unpack(data: bytes) -> Artifact:
    """Parse and verify packed artifact bytes; raises CorruptArtifact."""
    meta, offset = read_meta(data)
    binary = data[offset:]
    if hashlib.sha256(binary).hexdigest() != meta.get("binary_sha256"):
        raise CorruptArtifact("artifact binary does not match its checksum")
    return Artifact(meta, binary)
