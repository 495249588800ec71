"""Checks of the cache database that decide whether it may be used, and setting a damaged one
aside.

The rule: a database is moved aside (``cache.db.corrupt-*``) only when SQLite itself reports it
damaged (``PRAGMA quick_check`` fails, or the file is not a database). Any other failure, a
full, read-only or locked disk, says nothing about what is stored: the caller then works in
memory and leaves the files alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterator

from diskcache.core import DEFAULT_SETTINGS, METADATA

log = logging.getLogger("jitune.cache")

DATABASE = "cache.db"
# SQLite's companions of the database in WAL mode: they belong to it and go where it goes
COMPANIONS = ("", "-wal", "-shm")


@contextlib.contextmanager
def _read_only(database: str) -> Iterator[sqlite3.Connection]:
    """A read-only connection to ``database`` (never creates or changes a file)."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
    try:
        yield connection
    finally:
        connection.close()


def is_intact(database: str) -> bool | None:
    """True if ``database`` passes ``PRAGMA quick_check``, False if SQLite finds it damaged,
    None when the check cannot run (locked, unreadable, absent): nothing is known then."""
    if not os.path.exists(database):
        return None
    try:
        with _read_only(database) as connection:
            rows = connection.execute("PRAGMA quick_check").fetchall()
    except sqlite3.OperationalError:  # locked, cannot open, I/O: not evidence of damage
        return None
    except sqlite3.DatabaseError:  # "file is not a database", "disk image is malformed"
        return False
    return rows == [("ok",)]


def set_aside(database: str, reason: object) -> None:
    """Rename a damaged ``database`` and its WAL files to ``*.corrupt-<pid>-<time>``."""
    suffix = f".corrupt-{os.getpid()}-{int(time.time())}"
    log.warning(
        "jitune: cache database %s is damaged (%s); moved to %s",
        database,
        reason,
        database + suffix,
    )
    for companion in COMPANIONS:
        with contextlib.suppress(OSError):
            os.replace(database + companion, database + suffix + companion)


def pinned_settings() -> dict[str, object]:
    """Every diskcache setting at its default, to pass when opening: diskcache otherwise takes
    them from the database's Settings table, where an edited row (say a ``sqlite_*`` pragma or
    ``disk_min_file_size``) would change how the cache works."""
    return dict(DEFAULT_SETTINGS)


def foreign_settings(database: str) -> str | None:
    """What is wrong with the Settings table of ``database``, or None if every row is one
    diskcache writes, with a value of the type it writes. diskcache makes every row an
    attribute of its Cache object (a row named ``get`` replaces the method) and passes
    ``disk_*`` rows to the Disk's constructor, so a foreign row breaks it in odd places."""
    expected = {**DEFAULT_SETTINGS, **METADATA}
    try:
        with _read_only(database) as connection:
            rows = connection.execute("SELECT key, value FROM Settings").fetchall()
    except sqlite3.Error:  # no database or no table yet, or unreadable: opening will tell
        return None
    for key, value in rows:
        if key not in expected:
            return f"its Settings table has a row {key!r} that diskcache does not write"
        if type(value) is not type(expected[key]):
            return f"its Settings row {key!r} holds a {type(value).__name__}"
    return None
