"""BinaryNet's VGG-small for CIFAR-10 (Courbariaux, Hubara et al. 2016) as an ONNX file, with random
weights and non-trivial BatchNorm statistics, in the form PyTorch's exporter gives it:
float first conv, then Conv(+-1 weights) -> [MaxPool] -> BatchNorm -> Sign, binary convs
128-128-256-256-512-512, binary dense 8192-1024-1024-10.

    python benchmarks/make_vgg_small.py /tmp/vgg_small.onnx
    xnorinfer bench /tmp/vgg_small.onnx --threads 1,2
"""
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper, save


def build(seed=0):
    rng = np.random.default_rng(seed)
    inits, nodes = {}, []

    def const(name, value):
        inits[name] = np.asarray(value)
        return name

    def bn(x, c, tag):
        g = rng.uniform(0.5, 1.5, c) * np.where(rng.random(c) < 0.2, -1, 1)
        args = [const(f"{tag}_g", g.astype(np.float32)), const(f"{tag}_b", rng.normal(size=c).astype(np.float32)),
                const(f"{tag}_m", (rng.normal(size=c) * 5).astype(np.float32)),
                const(f"{tag}_v", rng.uniform(20, 200, c).astype(np.float32))]
        nodes.append(helper.make_node("BatchNormalization", [x] + args, [f"{tag}_bn"]))
        return f"{tag}_bn"

    def sign(x, tag):
        nodes.append(helper.make_node("Sign", [x], [f"{tag}_s"]))
        return f"{tag}_s"

    x, c_in = "input", 3
    for i, (c, pool) in enumerate([(128, False), (128, True), (256, False), (256, True), (512, False), (512, True)]):
        w = rng.normal(size=(c, c_in, 3, 3)).astype(np.float32)
        w_name = const(f"conv{i}_w", w if i == 0 else np.where(w < 0, -1.0, 1.0).astype(np.float32))
        nodes.append(helper.make_node("Conv", [x, w_name], [f"conv{i}"], pads=[1, 1, 1, 1]))
        y = f"conv{i}"
        if pool:
            nodes.append(helper.make_node("MaxPool", [y], [f"pool{i}"], kernel_shape=[2, 2], strides=[2, 2]))
            y = f"pool{i}"
        x, c_in = sign(bn(y, c, f"l{i}"), f"l{i}"), c
    nodes.append(helper.make_node("Flatten", [x], ["flat"]))
    x, k = "flat", 512 * 4 * 4
    for j, n in enumerate([1024, 1024, 10]):
        w = np.where(rng.random((n, k)) < 0.5, -1.0, 1.0).astype(np.float32)
        nodes.append(helper.make_node("Gemm", [x, const(f"fc{j}_w", w)], [f"fc{j}"], transB=1))
        y = bn(f"fc{j}", n, f"f{j}")
        x, k = (sign(y, f"f{j}") if j < 2 else y), n
    graph = helper.make_graph(nodes, "binarynet_vgg_small",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 32, 32])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", 10])],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


if __name__ == "__main__":
    save(build(), sys.argv[1] if len(sys.argv) > 1 else "vgg_small.onnx")
