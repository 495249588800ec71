"""The OpenCL device: OpenCL C from the shared C-like emitter, built by the driver of the
arrays' device, run on ``pyopencl.array.Array`` arguments on their queue.

One :class:`OpenclDevice` is registered for dispatch; a call binds it to the queue of its
arrays (:meth:`OpenclDevice.bind`), and the bound device compiles for, allocates on and
launches on that queue's device. The target fingerprint holds the platform, device name,
driver and OpenCL versions, so a binary built for one device is never loaded on another.

The binary stored in the cache is ``MAGIC + u32 header length + JSON header + program
binary``. The header holds the launch metadata (kernel names, work-group counts and sizes,
scalar arguments) and the source: a driver that rejects its own binary later (an updated
driver, another process's device) gets the source built instead.

Without an OpenCL device, :func:`default_target` still lets ``f.lower(..., target="opencl")``
render OpenCL C (for a generic device with 256 work-items per group and 32 KiB local memory).

Every device is probed once per process by building a one-line kernel (:func:`problem_of`):
an OpenCL driver can list a device and still fail every build, as the PoCL that pip installs
(PoCL 3.0 on LLVM 14) does on CPUs newer than its LLVM ("unknown target CPU 'generic'" on an
AMD Zen 5). Unbound, jitune renders for and runs on the first device that builds; a device
that builds nothing is reported as a :class:`~jitune.errors.DeviceError` that says what to
install, never as a jitune bug.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..codegen import c_source
from ..codegen import opencl as opencl_codegen
from ..errors import ArgumentError, CompileError, DeviceError
from ..ir.loops import LoopProgram
from . import packed
from .target import Target

MAGIC = b"JTOCLBN1"
_GENERIC_LIMITS = (
    ("max_threads", 256),
    ("shared_bytes", 32 * 1024),
    ("processors", 16),
    ("warp", 32),
)


def _cl() -> Any:
    import pyopencl  # only this module imports pyopencl

    return pyopencl


def default_target() -> Target:
    """An OpenCL target for rendering without a device (a generic GPU-like device)."""
    return Target("opencl", "generic", "", 16, "opencl-none", _GENERIC_LIMITS)


def device_target(device: Any) -> Target:
    """The target of one ``pyopencl.Device``: limits read from the device. A CPU device gets
    the limit ``cpu_device`` (the pipeline then runs the CPU templates as work-groups) and its
    preferred float vector width as the vector size."""
    cl = _cl()
    platform = device.platform
    cpu = bool(device.type & cl.device_type.CPU)
    limits = (
        ("max_threads", int(device.max_work_group_size)),
        ("shared_bytes", int(device.local_mem_size)),
        ("processors", int(device.max_compute_units)),
        ("warp", 32),
    ) + ((("cpu_device", 1),) if cpu else ())
    vector_bytes = 4 * max(1, int(device.preferred_vector_width_float)) if cpu else 16
    toolchain = f"{platform.name} {platform.version}|driver {device.driver_version}"
    return Target("opencl", device.name.strip(), device.version, vector_bytes, toolchain, limits)


def pack(meta: dict[str, Any], binary: bytes) -> bytes:
    return packed.pack(MAGIC, meta, binary)


def unpack(binary: bytes) -> tuple[dict[str, Any], bytes]:
    meta, program_binary = packed.unpack(MAGIC, binary, "OpenCL binary")
    if "source" not in meta or "kernels" not in meta:
        raise CompileError("jitune OpenCL binary header lacks source or kernels")
    return meta, program_binary


PROBE_SOURCE = "__kernel void jitune_probe(__global float *x) { x[get_global_id(0)] += 1.0f; }"
"""The kernel every device must build before jitune trusts it."""

INSTALL_ADVICE = (
    "Its OpenCL driver fails on this machine. The PoCL that pip installs with pyopencl (PoCL 3.0 on LLVM 14) cannot compile for CPUs "
    "newer than its LLVM, such as AMD Zen 5. Install a newer OpenCL driver from the system's "
    "packages (Debian/Ubuntu: `apt-get install pocl-opencl-icd`; Fedora: `dnf install "
    "pocl`); pyopencl then lists it beside the pip one and jitune uses the device that works"
)


def describe(device: Any) -> str:
    """A device as users see it: its name and its platform's version ("OpenCL 3.0 PoCL 3.1")."""
    version = device.platform.version.strip().split("  ")[0]
    return f"{device.name.strip()} ({version})"


