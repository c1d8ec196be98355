"""The console script's conventions: `python -m xnorinfer`, --version, every failure one line on stderr
(`xnorinfer: error: ...`, status 2 for usage errors, 1 otherwise, 130 on Ctrl-C), --debug for the
traceback, missing optional packages named by their extra, progress without carriage returns in logs."""
import io
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import xnorinfer
from xnorinfer import cli
from xnorinfer.errors import MissingDependency, import_optional
from xnorinfer.tools.progress import Progress

HERE = os.path.dirname(__file__)
ONNX = os.path.join(HERE, "fixtures", "torch", "mlp_sign_ts", "model.onnx")
TFLITE = os.path.join(HERE, "fixtures", "lce", "tiny_bnn", "model.tflite")
DEMO = os.path.join(os.path.dirname(xnorinfer.__file__), "demo", "digits_bnn.onnx")
TFLITE_HINT = 'reading .tflite files needs the optional package \'tflite\': pip install "xnorinfer[tflite]"'


def _cli(capsys, *argv):
    """main(argv) in this process: (status, stdout, stderr lines)."""
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err.splitlines()


def _python(*args, timeout=120):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=HERE)


# ---- usage errors: status 2, one line naming the --help to read ------------------------------------------

USAGE_ERRORS = {  # argv -> the line, or its start and end where the text varies with the Python version
    "missing-arguments": (["run"], "xnorinfer: error: the following arguments are required: model, --input/-i "
                                   "(see xnorinfer run --help)"),
    "no-command": ([], "xnorinfer: error: the following arguments are required: command (see xnorinfer --help)"),
    "unknown-command": (["frobnicate"], ("xnorinfer: error: argument command: invalid choice: 'frobnicate' (choose from ",
                                         " (see xnorinfer --help)")),
    "unknown-option": (["info", "--fast"], "xnorinfer: error: unrecognized arguments: --fast (see xnorinfer --help)"),
    "count-below-1": (["bench", "gemm", "--repeat", "0"], "xnorinfer: error: argument --repeat: must be >= 1, got 0 "
                                                          "(see xnorinfer bench gemm --help)"),
    "not-an-integer": (["bench", ONNX, "-n", "x"], "xnorinfer: error: argument --iterations/-n: 'x' is not an integer "
                                                   "(see xnorinfer bench model --help)"),
    "batch-0": (["convert", ONNX, "out.xnor", "--batch", "0"], "xnorinfer: error: argument --batch: must be >= 1, "
                                                               "got 0 (see xnorinfer convert --help)"),
}


@pytest.mark.parametrize("argv, line", USAGE_ERRORS.values(), ids=USAGE_ERRORS.keys())
def test_usage_error_is_one_line_and_status_2(capsys, argv, line):
    status, out, err = _cli(capsys, *argv)
    assert (status, out, len(err)) == (2, "", 1), err
    if isinstance(line, tuple):
        assert err[0].startswith(line[0]) and err[0].endswith(line[1]), err
    else:
        assert err[0] == line


def test_help_and_version_exit_0(capsys):
    status, out, err = _cli(capsys, "--version")
    assert (status, out, err) == (0, f"xnorinfer {xnorinfer.__version__}\n", [])
    status, out, err = _cli(capsys, "run", "--help")
    assert status == 0 and out.startswith("usage: xnorinfer run") and "--debug" in out and err == []


# ---- failures: status 1, one line -----------------------------------------------------------------------

@pytest.mark.parametrize("command", [["run", "{missing}", "-i", "x.npy"], ["inspect", "{missing}"],
                                     ["convert", "{missing}", "out.xnor"], ["bench", "{missing}"]],
                         ids=["run", "inspect", "convert", "bench"])
def test_missing_model_file(capsys, tmp_path, command):
    missing = str(tmp_path / "missing.onnx")
    status, out, err = _cli(capsys, *(a.format(missing=missing) for a in command))
    assert (status, out, err) == (1, "", [f"xnorinfer: error: no such model file: {missing}"])


def test_missing_input_file(capsys, tmp_path):
    missing = str(tmp_path / "x.npy")
    status, out, err = _cli(capsys, "run", ONNX, "-i", missing)
    assert (status, out, err) == (1, "", [f"xnorinfer: error: {missing}: No such file or directory"])


def test_bad_input_array(capsys, tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((4, 3), np.float32))
    status, out, err = _cli(capsys, "run", ONNX, "-i", str(x))
    assert status == 1 and out == "" and len(err) == 1
    assert err[0].startswith("xnorinfer: error: input 'input': expected rank 4"), err


def _corrupt_onnx(tmp_path):
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes())
    return path, "xnorinfer: error: not a readable ONNX model: "


def _truncated_tflite(tmp_path):
    pytest.importorskip("tflite", reason="reading .tflite is the optional [tflite] extra")
    path = tmp_path / "truncated.tflite"
    path.write_bytes(open(TFLITE, "rb").read()[:200])
    return path, "xnorinfer: error: not a readable TFLite model: "


