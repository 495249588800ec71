"""jitune's version, and a fingerprint of its code (both part of every cache key)."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

__version__ = "0.1.0"


@functools.cache
def code_fingerprint() -> str:
    """sha256 of jitune's own source files: a cached binary is used only by the exact code
    that built it, so editing the compiler (or upgrading it) can never load a stale kernel."""
    digest = hashlib.sha256(__version__.encode())
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
