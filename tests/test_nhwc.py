"""The NHWC layout pass (passes/nhwc.py) must not change a single value: random float graphs that mix
layout-sensitive ops (Conv, pools, Concat, Pad, reductions, broadcast constants of every rank, layout
Transposes, ops that stay NCHW) are run planned as they are and after the pass, and compared exactly."""
import numpy as np
from hypothesis import given, settings, strategies as st

from xnorinfer import executor as planner
from xnorinfer.ir import Graph, ValueInfo
from xnorinfer.ir import Node as TypedNode
from xnorinfer.operators import parse_attrs
from xnorinfer.passes.nhwc import to_nhwc


def Node(op, inputs, outputs, attrs, name):
    """A node with its attributes as ONNX states them."""
    return TypedNode(op, inputs, outputs, parse_attrs(op, attrs, name), name)


def _random_graph(data, rng):
    consts, nodes = {}, []
    n, c, h, w = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 5)), data.draw(st.integers(3, 9)), \
        data.draw(st.integers(3, 9))
    nhwc_input = data.draw(st.booleans())
    inputs = [ValueInfo("x", (n, h, w, c) if nhwc_input else (n, c, h, w), np.dtype(np.float32))]
    count = [0]

    def fresh(tag):
        count[0] += 1
        return f"{tag}{count[0]}"

    def const(value):
        name = fresh("k")
        consts[name] = np.asarray(value, np.float32) if np.asarray(value).dtype.kind == "f" else np.asarray(value)
        return name

    def emit(op, ins, **attrs):
        out = fresh(op.lower())
        nodes.append(Node(op, ins, [out], attrs, out))
        return out

    x = "x"
    if nhwc_input:  # as the TFLite importer writes it
        x = emit("Transpose", [x], perm=[0, 3, 1, 2])
    shape = [n, c, h, w]
    live = [x]  # the current activation after each step
    inexact = {"out_reduce", "out_gap"}  # outputs whose sums may round differently
    for _ in range(data.draw(st.integers(1, 8))):
        kind = data.draw(st.sampled_from(["conv", "dwconv", "pool", "avg", "add_const", "add_live", "relu", "concat",
                                          "pad", "reduce", "identity", "where", "gap_flatten"]))
        if kind == "conv":
            o, k = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 3))
            x = emit("Conv", [x, const(rng.normal(size=(o, shape[1], k, k))), const(rng.normal(size=o))],
                     pads=[k // 2] * 4, strides=[1, 1])
            shape[1] = o
            shape[2] += 2 * (k // 2) - k + 1
            shape[3] += 2 * (k // 2) - k + 1
        elif kind == "dwconv":
            x = emit("Conv", [x, const(rng.normal(size=(shape[1], 1, 3, 3)))], pads=[1, 1, 1, 1],
                     group=shape[1], strides=[1, 1])
        elif kind in ("pool", "avg") and min(shape[2:]) >= 2:
            x = emit("MaxPool" if kind == "pool" else "AveragePool", [x], kernel_shape=[2, 2], strides=[1, 1],
                     pads=[0, 0, 1, 1])
        elif kind == "add_const":
            rank = data.draw(st.integers(0, 4))
            cshape = [[], [shape[3]], [shape[1], 1, 1], [1, shape[1], shape[2], 1], [1, shape[1], 1, shape[3]]][rank]
            x = emit(data.draw(st.sampled_from(["Add", "Mul", "Sub"])), [x, const(rng.normal(size=cshape))])
        elif kind == "add_live":  # a second activation, reached by another path
            x = emit("Add", [x, emit("Relu", [live[-1]])]) if live[-1] is x else emit("Add", [x, x])
        elif kind == "relu":
            x = emit("Relu", [x])
        elif kind == "concat":
            other = emit("Mul", [x, const(np.float32(2))])
            x = emit("Concat", [x, other], axis=data.draw(st.sampled_from([1, -3, 2, 3])))
            axis = nodes[-1].attrs.axis % 4
            shape[axis] *= 2
        elif kind == "pad":
            pads = [0, 0, 1, 2, 0, 0, 2, 1]
            x = emit("Pad", [x, const(np.array(pads, np.int64)), const(np.float32(0.5))], mode="constant")
            shape[2] += 3
            shape[3] += 3
        elif kind == "reduce":
            axes = data.draw(st.sampled_from([[2, 3], [1], [-1], [1, 2]]))
            keep = data.draw(st.integers(0, 1))
            y = emit("ReduceMean", [x], axes=axes, keepdims=keep)
            if keep:
                x = y
                inexact.add("y")
                for a in axes:
                    shape[a % 4] = 1
            else:
                nodes.append(Node("Identity", [y], ["out_reduce"], {}, "out_reduce"))
        elif kind == "identity":
            x = emit("Identity", [x])
        elif kind == "where":
            ge = emit("GreaterOrEqual", [x, const(np.float32(0))])
            x = emit("Where", [ge, x, const(np.float32(-1))])
        elif kind == "gap_flatten":
            g = emit("GlobalAveragePool", [x])
            nodes.append(Node("Flatten", [g], ["out_gap"], {"axis": 1}, "out_gap"))
        live.append(x)
    outputs = [ValueInfo("y", None, np.dtype(np.float32))]
    if data.draw(st.booleans()):  # NHWC graph output, as the TFLite importer writes it
        nodes.append(Node("Transpose", [x], ["y"], {"perm": [0, 2, 3, 1]}, "y"))
    else:
        nodes.append(Node("Shape", [x], ["y_shape"], {}, "y_shape"))  # an op that must see NCHW
        nodes.append(Node("Identity", [x], ["y"], {}, "y"))
        outputs.append(ValueInfo("y_shape", None, np.dtype(np.int64)))
    outputs += [ValueInfo(v, None, np.dtype(np.float32)) for v in ("out_reduce", "out_gap")
                if any(v in nd.outputs for nd in nodes)]
    feed = rng.normal(size=inputs[0].shape).astype(np.float32)
    return Graph(nodes, inputs, outputs, consts), feed, inexact


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_nhwc_pass_changes_no_value(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    graph, feed, inexact = _random_graph(data, rng)
    names = graph.output_names()
    before = planner.execute(planner.build(graph), graph.constants, {"x": feed}, names)
    converted = to_nhwc(graph)
    after = planner.execute(planner.build(converted), converted.constants, {"x": feed}, names)
    for name, a, b in zip(names, before, after):
        assert a.shape == b.shape, name
        if name in inexact:
            # ulps of the sum, amplified by the convs after it (values near 0 after cancellation)
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=name)
        else:
            np.testing.assert_array_equal(a, b, err_msg=name)


def test_tflite_style_graph_has_no_transposes_left():
    """Input transpose -> conv -> relu -> pool -> output transpose: all of it runs NHWC."""
    rng = np.random.default_rng(0)
    consts = {"w": rng.normal(size=(4, 3, 3, 3)).astype(np.float32)}
    nodes = [Node("Transpose", ["x"], ["t"], {"perm": [0, 3, 1, 2]}, "in"),
             Node("Conv", ["t", "w"], ["c"], {"pads": [1, 1, 1, 1]}, "conv"),
             Node("Relu", ["c"], ["r"], {}, "relu"),
             Node("MaxPool", ["r"], ["p"], {"kernel_shape": [2, 2], "strides": [2, 2]}, "pool"),
             Node("Transpose", ["p"], ["y"], {"perm": [0, 2, 3, 1]}, "out")]
    g = Graph(nodes, [ValueInfo("x", (1, 8, 8, 3), np.dtype(np.float32))], [ValueInfo("y", None, np.dtype(np.float32))],
              consts)
    converted = to_nhwc(g)
    assert [n.op for n in converted.nodes] == ["Conv", "Relu", "MaxPool", "Identity"]
    assert all(n.attrs.nhwc for n in converted.nodes[:3] if n.op != "Relu")
    x = rng.normal(size=(1, 8, 8, 3)).astype(np.float32)
    want = planner.execute(planner.build(g), g.constants, {"x": x}, ["y"])[0]
    got = planner.execute(planner.build(converted), converted.constants, {"x": x}, ["y"])[0]
    np.testing.assert_array_equal(want, got)
