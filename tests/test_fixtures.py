"""Models exported by real frameworks (tests/fixtures, made by the committed make_*_fixtures.py
scripts): outputs equal to the framework's own outputs — float parts within 1e-4 relative, class
decisions identical — with the binary layers actually running as binary kernels."""
import glob
import json
import os

import numpy as np
import pytest

import xnorinfer

HERE = os.path.dirname(__file__)
FIXTURES = sorted(os.path.dirname(p) for p in glob.glob(os.path.join(HERE, "fixtures", "*", "*", "model.onnx")))


def fixture_id(path):
    return os.path.relpath(path, os.path.join(HERE, "fixtures"))


def test_fixtures_are_present():
    frameworks = {fixture_id(p).split(os.sep)[0] for p in FIXTURES}
    assert {"torch", "brevitas", "larq"} <= frameworks, frameworks


@pytest.mark.parametrize("folder", FIXTURES, ids=fixture_id)
def test_fixture_matches_framework(folder):
    sess = xnorinfer.InferenceSession(os.path.join(folder, "model.onnx"))
    inputs = dict(np.load(os.path.join(folder, "inputs.npz")))
    expected = dict(np.load(os.path.join(folder, "outputs.npz")))
    names = [o.name for o in sess.get_outputs()]
    got = dict(zip(names, sess.run(None, inputs)))
    for name, want in expected.items():
        assert name in got, f"output {name} missing"
        g = got[name]
        assert g.shape == want.shape
        scale = max(float(np.abs(want).max()), 1e-6)
        assert float(np.abs(g - want).max()) <= 1e-4 * scale, f"{name}: max error {np.abs(g - want).max()}"
        if want.ndim == 2 and want.shape[1] > 1:
            np.testing.assert_array_equal(g.argmax(axis=1), want.argmax(axis=1))
    meta = json.load(open(os.path.join(folder, "meta.json")))
    summary = sess.summary()
    assert " binary " in summary, f"no binary layer found in {meta.get('description', folder)}:\n{summary}"
