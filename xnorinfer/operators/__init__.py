"""Every op of the IR, declared once (registry.py): its typed attributes, its meaning on numpy arrays
(the Python executor), and its C runtime steps (the lowering), side by side in one file per family:

  elementwise.py  Add, Mul, Relu, Clip, Where, Cast, ...      tensor.py  Shape, Reshape, Transpose, Concat, ...
  reduce.py       ReduceMean, global pools, Softmax, BN       nn.py      Conv, Gemm, MatMul, pools, Pad
  quant.py        QONNX Quant, BipolarQuant, Trunc, FINN MultiThreshold
  binary.py       the binary ops the passes create: XPack, XBConv, XBDense, XBMaxPool, XFloatConvPack, XShape
"""
from . import binary, elementwise, nn, quant, reduce, tensor  # noqa: F401  (each registers its ops)
from .packed import Packed
from .registry import NO_CONTEXT, OPS, Context, OpDef, apply, evaluate, parse_attrs, register

__all__ = ["OPS", "OpDef", "Context", "NO_CONTEXT", "Packed", "apply", "evaluate", "parse_attrs", "register"]
