"""In-place updates while tracing, with NumPy's meaning.

The graph IR is functional: an update makes a new node, and the tracer that was updated
takes it (``Tracer.node`` is replaced, so every Python name bound to that tracer sees the new
value, as every name bound to a NumPy array sees its new contents). What NumPy adds is
views: ``v = x.T`` shares ``x``'s memory, so after ``x += 1`` the old ``v`` shows the new
values too. Each tracer made by a view operation of the tracer class (basic indexing,
``.T``, ``transpose``, ``reshape``) records the array that owns its memory (``view_of``);
when the owner is updated, every live view of it is rebuilt on the new node by replaying its
view operations. A live tracer whose node is a view of the old value but that is not known
to be a view (it came from a function whose result NumPy may or may not copy) makes the
update an error rather than a guess.

What is supported today:

- augmented assignment (``x += y``, ``x *= 2``, ...) on a whole array, with NumPy's rules:
  the result keeps ``x``'s shape and dtype, and a result dtype that cannot be cast to it
  with ``same_kind`` casting is refused (``int_array += 1.5``);
- assignment to the whole array (``x[...] = v``, ``x[:] = v``, ``out[:, :] = v``), which
  broadcasts ``v`` and casts it unsafely, as NumPy's ``__setitem__`` does;
- both on an argument: the kernel writes the argument's new value back into the caller's
  array (see :mod:`jitune.frontend.trace`).

Assignment to part of an array (``x[1:-1] = ...``, ``x[i] += 1``, ``x[mask] = 0``) and
in-place updates through a partial view raise :class:`UnsupportedOperation` naming the line.

A 0-d value that NumPy would hold as a scalar (a full reduction, ``x[0, 0]``, a scalar
argument) is immutable, as NumPy's scalars are: ``s += 1`` makes a new value and leaves other
names bound to the old one untouched.
"""

from __future__ import annotations

import contextlib
import contextvars
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DTypeError, ShapeError, UnsupportedOperation
from ..ir.graph import VIEWS, Array, GraphOp
from . import build
from .context import located

if TYPE_CHECKING:
    from .tracer import Tracer

# the tracers of the current trace, by id (tracers are unhashable, like arrays)
_LIVE: contextvars.ContextVar[dict[int, weakref.ref[Tracer]] | None] = contextvars.ContextVar(
    "jitune_live_tracers", default=None
)


@contextlib.contextmanager
def tracing() -> Iterator[None]:
    """The scope of one trace: the tracers made in it are tracked for view updates (per
    thread and task, so concurrent traces never see each other's tracers)."""
    token = _LIVE.set({})
    try:
        yield
    finally:
        _LIVE.reset(token)


def register(tracer: Tracer) -> None:
    """Called for every new tracer: remember it while it lives (outside a trace: nothing)."""
    live = _LIVE.get()
    if live is not None:
        key = id(tracer)
        live[key] = weakref.ref(tracer, lambda _: live.pop(key, None))


def _live_tracers() -> list[Tracer]:
    live = _LIVE.get() or {}
    return [t for t in (ref() for ref in list(live.values())) if t is not None]


def _view_chain(node: Array, base: Array) -> list[Array] | None:
    """The view nodes from ``base`` up to ``node`` (outermost last), or None if ``node`` is
    not ``base`` seen through view operations only."""
    chain: list[Array] = []
    while node is not base:
        if node.op not in VIEWS:
            return None
        chain.append(node)
        node = node.src[0]
    chain.reverse()
    return chain


def _replay(chain: list[Array], base: Array) -> Array:
    """The same view operations applied to ``base`` (same shape and dtype as the old one)."""
    node = base
    for view in chain:
        node = Array(view.op, (node,), view.shape, view.dtype, view.arg)
    return node


def _owner(tracer: Tracer) -> Tracer:
    return tracer.view_of if tracer.view_of is not None else tracer


def _is_identity(chain: list[Array]) -> bool:
    """Whether these views show every element of the base in its own place (``x[...]``,
    ``x[:]``, a reshape to the same shape)."""
    for view in chain:
        if view.shape != view.src[0].shape:
            return False
        if view.op is GraphOp.SLICE and any(start != 0 or step != 1 for start, step in view.arg):
            return False
        if view.op is GraphOp.PERMUTE and tuple(view.arg) != tuple(range(len(view.shape))):
            return False
    return True


