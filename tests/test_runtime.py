"""The C runtime (csrc/runtime, lower.py, runtime.py): the same bits as the Python executor on every
fixture and every ISA path, and a loader that refuses bad programs with a message."""
import glob
import os
import struct
import threading
import zlib

import numpy as np
import pytest

import xnorinfer
from xnorinfer import kernels
from xnorinfer.importers import xnor as xnor_format
from xnorinfer.errors import ModelError

HERE = os.path.dirname(__file__)
FIXTURES = sorted(glob.glob(os.path.join(HERE, "fixtures", "*", "*", "model.*")))
DEMO = os.path.join(os.path.dirname(xnorinfer.__file__), "demo", "digits_bnn.onnx")

try:
    C = kernels.load_backend("c")
except kernels.CLibraryMissing:
    C = None
needs_c = pytest.mark.skipif(C is None, reason="the C library is not built")


@pytest.fixture(autouse=True)
def _c_backend():
    """The runtime is the C backend's: these tests use it whatever XNORINFER_BACKEND says."""
    if C is None:
        yield
        return
    with kernels.use_backend("c"):
        yield


def _feeds(path, sess):
    npz = os.path.join(os.path.dirname(path), "inputs.npz")
    if os.path.exists(npz):
        data = dict(np.load(npz))
        return {i.name: data[i.name] if i.name in data else next(iter(data.values())) for i in sess.get_inputs()}
    rng = np.random.default_rng(0)
    return {i.name: rng.standard_normal([d if isinstance(d, int) else 3 for d in i.shape]).astype(np.float32)
            for i in sess.get_inputs()}


