"""The C runtime's ops, declared once: both sides of the program format are derived from this file.

Each op is declared with its code, its operands (name, tensor types, and whether it is optional, must
be a constant, or is a variadic list), and its parameters (name, type, range).  From it:
  - Python: the lowering emits every step through `encode_step`, parameters by name
    (xnorinfer/runtime/lower.py, xnorinfer/operators/);
  - C: `python xnorinfer/runtime/schema.py --write` generates csrc/runtime/schema.h (op codes, operand
    indices, one parameter struct per op, the RT_OPS list), csrc/runtime/schema.c (the tables the
    loader checks every step against and decodes its parameters with) and
    csrc/include/xnorinfer/schema_enums.h (the public enums the parameters take: float op codes,
    pool and output kinds, tensor types).
A program carries the schema's hash (`SCHEMA_HASH`) in its header, and the runtime refuses a program
written for another schema; the cffi build refuses to compile when the generated files are not
those of this schema.  So the two sides cannot disagree unnoticed.

Pure Python (no numpy): the build runs it before numpy is installed.
"""
import hashlib
import os
import struct
import sys
from dataclasses import dataclass, field

MAX_RANK = 6
PROGRAM_MAGIC = b"XNORPRG1"
LIMIT = 1 << 31            # the largest size, stride or pad a parameter may hold
MAX_TAPS = 1 << 16         # kernel taps: with every output bounded, a hostile file's work stays bounded
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


@dataclass(frozen=True)
class Enum:
    """A C enum the parameters use (public: csrc/include/xnorinfer/schema_enums.h)."""
    ctype: str            # its C type name
    prefix: str           # its constants' prefix
    values: tuple         # (name, value, comment)
    count: bool = True    # emit PREFIX_COUNT

    def code(self, name):
        for n, v, _ in self.values:
            if n == name:
                return v
        raise KeyError(f"{self.ctype} has no value {name!r}")

    @property
    def names(self):
        return [n for n, _, _ in self.values]


TENSOR_TYPE = Enum("xnor_tensor_type", "XNOR_T_", (
    ("f32", 1, "float32"), ("u8", 2, "uint8 (booleans are 0 / 1)"), ("i32", 3, "int32"),
    ("bits", 4, "packed +-1 bits, 64 per uint64 word along the last axis")), count=False)
ARITH = Enum("xnor_arith_op", "XNOR_ARITH_", (
    ("add", 0, ""), ("sub", 1, ""), ("mul", 2, ""), ("div", 3, ""), ("max", 4, ""), ("min", 5, ""),
    ("prelu", 6, "a < 0 ? a * b : a"), ("greater", 7, "the comparisons write uint8 0 / 1"),
    ("greater_equal", 8, ""), ("less", 9, ""), ("less_equal", 10, ""), ("equal", 11, "")))
COMPARISONS = frozenset(n for n, v, _ in ARITH.values if v >= ARITH.code("greater"))
UNARY = Enum("xnor_unary_op", "XNOR_UN_", (
    ("relu", 0, "max(x, +0.0) by xnor_arith_f32's max rule: -0.0 gives +0.0"), ("neg", 1, ""), ("abs", 2, ""),
    ("round", 3, "half to even (np.round, rint)"), ("floor", 4, ""), ("ceil", 5, ""), ("trunc", 6, ""),
    ("round_up", 7, "sign(x) * ceil(|x|)        (QONNX UP)"),
    ("round_half_up", 8, "sign(x) * floor(|x| + 0.5) (QONNX HALF_UP)"),
    ("round_half_down", 9, "sign(x) * ceil(|x| - 0.5)  (QONNX HALF_DOWN); sign as np.sign: 1, -1, +0.0 for "
                           "either zero, NaN for NaN, so HALF_DOWN of +-0.0 is +0.0 * -0.0 = -0.0, like numpy's"),
    ("sigmoid", 10, "1 / (1 + exp(-x)) in double with the library's own exp, rounded once to float32 (the same "
                    "bits on every CPU)")))
POOL_KIND = Enum("xnor_pool_kind", "XNOR_POOL_", (
    ("max", 0, "padded taps ignored; a window of padding only gives -inf; NaN propagates"),
    ("avg", 1, "the mean of the taps inside the input, summed in double"),
    ("avg_include_pad", 2, "the sum over kernel_h * kernel_w taps")), count=False)
OUTPUT_KIND = Enum("xnor_output_kind", "XNOR_OUT_", (
    ("int32", 0, "the accumulator"), ("float32", 1, "acc * scale + bias, clamped"),
    ("packed", 2, "sign bits by per-channel thresholds")), count=False)
