"""A small ctypes binding of NVRTC (CUDA C -> cubin), usable without a GPU.

The library is looked for in the NVIDIA pip wheels (``nvidia-cuda-nvrtc-cu12`` puts it in
``nvidia/cuda_nvrtc/lib``, the CUDA 13 wheel ``nvidia-cuda-nvrtc`` in ``nvidia/cu13/lib``),
then in ``$CUDA_PATH``/``$CUDA_HOME``, ``/usr/local/cuda`` and the system's library path.
Only the C API that every NVRTC since CUDA 11.1 has is used, so CUDA 12 and 13 both work.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import os
import re
import sys
import threading

from ..errors import CompileError

_LOCK = threading.Lock()


def _candidates() -> list[str]:
    """Paths of libnvrtc.so.* found on this machine, newest major version first."""
    dirs: list[str] = []
    for entry in sys.path:
        base = os.path.join(entry, "nvidia")
        if os.path.isdir(base):
            dirs += glob.glob(os.path.join(base, "*", "lib"))
    for env in ("CUDA_PATH", "CUDA_HOME"):
        root = os.environ.get(env)
        if root:
            dirs += [os.path.join(root, "lib64"), os.path.join(root, "lib")]
    dirs += ["/usr/local/cuda/lib64", "/usr/lib/x86_64-linux-gnu"]
    found: list[str] = []
    for folder in dict.fromkeys(dirs):
        for path in glob.glob(os.path.join(folder, "libnvrtc.so*")):
            if re.search(r"libnvrtc\.so\.\d+$", path) and path not in found:
                found.append(path)
    system = ctypes.util.find_library("nvrtc")
    if system and system not in found:
        found.append(system)

    def major(path: str) -> int:
        match = re.search(r"\.so\.(\d+)$", path)
        return int(match.group(1)) if match else 0

    return sorted(found, key=major, reverse=True)


class Nvrtc:
    """One loaded libnvrtc."""

    def __init__(self, path: str) -> None:
        self.path = path
        lib = ctypes.CDLL(path)
        self.lib = lib
        lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        major, minor = ctypes.c_int(), ctypes.c_int()
        self._check(lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
        self.version = (major.value, minor.value)

    def _check(self, status: int, what: str) -> None:
        if status != 0:
            message = self.lib.nvrtcGetErrorString(status).decode(errors="replace")
            raise CompileError(f"{what} failed: {message}")

    def architectures(self) -> list[int]:
        """The sm_XX numbers this NVRTC can compile for."""
        count = ctypes.c_int()
        try:
            self._check(self.lib.nvrtcGetNumSupportedArchs(ctypes.byref(count)), "archs")
            archs = (ctypes.c_int * count.value)()
            self._check(self.lib.nvrtcGetSupportedArchs(archs), "archs")
        except (AttributeError, CompileError):
            return []
        return list(archs)

    def compile(
        self, source: str, arch: str, name: str = "jitune.cu", options: tuple[str, ...] = ()
    ) -> bytes:
        """CUDA C source -> cubin for ``arch`` (e.g. ``sm_90``); CompileError with the log."""
        lib = self.lib
        program = ctypes.c_void_p()
        self._check(
            lib.nvrtcCreateProgram(
                ctypes.byref(program), source.encode(), name.encode(), 0, None, None
            ),
            "nvrtcCreateProgram",
        )
        try:
            args = [f"--gpu-architecture={arch}", "--std=c++17", *options]
            argv = (ctypes.c_char_p * len(args))(*(a.encode() for a in args))
            with _LOCK:
                status = lib.nvrtcCompileProgram(program, len(args), argv)
            if status != 0:
                size = ctypes.c_size_t()
                lib.nvrtcGetProgramLogSize(program, ctypes.byref(size))
                log = ctypes.create_string_buffer(size.value)
                lib.nvrtcGetProgramLog(program, log)
                text = log.value.decode(errors="replace")
                raise CompileError(f"NVRTC {self.version} could not compile for {arch}:\n{text}")
            size = ctypes.c_size_t()
            self._check(lib.nvrtcGetCUBINSize(program, ctypes.byref(size)), "nvrtcGetCUBINSize")
            cubin = ctypes.create_string_buffer(size.value)
            self._check(lib.nvrtcGetCUBIN(program, cubin), "nvrtcGetCUBIN")
            return cubin.raw
        finally:
            lib.nvrtcDestroyProgram(ctypes.byref(program))


@functools.cache
def load(max_major: int | None = None) -> Nvrtc | None:
    """The newest NVRTC whose major version is at most ``max_major`` (the driver's CUDA
    version, whose cubins it can load), or None if none is installed."""
    for path in _candidates():
        try:
            nvrtc = Nvrtc(path)
        except (OSError, CompileError):
            continue
        if max_major is None or nvrtc.version[0] <= max_major:
            return nvrtc
    return None
