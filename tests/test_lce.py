"""Larq Compute Engine .tflite models read directly (tests/fixtures/lce, made by
tests/fixtures/make_lce_fixtures.py with larq 0.14 / larq-zoo 2.4 / LCE 0.16): outputs equal the LCE
interpreter's, with the LCE binary convolutions running on xnorinfer's packed kernels."""
import glob
import os

import numpy as np
import pytest

import xnorinfer

HERE = os.path.join(os.path.dirname(__file__), "fixtures", "lce")
FIXTURES = sorted(os.path.dirname(p) for p in glob.glob(os.path.join(HERE, "*", "model.tflite")))


def test_lce_fixtures_present():
    assert len(FIXTURES) >= 2


@pytest.mark.parametrize("folder", FIXTURES, ids=os.path.basename)
def test_lce_model_matches_interpreter(folder):
    sess = xnorinfer.InferenceSession(os.path.join(folder, "model.tflite"))
    x = np.load(os.path.join(folder, "inputs.npz"))["input"]
    want = np.load(os.path.join(folder, "outputs.npz"))["output"]
    (got,) = sess.run(None, {sess.get_inputs()[0].name: x})
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-5
    np.testing.assert_array_equal(got.argmax(-1), want.argmax(-1))
    assert " binary " in sess.summary()


@pytest.mark.parametrize("folder", FIXTURES, ids=os.path.basename)
def test_lce_model_converts_to_xnor(folder, tmp_path):
    sess = xnorinfer.InferenceSession(os.path.join(folder, "model.tflite"))
    sess.save(tmp_path / "m.xnor")
    x = np.load(os.path.join(folder, "inputs.npz"))["input"]
    name = sess.get_inputs()[0].name
    np.testing.assert_array_equal(xnorinfer.InferenceSession(str(tmp_path / "m.xnor")).run(None, {name: x})[0],
                                  sess.run(None, {name: x})[0])


@pytest.mark.parametrize("blob", [b"\0\0\0\0TFL3", b"\x10\0\0\0TFL3" + bytes(64), b"\x08\0\0\0TFL3\x04\0\0\0"])
def test_malformed_tflite(blob):
    with pytest.raises(xnorinfer.ModelError):
        xnorinfer.InferenceSession(blob)
