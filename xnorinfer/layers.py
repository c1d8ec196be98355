"""Layers of binary networks on numpy arrays.

Binary layers work on packed NHWC activations (channels packed along the last axis, 64 per uint64,
bit 1 = -1) and fuse their output transform into the kernel:

    output="int32"    the accumulator acc = sum of x*w over +-1 values
    output="float32"  acc * scale + bias in float32, optionally clamped (folded BatchNorm, XNOR-Net scales)
    output="packed"   sign(acc * scale + bias) packed straight into the next binary layer's input, with
                      per-channel integer thresholds that reproduce float32 evaluation bit for bit

Float layers (first and last layers, pooling, shortcuts) use numpy and its BLAS.
Validation happens here; the backends only see arrays they can index safely.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Dict, Literal, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

from .conv_geometry import ConvGeometry
from .kernels import as_int, check_words, get_backend, pack, unpack, words_for

__all__ = ["OutputTransform", "OUTPUT_KINDS", "sign_thresholds", "make_transform", "BConv2d", "bconv2d", "bdense",
           "BMaxPool2d", "bmaxpool2d", "pack", "unpack", "pack_nhwc", "unpack_nhwc", "Conv2d", "conv2d", "Dense", "dense", "pad_hw",
           "pool2d_nhwc", "avg_pool2d", "global_avg_pool", "add", "relu", "prelu", "hardtanh"]

_F32 = np.dtype(np.float32)
OUTPUT_KINDS: Dict[str, int] = {"int32": 0, "float32": 1, "packed": 2}

OutputKind = Literal["int32", "float32", "packed"]
_KIND_NAMES: Dict[int, OutputKind] = {0: "int32", 1: "float32", 2: "packed"}
IntOrPair = Union[int, Tuple[int, int], Sequence[int]]
Padding = Union[int, Sequence[int]]       # int, (pad_h, pad_w) or (top, bottom, left, right)
ConvParams = Dict[str, int]               # the fields of xnor_conv_params
PackedArray = npt.NDArray[np.uint64]      # packed +-1 bits, 64 per word along the last axis
FloatArray = npt.NDArray[np.floating[Any]]


# ---- fused output transform -----------------------------------------------------------------------

@dataclass
class OutputTransform:
    kind: int                                          # 0 int32, 1 float32, 2 packed (OUTPUT_KINDS)
    scale: Optional[npt.NDArray[np.float32]] = None    # (C,) or None
    bias: Optional[npt.NDArray[np.float32]] = None     # (C,) or None
    clamp: Tuple[float, float] = (-np.inf, np.inf)
    thresholds: Optional[npt.NDArray[np.int32]] = None  # (C,), packed output
    flip: Optional[npt.NDArray[np.uint8]] = None       # (C,), packed output
    acc_clamp: Optional[Tuple[int, int]] = None        # (lo, hi): float output, clamp the integer accumulator first


def _per_channel(values: Optional[npt.ArrayLike], channels: int, name: str) -> Optional[npt.NDArray[np.float32]]:
    if values is None:
        return None
    arr = np.asarray(values)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if arr.ndim == 0:
        arr = np.full(channels, arr, np.float32)
    if arr.shape != (channels,):
        raise ValueError(f"{name} must be a scalar or have shape ({channels},), got {arr.shape}")
    return np.ascontiguousarray(arr)


def _negative_f32(acc: npt.NDArray[np.integer[Any]], scale: Optional[npt.NDArray[np.float32]],
                  bias: Optional[npt.NDArray[np.float32]]) -> npt.NDArray[np.bool_]:
    """float32 evaluation of acc * scale + bias < 0, exactly as numpy computes it."""
    v = acc.astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):  # 0 * inf and inf - inf are NaN: not negative
        if scale is not None:
            v = v * scale
        if bias is not None:
            v = v + bias
    return v < 0


def sign_thresholds(scale: Optional[npt.NDArray[np.float32]], bias: Optional[npt.NDArray[np.float32]], k: int,
                    channels: Optional[int] = None) -> Tuple[npt.NDArray[np.int32], npt.NDArray[np.uint8]]:
    """Per-channel (thresholds int32, flip uint8) such that, for every integer acc in [-k, k],
    ((acc < thresholds) XOR flip) == (float32(acc) * scale + bias < 0).

    For finite scale != 0 the float32 expression is monotone in acc (each rounding is monotone), so a
    binary search over acc finds the step; a negative scale flips the comparison.  Scale 0 and
    non-finite values are evaluated over the whole range, and must still be a single step.
    """
    if channels is None:
        given = scale if scale is not None else bias
        if given is None:
            raise ValueError("sign_thresholds: give scale, bias or channels")
        channels = len(given)
    s = scale if scale is not None else np.ones(channels, np.float32)
    b = bias if bias is not None else np.zeros(channels, np.float32)
    thresholds = np.empty(channels, np.int64)
    flip = np.zeros(channels, np.uint8)
    regular = np.isfinite(s) & np.isfinite(b) & (s != 0)
    idx = np.flatnonzero(regular)
    if idx.size:
        si, bi = s[idx], b[idx]
        positive = si > 0
        # Find the smallest acc in [-k, k+1] where the predicate turns true: for scale > 0 the predicate
        # is "not negative" (negative for small acc), for scale < 0 it is "negative".
        lo = np.full(idx.size, -k, np.int64)
        hi = np.full(idx.size, k + 1, np.int64)
        while np.any(lo < hi):
            mid = (lo + hi) // 2
            neg = _negative_f32(mid, si, bi)
            pred = np.where(positive, ~neg, neg) | (mid > k)
            hi = np.where(pred, mid, hi)
            lo = np.where(pred, lo, mid + 1)
        thresholds[idx] = lo
        flip[idx] = ~positive
    for c in np.flatnonzero(~regular):
        if k > 1 << 22:
            raise ValueError(f"channel {c}: scale {s[c]} / bias {b[c]} need exhaustive evaluation, "
                             f"too costly for k={k}")
        acc = np.arange(-k, k + 1, dtype=np.int64)
        neg = _negative_f32(acc, s[c:c + 1], b[c:c + 1])
        changes = np.flatnonzero(neg[1:] != neg[:-1])
        if changes.size == 0:
            thresholds[c], flip[c] = (k + 1, 0) if neg[0] else (-k, 0)
        elif changes.size == 1:
            step = int(acc[changes[0] + 1])
            thresholds[c], flip[c] = (step, 0) if neg[0] else (step, 1)
        else:
            raise ValueError(f"channel {c}: sign(acc * {s[c]} + {b[c]}) is not a single step in acc; "
                             "it cannot be packed with a threshold")
    return thresholds.astype(np.int32), flip


def make_transform(output: OutputKind, channels: int, k: int, scale: Optional[npt.ArrayLike] = None,
                   bias: Optional[npt.ArrayLike] = None, clamp: Optional[Tuple[float, float]] = None) -> OutputTransform:
    """The fused output transform of a layer with `channels` outputs summing k values of +-1: nothing
    (int32), acc*scale + bias clamped (float32), or the thresholds of sign(acc*scale + bias) (packed)."""
    if output not in OUTPUT_KINDS:
        raise ValueError(f"output must be one of {sorted(OUTPUT_KINDS)}, got {output!r}")
    if output == "int32":
        if scale is not None or bias is not None or clamp is not None:
            raise ValueError("scale, bias and clamp need output='float32' or output='packed'")
        return OutputTransform(0)
    scale = _per_channel(scale, channels, "scale")
    bias = _per_channel(bias, channels, "bias")
    if output == "float32":
        lo, hi = (-np.inf, np.inf) if clamp is None else clamp
        lo, hi = float(lo), float(hi)
        if not lo <= hi:
            raise ValueError(f"clamp must be (low, high) with low <= high, got {clamp}")
        return OutputTransform(1, scale, bias, (lo, hi))
    if clamp is not None:
        raise ValueError("clamp does not change signs: it is only accepted with output='float32'")
    thresholds, flip = sign_thresholds(scale, bias, k, channels)
    return OutputTransform(2, thresholds=thresholds, flip=flip)


# ---- geometry ---------------------------------------------------------------------------------------

def _pair(value: IntOrPair, name: str) -> Tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair, got {value}")
        a, b = (as_int(v, name, 1) for v in value)
        return a, b
    v = as_int(value, name, 1)
    return v, v


def _padding(padding: Padding) -> Tuple[int, int, int, int]:
    """int, (pad_h, pad_w) or (top, bottom, left, right)."""
    if isinstance(padding, (tuple, list)):
        vals = [as_int(v, "padding", 0) for v in padding]
        if len(vals) == 2:
            return vals[0], vals[0], vals[1], vals[1]
        if len(vals) == 4:
            return vals[0], vals[1], vals[2], vals[3]
        raise ValueError(f"padding must be an int, (pad_h, pad_w) or (top, bottom, left, right), got {padding}")
    p = as_int(padding, "padding", 0)
    return p, p, p, p


def conv_params(x_shape: Sequence[int], channels: int, out_channels: int, kernel: IntOrPair, stride: IntOrPair,
                padding: Padding, dilation: IntOrPair, groups: int, pad_value: int) -> Tuple[ConvParams, Tuple[int, int]]:
    """(xnor_conv_params fields, (out_h, out_w)) of a window over NHWC x_shape, from the layer API's
    arguments (ints or pairs; padding an int, a pair or (top, bottom, left, right)); a ValueError if
    the kernel does not fit the padded input."""
    g = ConvGeometry(tuple(x_shape[1:3]), _pair(kernel, "kernel_size"), _pair(stride, "stride"),
                     _pair(dilation, "dilation"), _padding(padding))
    if not g.fits:
        (kh, kw), (dh, dw), (ph, pw) = g.kernel, g.dilation, g.padded_hw
        raise ValueError(f"kernel {kh}x{kw} (dilation {dh}x{dw}) does not fit the padded input {ph}x{pw}")
    return g.c_params(x_shape[0], channels, out_channels, groups, pad_value), g.out_hw


def _threads(num_threads: Optional[int]) -> int:
    return 0 if num_threads is None else as_int(num_threads, "num_threads", 1)


def _packed_nhwc(x: PackedArray, channels: int, name: str = "x") -> PackedArray:
    x = check_words(x, name)
    if x.ndim != 4:
        raise ValueError(f"{name} must be packed NHWC (batch, height, width, words), got shape {x.shape}")
    if x.shape[3] != words_for(channels):
        raise ValueError(f"{name} has {x.shape[3]} words per pixel but {channels} channels need "
                         f"{words_for(channels)}")
    return x


def _allocate(output: str, lead_shape: Tuple[int, ...], channels: int) -> npt.NDArray[Any]:
    if output == "packed":
        return np.empty(lead_shape + (words_for(channels),), np.uint64)
    return np.empty(lead_shape + (channels,), np.int32 if output == "int32" else np.float32)


# ---- binary layers ----------------------------------------------------------------------------------

def _checked_transform(t: OutputTransform, channels: int) -> OutputTransform:
    """A transform from elsewhere (a model file) must fit the layer: the kernel indexes every array by
    output channel."""
    if t.kind not in (0, 1, 2):
        raise ValueError(f"output transform kind {t.kind!r} is not 0, 1 or 2")
    arrays: Dict[str, Tuple[Optional[npt.NDArray[Any]], type]] = {
        "scale": (t.scale, np.float32), "bias": (t.bias, np.float32), "thresholds": (t.thresholds, np.int32),
        "flip": (t.flip, np.uint8)}
    fixed: Dict[str, Optional[npt.NDArray[Any]]] = {}
    for name, (arr, dtype) in arrays.items():
        if arr is None:
            fixed[name] = None
            continue
        arr = np.ascontiguousarray(arr, dtype=dtype)
        if arr.shape != (channels,):
            raise ValueError(f"output transform {name} has shape {arr.shape}, the layer has {channels} channels")
        fixed[name] = arr
    if t.kind == 2 and fixed["thresholds"] is None:
        raise ValueError("packed output needs thresholds")
    lo, hi = (float(v) for v in t.clamp)
    acc_clamp = None
    if t.acc_clamp is not None:
        acc_lo, acc_hi = (int(np.clip(v, -2**31, 2**31 - 1)) for v in t.acc_clamp)
        acc_clamp = (acc_lo, acc_hi)
        if acc_lo > acc_hi:
            raise ValueError(f"accumulator clamp {acc_clamp} is empty")
    return OutputTransform(t.kind, fixed["scale"], fixed["bias"], (lo, hi), fixed["thresholds"], fixed["flip"],
                           acc_clamp)


class BConv2d:
    """A binary 2-D convolution with its weights validated and its output transform (thresholds for
    packed output) computed once; calling it runs the kernel.  See bconv2d for the arguments."""

    def __init__(self, w: PackedArray, in_channels: int, *, stride: IntOrPair = 1, padding: Padding = 0,
                 dilation: IntOrPair = 1, groups: int = 1, pad_value: int = 0, scale: Optional[npt.ArrayLike] = None,
                 bias: Optional[npt.ArrayLike] = None, clamp: Optional[Tuple[float, float]] = None,
                 output: OutputKind = "int32", transform: Optional[OutputTransform] = None) -> None:
        self.in_channels = as_int(in_channels, "in_channels", 1)
        self.groups = as_int(groups, "groups", 1)
        if pad_value not in (0, 1):
            raise ValueError(f"pad_value must be 0 or 1, got {pad_value!r}")
        w = check_words(w, "w")
        if w.ndim != 4:
            raise ValueError(f"w must be packed OHWI (out, kh, kw, words), got shape {w.shape}")
        self.out_channels = w.shape[0]
        if self.out_channels == 0:
            raise ValueError("w has no output channels")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"in_channels={self.in_channels} and out_channels={self.out_channels} must be "
                             f"divisible by groups={self.groups}")
        cg = self.in_channels // self.groups
        if w.shape[3] != words_for(cg):
            raise ValueError(f"w has {w.shape[3]} words per tap but in_channels/groups = {cg} needs {words_for(cg)}")
        self.w, self.kernel_size = w, w.shape[1:3]
        self.stride, self.dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
        self.padding, self.pad_value, self.output = _padding(padding), pad_value, output
        self.k = w.shape[1] * w.shape[2] * cg
        if transform is not None:  # a transform made elsewhere (e.g. thresholds from a model's own ops)
            self.output = _KIND_NAMES[transform.kind]
            self.transform = _checked_transform(transform, self.out_channels)
        else:
            self.transform = make_transform(output, self.out_channels, self.k, scale, bias, clamp)
        self._prepared: Dict[Any, Any] = {}  # weights laid out for a backend / ISA path, made on first use
        # (backend layout, input shape) -> (kernel call, output shape, dtype)
        self._plans: Dict[Any, Tuple[Callable[..., None], Tuple[int, ...], np.dtype[Any]]] = {}
        self._out_shapes: Dict[Tuple[int, ...], Tuple[int, int, int, int]] = {}

    def _weights_for(self, backend: Any, geometry: ConvParams) -> Any:
        key = backend.layout_key()
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = self._prepared[key] = backend.prepare_bconv(self.w, geometry)
        return prepared

    def output_shape(self, x_shape: Sequence[int]) -> Tuple[int, int, int, int]:
        """The output's shape (N, OH, OW, channels or their words) for packed NHWC input of x_shape."""
        key = tuple(x_shape[:3])
        if key not in self._out_shapes:
            _, (oh, ow) = self.conv_params(x_shape)
            self._out_shapes[key] = (key[0], oh, ow, words_for(self.out_channels) if self.output == "packed" else
                                     self.out_channels)
        return self._out_shapes[key]

    def conv_params(self, x_shape: Sequence[int]) -> Tuple[ConvParams, Tuple[int, int]]:
        """(xnor_conv_params fields, (out_h, out_w)) for packed NHWC input of x_shape."""
        return conv_params(x_shape, self.in_channels, self.out_channels, self.kernel_size, self.stride,
                           self.padding, self.dilation, self.groups, self.pad_value)

    def _plan(self, backend: Any, shape: Tuple[int, ...]) -> Tuple[Callable[..., None], Tuple[int, ...], np.dtype[Any]]:
        key = (backend.layout_key(), shape)
        plan = self._plans.get(key)
        if plan is None:
            geometry, (oh, ow) = self.conv_params(shape)
            probe = _allocate(self.output, (shape[0], oh, ow), self.out_channels)
            run = backend.bconv_plan(self._weights_for(backend, geometry), geometry, self.transform)
            plan = self._plans[key] = (run, probe.shape, probe.dtype)
        return plan

    def __call__(self, x: PackedArray, num_threads: Optional[int] = None,
                 residual: Optional[npt.ArrayLike] = None) -> npt.NDArray[Any]:
        """residual (float32 output only): an array of the output's shape added to every output value
        before the clamp, in the same pass (a shortcut connection; see xnor_bconv2d_prepared_add)."""
        x = _packed_nhwc(x, self.in_channels)
        backend = get_backend()
        run, out_shape, out_dtype = self._plan(backend, x.shape)
        out = np.empty(out_shape, out_dtype)
        if residual is not None:
            if self.output != "float32":
                raise ValueError("a residual needs output='float32'")
            residual = np.ascontiguousarray(residual, np.float32)
            if residual.shape != out_shape:
                raise ValueError(f"residual has shape {residual.shape}, the output {out_shape}")
        if out.size:
            threads = 0 if num_threads is None else _threads(num_threads)
            run(x, out, threads) if residual is None else run(x, out, threads, residual)
        return out


