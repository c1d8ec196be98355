"""onnxruntime's session API: SessionOptions honoured (threads, profiling, logging, optimization level),
providers, model metadata, and the profile trace both executors write."""
import json
import logging
import os
import time

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import xnorinfer
from xnorinfer import GraphOptimizationLevel, SessionOptions
from xnorinfer.kernels import get_backend

HERE = os.path.dirname(__file__)
DIGITS = os.path.join(os.path.dirname(xnorinfer.__file__), "demo", "digits_bnn.onnx")
C_BACKEND = get_backend().name == "c"


def digits_input(n=2):
    return np.load(os.path.join(os.path.dirname(DIGITS), "digits_test.npz"))["images"][:n]


def binary_model(rng, metadata=None):
    """sign -> binary conv (+-1 weights) -> sign -> binary dense: two layers that run packed (K = 27 is
    odd and there is no padding: the conv's output is never an exact 0, so the C runtime runs every input)."""
    w = np.sign(rng.normal(size=(8, 3, 3, 3))).astype(np.float32)
    d = np.sign(rng.normal(size=(5, 8 * 4 * 4))).astype(np.float32)
    nodes = [helper.make_node("Sign", ["x"], ["s"], name="sign_in"),
             helper.make_node("Conv", ["s", "w"], ["c"], name="bconv"),
             helper.make_node("Sign", ["c"], ["s2"], name="sign_mid"),
             helper.make_node("Flatten", ["s2"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "d"], ["y"], transB=1, name="bdense")]
    g = helper.make_graph(nodes, "binary_graph", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 6, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w, "w"), numpy_helper.from_array(d, "d")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="unit-test",
                          producer_version="1.2", domain="ai.test", doc_string="a model doc", model_version=7)
    m.graph.doc_string = "a graph doc"
    helper.set_model_props(m, metadata or {})
    return m.SerializeToString()


def model_input(n=2, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3, 6, 6)).astype(np.float32)


# ---- SessionOptions --------------------------------------------------------------------------------

def test_options_reject_unknown_attributes_and_bad_values():
    so = SessionOptions()
    with pytest.raises(AttributeError, match="intra_op_num_thread"):
        so.intra_op_num_thread = 1
    with pytest.raises(TypeError, match="intra_op_num_threads"):
        so.intra_op_num_threads = -1
    with pytest.raises(TypeError, match="log_severity_level"):
        so.log_severity_level = 7
    with pytest.raises(ValueError, match="graph_optimization_level"):
        so.graph_optimization_level = 5
    so.graph_optimization_level = 0
    assert so.graph_optimization_level is GraphOptimizationLevel.ORT_DISABLE_ALL
    with pytest.raises(TypeError, match="sess_options"):
        xnorinfer.InferenceSession(DIGITS, {"intra_op_num_threads": 1})


def test_options_and_num_threads_must_agree():
    so = SessionOptions()
    so.intra_op_num_threads = 1
    with pytest.raises(ValueError, match="disagree"):
        xnorinfer.InferenceSession(DIGITS, so, num_threads=2)
    assert xnorinfer.InferenceSession(DIGITS, so, num_threads=1).get_session_options() is so


@pytest.mark.skipif(not C_BACKEND, reason="the thread count is read back from the C runtime")
@pytest.mark.parametrize("threads", [1, 2])
def test_intra_op_num_threads_reaches_the_kernels(tmp_path, threads):
    so = SessionOptions()
    so.intra_op_num_threads, so.enable_profiling = threads, True
    so.profile_file_prefix = str(tmp_path / "t")
    sess = xnorinfer.InferenceSession(binary_model(np.random.default_rng(0)), so)
    sess.run(None, {"x": model_input()})
    assert sess.last_executor == "c"
    events = json.load(open(sess.end_profiling()))
    # the C runtime reports the threads its run used (bounded by the pool's size)
    pool = xnorinfer.backend_info()["num_threads"]
    assert {e["args"]["threads"] for e in events} == {min(threads, pool)}


def test_disable_all_keeps_every_layer_float():
    model = binary_model(np.random.default_rng(0))
    so = SessionOptions()
    so.graph_optimization_level = GraphOptimizationLevel.ORT_DISABLE_ALL
    plain = xnorinfer.InferenceSession(model, so)
    packed = xnorinfer.InferenceSession(model)
    ops = lambda s: {n.op for n in s._graph.nodes}
    assert not any(op.startswith("XB") for op in ops(plain)) and {"XBConv", "XBDense"} <= ops(packed)
    x = model_input()
    np.testing.assert_array_equal(plain.run(None, {"x": x})[0], packed.run(None, {"x": x})[0])


def test_unsupported_settings_warn():
    so = SessionOptions()
    so.execution_mode = 1
    so.optimized_model_filepath = "optimized.onnx"
    so.add_session_config_entry("session.x", "1")
    with pytest.warns(RuntimeWarning) as record:
        xnorinfer.InferenceSession(DIGITS, so)
    text = " ".join(str(w.message) for w in record)
    assert "ORT_PARALLEL" in text and "optimized_model_filepath" in text and "session.x" in text
    assert so.get_session_config_entry("session.x") == "1"
    assert not os.path.exists("optimized.onnx")


