"""The C kernel library through cffi (the extension xnorinfer.kernels.clib, built by build_ffi.py).

Enum values (statuses, dtypes, ISA paths, float op codes) are read from the compiled library's own
constants, never retyped here.
"""
import logging
import os

import numpy as np

from ..errors import BackendError

log = logging.getLogger("xnorinfer")


# numpy dtypes xnor_pack takes, and their xnor_dtype constants
PACK_DTYPES = {"float16": "XNOR_F16", "float32": "XNOR_F32", "float64": "XNOR_F64", "int8": "XNOR_I8",
               "int16": "XNOR_I16", "int32": "XNOR_I32", "int64": "XNOR_I64"}


class CBackend:
    name = "c"

    def __init__(self, ffi, lib):
        self.ffi, self.lib = ffi, lib
        self._dtype_codes = {np.dtype(name): getattr(lib, code) for name, code in PACK_DTYPES.items()}
        self._isa_names = [ffi.string(lib.xnor_isa_name(i)).decode() for i in range(lib.XNOR_ISA_COUNT)]
        self._check(lib.xnor_init())
        forced = os.environ.get("XNORINFER_ISA", "").strip()
        if forced:
            log.info("XNORINFER_ISA=%s forces the C kernels' %s path (unset, the CPU's best runs)", forced,
                     self._isa_names[lib.xnor_isa_active()])

    def _check(self, status):
        if status != self.lib.XNOR_OK:
            msg = self.ffi.string(self.lib.xnor_last_error()).decode()
            if status == self.lib.XNOR_EUNSUPPORTED:
                raise BackendError(msg)
            raise ValueError(msg)

    # ffi.from_buffer is the cheapest way from a numpy array to a C pointer (~0.3 us, against 1-2 us
    # for .ctypes or __array_interface__), which matters for small calls.
    def pack_rows(self, x, out, num_threads=None):
        fb = self.ffi.from_buffer
        rows, k = x.shape
        status = self.lib.xnor_pack_threads(fb("char[]", x), self._dtype_codes[x.dtype], rows, k, fb("uint64_t[]", out),
                                            num_threads or 0)
        if status:
            self._check(status)

    def unpack_rows(self, words, k, out):
        fb = self.ffi.from_buffer
        status = self.lib.xnor_unpack_f32(fb("uint64_t[]", words), words.shape[0], k, fb("float[]", out))
        if status:
            self._check(status)

    def bgemm(self, a, b, k, out, num_threads):
        fb = self.ffi.from_buffer
        status = self.lib.xnor_bgemm(fb("uint64_t[]", a), fb("uint64_t[]", b), fb("int32_t[]", out),
                                     a.shape[0], b.shape[0], k, num_threads)
        if status:
            self._check(status)

    def _conv_params(self, geometry):
        params = self.ffi.new("xnor_conv_params *")
        for name, value in geometry.items():
            setattr(params, name, value)
        return params

    def _transform(self, transform, keep):
        """An xnor_output_transform pointing into the arrays of `transform`; `keep` holds them alive."""
        fb = self.ffi.from_buffer
        t = self.ffi.new("xnor_output_transform *")
        keep.append(t)
        t.kind = transform.kind
        t.clamp_min, t.clamp_max = transform.clamp
        if getattr(transform, "acc_clamp", None) is not None:
            t.acc_clamp = 1
            t.acc_min, t.acc_max = transform.acc_clamp
        for field, ctype in (("scale", "float[]"), ("bias", "float[]"), ("thresholds", "int32_t[]"),
                             ("flip", "uint8_t[]")):
            array = getattr(transform, field)
            if array is not None:
                buf = fb(ctype, array)
                keep.append(buf)
                setattr(t, field, buf)
        return t

    def layout_key(self):
        """Prepared weights are laid out for one ISA path (its micro-kernel's panel width)."""
        return ("c", self.lib.xnor_isa_active())

    def prepare_bconv(self, w, geometry):
        params = self._conv_params(geometry)
        sizes = self.ffi.new("size_t[2]")
        status = self.lib.xnor_bconv_prepared_size(params, sizes, sizes + 1)
        if status:
            self._check(status)
        panels = np.empty(max(int(sizes[0]), 1), np.uint64)
        tap_sums = np.empty(int(sizes[1]), np.int32) if sizes[1] else None
        fb = self.ffi.from_buffer
        status = self.lib.xnor_bconv_prepare(fb("uint64_t[]", w), params, fb("uint64_t[]", panels),
                                             fb("int32_t[]", tap_sums) if tap_sums is not None else self.ffi.NULL)
        if status:
            self._check(status)
        return self.lib.xnor_isa_active(), panels, tap_sums

    def bconv_plan(self, prepared, geometry, transform):
        """A function (x, out, num_threads) for one layer and input shape, its C structs built once."""
        keep = []
        fb = self.ffi.from_buffer
        isa, panels, tap_sums = prepared
        weights = self.ffi.new("xnor_bconv_prepared *")
        weights.isa = isa
        keep.append(fb("uint64_t[]", panels))
        weights.panels = keep[-1]
        if tap_sums is not None:
            keep.append(fb("int32_t[]", tap_sums))
            weights.tap_sums = keep[-1]
        params, t = self._conv_params(geometry), self._transform(transform, keep)
        run_c, run_add, check = self.lib.xnor_bconv2d_prepared, self.lib.xnor_bconv2d_prepared_add, self._check

        def run(x, out, num_threads, residual=None):
            if residual is None:
                status = run_c(fb("uint64_t[]", x), weights, params, t, fb("char[]", out), num_threads)
            else:
                status = run_add(fb("uint64_t[]", x), weights, params, t, fb("float[]", residual), fb("char[]", out),
                                 num_threads)
            if status:
                check(status)
        run.keep = keep  # the buffers the structs point into live as long as the plan
        return run

    def bconv2d(self, x, prepared, geometry, transform, out, num_threads):
        self.bconv_plan(prepared, geometry, transform)(x, out, num_threads)

    def bmaxpool2d(self, x, geometry, out, num_threads):
        fb = self.ffi.from_buffer
        status = self.lib.xnor_bmaxpool2d(fb("uint64_t[]", x), self._conv_params(geometry),
                                          fb("uint64_t[]", out), num_threads)
        if status:
            self._check(status)

    def conv2d_f32(self, x, w, bias, geometry, out, num_threads, prepared=None):
        """Float NHWC conv (groups 1 with HWIO weights, or depthwise with (kh, kw, c) weights); prepared:
        conv2d_f32_prepare's array for this layer (Winograd), or None for the direct conv."""
        fb = self.ffi.from_buffer
        bias_p = fb("float[]", bias) if bias is not None else self.ffi.NULL
        if prepared is None:
            status = self.lib.xnor_conv2d_f32(fb("float[]", x), fb("float[]", w), bias_p,
                                              self._conv_params(geometry), fb("float[]", out), num_threads)
        else:
            status = self.lib.xnor_conv2d_f32_run_prepared(fb("float[]", x), fb("float[]", w), fb("float[]", prepared),
                                                           bias_p, self._conv_params(geometry), fb("float[]", out),
                                                           num_threads)
        if status:
            self._check(status)

    def conv2d_f32_prepare(self, w, geometry):
        """Winograd-prepared weights for a float conv of this geometry, or None when it runs direct."""
        params = self._conv_params(geometry)
        floats = self.ffi.new("size_t *")
        self._check(self.lib.xnor_conv2d_f32_prepared_size(params, floats))
        if not floats[0]:
            return None
        prepared = np.empty(int(floats[0]), np.float32)
        self._check(self.lib.xnor_conv2d_f32_prepare(self.ffi.from_buffer("float[]", w), params,
                                                     self.ffi.from_buffer("float[]", prepared)))
        return prepared

    def pool2d_f32(self, x, geometry, kind, out, num_threads):
        """kind: "max", "avg" or "avg_include_pad" (xnor_pool_kind)."""
        fb = self.ffi.from_buffer
        kind = getattr(self.lib, "XNOR_POOL_" + kind.upper())
        status = self.lib.xnor_pool2d_f32(fb("float[]", x), self._conv_params(geometry), kind, fb("float[]", out),
                                          num_threads)
        if status:
            self._check(status)

    # ---- float tensor ops (float32, C-contiguous arrays; out preallocated by the caller) ----

    def _dims(self, shapes):
        """size_t arrays of `shapes`, each left-padded with 1s to the longest (and to rank >= 1)."""
        rank = max(1, max(len(s) for s in shapes))
        return rank, [self.ffi.new("size_t[]", [1] * (rank - len(s)) + [int(d) for d in s]) for s in shapes]

    def arith_f32(self, op, a, b, out):
        """out = a <op> b with numpy broadcasting; out has the broadcast shape, float32 (uint8 for the
        comparisons)."""
        fb = self.ffi.from_buffer
        rank, (da, db, do) = self._dims((a.shape, b.shape, out.shape))
        status = self.lib.xnor_arith_f32(getattr(self.lib, "XNOR_ARITH_" + op.upper()), fb("float[]", a), da, fb("float[]", b), db,
                                         fb("char[]", out), do, rank)
        if status:
            self._check(status)

    def where_f32(self, cond, a, b, out):
        """out = cond ? a : b (cond uint8 or bool), broadcasting."""
        fb = self.ffi.from_buffer
        rank, (dc, da, db, do) = self._dims((cond.shape, a.shape, b.shape, out.shape))
        status = self.lib.xnor_where_f32(fb("uint8_t[]", cond), dc, fb("float[]", a), da, fb("float[]", b), db,
                                         fb("float[]", out), do, rank)
        if status:
            self._check(status)

    def unary_f32(self, op, x, out):
        fb = self.ffi.from_buffer
        status = self.lib.xnor_unary_f32(getattr(self.lib, "XNOR_UN_" + op.upper()), fb("float[]", x), fb("float[]", out), x.size)
        if status:
            self._check(status)

    def batchnorm_f32(self, x, mean, denom, scale, bias, outer, channels, inner, out):
        fb = self.ffi.from_buffer
        status = self.lib.xnor_batchnorm_f32(fb("float[]", x), fb("float[]", mean), fb("float[]", denom),
                                             fb("float[]", scale), fb("float[]", bias), outer, channels, inner,
                                             fb("float[]", out))
        if status:
            self._check(status)

    def softmax_f32(self, x, outer, axis, inner, out):
        """Softmax over the middle axis of x viewed as (outer, axis, inner); out may be x."""
        fb = self.ffi.from_buffer
        status = self.lib.xnor_softmax_f32(fb("float[]", x), outer, axis, inner, fb("float[]", out))
        if status:
            self._check(status)

    def mean_f32(self, x, outer, reduce, inner, out):
        """Mean over the middle axis of x viewed as (outer, reduce, inner) into out (outer * inner values)."""
        fb = self.ffi.from_buffer
        status = self.lib.xnor_mean_f32(fb("float[]", x), outer, reduce, inner, fb("float[]", out))
        if status:
            self._check(status)

    def transpose(self, x, perm, out):
        """out = np.transpose(x, perm) for elements of 1, 2, 4 or 8 bytes."""
        fb = self.ffi.from_buffer
        rank = x.ndim
        if rank == 0:
            out[...] = x
            return
        dims, p = self.ffi.new("size_t[]", list(x.shape)), self.ffi.new("size_t[]", [int(i) for i in perm])
        status = self.lib.xnor_transpose(fb("char[]", x), x.itemsize, dims, p, rank, fb("char[]", out))
        if status:
            self._check(status)

    def num_threads(self):
        return int(self.lib.xnor_num_threads())

    def isa(self):
        return self._isa_names[self.lib.xnor_isa_active()]

    def supported_isas(self):
        mask = self.lib.xnor_isa_supported()
        return [name for i, name in enumerate(self._isa_names) if mask & (1 << i)]

    def select_isa(self, name):
        if name not in self._isa_names:
            raise ValueError(f"unknown ISA {name!r}; expected one of {', '.join(self._isa_names)}")
        self._check(self.lib.xnor_isa_select(self._isa_names.index(name)))

    def popcount_peak_loop(self, iters):
        """Run the active ISA's register-only XOR-popcount loop; returns the MACs it performed."""
        sink = self.ffi.new("uint64_t *")
        return float(self.lib.xnor_popcount_peak_loop(iters, sink))

    def info(self):
        return {"backend": "c", "isa": self.isa(), "supported_isas": self.supported_isas(),
                "num_threads": self.num_threads()}
