"""A diskcache ``Disk`` that stores and returns only bytes and text, and never unpickles.

diskcache pickles any other value by default, and unpickling a value someone else wrote runs
their code (CVE-2025-69872). jitune writes only ``bytes`` and ``str`` values under ``str``
keys; anything else found in the database is refused with :class:`UnsafeEntry`, as is a row
whose value file lies outside the cache directory (reading it would read, and dropping the row
would delete, a file jitune never wrote).
"""

from __future__ import annotations

import os
from typing import Any

import diskcache
from diskcache.core import MODE_PICKLE


class UnsafeEntry(Exception):
    """A cache row that would need unpickling to read."""


class SafeDisk(diskcache.Disk):
    def put(self, key: Any) -> tuple[Any, bool]:
        if not isinstance(key, str):
            raise TypeError(f"jitune cache keys are str, not {type(key).__name__}")
        return super().put(key)

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise UnsafeEntry("refusing to unpickle a cache key")
        return super().get(key, raw)

    def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> Any:
        if read or not isinstance(value, (bytes, str)):
            raise TypeError(f"jitune cache values are bytes or str, not {type(value).__name__}")
        return super().store(value, read, key=key)

    def fetch(self, mode: int, filename: Any, value: Any, read: bool) -> Any:
        if mode == MODE_PICKLE:
            raise UnsafeEntry("refusing to unpickle a cache value")
        if filename is not None and not self._inside(filename):
            raise UnsafeEntry(f"refusing a value file outside the cache: {filename!r}")
        return super().fetch(mode, filename, value, read)

    def remove(self, file_path: Any) -> None:
        if file_path is not None and not self._inside(file_path):
            return  # a planted row: its file is not ours to delete
        super().remove(file_path)

    def _inside(self, filename: Any) -> bool:
        """Whether ``filename`` (as a row names it) is a file under the cache directory."""
        if not isinstance(filename, str) or os.path.isabs(filename):
            return False
        root = os.path.realpath(self._directory)
        full = os.path.realpath(os.path.join(root, filename))
        return full.startswith(root + os.sep)
