"""Shared test configuration: hypothesis profiles and a few fixtures.

The ``ci`` profile is the default (no deadline: the first call of a numba kernel
compiles it, which would trip hypothesis' per-example deadline). Pick another with
``HYPOTHESIS_PROFILE=dev`` (more examples) or ``HYPOTHESIS_PROFILE=quick``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile("quick", parent=settings.get_profile("ci"), max_examples=10)
settings.register_profile("dev", parent=settings.get_profile("ci"), max_examples=300)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, fixed-seed generator per test (tests stay reproducible)."""
    return np.random.default_rng(20240607)


@pytest.fixture(scope="session")
def scalesim_topologies() -> Path:
    """SCALE-Sim's AlexNet and ResNet-50 topology files (tests/data/scalesim)."""
    return DATA / "scalesim"


@pytest.fixture(scope="session", autouse=True)
def _compiled_kernels() -> None:
    """Compile every kernel once before any test: with a cold cache (a fresh install,
    as in CI) the first command that compiled would otherwise print the one-line
    compile note into whichever test ran it first. The tests of that note use their
    own processes and cache folders."""
    from simulator import kernels

    kernels.warm_up()
