"""Shortcut blocks (Bi-Real Net / QuickNet: y = [Relu](Add(BN(BinaryConv(sign(x))), x))): the session
fuses the Add and the activation into the binary conv's output (passes/residual.py); the result must
equal plain float evaluation of the same ONNX graph exactly -- weights are +-s with s a power of two and
the BN affine is applied in the same float32 order, so any difference is a bug."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from onnx import TensorProto, helper, numpy_helper

import xnorinfer


def _model(rng, c, blocks, acts, size):
    inits, nodes = {"zero": np.float32(0), "one": np.float32(1), "mone": np.float32(-1)}, []
    x = "x"
    for i in range(blocks):
        nodes.append(helper.make_node("GreaterOrEqual", [x, "zero"], [f"ge{i}"]))
        nodes.append(helper.make_node("Where", [f"ge{i}", "one", "mone"], [f"s{i}"]))
        s = 2.0 ** rng.integers(-2, 2)
        inits[f"w{i}"] = np.where(rng.random((c, c, 3, 3)) < 0.5, -s, s).astype(np.float32)
        nodes.append(helper.make_node("Conv", [f"s{i}", f"w{i}"], [f"conv{i}"], pads=[1, 1, 1, 1]))
        inits[f"m{i}"] = (2.0 ** rng.integers(-3, 1, size=(c, 1, 1))).astype(np.float32)
        inits[f"b{i}"] = (rng.integers(-8, 8, size=(c, 1, 1)) / 4).astype(np.float32)
        nodes.append(helper.make_node("Mul", [f"conv{i}", f"m{i}"], [f"mul{i}"]))
        nodes.append(helper.make_node("Add", [f"mul{i}", f"b{i}"], [f"aff{i}"]))
        order = [f"aff{i}", x] if i % 2 == 0 else [x, f"aff{i}"]  # the shortcut on either side
        nodes.append(helper.make_node("Add", order, [f"res{i}"]))
        x = f"res{i}"
        if acts[i] == "relu":
            nodes.append(helper.make_node("Relu", [x], [f"act{i}"]))
            x = f"act{i}"
        elif acts[i] == "clip":
            nodes.append(helper.make_node("Clip", [x, "mone", "one"], [f"act{i}"]))
            x = f"act{i}"
    nodes.append(helper.make_node("Identity", [x], ["y"]))
    g = helper.make_graph(nodes, "res", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", c, size, size])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_fused_shortcuts_equal_float_graph(kernel_path, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    c, blocks, size = data.draw(st.integers(1, 70)), data.draw(st.integers(1, 3)), data.draw(st.integers(3, 9))
    acts = [data.draw(st.sampled_from(["none", "relu", "clip"])) for _ in range(blocks)]
    m = _model(rng, c, blocks, acts, size)
    x = (rng.integers(-8, 8, size=(data.draw(st.integers(1, 2)), c, size, size)) / 4).astype(np.float32)
    (want,) = xnorinfer.InferenceSession(m, binarize_layers=False, executor="python").run(None, {"x": x})
    sess = xnorinfer.InferenceSession(m)
    ops_left = [n.op for n in sess._graph.nodes]
    assert "Add" not in ops_left and "Relu" not in ops_left, ops_left  # every shortcut fused
    assert sum(bool(getattr(n.attrs, "residual", False)) for n in sess._graph.nodes) == blocks
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], want)  # the C runtime on the C backend
    np.testing.assert_array_equal(xnorinfer.InferenceSession(m, executor="python").run(None, {"x": x})[0], want)


def test_residual_argument_is_checked():
    from xnorinfer import ops
    w = xnorinfer.pack(np.ones((4, 3, 3, 8), np.float32))
    x = xnorinfer.pack(np.ones((1, 5, 5, 8), np.float32))
    conv = ops.BConv2d(w, 8, padding=1, output="float32", scale=np.ones(4, np.float32))
    with pytest.raises(ValueError, match="shape"):
        conv(x, residual=np.zeros((1, 5, 5, 3), np.float32))
    with pytest.raises(ValueError, match="float32"):
        ops.BConv2d(w, 8, padding=1)(x, residual=np.zeros((1, 5, 5, 4), np.float32))
    r = np.arange(100, dtype=np.float32).reshape(1, 5, 5, 4)
    np.testing.assert_array_equal(conv(x, residual=r), conv(x) + r)
