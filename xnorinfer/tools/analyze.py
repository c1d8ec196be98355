"""`xnorinfer analyze`: how well a model's binarization preserves geometry, layer by layer.

For every Conv/Gemm/MatMul of the model — the binary layers, and the float ones (first and last) to
show what binarizing them would cost:
  - weights: the angle between each output unit's latent float weight vector and its sign, against the
    Gaussian theory for its dimension d (geometry.py), and the angle the best ternary version reaches;
  - with data: the angle between each pre-binarization activation vector (a receptive field of the
    tensor the layer's sign reads) and its sign, and the correlation between continuous dot products
    w.a and binarized ones sign(w).sign(a) over the data (Anderson & Berg's central measurement).
Latent weights come from the model when it binarizes them in the graph (Sign/BipolarQuant/Where on a
float initializer), or from --weights (an .npz of latent tensors named like the initializers).
"""
from __future__ import annotations

import json
import math
import os
from typing import Any, List, Mapping, Optional, TypedDict, Union, cast

import numpy as np
import numpy.typing as npt

from .. import executor
from ..errors import import_optional
from ..importers.onnx import import_onnx
from ..ir import Graph, Node, NoAttrs
from ..passes import fold_constants, pipeline
from ..passes.binarize import per_channel_scale
from ..passes.layout import cancel_transposes
from ..operators.nn import ConvAttrs, GemmAttrs
from . import angles as geometry

MAX_UNITS, MAX_VECTORS = 256, 2000  # samples per layer: enough for stable means, cheap on 2 cores


# ---- the report (analyze's return value; to_json writes it as it is) ------------------------------

class AngleSummary(TypedDict):
    """Mean and standard deviation of a set of angles, in degrees."""
    mean: float
    std: float


class LayerTheory(TypedDict):
    """The Gaussian expectation for a layer's dimension d: angle(x, sign x) for x ~ N(0, I_d)."""
    limit_deg: float     # as d grows: arccos(sqrt(2/pi)) = 37.0
    expected_deg: float  # for this d
    spread_deg: float    # its standard deviation


class _LayerReportRequired(TypedDict):
    layer: str           # the node's name
    op: str              # Conv, Gemm or MatMul
    binary: bool         # runs on the binary kernels
    first: bool          # the model's first such layer
    d: int               # the length of one unit's weight vector
    units: int           # output units (weight rows)
    weights_source: str  # which weights the angles are of
    theory: LayerTheory


class LayerReport(_LayerReportRequired, total=False):
    """One Conv / Gemm / MatMul; the weight keys are there when float or latent weights are known, the
    activation keys when data was given, `warning` when a first layer is binarized."""
    weight_angle: Optional[AngleSummary]            # angle between each unit's weights and their sign
    weight_angle_ternary: Optional[AngleSummary]    # ... and their best ternary version
    weight_angles_deg: List[float]                  # every sampled unit's angle
    activation_angle: Optional[AngleSummary]        # pre-binarization activation vectors and their sign
    activation_angle_ternary: Optional[AngleSummary]
    activation_source: str                          # the tensor those vectors were read from
    dot_product_correlation: float                  # corr(w.a, sign(w).sign(a)); NaN if either is constant
    warning: str


class ReportTheory(TypedDict):
    binary_limit_deg: float        # arccos(sqrt(2/pi)) in degrees
    ternary_gaussian_deg: float    # the best ternary quantizer's angle for Gaussian x, large d
    ternary_threshold_sigma: float  # ... and its threshold, in standard deviations


class Report(TypedDict):
    layers: List[LayerReport]
    theory: ReportTheory


ModelSource = Union[str, "os.PathLike[str]", bytes]


_BINARIZERS = {"Sign", "BipolarQuant"}
_COMPARES = {"GreaterOrEqual", "Greater", "Less", "LessOrEqual"}


