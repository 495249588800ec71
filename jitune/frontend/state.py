"""What one trace knows beyond its graph: the tracers alive in it (for in-place updates, see
:mod:`~jitune.frontend.mutation`), the scalar arguments found to be used as Python values
(shapes, loop counts: they become static), and the first jitune error raised inside NumPy's
own code (which NumPy may replace with a TypeError of its own).

The state lives in a context variable, so traces in other threads never see each other's.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..errors import JituneError
from ..ir.graph import Array

if TYPE_CHECKING:
    from .tracer import Tracer


@dataclasses.dataclass
class TraceState:
    """``live``: the trace's tracers by id (tracers are unhashable, like arrays), held
    weakly; ``static``: positions (among the traced inputs) of scalar arguments whose value
    the function used in Python; ``error``: the first jitune error raised in the trace;
    ``scalars``: the positions of the inputs that are scalar arguments; ``gathers``: each
    integer-array indexing traced, with the node that checks all its index values (see
    ``gather.index_check``)."""

    live: dict[int, weakref.ref[Tracer]] = dataclasses.field(default_factory=dict)
    static: set[int] = dataclasses.field(default_factory=set)
    error: JituneError | None = None
    scalars: set[int] = dataclasses.field(default_factory=set)  # inputs that are scalars
    gathers: list[tuple[Array, Array]] = dataclasses.field(default_factory=list)


_CURRENT: contextvars.ContextVar[TraceState | None] = contextvars.ContextVar(
    "jitune_trace_state", default=None
)


@contextlib.contextmanager
def tracing() -> Iterator[TraceState]:
    """The scope of one trace."""
    state = TraceState()
    token = _CURRENT.set(state)
    try:
        yield state
    finally:
        _CURRENT.reset(token)


def current() -> TraceState | None:
    """The state of the trace running in this context, or None outside a trace."""
    return _CURRENT.get()


def register(tracer: Tracer) -> None:
    """Called for every new tracer: remember it while it lives (outside a trace: nothing)."""
    state = _CURRENT.get()
    if state is not None:
        live, key = state.live, id(tracer)
        live[key] = weakref.ref(tracer, lambda _: live.pop(key, None))


def live_tracers() -> list[Tracer]:
    """The tracers of the current trace that are still referenced."""
    state = _CURRENT.get()
    if state is None:
        return []
    return [t for t in (ref() for ref in list(state.live.values())) if t is not None]


def raised(error: JituneError) -> JituneError:
    """Record ``error`` as the trace's first jitune error (if it is the first); returns it."""
    state = _CURRENT.get()
    if state is not None and state.error is None:
        state.error = error
    return error
