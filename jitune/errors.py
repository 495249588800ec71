"""Exceptions raised by jitune.

Every error a user can cause derives from :class:`JituneError`. Messages name the operation,
the shapes involved and, where known, the line of the user's function that caused it.
"""

from __future__ import annotations


class JituneError(Exception):
    """Base class of every error jitune raises on purpose."""


class UnsupportedOperation(JituneError, TypeError):
    """A NumPy function, method or argument form that the tracer cannot compile."""


class ShapeError(JituneError, ValueError):
    """Incompatible shapes: broadcasting, einsum specs, reshapes, axes."""


class DomainError(JituneError, ValueError):
    """A value NumPy's operation refuses, found while tracing (a constant) or while running
    (an array element): integers to negative integer powers."""


class IndexingError(ShapeError, IndexError):
    """An index NumPy refuses with ``IndexError``: out of bounds (a constant, found while
    tracing, or an element of an index array, found while running) or not an integer."""


class DTypeError(JituneError, TypeError):
    """A dtype jitune cannot compile (complex, object, strings, ...)."""


class ArgumentError(JituneError, TypeError):
    """A kernel argument of the wrong kind (not an array, or from another array library)."""


class CompileError(JituneError, RuntimeError):
    """Code generation or machine-code compilation failed; this is a jitune bug."""


class DeviceError(JituneError, RuntimeError):
    """A device or its driver cannot run jitune's programs (an installation problem, not a
    jitune bug): the message says which device, what failed and what to do about it."""


class ConfigError(JituneError, ValueError):
    """A ``JITUNE_*`` setting has a value that cannot be used."""