def bconv2d(x: PackedArray, w: PackedArray, in_channels: int, *, stride: IntOrPair = 1, padding: Padding = 0,
            dilation: IntOrPair = 1, groups: int = 1, pad_value: int = 0, scale: Optional[npt.ArrayLike] = None,
            bias: Optional[npt.ArrayLike] = None, clamp: Optional[Tuple[float, float]] = None,
            output: OutputKind = "int32", num_threads: Optional[int] = None) -> npt.NDArray[Any]:
    """Binary 2-D convolution on packed NHWC activations.

    x = pack(x_nhwc): (N, H, W, ceil(in_channels/64)) uint64; w = pack(w_ohwi): (O, KH, KW,
    ceil(in_channels/groups/64)) uint64.  pad_value=0: padded taps contribute 0 (Conv after Sign on a
    zero-padded input); pad_value=1: the padded input is +1 (Larq's pad_values=1).  padding is an int,
    (pad_h, pad_w) or (top, bottom, left, right).  Returns NHWC: int32 or float32 (N, OH, OW, O), or
    packed uint64 (N, OH, OW, ceil(O/64)); see the module docstring for scale/bias/clamp/output.
    For repeated calls with the same weights, build a BConv2d once.
    """
    layer = BConv2d(w, in_channels, stride=stride, padding=padding, dilation=dilation, groups=groups,
                    pad_value=pad_value, scale=scale, bias=bias, clamp=clamp, output=output)
    return layer(x, num_threads)


