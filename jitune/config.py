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
import re
from collections.abc import Iterator
from typing import Literal

from .errors import ConfigError

TargetName = Literal["auto", "cpu"]
ProgressMode = Literal["auto", "on", "off"]


@dataclasses.dataclass(frozen=True)
class Budget:
    """How much a new signature may be tuned: measured trials, or seconds of wall time.

    ``Budget(trials=0)`` measures nothing (the cost model's choice, or the default schedule).
    """

    trials: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if (self.trials is None) == (self.seconds is None):
            raise ValueError("a budget is either trials or seconds")

    @property
    def none(self) -> bool:
        """True when nothing may be measured."""
        return self.trials == 0 or self.seconds == 0

    def __str__(self) -> str:
        return f"{self.trials} trials" if self.trials is not None else f"{self.seconds:g}s"


def parse_budget(value: object, name: str = "JITUNE_BUDGET") -> Budget:
    """A :class:`Budget` from ``64`` (trials), ``"64"``, ``"30s"``, ``"2min"`` or a Budget;
    raises :class:`ConfigError` naming ``name`` for anything else."""
    if isinstance(value, Budget):
        return value
    if isinstance(value, bool):
        raise ConfigError(f"{name}={value!r}: expected a number of trials (64) or a time (30s)")
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(f"{name}={value!r}: expected a number of trials >= 0")
        return Budget(trials=value)
    raw = str(value).strip().lower()
    units = {"ms": 1e-3, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0}
    match = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)", raw)
    if match is None or (match.group(2) and match.group(2) not in units):
        raise ConfigError(f"{name}={value!r}: expected a number of trials (64) or a time (30s)")
    number, unit = match.groups()
    if not unit:
        if "." in number:
            raise ConfigError(f"{name}={value!r}: a number of trials must be a whole number")
        return Budget(trials=int(number))
    return Budget(seconds=float(number) * units[unit])


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
    """JITUNE_PARALLEL_MIN_WORK: estimated work below which a kernel runs on one thread."""
    cache_dir: str = ""
    """JITUNE_CACHE_DIR: where compiled kernels are kept (default: the user cache directory)."""
    disable_cache: bool = False
    """JITUNE_DISABLE_CACHE: 1 keeps compiled kernels in memory only."""
    cache_size: int = 1 << 30
    """JITUNE_CACHE_SIZE: size limit of the disk cache in bytes (suffixes K, M, G); least
    recently used entries are evicted beyond it."""
    buffer_pool: int = 1 << 30
    """JITUNE_BUFFER_POOL: bytes of large CPU buffers (outputs, temporaries) kept for reuse
    once dropped (suffixes K, M, G); 0 turns the pool off."""
    cache_wait: float = 60.0
    """JITUNE_CACHE_WAIT: seconds to wait for another process that is building the same
    kernel before building it here too."""
    budget: Budget = Budget(trials=32)
    """JITUNE_BUDGET: tuning per new signature, trials (``64``) or wall time (``30s``);
    ``0`` measures nothing. 32 trials keep a typical first call at a few seconds."""
    isolate: bool = True
    """JITUNE_ISOLATE: measure tuning candidates in a worker process (0: in this process)."""
    progress: ProgressMode = "auto"
    """JITUNE_PROGRESS: tuning progress bar on stderr; auto shows it on a terminal only."""
    max_stages: int = 128
    """JITUNE_MAX_STAGES: distinct loop nests a CPU kernel may compile (about 25-60 ms each);
    a kernel with more (a loop unrolled into hundreds of differently sized updates) runs its
    graph with NumPy instead, uncompiled; 0 compiles any size."""


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


def _bool_var(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r}: expected 0 or 1")


_SIZE_SUFFIXES = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _size_var(name: str, default: int, allow_zero: bool = False) -> int:
    raw = os.environ.get(name, "").strip().lower().removesuffix("b").removesuffix("i")
    if raw == "":
        return default
    number, suffix = (raw[:-1], raw[-1]) if raw[-1] in _SIZE_SUFFIXES else (raw, "")
    try:
        value = int(float(number) * _SIZE_SUFFIXES[suffix])
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a size such as 500M or 2G") from None
    if value < 1 << 20 and not (allow_zero and value == 0):
        raise ConfigError(f"{name}={raw!r}: expected {'0 or ' if allow_zero else ''}at least 1M")
    return value


def _float_var(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a number of seconds") from None
    if value < 0:
        raise ConfigError(f"{name}={raw!r}: expected a number >= 0")
    return value


def _budget_var(name: str, default: Budget) -> Budget:
    raw = os.environ.get(name, "").strip()
    return default if raw == "" else parse_budget(raw, name)


def _progress_var(name: str) -> ProgressMode:
    raw = os.environ.get(name, "").strip().lower()
    if raw in ("", "auto"):
        return "auto"
    if raw in ("1", "true", "yes", "on"):
        return "on"
    if raw in ("0", "false", "no", "off"):
        return "off"
    raise ConfigError(f"{name}={raw!r}: expected auto, 1 or 0")


def default_cache_dir() -> str:
    """The platform's user cache directory for jitune."""
    import platformdirs

    return platformdirs.user_cache_dir("jitune")


def from_environment() -> Settings:
    """Read every ``JITUNE_*`` variable; raise :class:`ConfigError` on a bad value."""
    return Settings(
        debug=_int_var("JITUNE_DEBUG", 0),
        num_threads=_int_var("JITUNE_NUM_THREADS", 0),
        target=_choice_var("JITUNE_TARGET", "auto", ("auto", "cpu")),  # type: ignore[arg-type]
        parallel_min_work=_int_var("JITUNE_PARALLEL_MIN_WORK", Settings.parallel_min_work),
        cache_dir=os.environ.get("JITUNE_CACHE_DIR", "").strip() or default_cache_dir(),
        disable_cache=_bool_var("JITUNE_DISABLE_CACHE", False),
        cache_size=_size_var("JITUNE_CACHE_SIZE", Settings.cache_size),
        buffer_pool=_size_var("JITUNE_BUFFER_POOL", Settings.buffer_pool, allow_zero=True),
        cache_wait=_float_var("JITUNE_CACHE_WAIT", Settings.cache_wait),
        budget=_budget_var("JITUNE_BUDGET", Settings.budget),
        isolate=_bool_var("JITUNE_ISOLATE", True),
        progress=_progress_var("JITUNE_PROGRESS"),
        max_stages=_int_var("JITUNE_MAX_STAGES", Settings.max_stages),
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
