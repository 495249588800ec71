"""Known open bugs the fuzzer finds, so that CI (``--known``) stays green while they are
being fixed. Each entry names its bug; remove it with the fix, so the table shrinks to empty.

A finding matches an entry by its kind, its message and the program's source; the match is
kept narrow so that a new bug of the same shape is not hidden for long.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from .compare import Finding
from .program import Program


@dataclasses.dataclass(frozen=True)
class Known:
    name: str
    bug: str
    matches: Callable[[Program, Finding], bool]


def _numpy_subnormal(finding: Finding) -> bool:
    match = re.search(r"NumPy (?:np\.float\d+\()?(-?[\d.e+-]+)", finding.message)
    try:
        value = abs(float(match.group(1))) if match else 0.0
    except ValueError:
        return False
    return 0.0 < value < 2.3e-308 or (0.0 < value < 1.2e-38 and "float32" in finding.message)


def _source(program: Program) -> str:
    return program.function_source()


KNOWN: tuple[Known, ...] = (
    Known(
        "int-power-negative",
        "integer x ** negative constant returns 0 instead of raising (NumPy: ValueError)",
        lambda p, f: f.kind == "accepted" and "negative integer powers" in f.message,
    ),
    Known(
        "einsum-repeated-index-extent",
        "np.einsum('ii->i', ones((3, 1))) is accepted: a repeated subscript's extents are "
        "not checked",
        lambda p, f: f.kind == "accepted" and "collapsing index" in f.message,
    ),
    Known(
        "signed-zero-constants",
        "-0.0 and 0.0 constants are merged, so (x + -0.0) / 0.0 gets the wrong sign",
        lambda p, f: (
            f.kind == "mismatch"
            and "-0.0" in _source(p)
            and bool(re.search(r"jitune np\.float\d+\((-?0\.0|-?inf)\)", f.message))
        ),
    ),
    Known(
        "subnormal-broadcast-division",
        "division by a row-broadcast divisor is wrong for subnormal quotients",
        lambda p, f: (
            f.kind == "mismatch"
            and bool(re.search(r"/|divide", _source(p)))
            and _numpy_subnormal(f)
        ),
    ),
    Known(
        "int-mean-int-dtype",
        "x.astype(np.int32).mean(dtype=np.int32) raises NotImplementedError (TRUEDIV on i32)",
        lambda p, f: f.exception == "NotImplementedError" and "TRUEDIV on i" in f.message,
    ),
    Known(
        "einsum-elementwise-keyerror",
        "np.einsum('d,d->d', a, b) + c raises KeyError 'i0' (also np.tensordot(a, b, axes=0) + c)",
        lambda p, f: f.exception == "KeyError" and bool(re.search(r"einsum|tensordot", _source(p))),
    ),
    # found by this fuzzer, reported, not yet assigned (both in frontend/numpy_api.py):
    Known(
        "swapaxes-0d-indexerror",
        "np.swapaxes(zero_d, 0, 0) raises IndexError (not a JituneError; NumPy: AxisError)",
        lambda p, f: (
            f.kind == "wrong-exception" and f.exception == "IndexError" and "swapaxes" in _source(p)
        ),
    ),
    Known(
        "full-like-unrepresentable-int-fill",
        "np.full_like(int_array, nan / inf / 1e30) raises ValueError/OverflowError (not a "
        "JituneError; NumPy casts with a RuntimeWarning)",
        lambda p, f: (
            f.kind == "exception"
            and f.exception in ("ValueError", "OverflowError")
            and "full_like" in _source(p)
        ),
    ),
    Known(
        "python-scalar-arithmetic-strong",
        "arithmetic on a Python scalar argument (n % 5, n + 1) makes a strong int64/float64 "
        "value, so int32_array ** (n % 5) is int64 (NumPy, where n % 5 is a Python int: int32)",
        lambda p, f: (
            f.kind == "mismatch"
            and bool(re.search(r"dtype (int64|float64), NumPy (int32|float32|bool)", f.message))
            and any(i.kind == "python" for i in p.inputs)
        ),
    ),
    Known(
        "full-like-array-fill",
        "np.full_like(np.ones(()), np.ones(1)) raises ShapeError (NumPy casts the size-1 fill)",
        lambda p, f: f.exception == "ShapeError" and "full_like" in f.message,
    ),
)


def known_bug(program: Program, finding: Finding) -> Known | None:
    """The entry of ``KNOWN`` this finding is an instance of, or None."""
    for entry in KNOWN:
        if entry.matches(program, finding):
            return entry
    return None
