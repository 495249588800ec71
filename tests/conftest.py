"""pytest configuration: hypothesis profiles and a seeded RNG fixture.

Comparison helpers (``assert_close``, ``check``) live in ``helpers.py``.
"""

from __future__ import annotations

import os
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

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
