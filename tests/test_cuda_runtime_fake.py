"""The CUDA runtime path (dispatch, signatures, scalars, allocation, launch, alignment, device
errors) without a GPU: a stand-in ``cupy`` module whose arrays live in host memory and whose
"cubins" run in the lockstep simulator. What it cannot check (real NVRTC cubins on a real
GPU) is what ``test_cuda.py`` checks on a GPU."""

from __future__ import annotations

import contextlib
import sys
import types

import numpy as np
import pytest

import jitune
from jitune.codegen import cuda as cuda_codegen
from jitune.runtime import cuda as cuda_runtime
from jitune.runtime.simt import Simulator


class _Pointer:
    def __init__(self, array: np.ndarray) -> None:
        self.ptr = array.__array_interface__["data"][0]


class _Device:
    def __init__(self, id: int = 0) -> None:  # noqa: A002 - CuPy's name
        self.id = id

    def __enter__(self) -> _Device:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class FakeArray:
    """A host array standing in for a cupy.ndarray (same attributes the runtime reads)."""

    __module__ = "cupy"

    def __init__(self, data: np.ndarray, device: int = 0) -> None:
        self.host = data
        self.device = _Device(device)

    shape = property(lambda self: self.host.shape)
    dtype = property(lambda self: self.host.dtype)
    strides = property(lambda self: self.host.strides)
    size = property(lambda self: self.host.size)
    ndim = property(lambda self: self.host.ndim)
    itemsize = property(lambda self: self.host.itemsize)
    data = property(lambda self: _Pointer(self.host))

    def get(self) -> np.ndarray:
        return self.host.copy()

    def __setitem__(self, key: object, value: object) -> None:
        self.host[key] = value.host if isinstance(value, FakeArray) else value


_PROGRAMS: dict[bytes, object] = {}  # cubin -> loop IR, filled by the patched compile


class _Module:
    def load(self, cubin: bytes) -> None:
        self.loops = _PROGRAMS[cubin]

    def get_function(self, name: str):  # noqa: ANN201
        loops = self.loops
        kernel = next(k for k in loops.kernels if k.name == name)

        def launch(grid, block, args) -> None:  # noqa: ANN001
            assert grid == kernel.launch[0] and block == kernel.launch[1]
            arrays = [a.host if isinstance(a, FakeArray) else np.asarray(a) for a in args]
            one = type(loops)(loops.buffers, (kernel,), loops.outputs)
            simulator = Simulator(one)
            simulator.run(arrays)

        return launch


def _as_strided(base: FakeArray, shape, strides) -> FakeArray:  # noqa: ANN001
    return FakeArray(np.lib.stride_tricks.as_strided(base.host, shape, strides))


@pytest.fixture
def fake_cupy(monkeypatch):
    module = types.ModuleType("cupy")
    module.ndarray = FakeArray
    module.empty = lambda shape, dtype=np.float64: FakeArray(np.zeros(shape, dtype))
    module.asarray = lambda a: FakeArray(np.array(a))
    module.lib = types.SimpleNamespace(stride_tricks=types.SimpleNamespace(as_strided=_as_strided))
    runtime = types.SimpleNamespace(
        getDeviceCount=lambda: 2,
        getDevice=lambda: 0,
        driverGetVersion=lambda: 12090,
        runtimeGetVersion=lambda: 12090,
        getDeviceProperties=lambda i: {
            "name": b"Fake GPU",
            "major": 9,
            "minor": 0,
            "maxThreadsPerBlock": 1024,
            "sharedMemPerBlock": 49152,
            "multiProcessorCount": 4,
            "regsPerBlock": 65536,
            "warpSize": 32,
        },
    )
    module.cuda = types.SimpleNamespace(
        runtime=runtime,
        Device=_Device,
        function=types.SimpleNamespace(Module=_Module),
    )
    monkeypatch.setitem(sys.modules, "cupy", module)

    compile_source = cuda_runtime.compile_source
    sources: dict[str, object] = {}
    render = cuda_codegen.render

    def recording_render(loops):  # noqa: ANN001, ANN202
        source = render(loops)
        sources[source] = loops
        return source

    def recording_compile(source, arch, driver=None):  # noqa: ANN001, ANN202
        binary = compile_source(source, arch, driver)
        _PROGRAMS[cuda_runtime.unpack(binary)[1]] = sources[source]
        return binary

    monkeypatch.setattr(cuda_codegen, "render", recording_render)
    monkeypatch.setattr(cuda_runtime, "compile_source", recording_compile)
    cuda_runtime.CudaDevice.available.cache_clear()
    cuda_runtime._device_target.cache_clear()
    with contextlib.ExitStack():
        yield module
    cuda_runtime.CudaDevice.available.cache_clear()
    cuda_runtime._device_target.cache_clear()


pytestmark = pytest.mark.skipif(
    cuda_runtime.nvrtc.load() is None,
    reason="NVRTC not installed (pip install nvidia-cuda-nvrtc-cu12)",
)


def test_cupy_in_cupy_out_with_scalars(fake_cupy):
    f = jitune.kernel(lambda x, w, b, s: np.maximum(x @ w + b, 0) * s)
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((9, 7), (7, 33), (33,)))
    out = f(FakeArray(x), FakeArray(w), FakeArray(b), 2.0)
    assert isinstance(out, FakeArray) and out.dtype == np.float32
    np.testing.assert_allclose(out.host, np.maximum(x @ w + b, 0) * 2, rtol=1e-5, atol=1e-5)
    out = f(FakeArray(x), FakeArray(w), FakeArray(b), np.float32(0.5))
    np.testing.assert_allclose(out.host, np.maximum(x @ w + b, 0) * 0.5, rtol=1e-5, atol=1e-5)
    assert f.compile_count == 2
    assert "Fake GPU" in jitune.kernel(lambda x: x).lower(FakeArray(x)).target.fingerprint()


def test_softmax_and_misaligned_views(fake_cupy):
    def softmax(x):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    host = np.random.default_rng(1).standard_normal(1 + 7 * 36).astype(np.float32)
    view = host[1:].reshape(7, 36)  # 4 bytes past an aligned address
    out = jitune.kernel(lambda x: x * 2 + 1)(FakeArray(view))
    np.testing.assert_allclose(out.host, view * 2 + 1)
    out = jitune.kernel(softmax)(FakeArray(view))
    np.testing.assert_allclose(out.host, softmax(view), rtol=1e-5, atol=1e-6)


def test_device_errors(fake_cupy):
    f = jitune.kernel(lambda x, y: x + y)
    with pytest.raises(jitune.ArgumentError, match="different array libraries"):
        f(FakeArray(np.ones(3)), np.ones(3))
    with pytest.raises(jitune.ArgumentError, match="different devices"):
        f(FakeArray(np.ones(3)), FakeArray(np.ones(3), device=1))
