"""The CUDA device: CUDA C from the shared C-like emitter, compiled by NVRTC to a cubin for
the GPU's exact architecture, run on CuPy arrays on their device and the current stream.

The binary stored in the cache is ``MAGIC + u32 header length + JSON header + cubin``; the
header holds what launching needs (kernel names, grid and block dimensions, which arguments
are scalars passed by value, which need 16-byte alignment), so a warm process compiles
nothing. Without a GPU, :func:`default_target` (sm_90) still lets ``f.lower(..., target=
"cuda")`` render CUDA source, and NVRTC (from pip's ``nvidia-cuda-nvrtc-cu12``) compiles it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..codegen import c_source
from ..codegen import cuda as cuda_codegen
from ..errors import ArgumentError, CompileError
from ..ir.loops import LoopProgram
from . import nvrtc, packed
from .target import Target

MAGIC = b"JTCUBIN1"
_DEFAULT_LIMITS = (
    ("max_threads", 1024),
    ("shared_bytes", 48 * 1024),
    ("processors", 132),
    ("registers", 65536),
    ("warp", 32),
)


def _cupy() -> Any:
    import cupy  # only this module imports CuPy

    return cupy


def default_target(arch: str = "sm_90") -> Target:
    """A CUDA target for rendering and compile checks without a GPU (an H100-like device)."""
    library = nvrtc.load()
    version = "nvrtc-{}.{}".format(*library.version) if library is not None else "nvrtc-none"
    return Target("cuda", arch, "", 16, version, _DEFAULT_LIMITS)


@functools.cache
def _device_target(device_id: int) -> Target:
    cupy = _cupy()
    runtime = cupy.cuda.runtime
    props = runtime.getDeviceProperties(device_id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    major, minor = props["major"], props["minor"]
    driver = runtime.driverGetVersion()
    library = nvrtc.load(driver // 1000)
    nvrtc_version = "{}.{}".format(*library.version) if library is not None else "none"
    limits = (
        ("max_threads", int(props["maxThreadsPerBlock"])),
        # static shared arrays are limited to 48 KiB whatever the device allows with opt-in
        ("shared_bytes", min(int(props["sharedMemPerBlock"]), 48 * 1024)),
        ("processors", int(props["multiProcessorCount"])),
        ("registers", int(props["regsPerBlock"])),
        ("warp", int(props["warpSize"])),
    )
    toolchain = f"cuda-runtime-{runtime.runtimeGetVersion()}/driver-{driver}/nvrtc-{nvrtc_version}"
    return Target("cuda", f"sm_{major}{minor}", name, 16, toolchain, limits)


def pack(meta: dict[str, Any], cubin: bytes) -> bytes:
    return packed.pack(MAGIC, meta, cubin)


def unpack(binary: bytes) -> tuple[dict[str, Any], bytes]:
    meta, cubin = packed.unpack(MAGIC, binary, "CUDA binary")
    if not cubin.startswith(b"\x7fELF"):
        raise CompileError("jitune CUDA binary holds no cubin")
    return meta, cubin


def compile_source(source: str, arch: str, driver_major: int | None = None) -> bytes:
    """CUDA C from :func:`jitune.codegen.cuda.render` -> a packed binary (no GPU needed)."""
    library = nvrtc.load(driver_major)
    if library is None:
        raise CompileError(
            "the CUDA backend needs NVRTC: pip install nvidia-cuda-nvrtc-cu12 "
            "(or a CUDA toolkit on the library path)"
        )
    meta = c_source.read_launch(source)
    cubin = library.compile(source, arch)
    meta["arch"] = arch
    return pack(meta, cubin)


def _aligned_copy(cupy: Any, array: Any) -> Any:
    """A copy of ``array`` with the same strides, at a 16-byte-aligned address."""
    if any(s < 0 for s in array.strides):
        raise ArgumentError("jitune: a misaligned CuPy view with negative strides; pass a copy")
    span = 1 + sum((n - 1) * s for n, s in zip(array.shape, array.strides)) // array.itemsize
    base = cupy.empty(max(span, 1), array.dtype)
    view = cupy.lib.stride_tricks.as_strided(base, array.shape, array.strides)
    view[...] = array
    return view


class CudaProgram:
    """Launches the kernels of one cubin on the arrays' device and the current stream."""

    def __init__(self, binary: bytes, buffer_count: int) -> None:
        meta, cubin = unpack(binary)
        if len(meta["buffers"]) != buffer_count:
            raise CompileError("jitune CUDA binary: buffer count does not match its plan")
        self.cubin = cubin
        self.meta = meta
        names = meta["buffers"]
        position = {name: k for k, name in enumerate(names)}
        self.scalars = tuple(
            (position[name], np.dtype(meta["dtypes"][position[name]])) for name in meta["scalars"]
        )
        self.aligned = tuple(position[name] for name in meta["aligned"])
        self.kernels = [(k["name"], tuple(k["grid"]), tuple(k["block"])) for k in meta["kernels"]]
        self._modules: dict[int, tuple[Any, list[tuple[Any, tuple, tuple]]]] = {}
        self.launch: Callable[..., None] = self._launch

    def _functions(self, device_id: int) -> list[tuple[Any, tuple, tuple]]:
        found = self._modules.get(device_id)
        if found is None:
            cupy = _cupy()
            with cupy.cuda.Device(device_id):
                module = cupy.cuda.function.Module()
                try:
                    module.load(self.cubin)
                except Exception as exc:  # CUDADriverError: wrong architecture, damaged...
                    raise CompileError(
                        f"cannot load jitune cubin on GPU {device_id}: {exc}"
                    ) from exc
                functions = [
                    (module.get_function(name), grid, block) for name, grid, block in self.kernels
                ]
            found = self._modules[device_id] = (module, functions)
        return found[1]

    def _launch(self, *arrays: Any) -> None:
        # The hot path of every call: the dispatch key already holds each array's device, so
        # arrays on two devices never reach here (device_of rejected them when building).
        cupy = _cupy()
        args: Any = arrays
        if self.scalars:
            args = list(args)
            for position, dtype in self.scalars:
                value = args[position]
                if isinstance(value, cupy.ndarray):
                    value = value.get()
                args[position] = dtype.type(np.asarray(value).item())
        current = cupy.cuda.runtime.getDevice()
        device_id = current
        for arg in args:
            if isinstance(arg, cupy.ndarray):
                device_id = arg.device.id
                break
        if self.aligned:
            args = list(args)
            for position in self.aligned:
                if args[position].data.ptr % 16:
                    args[position] = _aligned_copy(cupy, args[position])
        args = tuple(args)
        if device_id == current:
            for function, grid, block in self._functions(device_id):
                function(grid, block, args)
            return
        with cupy.cuda.Device(device_id):
            for function, grid, block in self._functions(device_id):
                function(grid, block, args)


