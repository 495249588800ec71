"""Every ``JITUNE_*`` setting, read and validated in one place.

Settings are read from the environment once, at import, and can be overridden for a scope::

    with jitune.config.override(debug=2):
        f(x)

A bad value raises :class:`jitune.ConfigError` naming the variable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from typing import Literal

from .errors import ConfigError

TargetName = Literal["auto", "cpu"]


@dataclasses.dataclass(frozen=True)
class Settings:
    """The values in force. Fields are documented in ``docs/env.md``."""

    debug: int = 0
    """JITUNE_DEBUG: 0 silent; 1 each compile; 3 loop IR; 4 LLVM IR; 5 graph and compute IR."""
    num_threads: int = 0
    """JITUNE_NUM_THREADS: threads a parallel kernel uses; 0 means every available core."""
    target: TargetName = "auto"
    """JITUNE_TARGET: force a backend instead of choosing by where the arrays live."""
    parallel_min_work: int = 1 << 17
    """JITUNE_PARALLEL_MIN_WORK: estimated operations below which a kernel runs on one thread."""


def _int_var(name: str, default: int, low: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected an integer") from None
    if value < low:
        raise ConfigError(f"{name}={raw!r}: expected an integer >= {low}")
    return value


def _choice_var(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = os.environ.get(name, default).strip().lower() or default
    if raw not in choices:
        raise ConfigError(f"{name}={raw!r}: expected one of {', '.join(choices)}")
    return raw


def from_environment() -> Settings:
    """Read every ``JITUNE_*`` variable; raise :class:`ConfigError` on a bad value."""
    return Settings(
        debug=_int_var("JITUNE_DEBUG", 0),
        num_threads=_int_var("JITUNE_NUM_THREADS", 0),
        target=_choice_var("JITUNE_TARGET", "auto", ("auto", "cpu")),  # type: ignore[arg-type]
        parallel_min_work=_int_var("JITUNE_PARALLEL_MIN_WORK", Settings.parallel_min_work),
    )


_current: Settings = from_environment()


def get() -> Settings:
    """The settings in force now."""
    return _current


def threads() -> int:
    """Number of threads a parallel kernel uses."""
    wanted = _current.num_threads
    if wanted > 0:
        return wanted
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not every platform has sched_getaffinity
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def override(**changes: object) -> Iterator[Settings]:
    """Use ``changes`` (field=value) for the duration of a ``with`` block."""
    global _current
    previous = _current
    try:
        _current = dataclasses.replace(previous, **changes)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ConfigError(f"unknown setting in override({', '.join(changes)}): {exc}") from None
    try:
        yield _current
    finally:
        _current = previous
