"""What an install carries: the version from the package metadata, the licence, the PEP 561 marker, and
annotations a user's type checker can read (checked against an installed package, as pip leaves it)."""
import importlib.metadata
import os
import re
import subprocess
import sys
import sysconfig
import textwrap

import pytest

import xnorinfer

PACKAGE_DIR = os.path.dirname(os.path.abspath(xnorinfer.__file__))


def test_version_is_the_package_metadata():
    assert xnorinfer.__version__ == importlib.metadata.version("xnorinfer")
    assert xnorinfer.__version__ != "0+unknown"


def test_version_fallback_without_metadata():
    """A source tree imported without being installed has no metadata: a version that says so."""
    code = ("import importlib.metadata as m\n"
            "def missing(name): raise m.PackageNotFoundError(name)\n"
            "m.version = missing\n"
            "import xnorinfer; print(xnorinfer.__version__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0+unknown"


def test_license_is_in_the_metadata():
    dist = importlib.metadata.distribution("xnorinfer")
    assert dist.metadata["License-Expression"] == "MIT"
    assert "LICENSE" in (dist.metadata.get_all("License-File") or [])
    licence = [f for f in dist.files or [] if f.name == "LICENSE"]
    assert licence, "LICENSE is not among the installed files"
    assert "MIT License" in licence[0].read_text()


def test_py_typed_marker_is_installed():
    assert os.path.isfile(os.path.join(PACKAGE_DIR, "py.typed"))


def _installed_in_site_packages():
    paths = {os.path.realpath(sysconfig.get_paths()[key]) for key in ("purelib", "platlib")}
    return os.path.realpath(os.path.dirname(PACKAGE_DIR)) in paths


@pytest.mark.slow
def test_a_users_type_checker_reads_the_annotations(tmp_path):
    """mypy run on a user's script, away from the source tree, sees the installed package's types (it
    would report a missing py.typed marker, or Any for everything, otherwise) and catches a misuse."""
    pytest.importorskip("mypy")
    if not _installed_in_site_packages():
        pytest.skip(f"xnorinfer is imported from {PACKAGE_DIR}, not installed in site-packages (an editable "
                    "install or a source tree): PEP 561's py.typed only matters for an installed package")
    script = tmp_path / "user.py"
    script.write_text(textwrap.dedent("""
        import numpy as np
        import xnorinfer
        from xnorinfer import ops
        from xnorinfer.tools.analyze import analyze

        x = np.ones((2, 70), np.float32)
        packed = xnorinfer.pack(x)
        reveal_type(packed)
        reveal_type(xnorinfer.bgemm(packed, packed, 70))
        reveal_type(ops.BConv2d)
        reveal_type(analyze)
        xnorinfer.bgemm(packed, packed, "70")
    """))
    result = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", str(script)], capture_output=True,
                            text=True, cwd=tmp_path, timeout=600)
    out = result.stdout
    assert "py.typed" not in out and "import-not-found" not in out and "import-untyped" not in out, out
    assert re.search(r'user.py:9: note: Revealed type is "numpy.ndarray\[.*numpy.dtype\[numpy.unsignedinteger\[.*64Bit', out), out
    assert re.search(r'user.py:10: note: Revealed type is "numpy.ndarray\[.*numpy.dtype\[numpy.signedinteger\[.*32Bit', out), out
    assert "xnorinfer.layers.BConv2d" in out and "xnorinfer.tools.analyze.Report" in out, out
    assert 'Argument 3 to "bgemm" has incompatible type "str"; expected "int"' in out, out
    assert result.returncode == 1 and "Found 1 error" in out, out
