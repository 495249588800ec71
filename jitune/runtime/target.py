"""``Target``: what code generation needs to know about the machine it compiles for."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Target:
    """A compile target. Capabilities are plain attributes; code never branches on ``name``.

    ``vector_bytes`` is the SIMD register width schedules vectorize for.
    """

    name: str  # "cpu" | "opencl" | "cuda"
    arch: str  # CPU name (e.g. "skylake-avx512"), GPU architecture, ...
    features: str  # LLVM feature string for CPUs
    vector_bytes: int
    toolchain: str  # e.g. "llvm-22.1.0": part of the fingerprint of compiled code
    limits: tuple[tuple[str, int], ...] = ()  # GPUs: max_threads, shared_bytes, processors...

    def limit(self, name: str, default: int) -> int:
        """A device limit by name (``max_threads``, ``shared_bytes``, ``registers``,
        ``processors``, ``warp``), or ``default`` if the target does not say."""
        return dict(self.limits).get(name, default)

    def enabled_features(self) -> frozenset[str]:
        """The CPU features ``features`` turns on (``"avx512f"``, ...), without the ``+``."""
        return frozenset(f[1:] for f in self.features.split(",") if f.startswith("+"))

    def lanes(self, itemsize: int) -> int:
        """Vector lanes for elements of ``itemsize`` bytes."""
        return max(1, self.vector_bytes // max(1, itemsize))

    def fingerprint(self) -> str:
        """A string identifying every property compiled code depends on."""
        text = f"{self.name}|{self.arch}|{self.features}|{self.toolchain}"
        if self.limits:
            text += "|" + ",".join(f"{k}={v}" for k, v in self.limits)
        return text
