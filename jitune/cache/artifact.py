"""An artifact: a compiled kernel's binary with the JSON metadata needed to run it.

Stored as one bytes value, so an entry is either whole or absent::

    MAGIC | 8-byte big-endian length of the JSON header | JSON header (UTF-8) | binary | sha256

The trailing sha256 covers everything before it, header included: the header says how the
binary is called (the launch plan), so an edited header is as dangerous as an edited binary.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

MAGIC = b"JITUNE-ARTIFACT2"  # 2: the checksum covers the header (entries of 1 are rebuilt)
_LENGTH = 8
_DIGEST = hashlib.sha256().digest_size


class CorruptArtifact(ValueError):
    """Bytes that are not a complete, intact artifact."""


@dataclasses.dataclass(frozen=True)
class Artifact:
    meta: dict[str, Any]
    binary: bytes

    def pack(self) -> bytes:
        """The bytes stored in the cache: header, binary and their checksum."""
        header = json.dumps(self.meta, sort_keys=True).encode()
        body = MAGIC + len(header).to_bytes(_LENGTH, "big") + header + self.binary
        return body + hashlib.sha256(body).digest()


def _verified_body(data: object) -> bytes:
    """``data`` without its checksum, once the checksum matches; raises CorruptArtifact."""
    if not isinstance(data, bytes) or not data.startswith(MAGIC):
        raise CorruptArtifact("not a jitune artifact (or one of an older format)")
    if len(data) < len(MAGIC) + _LENGTH + _DIGEST:
        raise CorruptArtifact("truncated artifact")
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise CorruptArtifact("artifact does not match its checksum")
    return body


def _split(body: bytes) -> tuple[dict[str, Any], bytes]:
    """The header and the binary of a verified body; raises CorruptArtifact."""
    start = len(MAGIC) + _LENGTH
    length = int.from_bytes(body[len(MAGIC) : start], "big")
    if start + length > len(body):
        raise CorruptArtifact("artifact header runs past the entry")
    try:
        meta = json.loads(body[start : start + length])
    except ValueError as exc:
        raise CorruptArtifact(f"unreadable artifact header: {exc}") from None
    if not isinstance(meta, dict):
        raise CorruptArtifact("artifact header is not an object")
    return meta, body[start + length :]


def read_meta(data: object) -> tuple[dict[str, Any], int]:
    """The verified header of packed artifact bytes and the size of its binary."""
    meta, binary = _split(_verified_body(data))
    return meta, len(binary)


def unpack(data: object) -> Artifact:
    """Parse and verify packed artifact bytes; raises CorruptArtifact."""
    return Artifact(*_split(_verified_body(data)))
