"""Choosing an OpenCL device when a driver lists devices it cannot build for (the pip PoCL on
CPUs newer than its LLVM): fake devices, so these run with or without OpenCL."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import pytest

from jitune.errors import CompileError, DeviceError
from jitune.runtime import devices as devices_module
from jitune.runtime import opencl

UNKNOWN_CPU = "clBuildProgram failed\nerror: unknown target CPU 'generic'\nnote: valid ..."


class FakeDevice:
    """What the device selection reads of a ``pyopencl.Device``; hashable like one."""

    def __init__(self, name: str, builds: bool) -> None:
        self.name = name
        self.builds = builds
        self.platform = SimpleNamespace(version=f"OpenCL 3.0 {name}-driver  Linux, Release")


@pytest.fixture
def fake_devices(monkeypatch):
    """Install a list of fake devices; ``build`` calls on them succeed or fail as marked."""
    built: list[str] = []

    def install(*devices: FakeDevice) -> list[str]:
        def build_program(context, device, source):
            built.append(device.name)
            if not device.builds:
                raise RuntimeError(UNKNOWN_CPU)
            return object()

        monkeypatch.setattr(opencl, "all_devices", lambda: list(devices))
        monkeypatch.setattr(opencl, "_build_program", build_program)
        monkeypatch.setattr(
            opencl, "_cl", lambda: SimpleNamespace(Context=lambda d: d, Error=RuntimeError)
        )
        return built

    opencl._probe.cache_clear()
    opencl._warn_skipped.cache_clear()
    yield install
    opencl._probe.cache_clear()
    opencl._warn_skipped.cache_clear()


def test_a_device_that_builds_nothing_is_passed_over_with_one_warning(fake_devices):
    broken, working = FakeDevice("old-pocl", False), FakeDevice("new-pocl", True)
    built = fake_devices(broken, working)
    assert opencl.working_devices() == [working]
    with pytest.warns(RuntimeWarning, match="old-pocl.*unknown target CPU.*using new-pocl"):
        assert opencl.OpenclDevice()._device() is working
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second choice warns no more
        assert opencl.OpenclDevice()._device() is working
    assert built.count("old-pocl") == 1  # probed once per process


def test_the_problem_names_the_device_the_error_and_the_fix(fake_devices):
    broken = FakeDevice("old-pocl", False)
    fake_devices(broken)
    problem = opencl.problem_of(broken)
    assert "old-pocl" in problem and "unknown target CPU 'generic'" in problem
    assert "apt-get install pocl-opencl-icd" in problem
    assert opencl.problem_of(FakeDevice("other", True)) is None


def test_only_broken_devices_make_opencl_unavailable_with_that_reason(fake_devices, monkeypatch):
    fake_devices(FakeDevice("old-pocl", False))
    device = opencl.OpenclDevice()
    assert not device.available()
    monkeypatch.setattr(devices_module, "DEVICES", (device,))
    array = type("Array", (), {"__module__": "pyopencl.array", "shape": (3,)})()
    with pytest.raises(DeviceError, match="old-pocl.*cannot build any program.*pocl-opencl-icd"):
        devices_module.device_of([array], "f")


def test_a_failed_build_on_a_broken_device_is_a_device_error_not_a_bug(fake_devices):
    broken = FakeDevice("old-pocl", False)
    fake_devices(broken)
    with pytest.raises(DeviceError, match="old-pocl"):
        opencl._build(None, broken, "__kernel void f() {}")


def test_a_failed_build_on_a_working_device_stays_a_compile_error(fake_devices, monkeypatch):
    working = FakeDevice("new-pocl", True)
    fake_devices(working)
    opencl.problem_of(working)  # probed: the device builds

    def failing(context, device, source):
        raise RuntimeError("error: use of undeclared identifier")

    monkeypatch.setattr(opencl, "_build_program", failing)
    with pytest.raises(CompileError, match="new-pocl"):
        opencl._build(None, working, "__kernel void f() { x; }")


def test_no_platform_at_all_says_so(fake_devices):
    fake_devices()
    assert opencl.working_devices() == []
    assert "no OpenCL platform" in opencl.unavailable_reason()
    assert opencl.OpenclDevice().available() is False


def test_jitune_info_lists_each_device_with_its_state(fake_devices):
    """``jitune info``'s device list: each device's state; the advice only where none works."""
    import io

    from jitune import cli

    fake_devices(FakeDevice("old-pocl", False), FakeDevice("new-pocl", True))
    out = io.StringIO()
    cli._opencl_devices(out)  # the OpenCL part of `jitune info`
    text = out.getvalue()
    assert "old-pocl (OpenCL 3.0 old-pocl-driver): UNUSABLE" in text
    assert "unknown target CPU 'generic'" in text
    assert "new-pocl (OpenCL 3.0 new-pocl-driver): builds programs" in text
    assert "apt-get install" not in text  # one device works: no advice needed