def test_onnxruntime_options_are_read():
    ort = pytest.importorskip("onnxruntime")
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = xnorinfer.InferenceSession(binary_model(np.random.default_rng(0)), so,
                                      providers=["CPUExecutionProvider"])
    assert sess._settings.num_threads == 1 and not sess._settings.binarize
    assert sess.get_session_options() is so
    assert not any(n.op.startswith("XB") for n in sess._graph.nodes)


# ---- providers and metadata ------------------------------------------------------------------------

def test_providers():
    assert xnorinfer.get_available_providers() == ["XnorinferExecutionProvider", "CPUExecutionProvider"]
    assert xnorinfer.get_device() == "CPU"
    assert xnorinfer.InferenceSession(DIGITS).get_providers() == ["XnorinferExecutionProvider", "CPUExecutionProvider"]
    sess = xnorinfer.InferenceSession(DIGITS, providers=[("CPUExecutionProvider", {"arena_extend_strategy": "x"})])
    assert sess.get_providers() == ["CPUExecutionProvider"]
    assert sess.get_provider_options() == {"CPUExecutionProvider": {"arena_extend_strategy": "x"}}
    with pytest.raises(ValueError, match="CUDAExecutionProvider"):
        xnorinfer.InferenceSession(DIGITS, providers=["CUDAExecutionProvider"])
    with pytest.warns(RuntimeWarning, match="CUDAExecutionProvider"):
        sess = xnorinfer.InferenceSession(DIGITS, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert sess.get_providers() == ["CPUExecutionProvider"]
    with pytest.raises(TypeError):
        xnorinfer.InferenceSession(DIGITS, providers="CPUExecutionProvider")


def test_modelmeta_onnx_and_xnor_round_trip(tmp_path):
    sess = xnorinfer.InferenceSession(binary_model(np.random.default_rng(0), {"author": "me", "license": "MIT"}))
    meta = sess.get_modelmeta()
    assert (meta.producer_name, meta.producer_version, meta.domain, meta.version) == ("unit-test", "1.2", "ai.test", 7)
    assert (meta.graph_name, meta.description, meta.graph_description) == ("binary_graph", "a model doc", "a graph doc")
    assert meta.custom_metadata_map == {"author": "me", "license": "MIT"}
    sess.save(tmp_path / "m.xnor")
    assert xnorinfer.InferenceSession(str(tmp_path / "m.xnor")).get_modelmeta() == meta


def test_modelmeta_tflite():
    pytest.importorskip("tflite")
    meta = xnorinfer.InferenceSession(os.path.join(HERE, "fixtures", "lce", "tiny_bnn", "model.tflite")).get_modelmeta()
    assert meta.producer_name == "TensorFlow Lite" and meta.version == 3
    assert meta.description == "MLIR Converted."
    assert meta.custom_metadata_map["min_runtime_version"].count(".") == 2


def test_xnor_meta_is_validated(tmp_path):
    from xnorinfer.errors import ModelError
    from xnorinfer.ir import ModelMeta
    with pytest.raises(ModelError, match="version"):
        ModelMeta.from_dict({"version": "7"})
    with pytest.raises(ModelError, match="custom_metadata_map"):
        ModelMeta.from_dict({"custom_metadata_map": ["a"]})
    assert len(ModelMeta.from_dict({"description": "x" * (ModelMeta.MAX_TEXT + 10)}).description) == ModelMeta.MAX_TEXT


# ---- profiling -------------------------------------------------------------------------------------

def _profile(model, feeds, executor, tmp_path, runs=3):
    so = SessionOptions()
    so.enable_profiling, so.profile_file_prefix = True, str(tmp_path / "prof_")
    sess = xnorinfer.InferenceSession(model, so, executor=executor)
    assert sess.get_profiling_start_time_ns() > 0
    spans = []
    for _ in range(runs):
        t0 = (time.time_ns() - sess.get_profiling_start_time_ns()) / 1e3
        outs = sess.run(None, feeds)
        spans.append((t0, (time.time_ns() - sess.get_profiling_start_time_ns()) / 1e3))
    assert sess.last_executor == executor
    path = sess.end_profiling()
    assert os.path.dirname(path) == str(tmp_path) and os.path.basename(path).startswith("prof_")
    assert path.endswith(".json")
    assert sess.end_profiling() == ""      # ended: a second call has nothing to write
    with open(path) as f:
        return sess, json.load(f), outs


@pytest.mark.parametrize("executor", ["python", "c"])
def test_profile_is_a_chrome_trace_with_one_event_per_step(tmp_path, executor):
    if executor == "c" and not C_BACKEND:
        pytest.skip("the C runtime needs the C backend")
    model, x = binary_model(np.random.default_rng(0)), model_input()
    sess, events, outs = _profile(model, {"x": x}, executor, tmp_path)
    np.testing.assert_array_equal(outs[0], xnorinfer.InferenceSession(model, executor=executor).run(None, {"x": x})[0])
    assert isinstance(events, list) and events
    for e in events:
        assert {"name", "ph", "ts", "dur", "args", "cat", "pid", "tid"} <= set(e) and e["ph"] == "X"
        assert e["dur"] >= 0 and e["name"] == e["args"]["layer"] + "_kernel_time"
        a = e["args"]
        assert {"op_name", "format", "input_type_shape", "output_type_shape", "threads"} <= set(a)
        assert a["executor"] == executor and a["provider"] == "XnorinferExecutionProvider"
    nodes = {n.name: n.op for n in sess._graph.nodes}
    per_run = len(sess.program().steps) if executor == "c" else len(nodes)
    assert len(events) == 3 * per_run
    assert {e["args"]["run"] for e in events} == {0, 1, 2}
    for e in events:
        assert nodes[e["args"]["layer"]] == e["args"]["op_name"]
    by_op = {}
    for e in events:
        by_op.setdefault(e["args"]["op_name"], set()).add(e["args"]["format"])
    assert by_op["XBConv"] == {"binary"} and by_op["XBDense"] == {"binary"}
    # steps of a run follow one another inside it
    for run in range(3):
        run_events = sorted((e for e in events if e["args"]["run"] == run), key=lambda e: e["args"]["step"])
        assert [e["args"]["step"] for e in run_events] == list(range(per_run))
        for a, b in zip(run_events, run_events[1:]):
            assert b["ts"] >= a["ts"] + a["dur"] - 1.0
    bconv = next(e for e in events if e["args"]["op_name"] == "XBConv" and e["args"]["format"] == "binary"
                 and any("bits" in t for t in e["args"]["input_type_shape"]))
    assert any("bits" in t for t in bconv["args"]["input_type_shape"])


def test_profile_spans_lie_inside_the_runs(tmp_path):
    """Timestamps are on the session's clock: each run's steps lie between the times read around run()."""
    so = SessionOptions()
    so.enable_profiling, so.profile_file_prefix = True, str(tmp_path / "p")
    sess = xnorinfer.InferenceSession(DIGITS, so)
    x = {sess.get_inputs()[0].name: digits_input()}
    spans = []
    for _ in range(3):
        t0 = time.perf_counter_ns()
        sess.run(None, x)
        spans.append((t0, time.perf_counter_ns()))
    trace_t0 = sess._trace._t0
    events = json.load(open(sess.end_profiling()))
    for e in events:
        lo, hi = spans[e["args"]["run"]]
        assert (lo - trace_t0) / 1e3 - 1 <= e["ts"] and e["ts"] + e["dur"] <= (hi - trace_t0) / 1e3 + 1


def test_profiling_off_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sess = xnorinfer.InferenceSession(DIGITS)
    sess.run(None, {sess.get_inputs()[0].name: digits_input()})
    assert sess.end_profiling() == "" and sess.get_profiling_start_time_ns() == 0
    assert os.listdir(tmp_path) == []


def test_summary_table_from_a_trace(tmp_path):
    from xnorinfer.profiling import summarize
    sess, events, _ = _profile(binary_model(np.random.default_rng(0)), {"x": model_input()}, "python", tmp_path)
    table = summarize(events).splitlines()
    assert table[0].split() == ["op", "format", "calls/run", "ms/run", "share"]
    rows = {line.split()[0]: line.split() for line in table[1:-1]}
    assert rows["XBConv"][1] == "binary" and rows["XBConv"][2] == "1"
    assert rows["total"][1] == str(len(sess._graph.nodes)) and table[-1] == "(3 runs profiled)"


# ---- logging ---------------------------------------------------------------------------------------

def test_log_severity_level_reports_float_layers(caplog):
    so = SessionOptions()
    so.log_severity_level, so.logid = 1, "digits"
    logger = logging.getLogger("xnorinfer")
    with caplog.at_level(logging.DEBUG, logger="xnorinfer"):   # restores the level afterwards
        xnorinfer.InferenceSession(DIGITS, so)
        assert logger.level == logging.INFO          # the session set it
    messages = [r.getMessage() for r in caplog.records if r.name == "xnorinfer"]
    assert any(m.startswith("[digits] layer /fc_out/Gemm (Gemm) stays float") for m in messages), messages
    assert any("3 binary layers" in m for m in messages)


@pytest.mark.skipif(not C_BACKEND, reason="the fallback is from the C runtime")
def test_fallback_to_python_executor_is_a_warning(caplog):
    # Tanh has no C runtime op: the model runs on the Python executor, and says so once
    g = helper.make_graph([helper.make_node("Tanh", ["x"], ["y"])], "t",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    sess = xnorinfer.InferenceSession(model)
    with caplog.at_level(logging.WARNING, logger="xnorinfer"):
        for _ in range(3):
            sess.run(None, {"x": np.ones((1, 3), np.float32)})
    warnings = [r for r in caplog.records if r.name == "xnorinfer" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Tanh" in warnings[0].getMessage() and "Python executor" in warnings[0].getMessage()
    assert sess.last_executor == "python"