ENUMS = (TENSOR_TYPE, ARITH, UNARY, POOL_KIND, OUTPUT_KIND)

F32, U8, I32, BITS = (TENSOR_TYPE.code(n) for n in ("f32", "u8", "i32", "bits"))
ANY = (F32, U8, I32, BITS)


@dataclass(frozen=True)
class Operand:
    name: str
    types: tuple = (F32,)
    optional: bool = False
    const: bool = False       # must be a constant of the program (weights)
    variadic: bool = False    # the op's last operand: one or more tensors


@dataclass(frozen=True)
class Param:
    name: str
    kind: str = "int"         # "int", "f64" (stored as its IEEE bits), "ints" (`capacity` words)
    lo: int = None
    hi: int = None
    enum: Enum = None         # an int that names a value of this enum
    capacity: int = 1

    @property
    def words(self):
        return self.capacity if self.kind == "ints" else 1

    @property
    def bounds(self):
        if self.enum is not None:
            values = [v for _, v, _ in self.enum.values]
            return min(values), max(values)
        return self.lo, self.hi


@dataclass(frozen=True)
class Group:
    """Parameters several ops share, one C struct (rt_<name>) in each op's parameters, its members
    named one by one (flat) on the Python side."""
    name: str
    doc: str
    params: tuple
    kind: str = "group"

    @property
    def words(self):
        return sum(p.words for p in self.params)


@dataclass(frozen=True)
class Op:
    name: str
    code: int
    doc: str
    operands: tuple
    params: tuple = field(default=())

    @property
    def words(self):
        return sum(p.words for p in self.params)

    def flat_params(self):
        """The parameters in word order, a group's members in its place."""
        return [q for p in self.params for q in (p.params if p.kind == "group" else (p,))]


def _flag(name):
    return Param(name, lo=0, hi=1)


WINDOW = Group("window", "strides, dilations and pads of a sliding window (xnor_conv_params' fields)",
               tuple(Param(n, lo=1, hi=LIMIT) for n in ("stride_h", "stride_w", "dilation_h", "dilation_w")) +
               tuple(Param(n, lo=0, hi=LIMIT) for n in ("pad_top", "pad_bottom", "pad_left", "pad_right")))
GROUPS = (WINDOW,)
KERNEL = (Param("kernel_h", lo=1, hi=MAX_TAPS), Param("kernel_w", lo=1, hi=MAX_TAPS))


OPS = (
    Op("copy", 1, "y = x, bytes copied (reshapes, identities, outputs that are inputs)", (Operand("x", ANY),)),
    Op("pack", 2, "y = sign bits of float32 x along its last axis: bit 1 where x's case (< 0, == 0, > 0) is set "
                  "in minus_mask; ternary: an exact 0 makes the run return XNOR_EFALLBACK",
       (Operand("x"),), (Param("minus_mask", lo=0, hi=7), _flag("ternary"))),
    Op("bconv", 3, "binary convolution (a dense layer is a 1x1 one) with its fused output transform",
       (Operand("x", (BITS,)), Operand("w", (BITS,), const=True), Operand("scale", optional=True),
        Operand("bias", optional=True), Operand("thresholds", (I32,), optional=True),
        Operand("flip", (U8,), optional=True), Operand("residual", optional=True)),
       (Param("in_c", lo=1, hi=LIMIT), WINDOW,
        Param("groups", lo=1, hi=LIMIT), _flag("pad_value"), Param("kind", enum=OUTPUT_KIND),
           Param("clamp_min", "f64"), Param("clamp_max", "f64"), _flag("acc_clamp"),
        Param("acc_min", lo=INT32_MIN, hi=INT32_MAX), Param("acc_max", lo=INT32_MIN, hi=INT32_MAX))),
    Op("bmaxpool", 4, "max-pool of packed bits (AND over the window); or_mask: channels pooled by OR instead",
       (Operand("x", (BITS,)), Operand("or_mask", (BITS,), optional=True, const=True)),
       (Param("channels", lo=1, hi=LIMIT),) + KERNEL + (WINDOW,)),
    Op("fconv", 5, "float conv, NHWC: groups 1 (HWIO weights) or depthwise (kh, kw, c)",
       (Operand("x"), Operand("w", const=True), Operand("bias", optional=True)),
       (WINDOW, Param("groups", lo=1, hi=LIMIT))),
    Op("pool", 6, "float max / average pool, NHWC", (Operand("x"),),
       (Param("kind", enum=POOL_KIND),) + KERNEL + (WINDOW,)),
    Op("arith", 7, "y = a <fn> b, numpy broadcasting", (Operand("a"), Operand("b")), (Param("fn", enum=ARITH),)),
    Op("where", 8, "y = cond ? a : b, numpy broadcasting", (Operand("cond", (U8,)), Operand("a"), Operand("b"))),
    Op("unary", 9, "y = fn(x)", (Operand("x"),), (Param("fn", enum=UNARY),)),
    Op("batchnorm", 10, "y = ((x - mean) / denom) * scale + bias along axis",
       tuple(Operand(n) for n in ("x", "mean", "denom", "scale", "bias")), (Param("axis", lo=0, hi=MAX_RANK - 1),)),
    Op("softmax", 11, "softmax over the axes [begin, end) taken as one", (Operand("x"),),
       (Param("begin", lo=0, hi=MAX_RANK - 1), Param("end", lo=1, hi=MAX_RANK))),
    Op("mean", 12, "mean over the axes [begin, end)", (Operand("x"),),
       (Param("begin", lo=0, hi=MAX_RANK - 1), Param("end", lo=1, hi=MAX_RANK))),
    Op("transpose", 13, "y = x transposed: y dim i = x dim perm[i] (perm entries past the rank are 0)",
       (Operand("x", ANY),), (Param("perm", "ints", lo=0, hi=MAX_RANK - 1, capacity=MAX_RANK),)),
    Op("concat", 14, "y = the inputs joined along axis", (Operand("x", ANY, variadic=True),),
       (Param("axis", lo=0, hi=MAX_RANK - 1),)),
)
BY_NAME = {op.name: op for op in OPS}


