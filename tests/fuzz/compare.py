"""Running one program through NumPy and jitune and judging the difference.

:func:`run_program` runs a program's function with NumPy, then through ``jitune.kernel``
three times: a fresh compile, a second call (the dispatch table), and a new kernel object
that must load the binary from the disk cache. :func:`compare_results` is the judgement
alone, so a test can hand it a deliberately wrong answer.
"""

from __future__ import annotations

import dataclasses
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

import jitune
from jitune.errors import JituneError, UnsupportedOperation

from .bounds import error_bounds
from .program import Program


@dataclasses.dataclass(frozen=True)
class Finding:
    """What went wrong. ``kind``: mismatch, accepted (NumPy raises, jitune does not),
    wrong-exception, unsupported, rejected (another JituneError), exception (a non-jitune
    exception), cache (not loaded from the disk cache), crash, hang."""

    kind: str
    message: str
    exception: str = ""  # the exception's type name, when there is one

    def signature(self) -> str:
        return f"{self.kind}:{self.exception}" if self.exception else self.kind


def _quiet() -> Any:
    """NumPy's warnings (overflow, invalid, empty slices) are not findings: silence them."""
    stack = warnings.catch_warnings()
    stack.__enter__()
    warnings.simplefilter("ignore")
    return stack


def _items(result: Any) -> tuple[str, list[Any]]:
    if isinstance(result, tuple):
        return "tuple", list(result)
    if isinstance(result, list):
        return "list", list(result)
    return "single", [result]


def _compare_one(actual: Any, expected: Any, bound: np.ndarray) -> str | None:
    """Why ``actual`` is not ``expected`` within ``bound`` (per element), or None."""
    if type(actual) is not np.ndarray:
        return f"a {type(actual).__name__}, not a NumPy array"
    want = np.asarray(expected)
    if actual.shape != want.shape:
        return f"shape {actual.shape}, NumPy {want.shape}"
    if actual.dtype != want.dtype:
        return f"dtype {actual.dtype}, NumPy {want.dtype}"
    known = np.isfinite(np.broadcast_to(bound, want.shape))
    if want.dtype.kind != "f":
        bad = known & (actual != want)
    else:
        got, exp = actual.astype(np.float64), want.astype(np.float64)
        with np.errstate(all="ignore"):
            nan_differs = np.isnan(got) != np.isnan(exp)
            inf_differs = (np.isinf(got) | np.isinf(exp)) & (got != exp) & ~np.isnan(exp)
            beyond = np.isfinite(exp) & ~(np.abs(got - exp) <= 2 * bound)
            # an exact result keeps the sign of zero (1 / result would show it)
            zero_sign = (bound == 0) & (exp == 0) & (np.signbit(got) != np.signbit(exp))
        bad = known & (nan_differs | inf_differs | beyond | zero_sign)
    if not bad.any():
        return None
    where = tuple(int(i) for i in np.argwhere(bad)[0])
    return (
        f"{int(bad.sum())} of {want.size} elements differ; first at {where}: jitune "
        f"{actual[where]!r}, NumPy {want[where]!r} (allowed difference "
        f"{2 * float(np.broadcast_to(bound, want.shape)[where]):.3g})"
    )


def compare_results(
    program: Program, env: dict[str, Any], actual: Any, label: str
) -> Finding | None:
    """Judge jitune's ``actual`` result against NumPy's values ``env`` of ``program``."""
    bounds = error_bounds(program, env)
    structure, items = _items(actual)
    expected = "single" if len(program.outputs) == 1 else "tuple"
    if structure != expected or len(items) != len(program.outputs):
        return Finding(
            "mismatch", f"{label}: returned a {structure} of {len(items)}, NumPy a {expected}"
        )
    for position, (item, name) in enumerate(zip(items, program.outputs)):
        problem = _compare_one(item, env[name], bounds[name])
        if problem:
            return Finding("mismatch", f"{label}: output {position} ({name}): {problem}")
    return None