def bdense(x: PackedArray, w: PackedArray, k: int, *, scale: Optional[npt.ArrayLike] = None,
           bias: Optional[npt.ArrayLike] = None, clamp: Optional[Tuple[float, float]] = None,
           output: OutputKind = "int32", num_threads: Optional[int] = None,
           transform: Optional[OutputTransform] = None) -> npt.NDArray[Any]:
    """Binary fully connected layer: x packed (batch, ceil(k/64)), w packed (out_features, ceil(k/64)).
    Returns (batch, out_features) int32/float32, or packed (batch, ceil(out_features/64))."""
    k = as_int(k, "k", 1)
    x, w = check_words(x, "x"), check_words(w, "w")
    if x.ndim != 2 or w.ndim != 2:
        raise ValueError(f"x and w must be 2-D packed rows, got shapes {x.shape} and {w.shape}")
    if x.shape[1] != words_for(k) or w.shape[1] != words_for(k):
        raise ValueError(f"k={k} needs {words_for(k)} words per row, got {x.shape[1]} (x) and {w.shape[1]} (w)")
    if w.shape[0] == 0:
        raise ValueError("w has no output features")
    layer = BConv2d(w.reshape(w.shape[0], 1, 1, w.shape[1]), k, scale=scale, bias=bias, clamp=clamp,
                    output=output, transform=transform)
    return layer(x.reshape(x.shape[0], 1, 1, x.shape[1]), num_threads).reshape(x.shape[0], -1)