def schema_hash(ops, enums):
    """A 63-bit digest of every declaration: ops, operands, parameters and their ranges, enums."""
    lines = [f"magic {PROGRAM_MAGIC!r} rank {MAX_RANK}"]
    for e in enums:
        lines.append(f"enum {e.ctype} {e.prefix} " + " ".join(f"{n}={v}" for n, v, _ in e.values))
    for op in ops:
        lines.append(f"op {op.name} {op.code}")
        lines += [f"  in {o.name} {o.types} {o.optional} {o.const} {o.variadic}" for o in op.operands]
        for p in op.params:
            members = p.params if p.kind == "group" else (p,)
            lines += [f"  par {p.name}.{q.name} {q.kind} {q.bounds} {q.capacity}" for q in members]
    return int.from_bytes(hashlib.sha256("\n".join(lines).encode()).digest()[:8], "little") & ((1 << 63) - 1)


SCHEMA_HASH = schema_hash(OPS, ENUMS)


class ParamError(ValueError):
    """A step the schema does not allow (a lowering bug, or a value out of the runtime's range)."""


def encode_step(op_name, inputs, output, params):
    """The int64 words of one step: op, n_in, n_out, n_par, the operands' tensor indices (-1 for an
    omitted optional one; a variadic operand is a list), the output's, then the parameters in
    declaration order.  inputs: {operand name: tensor index, list, or None}; params: {name: value}."""
    op = BY_NAME[op_name]
    unknown = set(inputs) - {o.name for o in op.operands} | set(params) - {p.name for p in op.flat_params()}
    if unknown:
        raise ParamError(f"{op_name}: no operand or parameter {sorted(unknown)}")
    args = []
    for o in op.operands:
        t = inputs.get(o.name)
        if o.variadic:
            if not t:
                raise ParamError(f"{op_name}: operand {o.name} needs at least one tensor")
            args += list(t)
        elif t is None:
            if not o.optional:
                raise ParamError(f"{op_name}: operand {o.name} is required")
            args.append(-1)
        else:
            args.append(t)
    words = []
    for p in op.flat_params():
        if p.name not in params:
            raise ParamError(f"{op_name}: parameter {p.name} is missing")
        words += _param_words(op_name, p, params[p.name])
    return [op.code, len(args), 1, len(words)] + args + [output] + words


def _param_words(op_name, p, value):
    if p.kind == "f64":
        return [struct.unpack("<q", struct.pack("<d", float(value)))[0]]
    values = list(value) if p.kind == "ints" else [value]
    if p.kind == "ints":
        if len(values) > p.capacity:
            raise ParamError(f"{op_name}: {p.name} holds at most {p.capacity} values, got {len(values)}")
        values += [0] * (p.capacity - len(values))
    if p.enum is not None and isinstance(values[0], str):
        values = [p.enum.code(values[0])]
    lo, hi = p.bounds
    for v in values:
        if isinstance(v, bool) or int(v) != v or not lo <= int(v) <= hi:
            raise ParamError(f"{op_name}: {p.name} = {v} is outside [{lo}, {hi}]")
    return [int(v) for v in values]


