"""Every kernel test runs on every path: each ISA of the C backend this CPU supports, and Numba."""
import os

import pytest
from hypothesis import HealthCheck, settings

from xnorinfer import kernels

# The kernel_path fixture selects a backend for the whole test; it is meant to persist across the
# examples hypothesis generates inside that test.  The default profile is derandomized: every run, CI's
# included, draws the same examples, so a failure reproduces as it is.  HYPOTHESIS_PROFILE=explore draws
# new random examples on every run, to hunt for bugs; a failure it finds prints how to reproduce it.
settings.register_profile("xnorinfer", suppress_health_check=[HealthCheck.function_scoped_fixture],
                          deadline=None, derandomize=True, database=None)
settings.register_profile("explore", suppress_health_check=[HealthCheck.function_scoped_fixture],
                          deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "xnorinfer"))


def _paths():
    paths = []
    try:
        c = kernels.load_backend("c")
    except kernels.CLibraryMissing:
        c = None
    if c is not None:
        paths += [("c", isa) for isa in c.supported_isas()]
    paths.append(("numba", None))
    return paths


PATHS = _paths()


def pytest_configure(config):
    # Registered here, not in pyproject.toml, so that a copy of tests/ run against an installed wheel
    # (.ci/run, cibuildwheel) knows the marker too.
    config.addinivalue_line("markers", "slow: fuzzing, subprocesses, cold Numba compiles (seconds each); "
                                       "`pytest -m 'not slow'` skips them")


def path_id(path):
    backend, isa = path
    return f"{backend}-{isa}" if isa else backend


@pytest.fixture(params=PATHS, ids=[path_id(p) for p in PATHS])
def kernel_path(request):
    backend, isa = request.param
    with kernels.use_backend(backend, isa) as active:
        yield active
