"""Mutation fuzzing of the model loaders: random bit flips, truncations, inserted bytes, and (for
.xnor) structured edits of the graph description with the checksum recomputed, so the parser itself
is exercised.  A case passes when loading (and, if it loads, running on a small input) either works or
raises an ordinary Python exception; a crash kills the process, which is the failure being hunted.
A broken file should be refused when it loads, with a ModelError naming the problem: the outcomes
say which exceptions were raised where."""
import collections
import json
import struct
import zlib

import numpy as np

from ..importers import xnor as xnor_format

EXPECTED = (ValueError, TypeError, KeyError, IndexError, OverflowError, MemoryError, FileNotFoundError,
            AttributeError, RecursionError, UnicodeDecodeError, ZeroDivisionError, AssertionError, RuntimeError)


def _with_crc(buf):
    buf = bytearray(buf)
    crc = zlib.crc32(bytes(buf[xnor_format.HEADER.size:]))
    struct.pack_into("<I", buf, 48, crc)
    return bytes(buf)


def _edit_json(buf, rng):
    """Rewrite one number or string of the .xnor graph description (dims, offsets, ops...)."""
    (magic, version, flags, json_off, json_size, data_off, data_size, crc, prog_off,
     prog_size) = xnor_format.HEADER.unpack_from(buf, 0)
    doc = json.loads(buf[json_off:json_off + json_size])
    spots = []

    def walk(obj, path):
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, path + [k])
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                walk(v, path + [i])
        else:
            spots.append(path)
    walk(doc, [])
    path = spots[rng.integers(len(spots))]
    target = doc
    for key in path[:-1]:
        target = target[key]
    choices = [2**31, 2**62, -1, 0, 1, 63, 65, "uint64", "XBConv", "Conv", None, [], {}, "", 1e308, [2**40, 2**40]]
    target[path[-1]] = choices[rng.integers(len(choices))]
    text = json.dumps(doc).encode()
    new_data_off = xnor_format.HEADER.size + len(text)
    new_data_off += (-new_data_off) % xnor_format.ALIGN
    body = text + b"\0" * (new_data_off - xnor_format.HEADER.size - len(text)) + buf[data_off:]
    header = xnor_format.HEADER.pack(magic, version, flags, xnor_format.HEADER.size, len(text), new_data_off,
                                     data_size, 0, prog_off, prog_size)
    return _with_crc(header + body)


def mutate(buf, rng, is_xnor):
    kind = rng.integers(6 if is_xnor else 4)
    b = bytearray(buf)
    if kind == 0:  # flip bits
        for _ in range(rng.integers(1, 9)):
            i = rng.integers(len(b))
            b[i] ^= 1 << rng.integers(8)
    elif kind == 1:  # truncate
        b = b[:rng.integers(len(b))]
    elif kind == 2:  # insert or overwrite with extreme bytes
        i = rng.integers(len(b))
        b[i:i + 8] = rng.choice([b"\xff" * 8, b"\x00" * 8, b"\x7f\xff\xff\xff\xff\xff\xff\xff"])
    elif kind == 3:  # duplicate a slice
        i, j = sorted(rng.integers(len(b), size=2))
        b[j:j] = b[i:j][:4096]
    elif kind == 4:  # bit flips with the checksum made right again
        for _ in range(rng.integers(1, 5)):
            i = rng.integers(xnor_format.HEADER.size, len(b))
            b[i] ^= 1 << rng.integers(8)
        return _with_crc(b)
    else:
        return _edit_json(bytes(buf), rng)
    return bytes(b)


def run_case(data, feed_shape, session_class):
    """The outcome of loading `data` (and, if it loads, running it on zeros): "ok", or "load:" / "run:"
    and the name of the exception raised."""
    stage = "load"
    try:
        sess = session_class(data)
        stage = "run"
        inputs = sess.get_inputs()
        if len(inputs) == 1:
            sess.run(None, {inputs[0].name: np.zeros(feed_shape, np.float32)})
    except EXPECTED as exc:
        return f"{stage}:{type(exc).__name__}"
    return "ok"


def fuzz(model_bytes, feed_shape, cases, seed=0, session_class=None):
    """Run `cases` mutations of model_bytes; returns a Counter of their outcomes (run_case)."""
    if session_class is None:
        from ..session import InferenceSession as session_class
    rng = np.random.default_rng(seed)
    is_xnor = model_bytes[:8] == xnor_format.MAGIC
    return collections.Counter(run_case(mutate(model_bytes, rng, is_xnor), feed_shape, session_class)
                               for _ in range(cases))