# ---- the generated C ------------------------------------------------------------------------------

_BANNER = "/* Generated from xnorinfer/runtime/schema.py by `python xnorinfer/runtime/schema.py --write`: do not edit. */\n"


def _comment(text, indent=""):
    return f"{indent}/* {text} */" if text else ""


def render_enums_header():
    out = [_BANNER, "#ifndef XNORINFER_SCHEMA_ENUMS_H", "#define XNORINFER_SCHEMA_ENUMS_H", ""]
    for e in ENUMS:
        out.append("typedef enum {")
        for n, v, doc in e.values:
            out.append(f"    {e.prefix}{n.upper()} = {v},{(' ' + _comment(doc)) if doc else ''}")
        if e.count:
            out.append(f"    {e.prefix}COUNT = {max(v for _, v, _ in e.values) + 1}")
        out.append(f"}} {e.ctype};")
        out.append("")
    out.append("#endif")
    return "\n".join(out) + "\n"


def _ctype(p):
    return "double" if p.kind == "f64" else f"rt_{p.name}" if p.kind == "group" else "int64_t"


def _fields(params):
    """Struct members, consecutive ones of one C type on one line, enums named in a comment."""
    lines, run = [], []
    for p in list(params) + [None]:
        if run and (p is None or _ctype(p) != _ctype(run[0])):
            names = ", ".join(q.name + (f"[{q.capacity}]" if q.kind == "ints" else "") for q in run)
            enums = "; ".join(f"{q.name}: {q.enum.ctype}" for q in run if getattr(q, "enum", None))
            lines.append(f"    {_ctype(run[0])} {names};" + (f" /* {enums} */" if enums else ""))
            run = []
        if p is not None:
            run.append(p)
    return lines


def _wrapped(items, indent="    ", width=118):
    """items joined by ", ", wrapped at `width` columns."""
    lines, line = [], indent
    for item in items:
        if len(line) + len(item) + 2 > width and line.strip():
            lines.append(line.rstrip())
            line = indent
        line += item + ", "
    lines.append(line.rstrip())
    return lines


def render_schema_header():
    out = [_BANNER, "#ifndef XNOR_RUNTIME_SCHEMA_H", "#define XNOR_RUNTIME_SCHEMA_H", "#include <stddef.h>",
           "#include <stdint.h>", "", f"#define RT_SCHEMA_HASH INT64_C({SCHEMA_HASH})", "", "enum {"]
    out += [f"    RT_OP_{op.name.upper()} = {op.code},{(' ' + _comment(op.doc)) if op.doc else ''}" for op in OPS]
    out += [f"    RT_OP_COUNT = {max(op.code for op in OPS) + 1}", "};", "",
            "/* The ops, for tables indexed by op: X(name, NAME). */",
            "#define RT_OPS(X) " + " ".join(f"X({op.name}, {op.name.upper()})" for op in OPS), ""]
    for g in GROUPS:
        out += [f"/* {g.doc} */", "typedef struct {"] + _fields(g.params) + [f"}} rt_{g.name};", ""]
    for op in OPS:
        names = [f"RT_{op.name.upper()}_{o.name.upper()}" for o in op.operands]
        out.append(f"/* {op.name}: operand indices, parameters */")
        out.append("enum { " + ", ".join(f"{n} = {i}" for i, n in enumerate(names)) +
                   f", RT_{op.name.upper()}_OPERANDS = {len(names)} }};")
        out += ["typedef struct {"] + (_fields(op.params) or ["    char unused;"]) + [f"}} rt_{op.name}_params;", ""]
    out += ["/* A step's parameters, decoded by the loader. */", "typedef union {"]
    out += [f"    rt_{op.name}_params {op.name};" for op in OPS]
    out += ["} rt_params;", "",
            "enum { RT_P_INT = 0, RT_P_F64 = 1, RT_P_INTS = 2, RT_P_GROUP = 3 };",
            "enum { RT_OPERAND_OPTIONAL = 1, RT_OPERAND_CONST = 2, RT_OPERAND_VARIADIC = 4 };",
            "/* types: bit t = tensor type t */",
            "typedef struct { const char *name; unsigned types; unsigned flags; } rt_operand_spec;",
            "/* a parameter of `count` int64 words in [lo, hi], or one double; or a group of n_members */",
            "typedef struct rt_param_spec {",
            "    const char *name;",
            "    int kind;",
            "    size_t offset;",
            "    int64_t lo, hi;",
            "    size_t count;",
            "    const struct rt_param_spec *members;",
            "    int n_members;",
            "} rt_param_spec;",
            "typedef struct {",
            "    const char *name;",
            "    const rt_operand_spec *operands;",
            "    int n_operands;",
            "    const rt_param_spec *params;",
            "    int n_params, n_words;   /* parameters, and the int64 words they take in a step */",
            "} rt_op_spec;",
            "", "/* Indexed by op code (schema.c); entry 0 is unused. */",
            "extern const rt_op_spec rt_op_specs[RT_OP_COUNT];", "", "#endif"]
    return "\n".join(out) + "\n"


