"""The spatial geometry of a 2-D convolution or pooling window, in one place: output size, SAME
padding, ceil mode, dilation.  Every layer, importer, pass, report and the lowering use it.

One pad order everywhere: (top, bottom, left, right), the order of xnor_conv_params.  ONNX writes
`pads` as (top, left, bottom, right) and TFLite states SAME/VALID; both are converted here.
"""
from dataclasses import dataclass

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def onnx_pads(pads):
    """ONNX's 2-D `pads` (x1_begin, x2_begin, x1_end, x2_end) in our order (top, bottom, left, right)."""
    top, left, bottom, right = pads
    return top, bottom, left, right


def to_onnx_pads(pads):
    top, bottom, left, right = pads
    return top, left, bottom, right


def span(kernel, dilation):
    """The extent of a dilated window along one axis."""
    return dilation * (kernel - 1) + 1


def same_pads(in_hw, kernel, stride, dilation=(1, 1), lower=False):
    """(top, bottom, left, right) of SAME padding (ONNX SAME_UPPER, TensorFlow's SAME: the odd pixel at
    the end; SAME_LOWER: at the start) for an input of in_hw."""
    pads = []
    for size, k, s, d in zip(in_hw, kernel, stride, dilation):
        out = -(-size // s)
        total = max(0, (out - 1) * s + span(k, d) - size)
        small, large = total // 2, total - total // 2
        pads.append((large, small) if lower else (small, large))
    return pads[0][0], pads[0][1], pads[1][0], pads[1][1]


@dataclass(frozen=True)
class ConvGeometry:
    """A window of `kernel` taps sliding over an input of `in_hw` with `stride` and `dilation`,
    zero-padded by `pads` (top, bottom, left, right).  In ceil mode the last window may overhang the
    bottom / right padding by `extra` (bottom, right) rows and columns (pools only)."""
    in_hw: tuple
    kernel: tuple
    stride: tuple = (1, 1)
    dilation: tuple = (1, 1)
    pads: tuple = (0, 0, 0, 0)
    extra: tuple = (0, 0)
    ceil_out: tuple = None  # ceil mode: the output size its rule gives (see resolve)

    @classmethod
    def resolve(cls, in_hw, kernel, stride=(1, 1), dilation=(1, 1), pads=(0, 0, 0, 0), auto_pad="NOTSET",
                ceil_mode=False):
        """The geometry a model's attributes give for an input of in_hw: `auto_pad` (ONNX: SAME_UPPER,
        SAME_LOWER, VALID) replaces `pads`; ceil mode adds the windows that start inside the input or
        its padding but overhang its end."""
        in_hw, kernel, stride, dilation = (tuple(int(v) for v in t) for t in (in_hw, kernel, stride, dilation))
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            pads = same_pads(in_hw, kernel, stride, dilation, lower=auto_pad == "SAME_LOWER")
        elif auto_pad == "VALID":
            pads = (0, 0, 0, 0)
        g = cls(in_hw, kernel, stride, dilation, tuple(int(p) for p in pads))
        if not ceil_mode:
            return g
        extra, out_hw = [], []
        for axis, (lo, hi) in enumerate(((g.pads[0], g.pads[1]), (g.pads[2], g.pads[3]))):
            size, s, sp = in_hw[axis], stride[axis], span(kernel[axis], dilation[axis])
            out = -(-(size + lo + hi - sp) // s) + 1
            if (out - 1) * s >= size + lo:  # a window may not start in the bottom / right padding
                out -= 1
            extra.append(max(0, (out - 1) * s + sp - (size + lo + hi)))
            out_hw.append(max(out, 0))
        return cls(in_hw, kernel, stride, dilation, g.pads, tuple(extra), tuple(out_hw))

    @property
    def spans(self):
        return span(self.kernel[0], self.dilation[0]), span(self.kernel[1], self.dilation[1])

    @property
    def padded_hw(self):
        """The input's size with its padding (and ceil mode's overhang)."""
        top, bottom, left, right = self.pads
        return self.in_hw[0] + top + bottom + self.extra[0], self.in_hw[1] + left + right + self.extra[1]

    @property
    def fits(self):
        """Whether at least one window fits the padded input."""
        return all(p >= s for p, s in zip(self.padded_hw, self.spans))

    @property
    def out_hw(self):
        """Output height and width (0 where no window fits)."""
        if self.ceil_out is not None:
            return self.ceil_out
        return tuple(max(0, (p - s) // st + 1) if p >= s else 0
                     for p, s, st in zip(self.padded_hw, self.spans, self.stride))

    @property
    def all_pads(self):
        """(top, bottom, left, right) with ceil mode's overhang added to bottom and right."""
        top, bottom, left, right = self.pads
        return top, bottom + self.extra[0], left, right + self.extra[1]

    def c_params(self, batch, in_c, out_c, groups=1, pad_value=0):
        """The fields of xnor_conv_params (ceil mode's overhang as ordinary bottom / right padding)."""
        top, bottom, left, right = self.all_pads
        return dict(batch=batch, in_h=self.in_hw[0], in_w=self.in_hw[1], in_c=in_c, out_c=out_c,
                    kernel_h=self.kernel[0], kernel_w=self.kernel[1], stride_h=self.stride[0], stride_w=self.stride[1],
                    dilation_h=self.dilation[0], dilation_w=self.dilation[1], pad_top=top, pad_bottom=bottom,
                    pad_left=left, pad_right=right, groups=groups, pad_value=pad_value)

    def macs_per_window(self, channels_per_group):
        return self.kernel[0] * self.kernel[1] * channels_per_group
