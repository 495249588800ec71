"""jitune's dependencies, with the XGBoost build chosen when jitune is installed.

The cost model trains small XGBoost models on the CPU, so a CPU build serves every jitune
user, GPU users included. The ``xgboost`` wheel for Linux pulls in NVIDIA's NCCL (about
350 MB) that jitune never uses; ``xgboost-cpu`` is the same ``xgboost`` module without CUDA
(5.6 MB). Both install into one ``xgboost`` folder, so installing one over the other would
replace the user's build: where a distribution named ``xgboost`` is already installed,
jitune depends on it and leaves it as it is; otherwise it depends on ``xgboost-cpu``. macOS
has no xgboost-cpu wheels and its xgboost has no CUDA part: there it is ``xgboost``.
"""

from __future__ import annotations

import subprocess
import sys

from setuptools import setup

BASE = [
    "numpy>=2.1",
    "llvmlite>=0.44",
    "numba>=0.61",
    "diskcache>=5.6",
    "platformdirs>=3",
    "tqdm>=4.60",
]


def full_xgboost_installed() -> bool:
    """Whether the environment being installed into holds the ``xgboost`` distribution.

    pip builds in an isolated environment that hides the target's site-packages, so ask the
    target's interpreter itself in isolated mode (``-I`` ignores the build's PYTHONPATH)."""
    probe = "import importlib.metadata as m; m.distribution('xgboost')"
    try:
        done = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def xgboost_requirement() -> str:
    if sys.platform == "darwin" or full_xgboost_installed():
        return "xgboost>=2.0"
    return "xgboost-cpu>=2.0"


setup(install_requires=[*BASE, xgboost_requirement()])
