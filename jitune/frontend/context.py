"""Where in the user's code an operation was traced, for error messages."""

from __future__ import annotations

import linecache
import os
import sys
from typing import Any

import numpy as np

from .. import dtypes
from ..errors import DTypeError

_JITUNE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SKIP_DIRS = (_JITUNE_DIR,)


def _numpy_dir() -> str:
    numpy = sys.modules.get("numpy")
    return os.path.dirname(os.path.abspath(numpy.__file__)) if numpy else "\0"


def user_line() -> str:
    """``file:line: source`` of the innermost frame outside jitune and NumPy, or ''."""
    skip = _SKIP_DIRS + (_numpy_dir(),)
    frame = sys._getframe(1)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(skip) and not filename.startswith("<frozen"):
            source = linecache.getline(filename, frame.f_lineno).strip()
            where = f"{frame.f_code.co_filename}:{frame.f_lineno}"
            return f"{where}: {source}" if source else where
        frame = frame.f_back
    return ""


def located(message: str) -> str:
    """``message`` followed by the user's line, when one is found."""
    line = user_line()
    return f"{message}\n  at {line}" if line else message


def supported(dtype: object, what: str) -> np.dtype:
    """``dtypes.check_supported`` for a traced operation: the error names the user's line."""
    try:
        return dtypes.check_supported(np.dtype(dtype), what)  # type: ignore[arg-type]
    except DTypeError as exc:
        raise DTypeError(located(str(exc))) from None
    except TypeError as exc:  # not a dtype at all
        raise DTypeError(located(f"{what}: {dtype!r} is not a dtype ({exc})")) from None


def require_static(value: Any) -> None:
    """Where NumPy wants Python ints (axes, shapes, indices, slice bounds): a traced value
    computed from scalar arguments only makes them static (the function is traced again with
    their values); anything else passes, for the caller's own checks and errors."""
    if isinstance(value, (tuple, list)):
        for item in value:
            require_static(item)
    elif isinstance(value, slice):
        require_static((value.start, value.stop, value.step))
    elif hasattr(value, "node") and getattr(value, "ndim", None) == 0:
        value.make_static()