def _bad_xnor(tmp_path):
    path = tmp_path / "m.xnor"
    assert cli.main(["convert", ONNX, str(path)]) == 0
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return path, "xnorinfer: error: "


@pytest.mark.parametrize("make", [_corrupt_onnx, _truncated_tflite, _bad_xnor])
def test_corrupt_model_file(capsys, tmp_path, make):
    path, prefix = make(tmp_path)
    capsys.readouterr()
    status, out, err = _cli(capsys, "inspect", str(path))
    assert status == 1 and out == "" and len(err) == 1, err
    assert err[0].startswith(prefix) and "Traceback" not in err[0], err


def test_unexpected_exception_is_one_line_naming_its_type(capsys, monkeypatch):
    def boom(args):
        raise RuntimeError("boom")
    monkeypatch.setattr(cli, "cmd_info", boom)
    status, out, err = _cli(capsys, "info")
    assert (status, out, err) == (1, "", ["xnorinfer: error: unexpected RuntimeError: boom "
                                          "(run with --debug for the traceback)"])


@pytest.mark.parametrize("argv", [["--debug", "info"], ["info", "--debug"]])
def test_debug_reraises(monkeypatch, argv):
    def boom(args):
        raise RuntimeError("boom")
    monkeypatch.setattr(cli, "cmd_info", boom)
    with pytest.raises(RuntimeError, match="boom"):
        cli.main(argv)


def test_keyboard_interrupt_exits_130_quietly(capsys, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "cmd_info", interrupted)
    assert _cli(capsys, "info") == (130, "", [])


def test_system_exit_with_a_message_takes_the_same_path(capsys, monkeypatch):
    def leave(args):
        raise SystemExit("the model has no inputs\nsecond line")
    monkeypatch.setattr(cli, "cmd_info", leave)
    assert _cli(capsys, "info") == (1, "", ["xnorinfer: error: the model has no inputs; second line"])


# ---- optional packages name their extra -----------------------------------------------------------------

