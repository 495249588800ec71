"""The container of a GPU binary in the cache: ``magic + u32 header length + JSON header +
payload``. The header holds what launching needs (kernel names, launch dimensions, scalar
arguments...), so a warm process compiles nothing; the payload is the device's own binary."""

from __future__ import annotations

import json
import struct
from typing import Any

from ..errors import CompileError


def pack(magic: bytes, meta: dict[str, Any], payload: bytes) -> bytes:
    header = json.dumps(meta, separators=(",", ":")).encode()
    return magic + struct.pack("<I", len(header)) + header + payload


def unpack(magic: bytes, binary: bytes, what: str) -> tuple[dict[str, Any], bytes]:
    """(header, payload) of a container made by :func:`pack` with ``magic``; CompileError
    naming ``what`` (e.g. "CUDA binary") if ``binary`` is not one or its header is damaged."""
    if not binary.startswith(magic) or len(binary) < len(magic) + 4:
        raise CompileError(f"not a jitune {what}")
    (size,) = struct.unpack_from("<I", binary, len(magic))
    start = len(magic) + 4
    try:
        meta = json.loads(binary[start : start + size])
    except ValueError as exc:
        raise CompileError(f"damaged jitune {what} header: {exc}") from exc
    if not isinstance(meta, dict):
        raise CompileError(f"damaged jitune {what} header: not an object")
    return meta, binary[start + size :]