def _first_line(exc: BaseException) -> str:
    """What a driver's error says went wrong: its first ``error:`` line, or its first line
    (pyopencl repeats the failing call's name; that is said once)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line.lower()]
    line = (errors or lines or [type(exc).__name__])[0]
    return " - ".join(dict.fromkeys(line.split(" - ")))[:300]


def _build_program(context: Any, device: Any, source: str) -> Any:
    cl = _cl()
    with warnings.catch_warnings():  # compiler output arrives as a warning
        warnings.simplefilter("ignore")
        return cl.Program(context, source).build(devices=[device])


@functools.cache
def _probe(device: Any) -> str | None:
    try:
        _build_program(_cl().Context([device]), device, PROBE_SOURCE)
    except Exception as exc:  # noqa: BLE001 - any driver failure means the device is unusable
        return _first_line(exc)
    return None


def build_failure(device: Any) -> str | None:
    """None if ``device`` builds programs, else which device failed and the driver's error."""
    error = _probe(device)
    return (
        None
        if error is None
        else f"OpenCL device {describe(device)} cannot build any program ({error})"
    )


def problem_of(device: Any) -> str | None:
    """None if ``device`` builds OpenCL programs, else a message saying what failed (the
    driver's first error line) and what to do. Probed once per device and process."""
    failure = build_failure(device)
    return None if failure is None else f"{failure}. {INSTALL_ADVICE}"


def all_devices() -> list[Any]:
    """Every device of every OpenCL platform pyopencl finds (none without pyopencl or an ICD
    loader)."""
    try:
        cl = _cl()
        return [d for platform in cl.get_platforms() for d in platform.get_devices()]
    except Exception:  # noqa: BLE001 - ImportError, no ICD loader, no platform
        return []


def working_devices() -> list[Any]:
    """The devices that build programs, in the platforms' order."""
    return [device for device in all_devices() if problem_of(device) is None]


def unavailable_reason() -> str:
    """Why no OpenCL device can run jitune's programs in this process."""
    devices = all_devices()
    if not devices:
        return (
            "pyopencl finds no OpenCL platform (pip install pyopencl gives PoCL, a CPU "
            "device; GPUs need their vendor's OpenCL driver)"
        )
    failures = [f for f in map(build_failure, devices) if f is not None]
    return "; ".join(failures) + f". {INSTALL_ADVICE}"


@functools.cache
def _warn_skipped() -> None:
    """Once per process: the devices jitune passes over because they build nothing."""
    broken = [d for d in all_devices() if problem_of(d) is not None]
    if broken and working_devices():
        names = ", ".join(describe(d) for d in broken)
        warnings.warn(
            f"jitune: OpenCL device(s) {names} cannot build programs and are not used "
            f"({_probe(broken[0])}); using {describe(working_devices()[0])}",
            RuntimeWarning,
            stacklevel=3,
        )


def _build(context: Any, device: Any, source: str) -> Any:
    cl = _cl()
    try:
        return _build_program(context, device, source)
    except cl.Error as exc:
        problem = problem_of(device)
        if problem is not None:  # the device builds nothing: not this program's fault
            raise DeviceError(problem) from None
        raise CompileError(f"OpenCL build failed on {device.name.strip()}: {exc}") from exc


def _from_binary(context: Any, device: Any, binary: bytes) -> Any | None:
    cl = _cl()
    if not binary:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cl.Program(context, [device], [binary]).build(devices=[device])
    except cl.Error:
        return None


def queue_of(args: Sequence[Any], name: str) -> Any | None:
    """The queue of the pyopencl arrays in ``args``; ArgumentError if they belong to
    different contexts, or if a NumPy array is among them."""
    found: list[tuple[Any, int]] = []
    numpy_at = None
    for position, arg in enumerate(args):
        queue = getattr(arg, "queue", None)
        if queue is not None and type(arg).__module__.startswith("pyopencl"):
            found.append((queue, position))
        elif isinstance(arg, np.ndarray) and arg.ndim > 0:
            numpy_at = position
    if not found:
        return None
    first, first_at = found[0]
    for queue, position in found[1:]:
        if queue.context != first.context:
            raise ArgumentError(
                f"{name}: pyopencl arrays of different OpenCL contexts in one call: argument "
                f"{first_at} on {first.device.name.strip()} and argument {position} on "
                f"{queue.device.name.strip()}"
            )
    if numpy_at is not None:
        raise ArgumentError(
            f"{name}: a NumPy array (argument {numpy_at}) and a pyopencl array on "
            f"{first.device.name.strip()} (argument {first_at}) in one call; move both to one "
            "device"
        )
    return first


