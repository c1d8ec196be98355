"""Backend and ISA selection: environment variables, info, clear errors."""
import os
import subprocess
import sys

import pytest

import xnorinfer
from xnorinfer import kernels


def run_python(code, **env):
    full_env = dict(os.environ)
    for key in ("XNORINFER_ISA", "XNORINFER_BACKEND", "XNORINFER_NUM_THREADS"):
        full_env.pop(key, None)
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env,
                          timeout=300)


def test_c_library_is_built():
    """The suite must exercise the C kernels: a missing extension is a failed install, not a skip."""
    if os.environ.get("XNORINFER_NO_EXTENSION"):
        pytest.skip("pure-Python install requested explicitly")
    assert xnorinfer.backend_info()["c_library_built"]


def test_backend_info_fields():
    info = xnorinfer.backend_info()
    assert info["backend"] in ("c", "numba")
    assert info["num_threads"] >= 1
    if info["backend"] == "c":
        assert info["isa"] in info["supported_isas"]
        assert "ref" in info["supported_isas"]


def test_best_isa_is_default():
    c = kernels.load_backend("c")
    order = ["ref", "scalar", "avx2", "avx512", "neon"]
    best = max(c.supported_isas(), key=order.index)
    result = run_python("import xnorinfer; print(xnorinfer.backend_info()['isa'])")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == best


@pytest.mark.parametrize("isa", ["ref", "scalar", "avx2", "avx512", "neon"])
def test_forcing_an_isa(isa):
    supported = kernels.load_backend("c").supported_isas()
    code = ("import numpy as np, xnorinfer; x = xnorinfer.pack(np.ones((2, 70)));"
            "xnorinfer.bgemm(x, x, 70); print(xnorinfer.backend_info()['isa'])")
    result = run_python(code, XNORINFER_ISA=isa)
    if isa in supported:
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == isa
    else:
        assert result.returncode != 0
        assert f"XNORINFER_ISA={isa}" in result.stderr and "does not support" in result.stderr


def test_unknown_isa_is_a_clear_error():
    result = run_python("import numpy as np, xnorinfer; xnorinfer.pack(np.ones(3))", XNORINFER_ISA="sse9")
    assert result.returncode != 0
    assert "XNORINFER_ISA=sse9 is not a known path" in result.stderr


@pytest.mark.slow
def test_forcing_numba_backend():
    result = run_python("import numpy as np, xnorinfer; x = xnorinfer.pack(np.ones((2, 70)));"
                        "assert (xnorinfer.bgemm(x, x, 70) == 70).all();"
                        "print(xnorinfer.backend_info()['backend'])", XNORINFER_BACKEND="numba")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "numba"


def test_unknown_backend_is_a_clear_error():
    result = run_python("import numpy as np, xnorinfer; xnorinfer.pack(np.ones(3))", XNORINFER_BACKEND="gpu")
    assert result.returncode != 0 and "XNORINFER_BACKEND='gpu'" in result.stderr


@pytest.mark.parametrize("backend", ["c", "numba"])
def test_num_threads_environment(backend):
    result = run_python("import xnorinfer; print(xnorinfer.backend_info()['num_threads'])",
                        XNORINFER_NUM_THREADS="1", XNORINFER_BACKEND=backend)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


def test_import_is_light():
    """`import xnorinfer` must not load numba or the C library (they load on first use)."""
    result = run_python("import sys, xnorinfer; print('numba' in sys.modules, "
                        "'xnorinfer.kernels.clib' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]