class BMaxPool2d:
    """Max-pooling on packed NHWC bits, its geometry worked out once per input shape; see bmaxpool2d."""

    def __init__(self, channels: int, kernel_size: IntOrPair, *, stride: Optional[IntOrPair] = None,
                 padding: Padding = 0, dilation: IntOrPair = 1) -> None:
        self.channels = as_int(channels, "channels", 1)
        self.kernel_size, self.stride = kernel_size, kernel_size if stride is None else stride
        self.padding, self.dilation = padding, dilation
        self._geometries: Dict[Tuple[int, ...], Tuple[ConvParams, Tuple[int, int]]] = {}

    def __call__(self, x: PackedArray, num_threads: Optional[int] = None) -> PackedArray:
        x = _packed_nhwc(x, self.channels)
        if x.shape not in self._geometries:
            self._geometries[x.shape] = conv_params(x.shape, self.channels, self.channels, self.kernel_size, self.stride,
                                                    self.padding, self.dilation, 1, 0)
        geometry, (oh, ow) = self._geometries[x.shape]
        out = np.empty((x.shape[0], oh, ow, x.shape[3]), np.uint64)
        if out.size:
            get_backend().bmaxpool2d(x, geometry, out, _threads(num_threads))
        return out


def bmaxpool2d(x: PackedArray, channels: int, kernel_size: IntOrPair, *, stride: Optional[IntOrPair] = None,
               padding: Padding = 0, dilation: IntOrPair = 1, num_threads: Optional[int] = None) -> PackedArray:
    """Max-pooling on packed NHWC bits: +1 unless every tap is -1 (a bitwise AND); padded taps are
    ignored.  Returns packed (N, OH, OW, ceil(channels/64))."""
    return BMaxPool2d(channels, kernel_size, stride=stride, padding=padding, dilation=dilation)(x, num_threads)


