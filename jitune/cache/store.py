"""The disk cache: compiled artifacts, imported configs and tuning records in diskcache.

Keys are ``artifact:<digest>``, ``config:<digest>``, ``record:<digest>:<n>`` and
``lock:<digest>``; values are bytes (artifacts) or JSON text. Every failure of the disk (a
read-only or full directory, a corrupt database) turns the store off for this process with one
warning: jitune then keeps compiled kernels in memory only, as with ``JITUNE_DISABLE_CACHE=1``.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import sqlite3
import stat
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import diskcache

from ..config import Settings
from .artifact import Artifact, CorruptArtifact, read_meta, unpack
from .disk import SafeDisk, UnsafeEntry
from .health import COMPANIONS, DATABASE, foreign_settings, is_intact, pinned_settings, set_aside
from .key import SCHEMA_VERSION, CacheKey
from .lock import LEASE_SECONDS, POLL_SECONDS, RENEW_SECONDS, Heartbeat, Holder, is_dead

log = logging.getLogger("jitune.cache")
T = TypeVar("T")


class CacheWarning(UserWarning):
    """The disk cache cannot be used; jitune carries on in memory."""


class ForeignDatabase(Exception):
    """A cache database holding what diskcache, as jitune opens it, would not have written."""


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, CacheWarning, stacklevel=4)


def check_private(path: str) -> str | None:
    """Why ``path`` must not be trusted (someone else owns it or can write to it), or None."""
    info = os.stat(path)
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return f"it belongs to user id {info.st_uid}, not to this user ({os.getuid()})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"other users can write to it (mode {stat.filemode(info.st_mode)})"
    return None


class Store:
    """One cache directory, opened by this process."""

    def __init__(self, path: str, size_limit: int) -> None:
        self.path = path
        settings = dict(
            pinned_settings(), size_limit=size_limit, eviction_policy="least-recently-used"
        )
        self.cache = diskcache.Cache(path, disk=SafeDisk, timeout=10, **settings)
        self.broken = False
        # what happened, for logs and tests: lock_taken_from_dead_owner, lock_renewed, ...
        self.events: collections.Counter[str] = collections.Counter()

    # -- failure handling ----------------------------------------------------------------------
    def _guard(self, operation: Callable[[], T], default: T) -> T:
        """``operation()``, or ``default`` once the store is broken. Any error of the store
        breaks it (one warning; memory only from then on): a cache is an optimization, and
        none of its failures may escape into a kernel call."""
        if self.broken:
            return default
        try:
            return operation()
        except Exception as exc:  # noqa: BLE001 - see the docstring
            self.broken = True
            _warn_once(
                f"jitune: the cache directory {self.path} cannot be used ({exc}); "
                "compiled kernels are kept in memory only"
            )
            return default

    def _get(self, name: str) -> Any:
        try:
            return self.cache.get(name)
        except UnsafeEntry as exc:
            log.warning("jitune: dropping cache entry %s: %s", name, exc)
            self.cache.delete(name)
            return None

    # -- artifacts -------------------------------------------------------------------------------
    def load(self, key: CacheKey) -> Artifact | None:
        """The artifact stored for ``key``, or None; a damaged or mismatched entry is dropped."""
        name = f"artifact:{key.digest}"

        def read() -> Artifact | None:
            data = self._get(name)
            if data is None:
                return None
            try:
                artifact = unpack(data)
                meta = artifact.meta
                if meta.get("schema") != SCHEMA_VERSION or meta.get("key") != key.digest:
                    raise CorruptArtifact(f"written for another key or schema {meta.get('schema')}")
                if meta.get("target") != key.target:
                    raise CorruptArtifact("compiled for another target")
            except CorruptArtifact as exc:
                log.warning("jitune: dropping cache entry %s: %s; rebuilding", name, exc)
                self.cache.delete(name)
                return None
            return artifact

        return self._guard(read, None)

    def save(self, key: CacheKey, artifact: Artifact) -> None:
        self._guard(lambda: self.cache.set(f"artifact:{key.digest}", artifact.pack()), None)

    def drop(self, key: CacheKey) -> None:
        """Remove the artifact for ``key`` (it could not be loaded)."""
        self._guard(lambda: self.cache.delete(f"artifact:{key.digest}"), None)

    def imported_config(self, key: CacheKey) -> dict[str, Any] | None:
        """A schedule config imported for ``key`` from another machine, or None."""
        text = self._guard(lambda: self._get(f"config:{key.digest}"), None)
        try:
            config = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            return None
        return config if isinstance(config, dict) else None

    @contextlib.contextmanager
    def building(self, key: CacheKey, wait: float, ready: Callable[[], bool]) -> Iterator[bool]:
        """Hold the build lock of ``key`` while the block runs, yielding True.

        If another process holds it, wait (up to ``wait`` seconds) until ``ready()`` is true
        or the lock is free; a holder that died on this host, or whose lease ran out, gives it
        up at once (see ``lock.py``). While the block runs, a heartbeat thread renews the
        lease. Yields False when the wait ran out without the lock (the holder is alive and
        still building): the caller builds without tuning and does not store the result.
        """
        name = f"lock:{key.digest}"
        me = Holder.mine()
        deadline = time.monotonic() + wait
        began = time.monotonic()
        acquired = False
        while not self.broken:
            acquired = self._guard(lambda: self._take_lock(name, me, began), False)
            if acquired or ready():
                break
            if time.monotonic() > deadline:
                self.events["lock_wait_ran_out"] += 1
                break
            time.sleep(POLL_SECONDS)
        if not acquired:
            yield self.broken
            return
        try:
            renew = lambda: self._guard(lambda: self._renew_lock(name, me), False)  # noqa: E731
            with Heartbeat(renew, RENEW_SECONDS):
                yield True
        finally:
            self._guard(lambda: self._release_lock(name, me), None)

    def _lock_holder(self, name: str) -> tuple[bool, Holder | None]:
        """Whether lock row ``name`` is taken (and not expired), and who it names."""
        text = self._get(name)
        return text is not None, Holder.from_text(text)

    def _take_lock(self, name: str, me: Holder, began: float) -> bool:
        """Take lock ``name`` for ``me`` if it is free or its holder is dead; True if taken.

        One transaction: of several waiters that find the same dead holder, one takes over.
        """
        with self.cache.transact():
            taken, holder = self._lock_holder(name)
            if taken and (holder is None or not is_dead(holder)):
                return False  # alive, or a row only its expiry can free (not written by us)
            if holder is not None:
                self.events["lock_taken_from_dead_owner"] += 1
                log.info(
                    "jitune: took over the build lock %s from pid %d, which is not running "
                    "(waited %.3f s)",
                    name,
                    holder.pid,
                    time.monotonic() - began,
                )
            self.cache.set(name, me.to_text(), expire=LEASE_SECONDS)
            return True

    def _renew_lock(self, name: str, me: Holder) -> bool:
        """Extend ``me``'s lease on lock ``name``; False once another process holds it."""
        with self.cache.transact():
            taken, holder = self._lock_holder(name)
            if taken and holder != me:
                log.warning("jitune: lost the build lock %s to pid %s", name, holder and holder.pid)
                return False
            # also puts back a row the size limit evicted while we were building
            self.cache.set(name, me.to_text(), expire=LEASE_SECONDS)
            self.events["lock_renewed"] += 1
            return True

    def _release_lock(self, name: str, me: Holder) -> None:
        """Delete lock ``name`` if ``me`` still holds it (never another process's lock)."""
        with self.cache.transact():
            if self._lock_holder(name)[1] == me:
                self.cache.delete(name)

    # -- records ---------------------------------------------------------------------------------
    def add_record(self, key: CacheKey, record: dict[str, Any]) -> None:
        """Store one measurement row (JSON-serializable) for ``key``."""
        row = dict(record, key=key.digest, target=key.target, schema=SCHEMA_VERSION)
        self._set_json(f"record:{key.digest}:{uuid.uuid4().hex}", row)

    def _set_json(self, name: str, row: dict[str, Any]) -> None:
        text = json.dumps(row, sort_keys=True)
        self._guard(lambda: self.cache.set(name, text), None)

    def records(self) -> list[dict[str, Any]]:
        return [row for _, row in self._json_rows("record:")]

    # -- listing and maintenance ------------------------------------------------------------------
    def _names(self, prefix: str) -> list[str]:
        """Names of the entries that start with ``prefix`` (listing stops, with a warning, at
        a pickled key someone else planted: reading it would mean unpickling it)."""

        def names() -> list[str]:
            found = []
            try:
                for name in self.cache.iterkeys():
                    if isinstance(name, str) and name.startswith(prefix):
                        found.append(name)
            except UnsafeEntry:
                log.warning("jitune: the cache at %s holds entries jitune did not write", self.path)
            return found

        return self._guard(names, [])

    def _json_rows(self, prefix: str) -> list[tuple[str, dict[str, Any]]]:
        rows = []
        for name in self._names(prefix):
            text = self._guard(lambda name=name: self._get(name), None)
            try:
                row = json.loads(text) if isinstance(text, str) else None
            except ValueError:
                row = None
            if isinstance(row, dict):
                rows.append((name, row))
        return rows

    def artifacts(self) -> list[dict[str, Any]]:
        """Metadata of every intact artifact (binaries are not read into the result)."""
        metas = []
        for name in self._names("artifact:"):
            data = self._guard(lambda name=name: self._get(name), None)
            try:
                meta, size = read_meta(data)
            except CorruptArtifact:
                continue
            meta["bytes"] = size
            metas.append(meta)
        return metas

    def clear(self, kernel: str | None = None) -> int:
        """Remove artifacts and configs (of one kernel name, or all); returns how many."""
        removed = 0
        for meta in self.artifacts():
            if kernel is None or meta.get("kernel") == kernel:
                self._guard(lambda meta=meta: self.cache.delete(f"artifact:{meta['key']}"), None)
                removed += 1
        for name, row in self._json_rows("config:"):
            if kernel is None or row.get("kernel") == kernel:
                self._guard(lambda name=name: self.cache.delete(name), None)
                removed += 1
        if kernel is None:
            for name in self._names("record:"):
                self._guard(lambda name=name: self.cache.delete(name), None)
        return removed

    def volume(self) -> int:
        """Bytes the cache occupies on disk."""
        return self._guard(self.cache.volume, 0)

    def export_lines(self) -> Iterator[str]:
        """JSON lines: one ``config`` per artifact or imported config, one per ``record``."""
        seen = set()
        for meta in self.artifacts():
            seen.add(meta["key"])
            yield json.dumps({"type": "config", **_portable(meta)}, sort_keys=True)
        for _, row in self._json_rows("config:"):
            if row.get("key") not in seen:
                yield json.dumps({"type": "config", **row}, sort_keys=True)
        for row in self.records():
            yield json.dumps({"type": "record", **row}, sort_keys=True)

    def import_lines(self, lines: Iterator[str]) -> tuple[int, int]:
        """Store exported configs and records; returns (configs, records) imported."""
        configs = records = 0
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                kind = row.pop("type")
                digest = row["key"]
            except (ValueError, KeyError, AttributeError, TypeError):
                raise ValueError(f"line {number} is not a jitune export row") from None
            if row.get("schema") != SCHEMA_VERSION:
                continue  # written by another version of jitune: its keys never match
            if kind == "config":
                self._set_json(f"config:{digest}", row)
                configs += 1
            elif kind == "record":
                self._set_json(f"record:{digest}:{uuid.uuid4().hex}", row)
                records += 1
        return configs, records


