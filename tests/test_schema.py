"""The C runtime's op schema (xnorinfer/runtime/schema.py): the C generated from it is current, and a
step can only be written by its parameters' names, within their ranges."""
import os

import pytest

from xnorinfer.runtime import schema

CSRC = os.path.join(os.path.dirname(__file__), "..", "csrc")
WINDOW = dict(stride_h=1, stride_w=1, dilation_h=1, dilation_w=1, pad_top=0, pad_bottom=0, pad_left=0, pad_right=0)


@pytest.mark.skipif(not os.path.isdir(CSRC), reason="csrc/ is not beside tests/: the tests were copied out of the "
                    "repository to run against an installed wheel, which carries no C sources")
def test_generated_c_is_the_schemas():
    assert schema.stale_files(CSRC) == [], "run `python xnorinfer/runtime/schema.py --write`"


def test_a_step_is_encoded_by_name_in_declaration_order():
    words = schema.encode_step("pool", {"x": 3}, 4, dict(kind="avg", kernel_h=2, kernel_w=3, **WINDOW))
    op = schema.BY_NAME["pool"]
    assert words[:4] == [op.code, 1, 1, op.words] and words[4:6] == [3, 4]
    assert words[6:9] == [schema.POOL_KIND.code("avg"), 2, 3] and words[9:] == [1, 1, 1, 1, 0, 0, 0, 0]


@pytest.mark.parametrize("inputs, params, message", [
    ({"x": 0}, dict(kind="max", kernel_h=2, kernel_w=2, strides=2, **WINDOW), "no operand or parameter"),
    ({"x": 0}, dict(kind="max", kernel_h=2, **WINDOW), "kernel_w is missing"),
    ({"x": 0}, dict(kind="max", kernel_h=0, kernel_w=2, **WINDOW), "kernel_h = 0 is outside"),
    ({"x": 0}, dict(kind="median", kernel_h=2, kernel_w=2, **WINDOW), "median"),
    ({}, dict(kind="max", kernel_h=2, kernel_w=2, **WINDOW), "operand x is required"),
])
def test_a_step_the_schema_does_not_allow_is_refused(inputs, params, message):
    with pytest.raises((schema.ParamError, KeyError), match=message):
        schema.encode_step("pool", inputs, 1, params)


def test_the_hash_covers_every_declaration():
    """A program carries the schema's hash and the runtime refuses another's: any change to an op's
    declaration (a parameter's range here) or to an enum must change it."""
    import dataclasses
    pool = schema.BY_NAME["pool"]
    narrower = dataclasses.replace(pool, params=(pool.params[0], dataclasses.replace(pool.params[1], hi=7)) + pool.params[2:])
    ops = tuple(narrower if op is pool else op for op in schema.OPS)
    assert schema.schema_hash(schema.OPS, schema.ENUMS) == schema.SCHEMA_HASH
    assert schema.schema_hash(ops, schema.ENUMS) != schema.SCHEMA_HASH
    assert schema.schema_hash(schema.OPS, schema.ENUMS[:-1]) != schema.SCHEMA_HASH
