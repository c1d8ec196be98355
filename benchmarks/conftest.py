"""pytest-benchmark set-up: each benchmark records its G MAC/s, and the session ends with the ratios of
binary GEMM to numpy float32 matmul, side by side, measured in this run."""
import pytest

RESULTS = {}


@pytest.fixture
def record():
    def _record(key, side, gmacs):
        RESULTS.setdefault(key, {})[side] = gmacs
    return _record


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    tr = terminalreporter
    tr.section("binary GEMM vs numpy float32 (best round, G MAC/s)")
    from xnorinfer.bench import popcount_peak_gmacs
    peak = popcount_peak_gmacs()
    if peak:
        tr.write_line(f"XOR-popcount peak (register-only loop, 1 core): {peak:.1f} G MAC/s")
    tr.write_line(f"{'shape':>18} {'thr':>3} {'binary':>9} {'numpy f32':>10} {'ratio':>7} {'% peak':>7}")
    for (shape, threads), sides in sorted(RESULTS.items()):
        b, f = sides.get("binary"), sides.get("float32")
        if b is None or f is None:
            continue
        frac = f"{100 * b / (peak * threads):6.1f}%" if peak else "   n/a"
        tr.write_line(f"{shape:>18} {threads:>3} {b:9.1f} {f:10.1f} {b / f:6.1f}x {frac}")