_PORTABLE = (
    "key",
    "schema",
    "kernel",
    "signature",
    "target",
    "config",
    "jitune_version",
    "created",
    "measured_seconds",
    "how",
)


def _portable(meta: dict[str, Any]) -> dict[str, Any]:
    """The part of an artifact's metadata that makes sense on another machine."""
    return {name: meta.get(name) for name in _PORTABLE}


_stores: dict[tuple[str, int], Store | None] = {}
_lock = threading.Lock()


def _open(path: str, size_limit: int) -> Store | None:
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        problem = check_private(path)
    except OSError as exc:
        _warn_once(
            f"jitune: cannot create the cache directory {path} ({exc}); "
            "compiled kernels are kept in memory only"
        )
        return None
    if problem is not None:
        _warn_once(
            f"jitune: refusing the cache directory {path}: {problem}. Cached binaries "
            "are code jitune runs, so the directory must be private to you (chmod 700). "
            "Compiled kernels are kept in memory only."
        )
        return None
    file, problem = _unsafe_file(path)
    if problem is not None:
        _warn_once(
            f"jitune: refusing the cache database {file}: {problem}. Cached binaries are "
            "code jitune runs, so its files must be private to you (chmod 600). Compiled "
            "kernels are kept in memory only."
        )
        return None
    return _open_database(path, size_limit)