def _same(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        assert u.dtype == v.dtype and u.shape == v.shape
        np.testing.assert_array_equal(u, v)  # bit for bit (NaN equal to NaN)


@needs_c
@pytest.mark.parametrize("isa", C.supported_isas() if C else [])
@pytest.mark.parametrize("path", FIXTURES + [DEMO], ids=lambda p: os.path.relpath(p, HERE))
def test_every_fixture_lowers_and_matches_python(path, isa):
    with kernels.use_backend("c", isa):
        sess = xnorinfer.InferenceSession(path, executor="c")
        assert not isinstance(sess.program(), str), sess.program()  # every fixture has a program
        ref = xnorinfer.InferenceSession(path, executor="python")
        feeds = _feeds(path, sess)
        try:
            got = sess.run(None, feeds)
        except ModelError as exc:  # only an exact 0 at a zero-keeping sign may send a run to Python
            assert "float graph" in str(exc), exc
            auto = xnorinfer.InferenceSession(path)
            got = auto.run(None, feeds)
            assert auto.last_executor == "python"
        else:
            assert sess.last_executor == "c"
        _same(got, ref.run(None, feeds))


@needs_c
def test_batch_sizes_get_their_own_program():
    sess = xnorinfer.InferenceSession(DEMO)
    ref = xnorinfer.InferenceSession(DEMO, executor="python")
    rng = np.random.default_rng(3)
    for batch in (1, 7, 2, 7):
        x = rng.standard_normal((batch, 1, 8, 8)).astype(np.float32)
        _same(sess.run(None, {"image": x}), ref.run(None, {"image": x}))
        assert sess.last_executor == "c"


@needs_c
def test_concurrent_runs_share_nothing():
    sess = xnorinfer.InferenceSession(DEMO)
    rng = np.random.default_rng(4)
    xs = [rng.standard_normal((3, 1, 8, 8)).astype(np.float32) for _ in range(8)]
    want = [xnorinfer.InferenceSession(DEMO, executor="python").run(None, {"image": x})[0] for x in xs]
    errors = []

    def work(i):
        for _ in range(20):
            got = sess.run(None, {"image": xs[i]})[0]
            if not np.array_equal(got, want[i]):
                errors.append(i)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


@needs_c
def test_ternary_zero_falls_back_to_python():
    path = os.path.join(HERE, "fixtures", "torch", "ties_dynamo", "model.onnx")
    sess = xnorinfer.InferenceSession(path)
    ref = xnorinfer.InferenceSession(path, executor="python")
    x = _feeds(path, sess)
    name = next(iter(x))
    nonzero = {name: np.where(x[name] == 0, np.float32(0.5), x[name])}
    _same(sess.run(None, nonzero), ref.run(None, nonzero))  # (zeros inside may still send it to Python)
    zero = {name: x[name].copy()}
    zero[name].flat[0] = 0.0
    _same(sess.run(None, zero), ref.run(None, zero))
    assert sess.last_executor == "python"


@needs_c
def test_xnor_file_program_runs_in_c(tmp_path):
    from xnorinfer.runtime.cmodel import CModel
    sess = xnorinfer.InferenceSession(DEMO)
    path = tmp_path / "digits.xnor"
    sess.save(path, batch=5)
    assert sess.program_note is None
    model = CModel(path.read_bytes())
    assert model.inputs[0][2] == (5, 1, 8, 8) and model.arena_bytes > 0
    x = np.random.default_rng(5).standard_normal((5, 1, 8, 8)).astype(np.float32)
    (got,) = model.run([x])
    _same([got], xnorinfer.InferenceSession(DEMO, executor="python").run(None, {"image": x}))
    reloaded = xnorinfer.InferenceSession(str(path))  # the Python reader accepts the program section
    _same(reloaded.run(None, {"image": x}), [got])


def _program_file(tmp_path):
    sess = xnorinfer.InferenceSession(DEMO)
    path = tmp_path / "m.xnor"
    sess.save(path)
    return bytearray(path.read_bytes())


def _fix_crc(buf):
    struct.pack_into("<I", buf, 48, zlib.crc32(bytes(buf[64:])))
    return bytes(buf)


def _program_words(buf):
    data_off = struct.unpack_from("<Q", buf, 32)[0]
    prog_off, prog_size = struct.unpack_from("<QI", buf, 52)
    return data_off + prog_off, prog_size // 8


@needs_c
@pytest.mark.parametrize("edit, message", [
    (lambda b, p, n: struct.pack_into("<q", b, p + 8, 10 ** 6), "counts out of range"),       # tensor count
    (lambda b, p, n: struct.pack_into("<q", b, p + 8 * (8 + 2), 2 ** 41), "dim 0"),           # tensor 0 dim
    (lambda b, p, n: struct.pack_into("<q", b, p + 8 * (8 + 0), 9), "unknown type"),          # tensor 0 type
    (lambda b, p, n: struct.pack_into("<q", b, p + 8 * (8 + 10), 12), "do not match"),        # tensor 0 nbytes
    (lambda b, p, n: b.__setitem__(slice(p, p + 8), b"XNORPRG0"), "program magic"),
    (lambda b, p, n: struct.pack_into("<q", b, p + 8 * 7, 0), "another version of the runtime's op schema"),
])
def test_loader_rejects_bad_programs(tmp_path, edit, message):
    from xnorinfer.runtime.cmodel import CModel
    buf = _program_file(tmp_path)
    pos, words = _program_words(buf)
    edit(buf, pos, words)
    with pytest.raises(ValueError, match=message):
        CModel(_fix_crc(buf))


@needs_c
def test_loader_rejects_corruption_and_files_without_program(tmp_path):
    from xnorinfer.runtime.cmodel import CModel
    buf = _program_file(tmp_path)
    bad = bytearray(buf)
    bad[-1] ^= 1
    with pytest.raises(ValueError, match="checksum"):
        CModel(bytes(bad))
    with pytest.raises(ValueError, match="shorter than the header"):
        CModel(bytes(buf[:40]))
    plain = xnor_format.dumps(xnorinfer.InferenceSession(DEMO)._graph)
    with pytest.raises(ValueError, match="no program"):
        CModel(plain)


@needs_c
def test_every_step_word_mutation_is_refused_or_runs(tmp_path):
    """Overwrite each word of the step section in turn with hostile values: open either refuses with a
    message or gives a model that runs (the sanitizer fuzz harness does this at scale)."""
    from xnorinfer.runtime.cmodel import CModel
    buf = _program_file(tmp_path)
    pos, words = _program_words(buf)
    n_tensors = struct.unpack_from("<q", buf, pos + 8)[0]
    n_in, n_out, _, n_step_words = struct.unpack_from("<4q", buf, pos + 24)
    first = 8 + 12 * n_tensors + n_in + n_out
    opened = 0
    for w in range(first, first + n_step_words):
        for value in (-1, 0, 1, 2 ** 31, 63):
            b = bytearray(buf)
            struct.pack_into("<q", b, pos + 8 * w, value)
            try:
                model = CModel(_fix_crc(b))
            except ValueError as exc:
                assert str(exc)
                continue
            opened += 1
            model.run([np.zeros(model.inputs[0][2], np.float32)])
    assert opened > 0


def test_an_op_the_runtime_lacks_runs_in_python_and_says_why():
    from onnx import TensorProto, helper
    g = helper.make_graph([helper.make_node("Sqrt", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    sess = xnorinfer.InferenceSession(m)
    assert "Sqrt" in sess.program()
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], np.sqrt(x))
    assert sess.last_executor == "python" and "Sqrt" in sess.summary()
    if C is not None:
        with pytest.raises(ModelError, match="Sqrt"):
            xnorinfer.InferenceSession(m, executor="c").run(None, {"x": x})


@needs_c
def test_sigmoid_runs_in_c_with_the_python_executors_bits():
    """Sigmoid (ONNX's, TFLite's LOGISTIC) is a runtime op: one C call per run, the Python executor's bits."""
    from onnx import TensorProto, helper, numpy_helper
    w = numpy_helper.from_array(np.random.default_rng(1).normal(size=(6, 3, 3, 3)).astype(np.float32), "w")
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                           helper.make_node("Sigmoid", ["c"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 6, 8, 8])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    x = np.random.default_rng(2).normal(size=(2, 3, 8, 8)).astype(np.float32) * 4
    sess = xnorinfer.InferenceSession(m)
    (y,) = sess.run(None, {"x": x})
    assert sess.last_executor == "c"
    np.testing.assert_array_equal(y, xnorinfer.InferenceSession(m, executor="python").run(None, {"x": x})[0])
    (c,) = xnorinfer.InferenceSession(helper.make_model(helper.make_graph(
        g.node[:1], "g", g.input, [helper.make_tensor_value_info("c", TensorProto.FLOAT, None)], [w]),
        opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()).run(None, {"x": x})
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-c.astype(np.float64))), rtol=1e-6, atol=1e-7)


