"""Cancel Transpose pairs around elementwise chains (tf2onnx's NHWC islands).

tf2onnx wraps every Keras op in Transposes: Conv (NCHW) -> Transpose to NHWC -> ste_sign -> Pad ->
Transpose back -> Conv.  Elementwise ops with scalar constants commute with a transpose, and a
constant Pad does after permuting its pads, so a chain Transpose(p) -> [those ops] -> Transpose(q)
with q o p = identity is the chain alone, applied in the original layout.  Removing the pair lets
the sign chain and the padding be seen by the binarization passes.
"""
import numpy as np

_ELEMENTWISE = {"Sign", "Neg", "Add", "Sub", "Mul", "Div", "Clip", "Abs", "Relu", "Identity", "Where",
                "GreaterOrEqual", "Greater", "Less", "LessOrEqual", "Tanh", "Sigmoid", "HardSigmoid", "Cast"}


def _scalar_consts(graph, node, arg):
    return all(n == arg or not n or (n in graph.constants and np.size(graph.constants[n]) == 1) for n in node.inputs)


def cancel_transposes(graph):
    g = graph.copy()
    changed = True
    while changed:
        changed = False
        consumers, outputs = g.consumers(), set(g.output_names())
        for first in g.nodes:
            if first.op != "Transpose":
                continue
            perm = first.attrs.perm
            if perm is None:
                continue
            chain, value = [], first.outputs[0]
            while value not in outputs and len(consumers.get(value, [])) == 1:
                nxt = consumers[value][0]
                if nxt.op == "Transpose":
                    break
                if nxt.op in _ELEMENTWISE and len(nxt.outputs) == 1 and _scalar_consts(g, nxt, value):
                    pass
                elif nxt.op == "Pad" and nxt.inputs[0] == value and nxt.inputs[1] in g.constants and \
                        (len(nxt.inputs) < 4 or not nxt.inputs[3]):
                    pass
                else:
                    break
                chain.append(nxt)
                value = nxt.outputs[0]
            users = consumers.get(value, [])
            if not chain or len(users) != 1 or users[0].op != "Transpose" or value in outputs:
                continue
            last = users[0]
            q = last.attrs.perm
            if q is None or [perm[i] for i in q] != list(range(len(perm))):
                continue
            # rewire: the chain reads the first Transpose's input; the last Transpose's users read the chain
            source = first.inputs[0]
            chain[0].inputs = [source if n == first.outputs[0] else n for n in chain[0].inputs]
            for node in chain:
                if node.op == "Pad":  # pads given in the transposed layout -> original layout
                    pads = np.asarray(g.constants[node.inputs[1]]).astype(np.int64)
                    rank = len(perm)
                    begin, end = pads[:rank], pads[rank:]
                    inverse = np.argsort(perm)
                    new = np.concatenate([begin[inverse], end[inverse]])
                    name = g.fresh_name(node.inputs[1] + "_untransposed")
                    g.constants[name] = new
                    node.inputs = [node.inputs[0], name] + node.inputs[2:]
            final = last.outputs[0]
            chain[-1].outputs = [final]
            g.nodes = [n for n in g.nodes if n is not first and n is not last]
            changed = True
            break
    return g