def test_missing_tflite_names_the_extra(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tflite", None)
    assert _cli(capsys, "inspect", TFLITE) == (1, "", [f"xnorinfer: error: {TFLITE_HINT}"])


def test_missing_flatbuffers_names_the_tflite_extra(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "flatbuffers", None)
    monkeypatch.setitem(sys.modules, "flatbuffers.flexbuffers", None)
    assert _cli(capsys, "inspect", TFLITE) == (1, "", [
        "xnorinfer: error: reading .tflite files needs the optional package 'flatbuffers': "
        'pip install "xnorinfer[tflite]"'])


def test_python_api_raises_missing_dependency(monkeypatch):
    monkeypatch.setitem(sys.modules, "tflite", None)
    with pytest.raises(MissingDependency) as info:
        xnorinfer.InferenceSession(TFLITE)
    assert isinstance(info.value, ImportError) and str(info.value) == TFLITE_HINT
    assert info.value.extra == "tflite" and info.value.name == "tflite"


def test_missing_matplotlib_fails_before_the_analysis(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    status, out, err = _cli(capsys, "analyze", DEMO, "--plot", str(tmp_path / "p.png"))
    assert (status, out, err) == (1, "", [
        "xnorinfer: error: plotting the angles (analyze --plot) needs the optional package 'matplotlib': "
        'pip install "xnorinfer[plot]"'])


def test_bench_conv_without_onnxruntime(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert _cli(capsys, "bench", "conv") == (1, "", [
        "xnorinfer: error: bench conv (its float32 baseline is onnxruntime's Conv) needs the optional package "
        "'onnxruntime': pip install \"xnorinfer[bench]\""])


def test_the_extras_named_exist():
    """The extras the messages name are the installed package's (its metadata: a wheel or a source install)."""
    from importlib import metadata
    requires = metadata.metadata("xnorinfer").get_all("Requires-Dist") or []
    declared = {}
    for req in requires:
        m = re.match(r"""^([A-Za-z0-9_.-]+).*;\s*extra\s*==\s*["']([\w-]+)["']""", req)
        if m:
            declared.setdefault(m.group(2), set()).add(m.group(1).lower())
    for extra, package in [("tflite", "tflite"), ("tflite", "flatbuffers"), ("bench", "onnxruntime"),
                           ("plot", "matplotlib")]:
        assert package in declared.get(extra, set()), (extra, package, declared)


def test_import_optional_blames_only_its_own_packages(tmp_path, monkeypatch):
    """A package that is installed but imports something missing is broken, not a missing extra."""
    (tmp_path / "xnorinfer_fake_pkg").mkdir()
    (tmp_path / "xnorinfer_fake_pkg" / "__init__.py").write_text("import xnorinfer_fake_absent_dep\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as info:
        import_optional("xnorinfer_fake_pkg", "faking", "fake")
    assert not isinstance(info.value, MissingDependency) and info.value.name == "xnorinfer_fake_absent_dep"
    sys.modules.pop("xnorinfer_fake_pkg", None)
    with pytest.raises(MissingDependency, match=r"faking needs the optional package 'xnorinfer_fake_absent_dep': "
                                                r'pip install "xnorinfer\[fake\]"'):
        import_optional("xnorinfer_fake_pkg", "faking", "fake", also=("xnorinfer_fake_absent_dep",))
    sys.modules.pop("xnorinfer_fake_pkg", None)
    with pytest.raises(MissingDependency, match="needs the optional package 'lce-x': pip install lce-x$"):
        import_optional("xnorinfer_no_such_module.sub", "lce", pip_name="lce-x")


# ---- progress: a bar on a terminal, plain lines elsewhere ------------------------------------------------

class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_in_a_log_is_one_plain_line():
    log = io.StringIO()
    with Progress(40, "xnorinfer vs onnxruntime, 1 thr", log) as p:
        for _ in range(40):
            p.update()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 1
    assert lines[0].startswith("xnorinfer vs onnxruntime, 1 thr: 40/40 runs done in "), lines


def test_progress_on_a_terminal_is_a_bar_and_a_failed_stage_reports_nothing():
    tty = _Terminal()
    with Progress(40, "stage", tty) as p:
        for _ in range(40):
            p.update()
    assert "\r" in tty.getvalue() and "40/40" in tty.getvalue()
    log = io.StringIO()
    with pytest.raises(ValueError):
        with Progress(40, "stage", log) as p:
            raise ValueError
    assert log.getvalue() == ""


# ---- as the console runs it (subprocesses) --------------------------------------------------------------

def test_python_m_xnorinfer_version():
    result = _python("-m", "xnorinfer", "--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"xnorinfer {xnorinfer.__version__}\n", "")


def test_python_m_xnorinfer_usage_error_and_missing_model():
    result = _python("-m", "xnorinfer", "run", "missing.onnx")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == ["xnorinfer: error: the following arguments are required: --input/-i "
                                          "(see xnorinfer run --help)"]
    result = _python("-m", "xnorinfer", "run", "missing.onnx", "-i", "x.npy")
    assert (result.returncode, result.stdout, result.stderr) == (
        1, "", "xnorinfer: error: no such model file: missing.onnx\n")


def test_missing_extra_in_a_fresh_interpreter():
    code = ("import sys; sys.modules['tflite'] = None; from xnorinfer.cli import main; "
            f"sys.exit(main(['inspect', {TFLITE!r}]))")
    result = _python("-c", code)
    assert (result.returncode, result.stdout, result.stderr) == (1, "", f"xnorinfer: error: {TFLITE_HINT}\n")


def test_debug_shows_the_traceback():
    result = _python("-m", "xnorinfer", "--debug", "inspect", "missing.onnx")
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):" and len(lines) > 3, lines
    assert lines[-1] == "FileNotFoundError: no such model file: missing.onnx"


@pytest.mark.slow
def test_bench_into_a_log_has_no_carriage_returns(tmp_path):
    log = tmp_path / "bench.log"
    with open(log, "w") as f:
        result = subprocess.run([sys.executable, "-m", "xnorinfer", "bench", ONNX, "-n", "5", "--warmup", "1",
                                 "--threads", "1,2"], stdout=subprocess.PIPE, stderr=f, text=True, timeout=300)
    text = log.read_text()
    assert result.returncode == 0, text
    assert "\r" not in text and "\r" not in result.stdout
    lines = text.splitlines()  # one line per thread count, when its stage is done
    assert len(lines) == 2, text
    for line, threads in zip(lines, "12"):
        assert re.fullmatch(rf"xnorinfer( vs onnxruntime)?, {threads} thr: (\d+)/\2 runs done in [\d.]+ s", line), line
    assert "xnorinfer" in result.stdout and "p50 ms" in result.stdout


@pytest.mark.slow
def test_bench_profile_writes_a_trace_and_a_table(tmp_path, capsys, monkeypatch):
    import json
    monkeypatch.setitem(sys.modules, "onnxruntime", None)   # ours alone: the profile is what is checked
    trace = tmp_path / "out.json"
    assert cli.main(["bench", ONNX, "-n", "4", "--warmup", "2", "--threads", "1,2", "--profile", str(trace)]) == 0
    out = capsys.readouterr().out
    assert out.count("time by op") == 2 and f"trace written to {trace}" in out
    events = json.load(open(trace))
    sess = xnorinfer.InferenceSession(ONNX)
    per_run = len(sess.program().steps) if xnorinfer.backend_info()["backend"] == "c" else len(sess._graph.nodes)
    assert len(events) == 2 * 4 * per_run       # two thread counts, 4 runs each; the warm-up runs left out
    assert {e["args"]["run"] for e in events} == {2, 3, 4, 5}
    assert sorted({e["args"]["threads"] for e in events}) == [1, min(2, xnorinfer.backend_info()["num_threads"])]
    assert all(e["ph"] == "X" and e["dur"] >= 0 for e in events)
