"""Who holds a build lock, whether they still live, and the lease they renew while building.

A lock row's value is JSON text naming its holder (pid, host, a random token). A waiter takes
the lock over at once when the holder ran on this host and its pid is gone (``os.kill(pid, 0)``);
a holder on another host (or a hung one) is known only by its lease: the holder renews the
row's expiry every ``RENEW_SECONDS`` from a :class:`Heartbeat` thread, and a row whose lease ran
out is free. A live holder therefore keeps its lock however long it tunes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import threading
import uuid
from collections.abc import Callable

LEASE_SECONDS = 15.0
"""How long a lock stays taken without a renewal (the holder is on another host, or hung)."""
RENEW_SECONDS = LEASE_SECONDS / 5
"""How often the holder renews it: four renewals can be missed before the lease runs out."""
POLL_SECONDS = 0.05
"""How often a waiter looks at the lock and for the finished artifact."""


@dataclasses.dataclass(frozen=True)
class Holder:
    """The process holding (or wanting) a lock: its pid, its host, a token unique to the hold."""

    pid: int
    host: str
    token: str

    @classmethod
    def mine(cls) -> Holder:
        """A new holder for this process (a new token each time: one per hold)."""
        return cls(os.getpid(), this_host(), uuid.uuid4().hex)

    def to_text(self) -> str:
        """The lock row's value: JSON text (the cache stores only text and bytes)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_text(cls, text: object) -> Holder | None:
        """The holder a lock row names, or None for a value this code did not write."""
        try:
            data = json.loads(text) if isinstance(text, str) else None
            return cls(int(data["pid"]), str(data["host"]), str(data["token"]))
        except (ValueError, TypeError, KeyError):
            return None


def this_host() -> str:
    """This machine, as a lock names it: the host name plus, on Linux, the pid namespace, so
    that containers sharing a cache directory and a host name never test each other's pids."""
    namespace = ""
    with contextlib.suppress(OSError):
        namespace = os.readlink("/proc/self/ns/pid")
    return f"{socket.gethostname()}|{namespace}"


def is_running(pid: int) -> bool:
    """Whether process ``pid`` exists on this host and is not a zombie (a killed child that its
    parent has not reaped yet is dead for our purposes)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's process
        return True
    except OSError:
        return True  # cannot tell: assume alive, the lease still frees it
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            # "pid (command) state ...": the command may contain spaces and parentheses
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def is_dead(holder: Holder) -> bool:
    """True when ``holder`` surely no longer runs: it was on this host and its pid is gone."""
    return holder.host == this_host() and holder.pid != os.getpid() and not is_running(holder.pid)


class Heartbeat:
    """Calls ``renew`` every ``RENEW_SECONDS`` from a daemon thread until stopped, or until
    ``renew`` returns False (the lock was lost or the cache failed)."""

    def __init__(self, renew: Callable[[], bool], every: float = RENEW_SECONDS) -> None:
        self._renew = renew
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jitune-lock-lease", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            if not self._renew():
                return