def _error_finding(exc: BaseException, label: str) -> Finding:
    """A finding for jitune raising ``exc`` on a program NumPy runs."""
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    if isinstance(exc, UnsupportedOperation):
        kind = "unsupported"
    elif isinstance(exc, JituneError):
        kind = "rejected"
    else:
        kind = "exception"
    return Finding(kind, f"{label}: jitune raised {last}", type(exc).__name__)


Jit = Callable[[Callable[..., Any]], Callable[..., Any]]


def run_program(program: Program, cache_dir: str, jit: Jit = jitune.kernel) -> Finding | None:
    """Run ``program`` with NumPy and three ways with jitune (``jit``, normally
    ``jitune.kernel``), compiling into the disk cache at ``cache_dir``; the first finding, or
    None when every run matches NumPy."""
    stack = _quiet()
    try:
        try:
            with np.errstate(all="ignore"):
                env = program.evaluate(program.arguments())
        except Exception as numpy_error:  # noqa: BLE001 - any NumPy refusal must be matched
            return _expect_error(program, numpy_error, jit)
        settings: dict[str, Any] = {"disable_cache": False, "cache_dir": cache_dir}
        if program.parallel:
            settings["parallel_min_work"] = 1
        with jitune.config.override(**settings):
            return _run_jitune(program, env, jit)
    finally:
        stack.__exit__(None, None, None)


def _run_jitune(program: Program, env: dict[str, Any], jit: Jit) -> Finding | None:
    first = jit(program.function())
    for label in ("first call", "second call", "from the disk cache"):
        if label == "from the disk cache":
            first = jit(program.function())  # an empty dispatch table: must load, not compile
        args = program.arguments()
        try:
            actual = first(*args)
        except Exception as exc:  # noqa: BLE001 - every exception is a finding here
            return _error_finding(exc, label)
        for position, (arg, spec) in enumerate(zip(args, program.inputs)):
            # NumPy's state of the argument afterwards (changed where the program updates it)
            if not _same_state(np.asarray(arg), np.asarray(env[spec.name])):
                return Finding("mismatch", f"{label}: input {position} differs from NumPy's")
        for item in _items(actual)[1]:
            if any(np.shares_memory(item, a) for a in args if isinstance(a, np.ndarray)):
                return Finding("mismatch", f"{label}: an output shares memory with an input")
        found = compare_results(program, env, actual, label)
        if found:
            return found
        if label == "from the disk cache" and getattr(first, "load_count", 1) != 1:
            return Finding(
                "cache", "a new kernel object compiled again instead of loading the cached binary"
            )
    return None


def _same_state(actual: np.ndarray, expected: np.ndarray) -> bool:
    """Whether an argument after the call is as NumPy left it: exactly, or for floats to a
    tolerance far above rounding (a value NumPy computes in another order) and far below
    what reading an element before or after its update gives."""
    if actual.shape != expected.shape or actual.dtype != expected.dtype:
        return False
    if expected.dtype.kind != "f":
        return bool(np.array_equal(actual, expected))
    with np.errstate(all="ignore"):
        return bool(np.allclose(actual, expected, rtol=1e-3, atol=1e-5, equal_nan=True))


def _expect_error(program: Program, numpy_error: Exception, jit: Jit) -> Finding | None:
    """NumPy raised: jitune must raise a JituneError (at trace time) as well."""
    what = f"NumPy raises {type(numpy_error).__name__}: {numpy_error}"
    try:
        with jitune.config.override(disable_cache=True):
            result = jit(program.function())(*program.arguments())
    except JituneError:
        return None
    except Exception as exc:  # noqa: BLE001
        return Finding(
            "wrong-exception",
            f"{what}; jitune raised {type(exc).__name__}: {exc}",
            type(exc).__name__,
        )
    return Finding("accepted", f"{what}; jitune returned {result!r}"[:600])
