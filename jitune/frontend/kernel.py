"""``@jitune.kernel``: the user-facing function object and its dispatch table."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from .. import config, dtypes
from ..errors import ArgumentError, DomainError, DTypeError, IndexingError
from ..ir.compute import contiguous_strides
from ..ir.graph import Graph, GraphOp
from ..pipeline import Lowered, lower_graph
from ..runtime.base import Device
from ..runtime.devices import device_named, device_of
from ..tune import TuneOptions, TuneResult
from . import state as trace_state
from .arguments import Binder, check_static, traceable
from .artifacts import Obtained, obtain
from .trace import ArgSpec, NeedsStatic, Traced, trace


def _report(name: str, device: Device, specs: Sequence[ArgSpec], obtained: Obtained) -> None:
    """The JITUNE_DEBUG ladder, printed to stderr: 1 compiles and cache loads, 3 loop IR,
    4 LLVM IR, 5 graph and compute IR (levels 3-5 only for what was compiled)."""
    level = config.get().debug
    if level < 1:
        return
    shapes = ", ".join(f"{s.dtype}{list(s.shape)}" for s in specs)
    verb = {"compiled": "compiled", "loaded": "loaded from the cache"}.get(
        obtained.how, "prepared (to run uncompiled, with NumPy)"
    )
    print(
        f"jitune: {verb} {name}({shapes}) for {device.name} in {1e3 * obtained.seconds:.1f} ms",
        file=sys.stderr,
    )
    if obtained.tuned is not None:
        print(f"jitune:   {obtained.tuned.how}", file=sys.stderr)
    lowered = obtained.lowered
    if lowered is None:
        return
    if level >= 5:
        print(f"{lowered.graph}\n\n{lowered.compute}", file=sys.stderr)
    if level >= 3:
        print(lowered.loops, file=sys.stderr)
    if level >= 4:
        print(lowered.source, file=sys.stderr)


_PYTHON_SCALARS = {bool: np.dtype(bool), int: np.dtype(np.int64), float: np.dtype(np.float64)}


def _signature(arg: Any) -> Any:
    """The part of the dispatch key one argument contributes (cheap: this is the hot path)."""
    kind = type(arg)
    if kind is np.ndarray:
        return (arg.shape, arg.dtype, arg.strides)
    if kind in _PYTHON_SCALARS:
        return kind
    if isinstance(arg, np.generic):
        return ("scalar", arg.dtype)
    if isinstance(arg, np.ndarray):
        # An ndarray subclass (np.matrix, a masked array) must never share a plain array's
        # key: the exact type in the key makes it miss the table, and _build refuses it.
        return (kind, arg.shape, arg.dtype, arg.strides)
    strides = getattr(arg, "strides", None)
    if strides is not None:  # a GPU array: where it lives is part of the key
        device = getattr(arg, "device", None)  # CuPy: the GPU; pyopencl: the queue
        place = device.id if device is not None else getattr(arg, "queue", None)
        return (kind, arg.shape, arg.dtype, strides, place)
    if traceable(arg):
        return ("other", kind)
    return ("static", kind, arg)  # a string, tuple, None, object: static, keyed by value


def _element_strides(arg: Any, itemsize: int, position: int, name: str) -> tuple[int, ...]:
    """``arg``'s byte strides in elements; ArgumentError if one is not a whole element."""
    if any(s % itemsize for s in arg.strides):
        raise ArgumentError(
            f"{name}: argument {position} has strides {arg.strides} that are not multiples "
            f"of its item size {itemsize}; pass a copy"
        )
    return tuple(s // itemsize for s in arg.strides)


def _spec(arg: Any, position: int, name: str) -> ArgSpec:
    """Tracing spec of one argument; raises ArgumentError/DTypeError for what cannot run."""
    kind = type(arg)
    if kind in _PYTHON_SCALARS:
        return ArgSpec((), _PYTHON_SCALARS[kind], (), weak=kind, scalar=True)
    if isinstance(arg, complex) or (
        isinstance(arg, (np.ndarray, np.generic)) and arg.dtype.kind == "c"
    ):
        raise DTypeError(
            f"{name}: argument {position} is complex; jitune supports real dtypes only"
        )
    if isinstance(arg, np.generic):
        dtype = dtypes.check_supported(arg.dtype, f"{name}: argument {position}")
        return ArgSpec((), dtype, (), scalar=True)
    if isinstance(arg, np.ndarray) and type(arg) is not np.ndarray:
        # np.matrix redefines *, masked arrays carry a mask: tracing them as plain arrays
        # would silently change the meaning of the function
        raise ArgumentError(
            f"{name}: argument {position} is a {kind.__module__}.{kind.__qualname__} (an ndarray "
            "subclass); pass np.asarray(...) of it if plain-array semantics are meant"
        )
    if isinstance(arg, np.ndarray):
        dtype = dtypes.check_supported(
            arg.dtype, f"{name}: argument {position} (shape {arg.shape})"
        )
        return ArgSpec(arg.shape, dtype, _element_strides(arg, dtype.itemsize, position, name))
    device_of([arg], name)  # names the array library, if it is one
    if hasattr(arg, "strides") and hasattr(arg, "dtype") and hasattr(arg, "shape"):
        # an array of a library some device runs (CuPy): strides in bytes, as in NumPy
        dtype = dtypes.check_supported(
            np.dtype(arg.dtype), f"{name}: argument {position} (shape {arg.shape})"
        )
        strides = _element_strides(arg, dtype.itemsize, position, name)
        return ArgSpec(tuple(arg.shape), dtype, strides)
    raise ArgumentError(
        f"{name}: argument {position} is a {kind.__module__}.{kind.__qualname__}, not an array; "
        "pass a NumPy array (np.asarray(...)) or a scalar"
    )


class _Entry:
    """A compiled signature: converts scalars, allocates outputs, runs the program."""

    __slots__ = (
        "positions",
        "program",
        "launch",
        "scalars",
        "allocations",
        "results",
        "structure",
        "call",
        "writes",
        "copy_backs",
        "returned",
        "copy_into",
        "index_sites",
        "result_arguments",
    )

    def __init__(
        self,
        obtained: Obtained,
        device: Device,
        args: Sequence[Any],
        specs: Sequence[ArgSpec],
        traced: Traced,
        name: str,
        positions: tuple[int, ...] | None = None,
    ) -> None:
        # the call's traced arguments (None: all of them; the others are static)
        self.positions = positions
        self.program = obtained.program  # keeps the machine code alive
        self.launch = obtained.program.launch
        # GPUs allocate on the arrays' device; the CPU pools large buffers
        allocator = getattr(device, "allocator_for", None)
        self.scalars = tuple(
            (position, spec.dtype)
            for position, (arg, spec) in enumerate(zip(args, specs))
            if isinstance(arg, (bool, int, float, np.generic))
        )
        plan = obtained.plan
        self.allocations = tuple(
            (
                shape,
                np.dtype(dtype),
                device.empty if allocator is None else allocator(args, shape, np.dtype(dtype)),
            )
            for shape, dtype in plan.allocations
        )
        self.results = plan.results
        self.structure = traced.structure
        # arguments the function updates in place: (position, buffer of the new value)
        self.writes = tuple((position, plan.results[k]) for position, k in traced.writes)
        # those whose new value the kernel did not store into the caller's array itself
        self.copy_backs = tuple((p, buffer) for p, buffer in self.writes if buffer != p)
        # how many outputs are the function's results (then new values, then index checks)
        self.returned = len(plan.results) - len(traced.writes) - traced.checks
        self.copy_into = getattr(device, "copy_into", _copy_into)
        # what a run-time error names: the kernel and its argument types and shapes
        self.call = f"{name}({', '.join(f'{s.dtype}{list(s.shape)}' for s in specs)})"
        # what an out-of-bounds index names: the kernel's integer-array indexings
        self.index_sites = index_sites(traced.graph)
        # results that are an updated argument's new value: the argument itself, as NumPy's
        outputs = traced.graph.outputs
        self.result_arguments = {
            k: position
            for k in range(self.returned)
            for position, written in traced.writes
            if outputs[k] is outputs[written]
        }

    def __call__(self, args: Sequence[Any]) -> Any:
        if self.positions is not None:
            args = [args[p] for p in self.positions]
        arrays = list(args)
        for position, dtype in self.scalars:
            arrays[position] = np.asarray(arrays[position], dtype=dtype)
        if self.writes:
            _check_writable(args, self.writes, self.call)
        for shape, dtype, empty in self.allocations:
            arrays.append(empty(shape, dtype))
        try:
            self.launch(*arrays)
        except DomainError as exc:  # a value NumPy refuses, found by the compiled code
            raise DomainError(f"{self.call}: {exc}") from None
        except IndexingError as exc:
            raise IndexingError(_index_message(f"{self.call}: {exc}", self.index_sites)) from None
        for position, buffer in self.copy_backs:  # after the whole kernel: no read sees it
            self.copy_into(args[position], arrays[buffer])
        if self.structure == "single" and not self.result_arguments:
            return arrays[self.results[0]]
        if self.structure == "none":
            return None
        chosen = self.result_arguments
        results = [
            args[chosen[k]] if k in chosen else arrays[buffer]
            for k, buffer in enumerate(self.results[: self.returned])
        ]
        if self.structure == "single":
            return results[0]
        return tuple(results) if self.structure == "tuple" else results


def index_sites(graph: Graph) -> tuple[str, ...]:
    """What each integer-array indexing of ``graph`` is and where the user wrote it."""
    found = (node.arg.where for node in graph.nodes() if node.op is GraphOp.GATHER)
    return tuple(dict.fromkeys(found))  # a gather and its index check name one line


def _index_message(message: str, sites: tuple[str, ...]) -> str:
    """An out-of-bounds message naming the indexing(s) it may come from."""
    sites = tuple(site for site in sites if site not in message)
    if not sites:
        return message
    if len(sites) == 1:
        return f"{message}, in {sites[0]}"
    return f"{message}, in one of:\n" + "\n".join(f"  {site}" for site in sites)


def _call_with(binder: Binder, names: Sequence[str], fn: Callable[..., Any], values: Any) -> Any:
    return binder.call(fn, names, values)


def _copy_into(destination: Any, values: Any) -> None:
    """Write a kernel's new value of an argument into the caller's array."""
    if isinstance(destination, np.ndarray):
        np.copyto(destination, values, casting="no")
    else:  # a GPU array: a copy on its device
        destination[...] = values


def _check_writable(args: Sequence[Any], writes: tuple[tuple[int, int], ...], call: str) -> None:
    """Before a kernel that updates arguments runs: each is writable and shares no memory
    with another array argument. NumPy would see an update through the other name at once;
    the kernel writes its arguments back only at its end, so an overlap is refused."""
    for position, _ in writes:
        target = args[position]
        if isinstance(target, np.ndarray) and not target.flags.writeable:
            raise ArgumentError(
                f"{call}: argument {position} is updated in place but is read-only "
                "(a broadcast or read-only view); pass a writable array"
            )
        for other, arg in enumerate(args):
            if other != position and hasattr(arg, "shape") and _overlap(target, arg):
                raise ArgumentError(
                    f"{call}: argument {position} is updated in place and shares memory with "
                    f"argument {other}; jitune does not run kernels whose updated arguments "
                    "overlap other arguments (pass a copy of one)"
                )


def _overlap(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return bool(np.may_share_memory(a, b))
    pointer = getattr(getattr(a, "data", None), "ptr", None)  # CuPy
    if pointer is not None and pointer == getattr(getattr(b, "data", None), "ptr", None):
        return True
    base_a, base_b = getattr(a, "base_data", None), getattr(b, "base_data", None)  # pyopencl
    return base_a is not None and base_a == base_b


class Kernel:
    """A NumPy function compiled per call signature (shapes, dtypes, strides, device).

    Call it like the function it wraps. ``lower(*args)`` shows what jitune makes of it;
    ``tune(*args)`` tunes a signature ahead of time. ``budget`` and ``strategy`` override
    ``JITUNE_BUDGET`` and the default search for this kernel.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        budget: int | str | config.Budget | None = None,
        strategy: str | None = None,
        static: Iterable[str | int] = (),
    ) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "kernel")
        if isinstance(static, (str, int)):
            static = (static,)
        self._binder = Binder(fn, self.name, static)
        # positions keyed and passed by value: declared, or found used as Python values
        self._static: set[str] = set()
        self._set_static(self._binder.static)
        # checked now, so a bad value fails where it is written
        self.budget = None if budget is None else config.parse_budget(budget, "budget")
        self.strategy = strategy
        if strategy is not None:
            from ..tune.search import STRATEGIES

            if strategy not in STRATEGIES:
                raise ValueError(f"strategy={strategy!r}: expected one of {', '.join(STRATEGIES)}")
        self._table: dict[tuple[Any, ...], _Entry] = {}
        self.compile_count = 0  # signatures compiled with LLVM in this process
        self.last: Obtained | None = None  # the most recent build (tests, f.tune)
        self.load_count = 0  # signatures loaded from the disk cache

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not kwargs and len(args) == self._plain_count:  # the hot path: no binding
            try:
                entry = self._table.get(tuple(map(_signature, args)))
            except TypeError:  # an unhashable static value: _call says which
                entry = None
            if entry is not None:
                return entry(args)
        return self._call(args, kwargs)

    def _set_static(self, names: Iterable[str]) -> None:
        self._static |= set(names)
        # the argument count of a call that needs no binding and has no static values
        binder = self._binder
        self._plain_count = binder.count if binder.plain and not self._static else -1

    def _call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        binder = self._binder
        names = None  # None: every parameter, by position
        if kwargs or len(args) != binder.count or not binder.plain:
            names, args = binder.bind(args, kwargs)
        key = self._key(args, names)
        try:
            entry = self._table.get(key)
        except TypeError:  # an unhashable static value: _build says which
            entry = None
        if entry is None:
            names = names or binder.names_of(len(args))
            if trace_state.current() is not None:
                # called inside another kernel's trace: its body becomes part of that trace
                return binder.call(self.fn, names, args)
            entry = self._build(args, names)
        return entry(args)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        """A kernel defined in a class is a method: the instance is its first (static)
        argument, so each instance has its own compiled signatures."""
        if instance is None:
            return self
        return functools.partial(self, instance)

    def _key(self, args: Sequence[Any], names: Sequence[str] | None) -> tuple[Any, ...]:
        """The dispatch key: each argument's signature (its value where it is static), and
        which parameters the call supplied unless it supplied all of them by position."""
        if self._static:
            given = names or self._binder.names_of(len(args))
            key = tuple(
                ("static", arg) if name in self._static else _signature(arg)
                for name, arg in zip(given, args)
            )
        else:
            key = tuple(map(_signature, args))
        return key if names is None or names == self._binder.names else (names, *key)

    def _split(self, args: Sequence[Any], names: Sequence[str]) -> tuple[list[int], dict[int, Any]]:
        """The positions traced, and the static values by position."""
        statics = {
            position: arg
            for position, (name, arg) in enumerate(zip(names, args))
            if name in self._static or not traceable(arg)
        }
        for position, value in statics.items():
            check_static(value, position, self.name)
        return [p for p in range(len(args)) if p not in statics], statics

    def _trace(
        self,
        args: Sequence[Any],
        names: Sequence[str],
        specs_of: Callable[[list[int]], list[ArgSpec]],
    ) -> tuple[Traced, list[int], list[ArgSpec]]:
        """Trace for ``args``; a scalar argument found used as a Python value (a shape, a
        loop count) becomes static and the function is traced again with its value."""
        call = functools.partial(_call_with, self._binder, names)
        while True:
            positions, statics = self._split(args, names)
            specs = specs_of(positions)
            try:
                traced = trace(self.fn, specs, statics, call)
            except NeedsStatic as needed:
                self._set_static(names[positions[i]] for i in needed.inputs)
                continue
            return traced, positions, specs

    def _options(self, **changes: Any) -> TuneOptions:
        given = {"budget": self.budget, "strategy": self.strategy}
        given.update({k: v for k, v in changes.items() if v is not None})
        return TuneOptions.from_settings(**given)

    def _build(
        self, args: Sequence[Any], names: Sequence[str], retune: bool = False, **options: Any
    ) -> _Entry:
        positions, _ = self._split(args, names)
        device = device_of([args[p] for p in positions], self.name)
        traced, positions, specs = self._trace(
            args, names, lambda traced: [_spec(args[p], p, self.name) for p in traced]
        )
        key = self._key(args, None if tuple(names) == self._binder.names else tuple(names))
        if not retune:  # a scalar that became static may hit a kernel compiled earlier
            found = self._table.get(key)
            if found is not None:
                return found
        obtained = obtain(traced, specs, device, self.name, self._options(**options), retune)
        arrays = [args[p] for p in positions]
        entry = _Entry(
            obtained,
            device,
            arrays,
            specs,
            traced,
            self.name,
            None if len(positions) == len(args) else tuple(positions),
        )
        self.last = obtained
        if obtained.complete:  # after an interrupted tuning the next call resumes it
            self._table[key] = entry  # only a complete entry is ever stored
        if obtained.how == "compiled":
            self.compile_count += 1
        elif obtained.how == "loaded":
            self.load_count += 1
        _report(self.name, device, specs, obtained)
        return entry

    def tune(
        self,
        *args: Any,
        budget: int | str | config.Budget | None = None,
        strategy: str | None = None,
        seed: int | None = None,
    ) -> TuneResult | None:
        """Tune the signature of ``args`` now (ahead of its first call) and keep the result.

        Earlier records of this signature count: a budget they already exhaust measures
        nothing more. Returns what tuning chose (None if an imported config was used).
        """
        names, args = self._binder.bind(args, {})
        if budget is not None:
            budget = config.parse_budget(budget, "budget")
        self._build(args, names, retune=True, budget=budget, strategy=strategy, seed=seed)
        return self.last.tuned

    def lower(self, *args: Any, target: str | None = None) -> Lowered:
        """Every IR level and the generated source for these arguments.

        An argument may be an array, a scalar, or anything with ``shape`` and ``dtype``
        (such as :func:`jitune.spec`), so code can be inspected without data. ``target``
        ("cpu", "cuda") renders for that device instead of the arguments' own; "cuda" works
        without a GPU (for an sm_90 device).
        """
        names, args = self._binder.bind(args, {})

        def spec_of(position: int) -> ArgSpec:
            arg = args[position]
            if (
                isinstance(arg, (np.ndarray, np.generic, bool, int, float))
                or not (hasattr(arg, "shape") and hasattr(arg, "dtype"))
                or hasattr(arg, "strides")
            ):
                return _spec(arg, position, self.name)
            # a shape/dtype description without data
            shape = tuple(int(d) for d in arg.shape)
            dtype = dtypes.check_supported(np.dtype(arg.dtype), f"{self.name}: argument {position}")
            return ArgSpec(shape, dtype, contiguous_strides(shape))

        traced, positions, specs = self._trace(
            args, names, lambda traced: [spec_of(p) for p in traced]
        )
        arrays = [args[p] for p in positions if hasattr(args[p], "strides")]
        device = device_of(arrays, self.name) if target is None else device_named(target)
        return lower_graph(traced.graph, [spec.strides for spec in specs], device)

    def __repr__(self) -> str:
        return f"<jitune.kernel {self.name} ({len(self._table)} compiled signatures)>"
