"""The CPU device: compiles LLVM IR with llvmlite and runs it on NumPy arrays."""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import llvmlite
import llvmlite.binding as llvm
import numpy as np

from ..codegen import llvm as llvm_codegen
from ..errors import CompileError, DomainError, IndexingError
from ..ir.loops import LoopProgram
from .pool import ALIGNED_MIN_BYTES, MIN_BYTES, POOL, aligned_empty
from .target import Target
from .threads import PARALLEL_FOR_ADDRESS

_LOCK = threading.Lock()


@functools.cache
def _initialize() -> None:
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    llvm.add_symbol("jitune_parallel_for", PARALLEL_FOR_ADDRESS)


@functools.cache
def host_target() -> Target:
    """The CPU this process runs on, as LLVM names it."""
    _initialize()
    features = llvm.get_host_cpu_features().flatten()
    version = ".".join(map(str, llvm.llvm_version_info))
    target = Target(
        name="cpu",
        arch=llvm.get_host_cpu_name(),
        features=features,
        vector_bytes=16,
        toolchain=f"llvm-{version}/llvmlite-{llvmlite.__version__}",
    )
    enabled = target.enabled_features()
    vector_bytes = 64 if "avx512f" in enabled else 32 if "avx" in enabled else 16
    return dataclasses.replace(target, vector_bytes=vector_bytes)


@functools.cache
def data_offset() -> int:
    """Byte offset of the data pointer inside a NumPy array object (16 on CPython 64-bit)."""
    probes = [np.zeros(n) for n in (3, 5, 7)]
    for offset in range(8, 128, 8):
        if all(ctypes.c_void_p.from_address(id(a) + offset).value == a.ctypes.data for a in probes):
            return offset
    raise CompileError("could not locate the data pointer inside numpy.ndarray objects")


def _target_machine() -> llvm.TargetMachine:
    """A new target machine for the host CPU.

    Never cached: an MCJIT engine takes ownership of the machine it is created with and
    destroys it with itself, so each compiled module needs its own.
    """
    _initialize()
    target = host_target()
    return llvm.Target.from_default_triple().create_target_machine(
        cpu=target.arch, features=target.features, opt=3, codemodel="jitdefault"
    )


class CompiledModule:
    """Machine code loaded into this process, kept alive with the functions taken from it."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def address(self, name: str) -> int:
        return self.engine.get_function_address(name)


def compile_object(source: str) -> bytes:
    """Parse, optimize (O3) and compile LLVM IR text to object code for the host CPU."""
    _initialize()
    machine = _target_machine()
    with _LOCK:
        try:
            module = llvm.parse_assembly(source)
            module.verify()
        except RuntimeError as exc:
            raise CompileError(f"jitune generated invalid LLVM IR: {exc}") from exc
        _optimize(module, machine)
        return machine.emit_object(module)


def _check_elf(binary: bytes) -> None:
    """Raise CompileError unless ``binary`` is a structurally sound 64-bit ELF object.

    LLVM trusts an object file's internal offsets and can crash the process on a damaged one,
    so they are checked here first. (Cached binaries also carry a checksum; this guards
    against a well-formed entry with a bad binary, e.g. written by a buggy jitune.)
    """

    def field(offset: int, size: int) -> int:
        return int.from_bytes(binary[offset : offset + size], "little")

    if len(binary) < 64 or binary[:4] != b"\x7fELF" or binary[4] != 2 or binary[5] != 1:
        raise CompileError("not a 64-bit little-endian ELF object")
    table, entry_size, count = field(0x28, 8), field(0x3A, 2), field(0x3C, 2)
    if entry_size != 64 or count == 0 or table + count * 64 > len(binary):
        raise CompileError("damaged ELF section table")
    for index in range(count):
        header = table + index * 64
        kind, offset, size = field(header + 4, 4), field(header + 0x18, 8), field(header + 0x20, 8)
        if kind != 8 and offset + size > len(binary):  # 8: SHT_NOBITS occupies no file space
            raise CompileError(f"ELF section {index} lies outside the object")


def load_object(binary: bytes) -> CompiledModule:
    """Link object code from :func:`compile_object` into this process (no compiling)."""
    _initialize()
    if llvm.get_object_format() == "ELF":
        _check_elf(binary)
    with _LOCK:
        engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), _target_machine())
        try:
            engine.add_object_file(llvm.ObjectFileRef.from_data(binary))
            engine.finalize_object()
        except RuntimeError as exc:
            raise CompileError(f"cannot load jitune object code: {exc}") from exc
        if not engine.get_function_address(llvm_codegen.ENTRY):
            raise CompileError("jitune object code has no entry function")
        return CompiledModule(engine)


def emit_assembly(source: str) -> str:
    """Optimized machine assembly of LLVM IR text (for inspection; not cached)."""
    machine = _target_machine()
    with _LOCK:
        module = llvm.parse_assembly(source)
        _optimize(module, machine)
        return machine.emit_assembly(module)


def _optimize(module: llvm.ModuleRef, machine: llvm.TargetMachine) -> None:
    """The O3 pipeline for ``machine``, run in place."""
    module.triple = machine.triple
    module.data_layout = str(machine.target_data)
    options = llvm.create_pipeline_tuning_options(speed_level=3)
    # Schedules vectorize and unroll explicitly. LLVM's own loop unroller and vectorizer only
    # rework the scalar tail loops, at a cost of over a second of compile time for one dense
    # layer with tails in two directions (0.07 s without); the micro-kernel ran no slower.
    options.loop_vectorization = False
    options.loop_unrolling = False
    builder = llvm.create_pass_builder(machine, options)
    builder.getModulePassManager().run(module, builder)


_STATUS_ERRORS: dict[int, tuple[type[Exception], str]] = {
    llvm_codegen.STATUS_NEGATIVE_POWER: (
        DomainError,
        "np.power: Integers to negative integer powers are not allowed (an integer exponent "
        "was negative)",
    ),
    llvm_codegen.STATUS_INDEX_OUT_OF_BOUNDS: (
        IndexingError,
        "an element of an index array is out of bounds for the axis it indexes",
    ),
}


def status_error(status: int) -> Exception:
    """The exception a program's nonzero status stands for."""
    kind, message = _STATUS_ERRORS.get(status, (DomainError, f"kernel status {status}"))
    return kind(message)