def _unsafe_file(path: str) -> tuple[str, str | None]:
    """The first of the database's files in ``path`` that someone else owns or can write to,
    and why; ``("", None)`` when all are private. (The directory being private is not enough:
    a file can have been made writable, or handed over, before it was moved in.)"""
    for companion in COMPANIONS:
        file = os.path.join(path, DATABASE + companion)
        try:
            problem = check_private(file)
        except FileNotFoundError:
            continue
        if problem is not None:
            return file, problem
    return "", None


def _open_database(path: str, size_limit: int) -> Store:
    """The store of a private directory; raises when the disk refuses (the caller then works
    in memory). A database is set aside, and a new one started, only if SQLite finds it
    damaged: a full or read-only disk must never cost what is stored."""
    database = os.path.join(path, DATABASE)
    foreign = foreign_settings(database)
    if foreign is not None:
        raise ForeignDatabase(
            f"{database} was not written by diskcache as jitune uses it: {foreign}"
        )
    try:
        return Store(path, size_limit)
    except sqlite3.DatabaseError as exc:
        if is_intact(database) is not False:
            raise
        set_aside(database, exc)
    return Store(path, size_limit)


def open_store(settings: Settings) -> Store | None:
    """The store for these settings (opened once per process), or None for memory only."""
    if settings.disable_cache:
        return None
    key = (os.path.abspath(os.path.expanduser(settings.cache_dir)), settings.cache_size)
    with _lock:
        if key not in _stores:
            try:
                _stores[key] = _open(*key)
            except Exception as exc:  # noqa: BLE001 - whatever the cause, work in memory
                _warn_once(
                    f"jitune: the cache directory {key[0]} cannot be used ({exc}); "
                    "compiled kernels are kept in memory only"
                )
                _stores[key] = None
        return _stores[key]


def _reset_after_fork() -> None:
    # SQLite connections must not cross fork(); a child opens its own.
    _stores.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