def _latent_graph(graph: Graph) -> Graph:
    """The graph with every binarization of a constant (Sign(W), BipolarQuant(W, s),
    Where(W >= 0, 1, -1)) replaced by W itself, so constant folding yields each layer's latent weights
    in the layer's own layout (XNOR-Net's positive per-channel scales multiply them, which leaves angles
    unchanged)."""
    g = graph.copy()
    producers = g.producers()
    constant_derived = set(g.constants)
    for node in g.nodes:
        if node.inputs and all(not i or i in constant_derived for i in node.inputs):
            constant_derived.update(node.outputs)

    def tensor_input(node: Node) -> Optional[str]:
        big = [i for i in node.inputs if i in constant_derived and (i not in g.constants or np.size(g.constants[i]) > 1)]
        return big[0] if len(big) == 1 else None

    for node in g.nodes:
        if not node.outputs or node.outputs[0] not in constant_derived:
            continue
        source = None
        if node.op in _BINARIZERS:
            source = node.inputs[0]
        elif node.op == "Where" and node.inputs[0] in producers and producers[node.inputs[0]].op in _COMPARES:
            source = tensor_input(producers[node.inputs[0]])
        if source is not None and (source not in g.constants or np.size(g.constants[source]) > 1):
            node.op, node.inputs, node.attrs = "Identity", [source], NoAttrs()
    return fold_constants(g)