def _param_specs(struct, params):
    specs = []
    for p in params:
        lo, hi = p.bounds if p.kind != "group" else (None, None)
        specs.append(f"GROUP({struct}, {p.name}, {p.name}_members)" if p.kind == "group" else
                     f"F64({struct}, {p.name})" if p.kind == "f64" else
                     f"INTS({struct}, {p.name}, {lo}, {hi}, {p.capacity})" if p.kind == "ints" else
                     f"INT({struct}, {p.name}, {lo}, {hi})")
    return specs


def render_schema_source():
    out = [_BANNER, '#include "schema.h"', "",
           "#define INT(s, f, lo, hi) {#f, RT_P_INT, offsetof(s, f), INT64_C(lo), INT64_C(hi), 1, NULL, 0}",
           "#define INTS(s, f, lo, hi, n) {#f, RT_P_INTS, offsetof(s, f), INT64_C(lo), INT64_C(hi), n, NULL, 0}",
           "#define F64(s, f) {#f, RT_P_F64, offsetof(s, f), 0, 0, 1, NULL, 0}",
           "#define GROUP(s, f, m) {#f, RT_P_GROUP, offsetof(s, f), 0, 0, 0, m, (int)(sizeof m / sizeof *m)}", ""]
    for g in GROUPS:
        out += [f"static const rt_param_spec {g.name}_members[] = {{"] + _wrapped(_param_specs(f"rt_{g.name}", g.params)) + ["};"]
    for op in OPS:
        ops = []
        for o in op.operands:
            flags = "|".join(f for f, on in (("RT_OPERAND_OPTIONAL", o.optional), ("RT_OPERAND_CONST", o.const),
                                             ("RT_OPERAND_VARIADIC", o.variadic)) if on) or "0"
            ops.append(f'{{"{o.name}", {"|".join(f"(1u << {t})" for t in o.types)}, {flags}}}')
        out += [f"static const rt_operand_spec {op.name}_operands[] = {{"] + _wrapped(ops) + ["};"]
        if op.params:
            out += [f"static const rt_param_spec {op.name}_params[] = {{"] + \
                _wrapped(_param_specs(f"rt_{op.name}_params", op.params)) + ["};"]
    out += ["", "const rt_op_spec rt_op_specs[RT_OP_COUNT] = {"]
    for op in OPS:
        params = f"{op.name}_params" if op.params else "NULL"
        out.append(f'    [RT_OP_{op.name.upper()}] = {{"{op.name}", {op.name}_operands, {len(op.operands)}, {params}, '
                   f"{len(op.params)}, {op.words}}},")
    out.append("};")
    return "\n".join(out) + "\n"


def generated_files(csrc):
    """{path: text} of every file generated from this schema, under the csrc/ directory `csrc`."""
    return {os.path.join(csrc, "include", "xnorinfer", "schema_enums.h"): render_enums_header(),
            os.path.join(csrc, "runtime", "schema.h"): render_schema_header(),
            os.path.join(csrc, "runtime", "schema.c"): render_schema_source()}


def stale_files(csrc):
    """The generated files under `csrc` that are missing or differ from this schema's."""
    stale = []
    for path, text in generated_files(csrc).items():
        try:
            with open(path) as f:
                if f.read() == text:
                    continue
        except OSError:
            pass
        stale.append(path)
    return stale


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    csrc = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "csrc")
    csrc = os.path.normpath(next((a.split("=", 1)[1] for a in argv if a.startswith("--csrc=")), csrc))
    if "--write" in argv:
        for path, text in generated_files(csrc).items():
            with open(path, "w") as f:
                f.write(text)
            print(f"wrote {path}")
        return 0
    stale = stale_files(csrc)
    for path in stale:
        print(f"stale: {path} (run `python xnorinfer/runtime/schema.py --write`)")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