def _replace(owner: Tracer, new: Array, what: str) -> None:
    """Give ``owner`` the value ``new`` and rebuild every live view of it on that value."""
    old = owner.node
    rebuilt: list[tuple[Tracer, Array]] = []
    for other in _live_tracers():
        if other is owner:
            continue
        chain = _view_chain(other.node, old)
        if chain is None:
            continue
        if other.view_of is not owner:
            raise UnsupportedOperation(
                located(
                    f"{what}: an array of shape {other.shape} derived from this one (shape "
                    f"{owner.shape}) by a function that NumPy may answer with a view or a copy "
                    "is still alive, and jitune cannot tell which it would see; make it an "
                    "explicit .copy() before the update, or index the array itself"
                )
            )
        rebuilt.append((other, _replay(chain, new)))
    owner.node = new
    for other, node in rebuilt:
        other.node = node


def _refuse_partial(target: Tracer, what: str) -> None:
    raise UnsupportedOperation(
        located(
            f"{what}: assignment to part of an array (shape {target.shape}) is not supported "
            "yet: only whole arrays can be updated in place (x[...] = v, x += v); build the "
            "new array with np.where or arithmetic instead"
        )
    )


def _target(target: Tracer, what: str) -> Tracer:
    """The tracer whose value an update of ``target`` replaces: ``target`` itself, or the
    owner of a view that shows all of it in place."""
    if not target.mutable:
        raise UnsupportedOperation(
            located(
                f"{what}: this 0-d value is a NumPy scalar (a reduction's result, an element, a "
                "scalar argument), which does not support item assignment"
            )
        )
    owner = _owner(target)
    if owner is target:
        return owner
    chain = _view_chain(target.node, owner.node)
    if chain is None or not _is_identity(chain):
        _refuse_partial(target, f"{what} through a view")
    return owner


def _full_key(key: Any, shape: tuple[int, ...]) -> bool:
    """Whether ``x[key]`` is all of ``x`` in place (``...``, ``:`` or ``0:n`` on every axis);
    a key that is not basic indexing raises as reading with it would."""
    from .indexing import expand_key

    items = expand_key(key, len(shape), shape)
    if any(not isinstance(item, slice) for item in items):
        return False  # an integer picks part of an axis; None adds one
    return all(item.indices(extent) == (0, extent, 1) for item, extent in zip(items, shape))


def assign(target: Tracer, key: Any, value: Any) -> None:
    """``target[key] = value`` for a key that selects the whole array."""
    from .tracer import to_node

    what = "item assignment"
    if not _full_key(key, target.shape):
        _refuse_partial(target, what)
    owner = _target(target, what)
    node = to_node(value, target.dtype, what)
    if node.dtype != target.dtype:
        node = build.cast(node, target.dtype)  # NumPy's __setitem__ casts unsafely
    if node.shape != target.shape:
        try:
            node = build.expand(node, target.shape, what)
        except ShapeError:
            raise ShapeError(
                located(
                    f"{what}: could not broadcast input array from shape {node.shape} into "
                    f"shape {target.shape}"
                )
            ) from None
    if node is owner.node or node is target.node:
        return  # x[...] = x
    # a copy: the value's own tracer stays a separate array (``x[...] = y; y += 1``)
    _replace(owner, build.copy(node), what)


def update(target: Tracer, result: Any, op_name: str) -> Tracer:
    """``target op= other`` given ``result`` = ``op(target, other)`` (traced): ``target``
    takes the result's values, cast to its dtype; a scalar (immutable) gets the new value
    as a new tracer instead. Returns what Python binds the name to."""
    from .tracer import Tracer

    if not isinstance(result, Tracer):
        raise UnsupportedOperation(located(f"in-place {op_name} gave a {type(result).__name__}"))
    if not target.mutable:
        return result  # NumPy scalars are immutable: the name is bound to a new value
    what = f"in-place {op_name} (shape {target.shape}, {target.dtype})"
    if result.shape != target.shape:
        raise ShapeError(
            located(
                f"{what}: non-broadcastable output operand with shape {target.shape} doesn't "
                f"match the broadcast shape {result.shape}"
            )
        )
    if result.dtype != target.dtype and not np.can_cast(result.dtype, target.dtype, "same_kind"):
        raise DTypeError(
            located(
                f"{what}: cannot cast the result from {result.dtype} to {target.dtype} with "
                "casting rule 'same_kind', as NumPy's in-place operators require"
            )
        )
    owner = _target(target, what)
    _replace(owner, build.cast(result.node, target.dtype), what)
    return target
