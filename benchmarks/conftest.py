"""pytest-benchmark set-up: each benchmark records its figure, and the session ends with the ratios
measured side by side in this run: binary GEMM / numpy float32 matmul (G MAC/s), and binary conv /
onnxruntime float32 Conv (ms), float conv Winograd / direct / onnxruntime (ms)."""
import pytest

RESULTS = {}


@pytest.fixture
def record():
    def _record(key, side, value):
        RESULTS.setdefault(key, {})[side] = value
    return _record


def _gemm_summary(tr):
    gemms = {key: s for key, s in RESULTS.items() if "binary" in s and "float32" in s}
    if not gemms:
        return
    from xnorinfer.tools.bench import popcount_peak_gmacs
    tr.section("binary GEMM vs numpy float32 (best round, G MAC/s)")
    peak = popcount_peak_gmacs()
    if peak:
        tr.write_line(f"XOR-popcount peak (register-only loop, 1 core): {peak:.1f} G MAC/s")
    tr.write_line(f"{'shape':>18} {'thr':>3} {'binary':>9} {'numpy f32':>10} {'ratio':>7} {'% peak':>7}")
    for (shape, threads), s in sorted(gemms.items()):
        b, f = s["binary"], s["float32"]
        frac = f"{100 * b / (peak * threads):6.1f}%" if peak else "   n/a"
        tr.write_line(f"{shape:>18} {threads:>3} {b:9.1f} {f:10.1f} {b / f:6.1f}x {frac}")


def _conv_summary(tr):
    convs = {key: s for key, s in RESULTS.items() if {"binary-packed", "binary-int32", "ort-float32"} <= s.keys()}
    if not convs:
        return
    tr.section("binary conv vs onnxruntime float32 Conv (best round, ms)")
    tr.write_line(f"{'conv':>26} {'thr':>3} {'packed':>8} {'int32':>8} {'ORT':>8} {'vs ORT':>7} {'packed/int32':>12}")
    for (name, threads), s in sorted(convs.items()):
        p, i, o = s["binary-packed"], s["binary-int32"], s["ort-float32"]
        tr.write_line(f"{name:>26} {threads:>3} {p:8.3f} {i:8.3f} {o:8.3f} {o / p:6.1f}x {p / i:11.2f}x")


def _fconv_summary(tr):
    convs = {key: s for key, s in RESULTS.items() if {"winograd", "direct", "ort"} <= s.keys()}
    if not convs:
        return
    tr.section("float conv: Winograd vs the direct conv and onnxruntime float32 Conv (best round, ms)")
    tr.write_line(f"{'conv':>26} {'thr':>3} {'winograd':>9} {'direct':>8} {'ORT':>8} {'direct/wino':>11} {'ORT/wino':>9}")
    for (name, threads), s in sorted(convs.items()):
        wg, d, o = s["winograd"], s["direct"], s["ort"]
        tr.write_line(f"{name:>26} {threads:>3} {wg:9.3f} {d:8.3f} {o:8.3f} {d / wg:10.2f}x {o / wg:8.2f}x")


def pytest_terminal_summary(terminalreporter):
    _gemm_summary(terminalreporter)
    _conv_summary(terminalreporter)
    _fconv_summary(terminalreporter)