def test_xnor_round_trip_keeps_scalar_constants(tmp_path):
    """A 0-d constant (a Gather index of shape arithmetic) must come back 0-d from a .xnor."""
    path = os.path.join(HERE, "fixtures", "brevitas", "bnn_cnn_ts", "model.onnx")
    sess = xnorinfer.InferenceSession(path, executor="python")
    out = tmp_path / "m.xnor"
    sess.save(out)
    again = xnorinfer.InferenceSession(str(out), executor="python")
    scalars = [k for k, v in sess._graph.constants.items() if np.ndim(v) == 0]
    assert scalars and all(np.ndim(again._graph.constants[k]) == 0 for k in scalars)
    feeds = _feeds(path, sess)
    _same(again.run(None, feeds), sess.run(None, feeds))


@needs_c
@pytest.mark.parametrize("isa", C.supported_isas() if C else [])
@pytest.mark.parametrize("kernel, stride, pads, size", [(3, 1, 1, 13), (11, 4, 2, 45), (5, 2, 0, 21)])
def test_winograd_float_convs_match_python(isa, kernel, stride, pads, size):
    """Float convs Winograd computes (a 3x3 kernel per stride phase): the runtime prepares its weights at
    open, the Python executor at its first call; both give the same bits, on photographs and on exact
    (+-1) inputs, which stay on the direct conv in both."""
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(kernel)
    w = rng.standard_normal((24, 9, kernel, kernel)).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    g = helper.make_graph([helper.make_node("Conv", ["x", "w", "b"], ["y"], strides=[stride] * 2, pads=[pads] * 4),
                           helper.make_node("Relu", ["y"], ["z"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 9, size, size])],
                          [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    with kernels.use_backend("c", isa):
        sess, ref = xnorinfer.InferenceSession(m, executor="c"), xnorinfer.InferenceSession(m, executor="python")
        for x in (rng.standard_normal((1, 9, size, size)).astype(np.float32),
                  rng.integers(-1, 2, (1, 9, size, size)).astype(np.float32)):
            got = sess.run(None, {"x": x})
            assert sess.last_executor == "c"
            _same(got, ref.run(None, {"x": x}))