def _packed_launcher(address: int, buffer_count: int, status: bool) -> Callable[..., Any]:
    """A launcher passing ``buffer_count`` arrays to an entry that takes them packed (see
    ``codegen/llvm.py``): one pointer to an array of their objects, which it holds alive."""
    objects = ctypes.py_object * buffer_count
    pointer = ctypes.POINTER(ctypes.py_object)
    entry = ctypes.CFUNCTYPE(ctypes.c_int32 if status else None, pointer)(address)

    def launch(*arrays: Any) -> Any:
        if len(arrays) != buffer_count:
            raise TypeError(f"this program takes {buffer_count} arrays ({len(arrays)} given)")
        return entry(objects(*arrays))

    return launch


class CpuProgram:
    """Calls the generated entry function with the NumPy arrays themselves: the machine code
    reads each array's data pointer, so a call costs one ctypes call and no conversions.

    A program whose entry returns a status (see ``codegen/llvm.py``) is launched through
    a wrapper that raises the status's error (:func:`status_error`); others call the
    ctypes function directly, with no extra Python frame.
    """

    __slots__ = ("module", "launch")

    def __init__(self, module: CompiledModule, buffer_count: int) -> None:
        self.module = module  # keeps the machine code alive
        address = module.address(llvm_codegen.ENTRY)
        status = bool(module.engine.get_global_value_address(llvm_codegen.STATUS_MARKER))
        if llvm_codegen.packed_entry(buffer_count):
            entry = _packed_launcher(address, buffer_count, status)
        else:
            arguments = [ctypes.py_object] * buffer_count
            entry = ctypes.CFUNCTYPE(ctypes.c_int32 if status else None, *arguments)(address)
        if not status:
            self.launch = entry
            return

        def launch(*arrays: Any) -> None:
            status = entry(*arrays)
            if status:
                raise status_error(status)

        self.launch = launch


class CpuDevice:
    """The host CPU, running LLVM-compiled code on NumPy arrays."""

    name = "cpu"
    library = "numpy"

    def available(self) -> bool:
        return True

    def target(self) -> Target:
        return host_target()

    def render(self, loops: LoopProgram) -> str:
        return llvm_codegen.render(loops, data_offset(), host_target().enabled_features())

    def compile(self, source: str) -> bytes:
        return compile_object(source)

    def load(self, binary: bytes, buffer_count: int) -> CpuProgram:
        return CpuProgram(load_object(binary), buffer_count)

    empty = staticmethod(POOL.empty)

    def allocator_for(
        self, args: Sequence[Any], shape: tuple[int, ...], dtype: np.dtype
    ) -> Callable[[tuple[int, ...], Any], np.ndarray]:
        """What allocates a buffer of ``shape`` on every call of one signature: large ones
        come from the pool, which reuses what callers dropped; medium ones are aligned to a
        cache line (see pool.py); small ones come from ``np.empty`` itself, as the dispatch
        path of a short call pays for every frame."""
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes >= MIN_BYTES:
            return POOL.empty
        return aligned_empty if nbytes >= ALIGNED_MIN_BYTES else np.empty