def _unit_rows(node: Node, w: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Weights as (output units, d)."""
    if node.op == "Conv":
        return w.reshape(w.shape[0], -1)
    if node.op == "Gemm" and cast(GemmAttrs, node.attrs).transB:
        return w.reshape(w.shape[0], -1)
    return w.reshape(w.shape[0], -1).T


def _vectors(node: Node, x: npt.NDArray[Any], w_shape: tuple[int, ...]) -> Optional[npt.NDArray[Any]]:
    """Activation vectors a layer multiplies: receptive fields (conv) or rows (dense)."""
    if node.op != "Conv":
        return x.reshape(x.shape[0], -1) if x.ndim != 2 else x
    if x.ndim != 4:
        return None
    kernel = w_shape[2:]
    attrs = cast(ConvAttrs, node.attrs)
    g = attrs.window(x.shape[2:], kernel)
    top, bottom, left, right = g.pads
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    n, c = xp.shape[:2]
    (oh, ow), strides, dilations = g.out_hw, g.stride, g.dilation
    groups = attrs.group
    cols = []
    for ky in range(kernel[0]):
        for kx in range(kernel[1]):
            cols.append(xp[:, :c // groups, ky * dilations[0]: ky * dilations[0] + strides[0] * (oh - 1) + 1: strides[0],
                           kx * dilations[1]: kx * dilations[1] + strides[1] * (ow - 1) + 1: strides[1]])
    patches = np.stack(cols, axis=-1)  # (n, c, oh, ow, taps): same order as w.reshape(o, c*kh*kw)
    return patches.transpose(0, 2, 3, 1, 4).reshape(n * oh * ow, -1)


def _summary(angles: npt.NDArray[np.floating[Any]]) -> Optional[AngleSummary]:
    return {"mean": float(np.mean(angles)), "std": float(np.std(angles))} if len(angles) else None


def analyze(model: ModelSource, data: Union[npt.ArrayLike, Mapping[str, npt.ArrayLike], None] = None,
            weights: Optional[Mapping[str, npt.ArrayLike]] = None, seed: int = 0) -> Report:
    """Per-layer geometry report (a dict, JSON-serialisable: Report) for an ONNX model (path or bytes).
    data: a mapping input name -> array (an opened .npz is one), or one array for a single-input model;
    weights: initializer name -> latent float tensor."""
    rng = np.random.default_rng(seed)
    raw = import_onnx(model)
    folded = pipeline.prepare(raw)
    with_latent = raw.copy()
    for name, value in (weights or {}).items():  # latent weights replace the model's (binary) ones
        if name not in raw.constants:
            raise ValueError(f"--weights: the model has no initializer {name!r}")
        value = np.asarray(value, np.float32)
        if value.shape != raw.constants[name].shape:
            raise ValueError(f"--weights: {name!r} has shape {value.shape}, the model's has {raw.constants[name].shape}")
        with_latent.constants[name] = value
    latent = _latent_graph(cancel_transposes(with_latent))
    planned = pipeline.binarize_layers(folded, fuse=False)
    binary_layers = {n.name: n for n in planned.nodes if n.op in ("XBConv", "XBDense")}
    sources = {}  # binary layer -> the float tensor its input sign reads (and whether it is flattened)
    packs = {n.outputs[0]: n for n in planned.nodes if n.op == "XPack"}
    for name, n in binary_layers.items():
        p = packs.get(n.inputs[0])
        if p is not None:
            sources[name] = p.inputs[0]
    env = None
    if data is not None:
        if isinstance(data, Mapping):  # an opened .npz is one too
            named: Mapping[str, npt.ArrayLike] = {k: data[k] for k in data}
        else:
            if len(folded.inputs) != 1:
                raise ValueError("the model has several inputs: give --data as an .npz with one array per input")
            named = {folded.inputs[0].name: data}
        feeds = {k: np.asarray(v, dtype=np.float32) for k, v in named.items()}
        env = executor.run_steps(executor.build(folded), folded.constants, feeds)
    layers: List[LayerReport] = []
    first = True
    for node in folded.nodes:
        if node.op not in ("Conv", "Gemm", "MatMul") or len(node.inputs) < 2 or node.inputs[1] not in folded.constants:
            continue
        w_used = folded.constants[node.inputs[1]]
        is_binary = node.name in binary_layers
        w_latent = latent.constants.get(node.inputs[1])
        has_latent = (w_latent is not None and w_latent.shape == w_used.shape and
                      per_channel_scale(_unit_rows(node, w_latent), 0) is None)
        rows = _unit_rows(node, w_latent if has_latent and w_latent is not None else w_used).astype(np.float64)
        units = rows.shape[0]
        if rows.shape[0] > MAX_UNITS:
            rows = rows[rng.choice(rows.shape[0], MAX_UNITS, replace=False)]
        d = rows.shape[1]
        theory_mean, theory_sd = geometry.expected_angle_deg(d)
        entry: LayerReport = {"layer": node.name, "op": node.op, "binary": is_binary, "first": first, "d": d, "units": units,
                 "weights_source": "latent float weights" if has_latent else (
                     "float weights" if not is_binary else "binary weights only (latent weights not in the model)"),
                 "theory": {"limit_deg": geometry.LIMIT_DEG, "expected_deg": theory_mean, "spread_deg": theory_sd}}
        if has_latent or not is_binary:
            entry["weight_angle"] = _summary(geometry.binary_angles_deg(rows))
            entry["weight_angle_ternary"] = _summary(geometry.ternary_angles_deg(rows))
            entry["weight_angles_deg"] = [float(v) for v in geometry.binary_angles_deg(rows)]
        if env is not None:
            source = sources.get(node.name, node.inputs[0])
            x = env.get(source)
            vectors = _vectors(node, np.asarray(x, np.float64), w_used.shape) if x is not None else None
            if vectors is not None and vectors.shape[1] == d:
                if vectors.shape[0] > MAX_VECTORS:
                    vectors = vectors[rng.choice(vectors.shape[0], MAX_VECTORS, replace=False)]
                entry["activation_angle"] = _summary(geometry.binary_angles_deg(vectors))
                entry["activation_angle_ternary"] = _summary(geometry.ternary_angles_deg(vectors[:500]))
                entry["activation_source"] = source
                entry["dot_product_correlation"] = geometry.dot_product_correlation(rows[:64], vectors[:500])
        if first and is_binary:
            entry["warning"] = ("the first layer is binarized: its inputs (pixels) have correlated dimensions, "
                                "so binarization loses more here than the geometry of later layers suggests")
        layers.append(entry)
        first = False
    t, ternary = geometry.gaussian_ternary_optimum()
    return {"layers": layers, "theory": {"binary_limit_deg": geometry.LIMIT_DEG,
                                         "ternary_gaussian_deg": ternary, "ternary_threshold_sigma": t}}


def _fmt(s: Optional[AngleSummary]) -> str:
    return f"{s['mean']:5.1f} ±{s['std']:4.1f}" if s else "    -     "


def format_report(report: Report) -> str:
    """The report as the table `xnorinfer analyze` prints."""
    lines = [f"{'layer':<24} {'kind':<7} {'d':>6} {'weights angle':>14} {'theory(d)':>10} {'ternary':>12} "
             f"{'activ. angle':>13} {'dot corr':>8}"]
    for e in report["layers"]:
        corr = e.get("dot_product_correlation")
        lines.append(f"{e['layer'][:24]:<24} {'binary' if e['binary'] else 'float':<7} {e['d']:>6} "
                     f"{_fmt(e.get('weight_angle')):>14} {e['theory']['expected_deg']:>9.1f}° "
                     f"{_fmt(e.get('weight_angle_ternary')):>12} {_fmt(e.get('activation_angle')):>13} "
                     f"{'-' if corr is None else f'{corr:.3f}':>8}")
    th = report["theory"]
    lines.append(f"theory: angle(x, sign x) -> {th['binary_limit_deg']:.1f}° as d grows (Gaussian x); best ternary "
                 f"(threshold {th['ternary_threshold_sigma']:.3f} sd) -> {th['ternary_gaussian_deg']:.1f}°")
    for e in report["layers"]:
        if "warning" in e:
            lines.append(f"WARNING {e['layer']}: {e['warning']}")
        if not e["binary"] and e["first"] and "dot_product_correlation" in e:
            lines.append(f"first layer {e['layer']} is float; binarizing it would cost: weight angle "
                         f"{_fmt(e.get('weight_angle'))}°, input angle {_fmt(e.get('activation_angle'))}°, "
                         f"dot-product correlation {e['dot_product_correlation']:.3f}")
        if e["binary"] and "weight_angle" not in e:
            lines.append(f"{e['layer']}: {e['weights_source']} (pass --weights latent.npz for weight angles)")
    return "\n".join(lines)


def load_pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend; MissingDependency naming the [plot] extra if
    matplotlib is not installed (the CLI calls this before analysing, to fail before the long part)."""
    matplotlib = import_optional("matplotlib", "plotting the angles (analyze --plot)", "plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_report(report: Report, path: Union[str, "os.PathLike[str]"]) -> None:
    """A PNG of each layer's weight-angle histogram against the Gaussian theory (needs matplotlib)."""
    plt = load_pyplot()
    layers = [e for e in report["layers"] if e.get("weight_angles_deg")]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for e in layers:
        ax.hist(e["weight_angles_deg"], bins=30, histtype="step", density=True,
                label=f"{e['layer'][:20]} (d={e['d']}, {'binary' if e['binary'] else 'float'})")
    ds = sorted({e["d"] for e in layers})
    for d in ds:
        m, sd = geometry.expected_angle_deg(int(d))
        xs = np.linspace(m - 4 * sd, m + 4 * sd, 200)
        ax.plot(xs, np.exp(-(xs - m) ** 2 / (2 * sd * sd)) / (sd * math.sqrt(2 * math.pi)), "k--", lw=0.8)
    ax.axvline(geometry.LIMIT_DEG, color="k", lw=1, label=f"d -> inf: {geometry.LIMIT_DEG:.1f}°")
    ax.set_xlabel("angle between a weight vector and its sign (degrees)")
    ax.set_ylabel("density")
    ax.set_title("Binarization angles per layer vs Gaussian theory (dashed)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def to_json(report: Report) -> str:
    return json.dumps(report, indent=1, allow_nan=True)
