"""Tuning records: one JSON row per measured candidate, in the disk cache or in memory.

Rows are written as each batch is measured, so an interrupted tuning keeps what it measured
and the next one resumes from it. With the disk cache off they live in this process only.
"""

from __future__ import annotations

import threading
from typing import Any

from ..cache import SCHEMA_VERSION, CacheKey
from ..cache.store import Store

_memory: list[dict[str, Any]] = []
_memory_lock = threading.Lock()


def clear_memory() -> None:
    """Forget the in-memory records (tests; the disk cache is untouched)."""
    with _memory_lock:
        _memory.clear()


class RecordBook:
    """Reads and writes records through the cache store, or in memory when it is off."""

    def __init__(self, store: Store | None) -> None:
        self.store = store

    @property
    def _disk(self) -> bool:
        return self.store is not None and not self.store.broken

    def add(self, key: CacheKey, rows: list[dict[str, Any]]) -> None:
        """Store ``rows`` (measurements of ``key``'s candidates)."""
        if self._disk:
            for row in rows:
                self.store.add_record(key, row)  # type: ignore[union-attr]
            if not self.store.broken:  # type: ignore[union-attr]
                return
        with _memory_lock:
            for row in rows:
                _memory.append(dict(row, key=key.digest, target=key.target, schema=SCHEMA_VERSION))

    def for_key(self, digest: str) -> list[dict[str, Any]]:
        """Records of one cache key, oldest first."""
        return sorted((row for row in self.all() if row.get("key") == digest), key=_order)

    def all(self) -> list[dict[str, Any]]:
        """Every record (of every key and target) this book can see."""
        rows: list[dict[str, Any]] = []
        if self._disk:
            rows = [row for row in self.store.records() if row.get("schema") == SCHEMA_VERSION]  # type: ignore[union-attr]
        with _memory_lock:
            rows += list(_memory)
        return rows


def _order(row: dict[str, Any]) -> tuple[float, int]:
    return (float(row.get("created", 0.0)), int(row.get("trial", 0)))
