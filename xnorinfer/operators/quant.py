"""QONNX / FINN custom ops (Brevitas' export_qonnx): Quant / IntQuant, BipolarQuant, Trunc,
MultiThreshold."""
from dataclasses import dataclass

import numpy as np

from ..ir import Attrs, attr
from ..runtime.program import Unsupported, Val
from .elementwise import operand
from .registry import register

ROUNDING_MODES = ("ROUND", "HALF_EVEN", "CEIL", "FLOOR", "UP", "DOWN", "HALF_UP", "HALF_DOWN")
# rounding mode -> numpy's function, and the runtime's unary op (schema.UNARY) that gives the same bits
ROUNDING = {"ROUND": (np.round, "round"), "HALF_EVEN": (np.round, "round"), "CEIL": (np.ceil, "ceil"),
            "FLOOR": (np.floor, "floor"), "UP": (lambda v: np.sign(v) * np.ceil(np.abs(v)), "round_up"),
            "DOWN": (np.trunc, "trunc"), "HALF_UP": (lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5), "round_half_up"),
            "HALF_DOWN": (lambda v: np.sign(v) * np.ceil(np.abs(v) - 0.5), "round_half_down")}


@dataclass
class QuantAttrs(Attrs):
    signed: int = attr(1, lo=0, hi=1)
    narrow: int = attr(0, lo=0, hi=1)
    rounding_mode: str = attr("ROUND", choices=ROUNDING_MODES)

    @classmethod
    def from_onnx(cls, raw, where, opset):
        """QONNX writes the rounding mode in either case."""
        mode = raw.get("rounding_mode")
        if isinstance(mode, (str, bytes)):
            mode = (mode.decode("utf-8", "replace") if isinstance(mode, bytes) else mode).upper()
            raw = {k: v for k, v in raw.items() if k != "rounding_mode"}
            if mode:  # an empty mode is the default
                raw["rounding_mode"] = mode
        return cls.parse(raw, where)


@dataclass
class TruncAttrs(QuantAttrs):
    rounding_mode: str = attr("FLOOR", choices=ROUNDING_MODES)


def int_range(signed, narrow, bits):
    if signed:
        return -(2.0 ** (bits - 1)) + (1 if narrow else 0), 2.0 ** (bits - 1) - 1
    return 0.0, 2.0 ** bits - 1 - (1 if narrow else 0)


def bit_width(value):
    bits = float(np.asarray(value).reshape(-1)[0])
    if bits < 2 or bits != int(bits):
        raise ValueError(f"Quant: bit width must be an integer >= 2 (1-bit is BipolarQuant), got {bits}")
    return int(bits)


def lower_quant(lw, node, vals, out):
    what = f"{node.op} ({node.name})"
    if any(v.tensor is not None for v in vals[1:4]):
        raise Unsupported(f"{what}: quantizer parameters computed at run time")
    try:
        bits = bit_width(vals[3].static)
    except ValueError as exc:
        raise Unsupported(f"{what}: {exc}") from None
    lo, hi = int_range(node.attrs.signed, node.attrs.narrow, bits)
    scale, zeropt = operand(lw, node, vals, 1), operand(lw, node, vals, 2)
    y = lw.arith("add", lw.arith("div", operand(lw, node, vals, 0), scale), zeropt)
    y = lw.arith("min", lw.arith("max", y, lw.scalar(lo)), lw.scalar(hi))
    y = lw.unary(ROUNDING[node.attrs.rounding_mode][1], y)
    return Val(lw.arith("mul", lw.arith("sub", y, zeropt), scale))


@register("Quant", "IntQuant", attrs=QuantAttrs, inputs=(4, 4), lower=lower_quant)
def quant(inputs, attrs, ctx):
    """QONNX IntQuant: clamp(x / scale + zeropt) to the integer range, round, then rescale."""
    x, scale, zeropt, bits = inputs[:4]
    lo, hi = int_range(attrs.signed, attrs.narrow, bit_width(bits))
    y = x / scale + zeropt
    y = np.clip(y, lo, hi)
    y = ROUNDING[attrs.rounding_mode][0](y)
    return [((y - zeropt) * scale).astype(x.dtype)]


@register("BipolarQuant", inputs=(2, 2))
def bipolar_quant(inputs, attrs, ctx):
    """QONNX BipolarQuant: where(x >= 0, 1, -1) * scale."""
    x, scale = inputs[:2]
    return [(np.where(x >= 0, np.ones((), x.dtype), -np.ones((), x.dtype)) * scale).astype(x.dtype)]


@register("Trunc", attrs=TruncAttrs, inputs=(5, 6))
def trunc(inputs, attrs, ctx):
    """QONNX Trunc (v1: x, scale, zeropt, in_bits, out_bits; v2 adds out_scale before out_bits)."""
    x, scale, zeropt = inputs[:3]
    if len(inputs) >= 6 and inputs[5] is not None:
        out_scale, out_bits = inputs[4], float(np.asarray(inputs[5]).reshape(-1)[0])
    else:
        in_bits, out_bits = float(np.asarray(inputs[3]).reshape(-1)[0]), float(np.asarray(inputs[4]).reshape(-1)[0])
        out_scale = scale * 2.0 ** (in_bits - out_bits)
    y = np.round(x / scale + zeropt)
    trunc_scale = 2.0 ** np.round(np.log2(out_scale / scale))
    y = y / trunc_scale
    lo, hi = int_range(attrs.signed, attrs.narrow, int(out_bits))
    y = np.clip(y, lo, hi)
    y = ROUNDING[attrs.rounding_mode][0](y)
    return [((y - zeropt / trunc_scale) * out_scale).astype(x.dtype)]


@dataclass
class MultiThresholdAttrs(Attrs):
    out_scale: float = 1.0
    out_bias: float = 0.0
    data_layout: str = "NCHW"


@register("MultiThreshold", attrs=MultiThresholdAttrs, inputs=(2, 2))
def multi_threshold(inputs, attrs, ctx):
    """FINN MultiThreshold: per channel, the number of thresholds x reaches (x >= t), then
    out_scale * count + out_bias.  Channels are axis 1 (NCHW) or the last axis (NHWC)."""
    x, thresholds = inputs[:2]
    layout = attrs.data_layout
    axis = x.ndim - 1 if layout in ("NHWC", "NC") and x.ndim > 2 or layout == "NHWC" else 1
    xm = np.moveaxis(x, axis, -1) if x.ndim > 1 else x[..., None]
    t = np.asarray(thresholds)
    count = (xm[..., None] >= t.reshape((1,) * (xm.ndim - 1) + t.shape)).sum(axis=-1).astype(np.float32)
    out = count * np.float32(attrs.out_scale) + np.float32(attrs.out_bias)
    out = np.moveaxis(out, -1, axis) if x.ndim > 1 else out[..., 0]
    return [out.astype(np.float32)]
