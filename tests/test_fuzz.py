"""A short run of the loader fuzzer (tools/fuzz_loaders.py runs the long one): mutated ONNX and .xnor
files give Python exceptions, never a crash."""
import os

import numpy as np
import pytest

import xnorinfer
from xnorinfer.importers import xnor as xnor_format
from xnorinfer.errors import ModelError
from xnorinfer.tools.fuzz import fuzz

DEMO = os.path.join(os.path.dirname(xnorinfer.__file__), "demo", "digits_bnn.onnx")


@pytest.fixture(scope="module")
def xnor_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("xnor") / "digits.xnor"
    xnorinfer.InferenceSession(DEMO).save(path)
    return path.read_bytes()


def test_xnor_round_trip_is_exact_and_small(tmp_path, xnor_bytes):
    onnx_sess = xnorinfer.InferenceSession(DEMO)
    xnor_sess = xnorinfer.InferenceSession(xnor_bytes)
    images = np.load(os.path.join(os.path.dirname(DEMO), "digits_test.npz"))["images"]
    np.testing.assert_array_equal(onnx_sess.run(None, {"image": images})[0], xnor_sess.run(None, {"image": images})[0])
    assert xnor_sess.summary() == onnx_sess.summary()
    assert len(xnor_bytes) * 5 < os.path.getsize(DEMO)


@pytest.mark.parametrize("corrupt,match", [
    (lambda b: b[:40], "shorter than the header"),
    (lambda b: b"NOTXNOR\0" + b[8:], "not a readable ONNX model|bad magic"),
    (lambda b: b[:100] + bytes([b[100] ^ 1]) + b[101:], "checksum"),
    (lambda b: b[:-10], "data section"),
])
def test_corrupted_xnor_names_the_problem(xnor_bytes, corrupt, match):
    with pytest.raises(ModelError, match=match):
        xnorinfer.InferenceSession(corrupt(xnor_bytes))


def check_outcomes(outcomes):
    """Mutations that still load and run, and others refused: at load, with a ModelError naming the
    problem; at run time (a file that loads but whose shapes do not work out), with a ValueError (numpy's
    AxisError is one) naming it."""
    assert outcomes["ok"] > 0, outcomes
    refused = {k: v for k, v in outcomes.items() if k != "ok"}
    assert refused.get("load:ModelError", 0) > 0, outcomes
    assert set(refused) <= {"load:ModelError", "run:ModelError", "run:ValueError", "run:AxisError"}, outcomes


@pytest.mark.slow
def test_fuzz_xnor(xnor_bytes):
    check_outcomes(fuzz(xnor_bytes, (1, 1, 8, 8), 1000, seed=3))


@pytest.mark.slow
def test_fuzz_onnx():
    check_outcomes(fuzz(open(DEMO, "rb").read(), (1, 1, 8, 8), 800, seed=4))


def test_huge_padding_is_refused_at_load():
    """A pad no real model has would make a run allocate without bound: refused when loading."""
    from onnx import TensorProto, helper, numpy_helper
    w = numpy_helper.from_array(np.ones((4, 1, 3, 3), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[2**31, 0, 0, 0])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    with pytest.raises(ModelError, match="pads"):
        xnorinfer.InferenceSession(model)


@pytest.mark.slow
def test_fuzz_tflite():
    tflite = os.path.join(os.path.dirname(__file__), "fixtures", "lce", "tiny_bnn", "model.tflite")
    check_outcomes(fuzz(open(tflite, "rb").read(), (1, 32, 32, 3), 500, seed=5))


@pytest.mark.slow
def test_fuzz_xnor_with_fused_shortcuts(tmp_path):
    """A planned QuickNet-style model (NHWC float ops, shortcut adds fused into binary convs, the C float
    layers): broken or hostile edits of its .xnor raise Python exceptions, never crash."""
    src = os.path.join(os.path.dirname(__file__), "fixtures", "lce", "tiny_resid", "model.tflite")
    path = tmp_path / "resid.xnor"
    sess = xnorinfer.InferenceSession(src)
    assert any(getattr(n.attrs, "residual", False) for n in sess._graph.nodes)
    sess.save(path)
    check_outcomes(fuzz(path.read_bytes(), (1, 32, 32, 3), 500, seed=6))