# ---- conversions ------------------------------------------------------------------------------------

def pack_nhwc(x: npt.ArrayLike) -> PackedArray:
    """Float NHWC activations -> packed NHWC (channels along the last axis)."""
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"expected NHWC (4-D), got shape {x.shape}")
    return pack(x)


def unpack_nhwc(x: PackedArray, channels: int, dtype: npt.DTypeLike = np.float32) -> npt.NDArray[Any]:
    """Packed NHWC -> +-1 NHWC in `dtype`."""
    return unpack(x, as_int(channels, "channels", 1), dtype)


# ---- float layers (numpy / BLAS) --------------------------------------------------------------------

def _float_nhwc(x: npt.ArrayLike, name: str = "x") -> FloatArray:
    x = np.asarray(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{name} must be a float array, got dtype {x.dtype}")
    if x.ndim != 4:
        raise ValueError(f"{name} must be NHWC (4-D), got shape {x.shape}")
    return x


def _direct_conv_weights(w: FloatArray, groups: int) -> npt.NDArray[np.float32]:
    """OHWI weights as the C float conv wants them: HWIO (groups 1) or (kh, kw, c) (depthwise)."""
    if groups == 1:
        return np.ascontiguousarray(w.transpose(1, 2, 3, 0), np.float32)
    return np.ascontiguousarray(w[..., 0].transpose(1, 2, 0), np.float32)


class Conv2d:
    """A float 2-D convolution with its weights prepared once: NHWC input, OHWI weights, zero padding.

    Float32 convs with groups 1 or depthwise (one output per input channel) run as direct convolutions
    in C on the library's thread pool -- never through BLAS, whose own worker threads keep spinning on
    the cores the binary kernels are about to use.  Anything else (other dtypes, grouped convs, the
    Numba backend) runs as im2col (one strided copy) and one matrix product per group through BLAS."""

    def __init__(self, w: npt.ArrayLike, bias: Optional[npt.ArrayLike] = None, *, stride: IntOrPair = 1,
                 padding: Padding = 0, dilation: IntOrPair = 1, groups: int = 1) -> None:
        w = np.asarray(w)
        if w.ndim != 4:
            raise ValueError(f"w must be OHWI (4-D), got shape {w.shape}")
        self.w, self.groups = w, as_int(groups, "groups", 1)
        self.stride, self.padding, self.dilation = stride, padding, dilation
        o, _, _, cg = w.shape
        self.bias = None if bias is None else np.asarray(bias)
        depthwise = self.groups > 1 and cg == 1 and o == self.groups
        # float32 groups-1 or depthwise convs run in C: HWIO / (kh, kw, c) weights and a float32 bias
        self.direct_weights, self.direct_bias = None, None
        if w.dtype == _F32 and (self.groups == 1 or depthwise) and \
                (self.bias is None or self.bias.dtype.kind == "f") and hasattr(get_backend(), "conv2d_f32"):
            self.direct_weights = _direct_conv_weights(w, self.groups)
            self.direct_bias = None if bias is None else _per_channel(bias, o, "bias")
        # Winograd-prepared weights, made on the first call whose geometry uses them (they depend on the
        # kernel, strides and channels, not on the input size); shared with with_padding's copies.
        self._prepared: Dict[Tuple[Any, bool], Optional[npt.NDArray[np.float32]]] = {}
        self._geometries: Dict[Tuple[int, ...], Tuple[ConvParams, Tuple[int, int]]] = {}  # input shape -> conv_params

    @property
    def uses_blas(self) -> bool:
        """Whether calls run through numpy's BLAS (not the C library's direct conv)."""
        return self.direct_weights is None

    def conv_params(self, x_shape: Sequence[int]) -> Tuple[ConvParams, Tuple[int, int]]:
        """(xnor_conv_params fields, (out_h, out_w)) for NHWC input of x_shape."""
        o, kh, kw, _ = self.w.shape
        return conv_params(x_shape, x_shape[3], o, (kh, kw), self.stride, self.padding, self.dilation, self.groups, 0)

    def with_padding(self, padding: Padding) -> Conv2d:
        """The same layer (prepared weights shared) with other padding: auto_pad depends on the input size."""
        other = copy.copy(self)
        other.padding, other._geometries = padding, {}
        return other

    def __call__(self, x: npt.ArrayLike, num_threads: Optional[int] = None) -> FloatArray:
        x = _float_nhwc(x)
        w, groups = self.w, self.groups
        n, h, wd, c = x.shape
        o, kh, kw, cg = w.shape
        if c % groups or o % groups or cg != c // groups:
            raise ValueError(f"input channels {c}, weight shape {w.shape} and groups={groups} do not match")
        if x.shape not in self._geometries:
            self._geometries[x.shape] = self.conv_params(x.shape)
        geometry, (oh, ow) = self._geometries[x.shape]
        if self.direct_weights is not None and x.dtype == _F32:
            out = np.empty((n, oh, ow, o), np.float32)
            backend = get_backend()
            prepared = None
            if hasattr(backend, "conv2d_f32_prepare"):
                # Whether Winograd takes this layer depends on the ISA path and, for a given layer, only on
                # whether the output is at least 8x8: one answer (prepared weights or None) per pair, so a
                # layer it never takes asks C once, not on every call.
                key = (backend.isa(), oh >= 8 and ow >= 8)
                if key not in self._prepared:
                    self._prepared[key] = backend.conv2d_f32_prepare(self.direct_weights, geometry)
                prepared = self._prepared[key]
            backend.conv2d_f32(np.ascontiguousarray(x), self.direct_weights, self.direct_bias, geometry, out,
                               _threads(num_threads), prepared=prepared)
            return out
        return _conv2d_blas(x, w, self.bias, geometry, oh, ow)


def conv2d(x: npt.ArrayLike, w: npt.ArrayLike, bias: Optional[npt.ArrayLike] = None, *, stride: IntOrPair = 1,
           padding: Padding = 0, dilation: IntOrPair = 1, groups: int = 1, num_threads: Optional[int] = None) -> FloatArray:
    """Float 2-D convolution, NHWC input and OHWI weights (zero padding); see Conv2d, which prepares the
    weights once for repeated calls."""
    return Conv2d(w, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)(x, num_threads)


def _conv2d_blas(x: FloatArray, w: npt.NDArray[Any], bias: Optional[npt.ArrayLike], geometry: ConvParams, oh: int,
                 ow: int) -> FloatArray:
    n, h, wd, c = x.shape
    o, kh, kw, cg = w.shape
    groups = geometry["groups"]
    top, bottom, left, right = (geometry[k] for k in ("pad_top", "pad_bottom", "pad_left", "pad_right"))
    sh, sw, dh, dw = (geometry[k] for k in ("stride_h", "stride_w", "dilation_h", "dilation_w"))
    dtype = np.result_type(x.dtype, w.dtype)
    xp = x.astype(dtype, copy=False)
    if top or bottom or left or right:
        xp = pad_hw(xp, top, bottom, left, right)
    # (n, oh, ow, kh, kw, c) view of every receptive field, copied once into contiguous rows
    s = xp.strides
    view = np.lib.stride_tricks.as_strided(
        xp, (n, oh, ow, kh, kw, c), (s[0], s[1] * sh, s[2] * sw, s[1] * dh, s[2] * dw, s[3]), writeable=False)
    og = o // groups
    if groups == c and cg == 1 and groups > 1:  # depthwise: a weighted sum of shifted views, no per-group products
        out = np.zeros((n, oh, ow, o), dtype)
        wd = w.reshape(c, og, kh, kw).astype(dtype, copy=False)
        for ky in range(kh):
            for kx in range(kw):
                tap = view[:, :, :, ky, kx, :]
                if og == 1:
                    out += tap * wd[:, 0, ky, kx]
                else:
                    out += (tap[..., :, None] * wd[:, :, ky, kx]).reshape(n, oh, ow, o)
    elif groups == 1:
        patches = np.ascontiguousarray(view).reshape(n * oh * ow, kh * kw * c)
        out = (patches @ w.reshape(o, -1).astype(dtype, copy=False).T).reshape(n, oh, ow, o)
    else:
        out = np.empty((n, oh, ow, o), dtype)
        for g in range(groups):
            patch = np.ascontiguousarray(view[..., g * cg:(g + 1) * cg]).reshape(n * oh * ow, kh * kw * cg)
            out[..., g * og:(g + 1) * og] = (patch @ w[g * og:(g + 1) * og].reshape(og, -1).astype(dtype).T
                                             ).reshape(n, oh, ow, og)
    if bias is not None:
        out += np.asarray(bias, dtype)
    return out


def pad_hw(x: npt.NDArray[Any], top: int, bottom: int, left: int, right: int, value: float = 0) -> npt.NDArray[Any]:
    """Pad the H and W axes of an NHWC array (np.pad costs ~25 us even for tiny arrays)."""
    n, h, w, c = x.shape
    out = np.full((n, h + top + bottom, w + left + right, c), value, x.dtype)
    out[:, top:top + h, left:left + w, :] = x
    return out


def dense(x: npt.ArrayLike, w: npt.ArrayLike, bias: Optional[npt.ArrayLike] = None, *,
          num_threads: Optional[int] = None) -> FloatArray:
    """Float fully connected layer: x (batch, k) @ w(out, k).T + bias (see Dense)."""
    return Dense(w, bias)(x, num_threads)


class Dense:
    """A float fully connected layer with its weights prepared once: float32 runs as a 1x1 direct
    convolution in C (no BLAS, see Conv2d), anything else through numpy."""

    def __init__(self, w: npt.ArrayLike, bias: Optional[npt.ArrayLike] = None) -> None:
        w = np.asarray(w)
        if w.ndim != 2:
            raise ValueError(f"w must be (out, k), got shape {w.shape}")
        self.w, self.bias = w, bias
        self.conv = Conv2d(w[:, None, None, :], bias) if w.dtype == _F32 else None  # the layer as a 1x1 conv

    @property
    def uses_blas(self) -> bool:
        """Whether calls run through numpy's BLAS (not the C library's direct conv)."""
        return self.conv is None or self.conv.uses_blas

    def __call__(self, x: npt.ArrayLike, num_threads: Optional[int] = None) -> FloatArray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.w.shape[1]:
            raise ValueError(f"x must be (batch, {self.w.shape[1]}), got shape {x.shape}")
        if self.conv is not None and x.dtype == _F32 and not self.conv.uses_blas:
            return self.conv(x[:, None, None, :], num_threads).reshape(x.shape[0], -1)
        y = x @ self.w.T
        return y + self.bias if self.bias is not None else y


def pool2d_nhwc(x: npt.ArrayLike, kind: Literal["max", "avg", "avg_include_pad"], kernel_size: IntOrPair, *,
                stride: Optional[IntOrPair] = None, padding: Padding = 0, dilation: IntOrPair = 1,
                num_threads: Optional[int] = None) -> Optional[npt.NDArray[np.float32]]:
    """Max or average pooling of NHWC float32 in C; None when the C library is not there (callers then
    use numpy).  kind: "max" (padded taps ignored), "avg" (mean of the taps inside the input),
    "avg_include_pad"."""
    backend = get_backend()
    x = _float_nhwc(x)
    if not hasattr(backend, "pool2d_f32") or x.dtype != _F32:
        return None
    geometry, (oh, ow) = conv_params(x.shape, x.shape[3], x.shape[3], kernel_size,
                                   kernel_size if stride is None else stride, padding, dilation, 1, 0)
    out = np.empty((x.shape[0], oh, ow, x.shape[3]), np.float32)
    backend.pool2d_f32(np.ascontiguousarray(x), geometry, kind, out, _threads(num_threads))
    return out


def avg_pool2d(x: npt.ArrayLike, kernel_size: IntOrPair, *, stride: Optional[IntOrPair] = None, padding: Padding = 0,
               count_include_pad: bool = False, num_threads: Optional[int] = None) -> FloatArray:
    """Average pooling over NHWC float input (padded taps excluded from the count unless asked)."""
    out = pool2d_nhwc(x, "avg_include_pad" if count_include_pad else "avg", kernel_size, stride=stride,
                      padding=padding, num_threads=num_threads)
    if out is not None:
        return out
    x = _float_nhwc(x)
    kh, kw = _pair(kernel_size, "kernel_size")
    geometry, (oh, ow) = conv_params(x.shape, x.shape[3], x.shape[3], (kh, kw),
                                   (kh, kw) if stride is None else stride, padding, 1, 1, 0)
    top, bottom, left, right = (geometry[k] for k in ("pad_top", "pad_bottom", "pad_left", "pad_right"))
    sh, sw = geometry["stride_h"], geometry["stride_w"]
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    ones = np.pad(np.ones(x.shape[1:3], x.dtype), ((top, bottom), (left, right)))
    total = np.zeros((x.shape[0], oh, ow, x.shape[3]), x.dtype)
    count = np.zeros((oh, ow), x.dtype)
    for ky in range(kh):
        for kx in range(kw):
            total += xp[:, ky: ky + sh * (oh - 1) + 1: sh, kx: kx + sw * (ow - 1) + 1: sw, :]
            count += ones[ky: ky + sh * (oh - 1) + 1: sh, kx: kx + sw * (ow - 1) + 1: sw]
    if count_include_pad:
        count = np.full_like(count, kh * kw)
    return total / count[None, :, :, None]


def global_avg_pool(x: npt.ArrayLike) -> FloatArray:
    """NHWC -> (N, C) mean over height and width."""
    return _float_nhwc(x).mean(axis=(1, 2))


def add(a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[Any]:
    """Residual shortcut (Bi-Real Net, QuickNet)."""
    return np.add(a, b)


def relu(x: npt.ArrayLike) -> npt.NDArray[Any]:
    """max(x, 0)."""
    return np.maximum(x, 0)


def prelu(x: npt.ArrayLike, slope: npt.ArrayLike) -> npt.NDArray[Any]:
    """PReLU with a per-channel (last axis) or scalar slope."""
    x = np.asarray(x)
    return np.where(x < 0, x * np.asarray(slope, x.dtype), x)


def hardtanh(x: npt.ArrayLike, min_val: float = -1.0, max_val: float = 1.0) -> npt.NDArray[Any]:
    """x clipped to [min_val, max_val]."""
    return np.clip(x, min_val, max_val)
