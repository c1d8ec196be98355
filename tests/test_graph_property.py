"""Random BinaryNet-like graphs: the planned (binary, fused) session must give exactly what plain float
evaluation of the same ONNX graph gives.  Weights are +-s with s a power of two, so the float
convolutions are exact and any difference is a bug in the passes, not rounding."""
import numpy as np
from hypothesis import given, settings, strategies as st
from onnx import TensorProto, helper, numpy_helper

import xnorinfer


def build(draw_int, draw_bool, rng, size):
    """The nodes and initializers of a random BinaryNet-like graph on inputs of size x size, the number of
    input channels, and the flattened size; every drawn kernel fits its (padded) input."""
    inits, nodes = {}, []

    def const(name, value):
        inits[name] = np.asarray(value)
        return name

    const("zero", np.array(0, np.float32)), const("one", np.array(1, np.float32)), const("mone", np.array(-1, np.float32))

    def sign(x, tag):
        kind = draw_int(0, 2)
        if kind == 0:
            nodes.append(helper.make_node("Sign", [x], [f"{tag}_s"]))
        else:
            cmp = "GreaterOrEqual" if kind == 1 else "Greater"
            nodes.append(helper.make_node(cmp, [x, "zero"], [f"{tag}_c"]))
            nodes.append(helper.make_node("Where", [f"{tag}_c", "one", "mone"], [f"{tag}_s"]))
        return f"{tag}_s"

    def bn(x, c, tag):
        ties = draw_bool()
        g = rng.uniform(0.5, 2, c) * np.where(rng.random(c) < 0.4, -1, 1)
        m = np.zeros(c) if ties else rng.integers(-6, 7, c) + rng.choice([0, 0.5], c)
        b = np.zeros(c) if ties else rng.normal(size=c)
        args = [const(f"{tag}_{k}", v.astype(np.float32)) for k, v in
                (("g", g), ("b", b), ("m", m), ("v", rng.uniform(0.5, 4, c)))]
        nodes.append(helper.make_node("BatchNormalization", [x] + args, [f"{tag}_bn"]))
        return f"{tag}_bn"

    c_in = draw_int(1, 5)
    x, c = sign("x", "in"), c_in
    for i in range(draw_int(1, 3)):
        co, k = draw_int(1, 70), draw_int(1, min(3, size))
        s = 2.0 ** draw_int(-2, 2)
        w = np.where(rng.random((co, c, k, k)) < 0.5, -s, s).astype(np.float32)
        pad = draw_int(0, k // 2 + 1) if k > 1 else 0
        nodes.append(helper.make_node("Conv", [x, const(f"w{i}", w)], [f"conv{i}"], pads=[pad] * 4))
        y, size = f"conv{i}", size + 2 * pad - k + 1
        if draw_bool() and size >= 2:
            nodes.append(helper.make_node("MaxPool", [y], [f"pool{i}"], kernel_shape=[2, 2], strides=[2, 2]))
            y, size = f"pool{i}", size // 2
        y = bn(y, co, f"l{i}")
        x, c = sign(y, f"l{i}"), co
    nodes.append(helper.make_node("Flatten", [x], ["flat"]))
    return nodes, inits, c_in, c * size * size


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_planned_graph_equals_float_graph(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    size = 6 + data.draw(st.integers(0, 6))
    nodes, inits, c_in, k = build(lambda lo, hi: data.draw(st.integers(lo, hi)), lambda: data.draw(st.booleans()), rng,
                                  size)
    x = rng.normal(size=(data.draw(st.integers(1, 3)), c_in, size, size)).astype(np.float32)
    x[rng.random(x.shape) < 0.1] = 0.0
    inits["wd"] = np.where(rng.random((7, k)) < 0.5, -1.0, 1.0).astype(np.float32)
    nodes = nodes + [helper.make_node("Gemm", ["flat", "wd"], ["y"], transB=1)]
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", c_in, size, size])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(v, name) for name, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    (want,) = xnorinfer.InferenceSession(m, binarize_layers=False, executor="python").run(None, {"x": x})
    sess = xnorinfer.InferenceSession(m)
    assert "binary" in sess.summary()
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], want)  # the C runtime where it can
    np.testing.assert_array_equal(xnorinfer.InferenceSession(m, executor="python").run(None, {"x": x})[0], want)