class OpenclProgram:
    """The kernels of one OpenCL program, launched in order on a queue."""

    def __init__(self, queue: Any, binary: bytes, buffer_count: int) -> None:
        meta, device_binary = unpack(binary)
        if len(meta["buffers"]) != buffer_count:
            raise CompileError("jitune OpenCL binary: buffer count does not match its plan")
        self.queue = queue
        context, device = queue.context, queue.device
        program = _from_binary(context, device, device_binary)
        if program is None:
            program = _build(context, device, meta["source"])
        names = meta["buffers"]
        position = {n: k for k, n in enumerate(names)}
        self.scalars = tuple(
            (position[n], np.dtype(meta["dtypes"][position[n]])) for n in meta["scalars"]
        )
        self.kernels = []
        for k in meta["kernels"]:
            block = tuple(k["block"])
            global_size = tuple(g * b for g, b in zip(k["grid"], block))
            self.kernels.append((getattr(program, k["name"]), global_size, block))
        self.program = program
        self.launch: Callable[..., None] = self._launch

    def _launch(self, *arrays: Any) -> None:
        args: list[Any] = []
        scalar_at = dict(self.scalars)
        for position, value in enumerate(arrays):
            dtype = scalar_at.get(position)
            if dtype is not None:
                if hasattr(value, "get") and not isinstance(value, np.ndarray):
                    value = value.get()
                item = np.asarray(value).astype(dtype)
                args.append(item.astype(np.uint8) if dtype.kind == "b" else item[()])
                continue
            if value.offset:  # kernels index from the buffer's start
                value = value.copy()
            args.append(value.base_data)
        for kernel, global_size, block in self.kernels:
            kernel(self.queue, global_size, block, *args)


class OpenclDevice:
    """OpenCL devices through pyopencl. Dispatch binds it to the arrays' queue
    (:meth:`bind`); unbound, it renders for its first device, or a generic one."""

    name = "opencl"
    library = "pyopencl"

    def __init__(self, queue: Any | None = None) -> None:
        self.queue = queue

    @functools.cache  # noqa: B019 - a few instances per process
    def available(self) -> bool:
        """Bound: always (the arrays' device is the user's choice). Unbound: whether some
        device builds programs (see :func:`problem_of`)."""
        return self.queue is not None or bool(working_devices())

    def bind(self, args: Sequence[Any], name: str) -> OpenclDevice:
        """This device on the queue of the pyopencl arrays in ``args``."""
        queue = queue_of(args, name)
        return self if queue is None else _bound(queue)

    def _device(self) -> Any | None:
        if self.queue is not None:
            return self.queue.device
        devices = working_devices()
        if not devices:
            return None
        _warn_skipped()
        return devices[0]

    def target(self) -> Target:
        device = self._device()
        return default_target() if device is None else device_target(device)

    def render(self, loops: LoopProgram) -> str:
        return opencl_codegen.render(loops)

    def compile(self, source: str) -> bytes:
        queue = self._queue()
        program = _build(queue.context, queue.device, source)
        binaries = program.get_info(_cl().program_info.BINARIES)
        meta = c_source.read_launch(source)
        meta["source"] = source
        return pack(meta, bytes(binaries[0]) if binaries and binaries[0] else b"")

    def load(self, binary: bytes, buffer_count: int) -> OpenclProgram:
        return OpenclProgram(self._queue(), binary, buffer_count)

    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        import pyopencl.array as cl_array

        return cl_array.empty(self._queue(), shape, dtype)

    def _queue(self) -> Any:
        if self.queue is None:
            self.queue = _default_queue()
        return self.queue


@functools.cache
def _bound(queue: Any) -> OpenclDevice:
    return OpenclDevice(queue)


@functools.cache
def _default_queue() -> Any:
    cl = _cl()
    device = OpenclDevice()._device()
    if device is None:
        raise DeviceError(f"no OpenCL device can run jitune's programs: {unavailable_reason()}")
    return cl.CommandQueue(cl.Context([device]))