def check_devices(args: Sequence[Any], name: str) -> int | None:
    """The id of the GPU holding the CuPy arrays in ``args``; ArgumentError if they are on
    different GPUs or if a NumPy array is among them."""
    found: dict[int, int] = {}
    numpy_at = None
    for position, arg in enumerate(args):
        device = getattr(arg, "device", None)
        device_id = getattr(device, "id", None)
        if device_id is not None and type(arg).__module__.startswith("cupy"):
            found.setdefault(device_id, position)
        elif isinstance(arg, np.ndarray) and arg.ndim > 0:
            numpy_at = position
    if len(found) > 1:
        described = " and ".join(f"GPU {d} (argument {p})" for d, p in found.items())
        raise ArgumentError(f"{name}: CuPy arrays on different devices in one call: {described}")
    if numpy_at is not None and found:
        ((device_id, position),) = found.items()
        raise ArgumentError(
            f"{name}: a NumPy array (argument {numpy_at}) and a CuPy array on GPU {device_id} "
            f"(argument {position}) in one call; move both to one device"
        )
    return next(iter(found), None)


class CudaDevice:
    """An NVIDIA GPU through CuPy (arrays, launches) and NVRTC (compiling)."""

    name = "cuda"
    library = "cupy"

    @functools.cache  # noqa: B019 - one instance per process
    def available(self) -> bool:
        try:
            cupy = _cupy()
            return cupy.cuda.runtime.getDeviceCount() > 0 and nvrtc.load() is not None
        except Exception:  # ImportError, CUDARuntimeError (no driver / no device)
            return False

    def bind(self, args: Sequence[Any], name: str) -> CudaDevice:
        """This device for a call with ``args``; ArgumentError if the CuPy arrays are on
        different GPUs or NumPy arrays are among them (the GPU itself is chosen per launch)."""
        check_devices(args, name)
        return self

    def target(self) -> Target:
        if not self.available():
            return default_target()
        return _device_target(_cupy().cuda.runtime.getDevice())

    def render(self, loops: LoopProgram) -> str:
        return cuda_codegen.render(loops)

    def compile(self, source: str) -> bytes:
        target = self.target()
        driver = None
        if self.available():
            driver = _cupy().cuda.runtime.driverGetVersion() // 1000
        return compile_source(source, target.arch, driver)

    def load(self, binary: bytes, buffer_count: int) -> CudaProgram:
        return CudaProgram(binary, buffer_count)

    def empty(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return _cupy().empty(shape, dtype)

    def allocator_for(
        self, args: Sequence[Any], shape: tuple[int, ...], dtype: np.dtype
    ) -> Callable[[tuple[int, ...], Any], Any]:
        """``empty`` on the device of the CuPy arrays in ``args``."""
        cupy = _cupy()
        device_id = check_devices(args, "kernel")
        if device_id is None:
            return self.empty

        def empty(shape: tuple[int, ...], dtype: Any) -> Any:
            if cupy.cuda.runtime.getDevice() == device_id:
                return cupy.empty(shape, dtype)
            with cupy.cuda.Device(device_id):
                return cupy.empty(shape, dtype)

        return empty
