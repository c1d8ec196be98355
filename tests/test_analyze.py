"""xnorinfer analyze: the geometry of binarization (Anderson & Berg, ICLR 2018)."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import xnorinfer
from xnorinfer.tools import angles as geometry
from xnorinfer.tools.analyze import MAX_UNITS, analyze, format_report

DEMO = os.path.join(os.path.dirname(xnorinfer.__file__), "demo")
FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "torch")


def gaussian_angles(d, n, seed):
    rng = np.random.default_rng(seed)
    chunks = [geometry.binary_angles_deg(rng.standard_normal((min(20000, n - i), d)).astype(np.float32))
              for i in range(0, n, 20000)]
    return np.concatenate(chunks)


@pytest.mark.slow
def test_large_d_angle_is_37_degrees():
    angles = gaussian_angles(10_000, 2000, 0)
    assert abs(angles.mean() - geometry.LIMIT_DEG) < 0.3
    assert abs(angles.mean() - geometry.expected_angle_deg(10_000)[0]) < 0.3
    assert abs(geometry.LIMIT_DEG - 37.07) < 0.01


@pytest.mark.parametrize("d,n", [(16, 100_000), (64, 100_000), (256, 200_000)])
def test_finite_d_expectation_within_sampling_error(d, n):
    """The delta-method expectation agrees with sampling to within 4 standard errors; the naive
    arccos(E[cos]) does not (0.29, 0.07, 0.02 degrees off at these d), so a wrong formula fails here."""
    angles = gaussian_angles(d, n, d)
    mean, sd = geometry.expected_angle_deg(d)
    se = angles.std() / math.sqrt(n)
    assert abs(angles.mean() - mean) < 4 * se, (angles.mean(), mean, se)
    assert abs(angles.std() - sd) < 0.05 * sd
    naive = math.degrees(math.acos(geometry.expected_cos(d)))
    assert abs(angles.mean() - naive) > 4 * se


def test_ternary_optimum_on_gaussians():
    t, angle = geometry.gaussian_ternary_optimum()
    assert abs(t - 0.612) < 0.002
    measured = geometry.ternary_angles_deg(np.random.default_rng(1).standard_normal((300, 10_000)))
    assert abs(measured.mean() - angle) < 0.3
    assert angle < geometry.LIMIT_DEG - 10


def test_ternary_angle_is_exact_for_a_known_vector():
    # |x| = (3, 1): support {0} gives cos = 3/sqrt(10); both give (3+1)/(sqrt(10) sqrt(2)) = 0.894 < 0.949
    angle = geometry.ternary_angles_deg(np.array([[3.0, -1.0]]))[0]
    assert abs(angle - math.degrees(math.acos(3 / math.sqrt(10)))) < 1e-9


def test_dot_product_correlation_of_random_vectors_is_2_over_pi():
    rng = np.random.default_rng(2)
    corr = geometry.dot_product_correlation(rng.standard_normal((64, 2000)), rng.standard_normal((400, 2000)))
    assert abs(corr - 2 / math.pi) < 0.01


def test_digits_demo_report():
    data = np.load(os.path.join(DEMO, "digits_test.npz"))["images"]
    report = analyze(os.path.join(DEMO, "digits_bnn.onnx"), data=data)
    binary = [e for e in report["layers"] if e["binary"]]
    assert len(binary) == 3
    for e in binary:
        assert e["weights_source"] == "latent float weights"
        assert len(e["weight_angles_deg"]) == min(MAX_UNITS, e["units"])  # sampled, so a big model stays cheap
        assert 30 < e["weight_angle"]["mean"] < 50
        assert 0 < e["dot_product_correlation"] <= 1
        assert e["weight_angle_ternary"]["mean"] < e["weight_angle"]["mean"]
    first = report["layers"][0]
    assert not first["binary"] and first["first"] and "dot_product_correlation" in first
    assert "binarizing it would cost" in format_report(report)


def test_pytorch_fixture_with_in_graph_binarization():
    folder = os.path.join(FIXTURES, "cnn_ste_ts")
    report = analyze(os.path.join(folder, "model.onnx"), data=np.load(os.path.join(folder, "inputs.npz")))
    binary = [e for e in report["layers"] if e["binary"]]
    assert len(binary) == 3
    for e in binary:  # random Gaussian latent weights: the theory must hold
        assert abs(e["weight_angle"]["mean"] - e["theory"]["expected_deg"]) < 3 * e["theory"]["spread_deg"]


@pytest.mark.slow
def test_cli_json(tmp_path):
    images = tmp_path / "x.npy"
    np.save(images, np.load(os.path.join(DEMO, "digits_test.npz"))["images"][:50])
    out = tmp_path / "r.json"
    result = subprocess.run([sys.executable, "-m", "xnorinfer.cli", "analyze", os.path.join(DEMO, "digits_bnn.onnx"),
                             "--data", str(images), "--json", str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "theory" in result.stdout
    assert len(json.loads(out.read_text())["layers"]) == 5


@pytest.mark.slow
def test_cli_plot(tmp_path):
    pytest.importorskip("matplotlib", reason="plots are the optional [plot] extra")
    out = tmp_path / "p.png"
    result = subprocess.run([sys.executable, "-m", "xnorinfer.cli", "analyze", os.path.join(DEMO, "digits_bnn.onnx"),
                             "--plot", str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_latent_weights_from_a_file_when_the_model_folded_them():
    import onnx
    folder = os.path.join(FIXTURES, "bireal_residual_dynamo")
    model = onnx.load(os.path.join(folder, "model.onnx"))
    plain = analyze(os.path.join(folder, "model.onnx"))
    folded = [e for e in plain["layers"] if e["binary"]]
    assert folded and all("weight_angle" not in e for e in folded)
    weight_names = {n.name: n.input[1] for n in model.graph.node if n.op_type == "Conv"}
    shapes = {t.name: tuple(t.dims) for t in model.graph.initializer}
    rng = np.random.default_rng(3)
    latent = {weight_names[e["layer"]]: rng.standard_normal(shapes[weight_names[e["layer"]]]).astype(np.float32)
              for e in folded}
    report = analyze(os.path.join(folder, "model.onnx"), weights=latent)
    binary = [e for e in report["layers"] if e["binary"]]
    assert len(binary) == len(folded)
    for e in binary:
        assert e["weights_source"] == "latent float weights"
        assert len(e["weight_angles_deg"]) == min(MAX_UNITS, e["units"])  # sampled, so a big model stays cheap
        assert abs(e["weight_angle"]["mean"] - e["theory"]["expected_deg"]) < 3 * e["theory"]["spread_deg"]
