"""pytest configuration: hypothesis profiles and a seeded RNG fixture.

Comparison helpers (``assert_close``, ``check``) live in ``helpers.py``.
"""

from __future__ import annotations

import os
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Processes the tests start inherit this: no test writes to the user's cache directory unless
# it sets JITUNE_CACHE_DIR and JITUNE_DISABLE_CACHE=0 itself.
os.environ["JITUNE_DISABLE_CACHE"] = "1"
# ... and compiles the default schedule without tuning (tests of the tuner set a budget).
os.environ["JITUNE_BUDGET"] = "0"

# -- hypothesis ------------------------------------------------------------------------------
# "ci" (the default) is derandomized: the same examples on every run and machine, so CI is
# reproducible. "dev" explores new examples each run: HYPOTHESIS_PROFILE=dev pytest ...
_COMMON = dict(
    deadline=None,  # compile times vary with the machine; never assert timings
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile("ci", derandomize=True, database=None, **_COMMON)
settings.register_profile("dev", **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator seeded from the test's id: reproducible, different per test."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture(autouse=True)
def _memory_only_cache():
    """Tests compile in memory unless they ask for a disk cache (the ``cache_dir`` fixture),
    so one test's compiled kernels never turn another's compile into a cache load, and the
    user's own cache directory is never touched."""
    import jitune

    with jitune.config.override(disable_cache=True):
        yield


@pytest.fixture
def cache_dir(tmp_path, _memory_only_cache):
    """A fresh, private disk cache directory in use for the duration of the test."""
    import jitune

    path = tmp_path / "jitune-cache"
    with jitune.config.override(disable_cache=False, cache_dir=str(path)):
        yield path
