"""InferenceSession on small ONNX graphs built here: binary layers found, outputs equal to a plain
numpy evaluation of the same graph, clear errors for bad models and bad feeds."""
import os
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import xnorinfer
from xnorinfer.errors import ModelError


def _model(nodes, inits, inputs=(("x", ["N", 3, 8, 8]),), opset=17):
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                          [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def _initializer(model, name):
    import onnx
    return next(numpy_helper.to_array(t) for t in onnx.load_from_string(model).graph.initializer if t.name == name)


def binarynet_like(rng, sign="Sign", upto=None):
    """A BinaryNet-style graph: float conv, BN, sign, binary conv (Sign of latent weights), max-pool, BN,
    HardTanh, sign, flatten, binary dense (+-0.37 weights) with a bias; `upto`: a value to end at."""
    inits = {"w0": rng.normal(size=(32, 3, 3, 3)).astype(np.float32),
             "w1lat": rng.normal(size=(64, 32, 3, 3)).astype(np.float32),
             "w2": (np.sign(rng.normal(size=(10, 64 * 4 * 4))) * 0.37).astype(np.float32),
             "b2": rng.normal(size=10).astype(np.float32), "zero": np.array(0, np.float32),
             "one": np.array(1, np.float32), "mone": np.array(-1, np.float32)}
    for i, c in ((0, 32), (1, 64)):
        inits.update({f"g{i}": rng.normal(size=c).astype(np.float32), f"be{i}": rng.normal(size=c).astype(np.float32),
                      f"m{i}": (rng.normal(size=c) * 3).astype(np.float32),
                      f"v{i}": rng.uniform(0.5, 2, size=c).astype(np.float32)})
    act0 = ([helper.make_node("Sign", ["bn0"], ["s0"])] if sign == "Sign" else
            [helper.make_node("GreaterOrEqual", ["bn0", "zero"], ["ge0"]),
             helper.make_node("Where", ["ge0", "one", "mone"], ["s0"])])
    nodes = [helper.make_node("Conv", ["x", "w0"], ["c0"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c0", "g0", "be0", "m0", "v0"], ["bn0"]), *act0,
             helper.make_node("Sign", ["w1lat"], ["w1"]),
             helper.make_node("Conv", ["s0", "w1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("MaxPool", ["c1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("BatchNormalization", ["p1", "g1", "be1", "m1", "v1"], ["bn1"]),
             helper.make_node("Clip", ["bn1", "mone", "one"], ["h1"]),  # HardTanh: sign-preserving
             helper.make_node("Sign", ["h1"], ["s1"]),
             helper.make_node("Flatten", ["s1"], ["f1"]),
             helper.make_node("Gemm", ["f1", "w2", "b2"], ["y"], transB=1)]
    if upto is not None:
        nodes = nodes[:1 + next(i for i, n in enumerate(nodes) if n.output[0] == upto)]
    return _model(nodes, inits)


@pytest.mark.parametrize("sign", ["Sign", "Where"])
def test_binary_layers_found_and_exact(kernel_path, sign):
    model = binarynet_like(np.random.default_rng(0), sign)
    sess = xnorinfer.InferenceSession(model)
    table = sess.summary()
    assert table.count("binary") == 2, table
    x = np.random.default_rng(1).normal(size=(3, 3, 8, 8)).astype(np.float32)
    (y,) = sess.run(None, {"x": x})
    assert y.shape == (3, 10)
    # the float graph's own signs (exact: +-1), then the binary dense layer's arithmetic in numpy: the
    # exact integer accumulator, times the weights' scale and plus the bias, each rounded to float32
    upto_signs = binarynet_like(np.random.default_rng(0), sign, upto="f1")
    (signs,) = xnorinfer.InferenceSession(upto_signs, binarize_layers=False).run(None, {"x": x})
    assert set(np.unique(signs)) <= {-1.0, 1.0}
    acc = signs.astype(np.int64) @ np.sign(_initializer(model, "w2")).astype(np.int64).T
    want = (acc.astype(np.float32) * np.float32(0.37)) + _initializer(model, "b2")
    np.testing.assert_array_equal(y, want)


def test_ternary_sign_with_true_zeros_stays_exact(kernel_path):
    """Sign(0) = 0: when the input holds exact zeros the binary layer must give the float result."""
    rng = np.random.default_rng(2)
    inits = {"w": (np.sign(rng.normal(size=(8, 4, 3, 3))) * 1.0).astype(np.float32)}
    nodes = [helper.make_node("Sign", ["x"], ["s"]), helper.make_node("Conv", ["s", "w"], ["y"], pads=[1, 1, 1, 1])]
    model = _model(nodes, inits, inputs=(("x", [1, 4, 5, 5]),))
    sess = xnorinfer.InferenceSession(model)
    assert "binary" in sess.summary()
    x = rng.normal(size=(1, 4, 5, 5)).astype(np.float32)
    x[0, :, 2, 2] = 0.0
    (y,) = sess.run(None, {"x": x})
    (want,) = xnorinfer.InferenceSession(model, binarize_layers=False).run(None, {"x": x})
    np.testing.assert_array_equal(y, want)
    x[0, :, 2, 2] = 1.0
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0],
                                  xnorinfer.InferenceSession(model, binarize_layers=False).run(None, {"x": x})[0])


def test_latent_weights_stay_float_with_reason():
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Sign", ["x"], ["s"]), helper.make_node("Conv", ["s", "w"], ["y"])]
    sess = xnorinfer.InferenceSession(_model(nodes, {"w": rng.normal(size=(4, 3, 3, 3)).astype(np.float32)}))
    assert "not +-s per output channel" in sess.summary()


def test_session_api_like_onnxruntime():
    sess = xnorinfer.InferenceSession(binarynet_like(np.random.default_rng(0)))
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
    assert inp.name == "x" and inp.shape == ["N", 3, 8, 8] and inp.type == "tensor(float)"
    assert out.name == "y"
    x = np.zeros((1, 3, 8, 8), np.float32)
    assert sess.run(["y"], {"x": x})[0].shape == (1, 10)
    with pytest.raises(ValueError, match="missing"):
        sess.run(None, {"nope": x})
    with pytest.raises(ValueError, match="dimension 1 must be 3"):
        sess.run(None, {"x": np.zeros((1, 4, 8, 8), np.float32)})
    with pytest.raises(ValueError, match="rank"):
        sess.run(None, {"x": np.zeros((3, 8, 8), np.float32)})
    with pytest.raises(ValueError, match="unknown outputs"):
        sess.run(["z"], {"x": x})


def test_unsupported_ops_listed_in_one_error():
    nodes = [helper.make_node("FancyOp", ["x"], ["a"], name="first"), helper.make_node("OtherOp", ["a"], ["y"], name="second")]
    with pytest.raises(ModelError, match=r"FancyOp \(first\).*OtherOp \(second\)"):
        xnorinfer.InferenceSession(_model(nodes, {}))


@pytest.mark.parametrize("blob", [b"", b"garbage", b"\x08\x07\x12\x04abc", bytes(range(256)) * 4])
def test_malformed_model_bytes(blob):
    with pytest.raises((ModelError, ValueError)):
        xnorinfer.InferenceSession(blob)


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        xnorinfer.InferenceSession("/nonexistent/model.onnx")


@pytest.mark.parametrize("sign", ["Sign", "Where"])
def test_exact_ties_after_batchnorm(kernel_path, sign):
    """BN with mean 0 and beta 0 maps acc = 0 to exactly 0: Sign gives 0 there (kept exact), x >= 0 gives +1."""
    rng = np.random.default_rng(4)
    c = 16
    inits = {"w1": np.sign(rng.normal(size=(c, 4, 3, 3))).astype(np.float32),
             "w2": np.sign(rng.normal(size=(8, c, 3, 3))).astype(np.float32),
             "g": rng.uniform(0.5, 2, size=c).astype(np.float32) * np.where(np.arange(c) % 3 == 0, -1, 1).astype(np.float32),
             "b": np.zeros(c, np.float32), "m": np.zeros(c, np.float32), "v": np.ones(c, np.float32),
             "zero": np.array(0, np.float32), "one": np.array(1, np.float32), "mone": np.array(-1, np.float32)}
    act = ([helper.make_node("Sign", ["bn"], ["s1"])] if sign == "Sign" else
           [helper.make_node("GreaterOrEqual", ["bn", "zero"], ["ge"]), helper.make_node("Where", ["ge", "one", "mone"], ["s1"])])
    nodes = [helper.make_node("Sign", ["x"], ["s0"]),
             helper.make_node("Conv", ["s0", "w1"], ["c1"], pads=[0, 0, 0, 0]),  # 36 taps: acc is even, 0 occurs
             helper.make_node("BatchNormalization", ["c1", "g", "b", "m", "v"], ["bn"]), *act,
             helper.make_node("Conv", ["s1", "w2"], ["y"], pads=[1, 1, 1, 1])]
    model = _model(nodes, inits, inputs=(("x", [2, 4, 9, 9]),))
    sess = xnorinfer.InferenceSession(model)
    x = rng.normal(size=(2, 4, 9, 9)).astype(np.float32)
    (y,) = sess.run(None, {"x": x})
    (want,) = xnorinfer.InferenceSession(model, binarize_layers=False).run(None, {"x": x})
    env_acc = xnorinfer.InferenceSession(_model(nodes[:2], inits, inputs=(("x", [2, 4, 9, 9]),)), binarize_layers=False)
    assert np.any(env_acc.run(None, {"x": x})[0] == 0), "the test needs accumulators of exactly 0"
    np.testing.assert_array_equal(y, want)
    if sign == "Sign":
        assert "exactly 0" in sess.summary()


def test_run_from_many_threads():
    """One session, several threads running it at once: every result is the single-threaded one."""
    import threading
    sess = xnorinfer.InferenceSession(binarynet_like(np.random.default_rng(0)))
    rng = np.random.default_rng(5)
    batches = [rng.normal(size=(i % 3 + 1, 3, 8, 8)).astype(np.float32) for i in range(6)]
    expected = [sess.run(None, {"x": b})[0] for b in batches]
    errors = []

    def worker(i):
        for _ in range(20):
            if not np.array_equal(sess.run(None, {"x": batches[i % 6]})[0], expected[i % 6]):
                errors.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_summary_counts_macs():
    sess = xnorinfer.InferenceSession(binarynet_like(np.random.default_rng(0)))
    table = sess.summary()
    # the binary conv: 8x8 output, 64 channels, 32*3*3 taps each
    assert f"{8 * 8 * 64 * 32 * 9:,}" in table, table


@pytest.mark.parametrize("compare,zero_is", [("GreaterOrEqual", 1.0), ("Greater", -1.0)])
def test_sign_at_zero_follows_the_source_op(kernel_path, compare, zero_is):
    """x >= 0 gives +1 at 0; x > 0 (BinaryNet's binarize) gives -1 at 0: the packed bits must agree."""
    rng = np.random.default_rng(6)
    w = np.sign(rng.normal(size=(8, 4, 3, 3))).astype(np.float32)
    nodes = [helper.make_node(compare, ["x", "zero"], ["c"]), helper.make_node("Where", ["c", "one", "mone"], ["s"]),
             helper.make_node("Conv", ["s", "w"], ["y"], pads=[1, 1, 1, 1])]
    inits = {"w": w, "zero": np.array(0, np.float32), "one": np.array(1, np.float32), "mone": np.array(-1, np.float32)}
    model = _model(nodes, inits, inputs=(("x", [1, 4, 6, 6]),))
    x = rng.normal(size=(1, 4, 6, 6)).astype(np.float32)
    x[rng.random(x.shape) < 0.3] = 0.0
    sess = xnorinfer.InferenceSession(model)
    assert "binary" in sess.summary()
    signs = np.where(x > 0, 1.0, np.where(x < 0, -1.0, zero_is)).astype(np.float32)
    (want,) = xnorinfer.InferenceSession(_model(nodes[2:], {"w": w}, inputs=(("s", [1, 4, 6, 6]),)),
                                         binarize_layers=False).run(None, {"s": signs})
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], want)


@pytest.mark.slow
def test_bench_model_interleaves_engines_and_uses_lce_when_present(monkeypatch, tmp_path):
    """`xnorinfer bench` on an LCE .tflite compares with LCE's own interpreter, fastest x86 kernels
    (indirect BGEMM), same threads; a stand-in module records how it was asked."""
    import sys
    import types
    from xnorinfer.tools.bench import run_model_bench
    calls = []

    class FakeInterpreter:
        def __init__(self, flatbuffer, num_threads=1, use_reference_bconv=False, use_indirect_bgemm=False,
                     use_xnnpack=False):
            calls.append(dict(num_threads=num_threads, use_indirect_bgemm=use_indirect_bgemm, use_xnnpack=use_xnnpack))
            self.interpreter = types.SimpleNamespace(predict=lambda feed: [np.zeros((1, 10), np.float32)])

    names = ["larq_compute_engine", "larq_compute_engine.tflite", "larq_compute_engine.tflite.python",
             "larq_compute_engine.tflite.python.interpreter"]
    for name in names:
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    sys.modules[names[-1]].Interpreter = FakeInterpreter
    lines = []
    path = os.path.join(os.path.dirname(__file__), "fixtures", "lce", "tiny_bnn", "model.tflite")
    results = run_model_bench(path, threads=(1, 2), iterations=3, warmup=1, out=lines.append, progress=open(os.devnull, "w"))
    assert sorted({c["num_threads"] for c in calls}) == [1, 2] and all(c["use_indirect_bgemm"] for c in calls)
    assert {c["use_xnnpack"] for c in calls} == {False, True}
    assert [r["threads"] for r in results] == [1, 2] and all(r["baseline"].startswith("LCE") for r in results)
    assert any(line.startswith("xnorinfer") for line in lines) and any(line.startswith("LCE+XNNPACK") for line in lines)
