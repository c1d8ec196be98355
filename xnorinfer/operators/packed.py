"""The Python executor's value for a sign tensor held as packed bits (the binary ops' activations)."""
from dataclasses import dataclass

import numpy as np

from ..kernels import unpack


@dataclass
class Packed:
    """A +-v sign tensor: packed NHWC words (channels packed along the last axis) or packed rows,
    and the float values bit 1 and bit 0 stand for.  A ternary sign tensor (ONNX Sign, whose value is
    0 where its input is exactly 0) is packed only when no element is 0; otherwise `dense` keeps its
    exact float values (NCHW / NC) and the consumers run in float, so results stay exact either way."""
    words: np.ndarray        # (N, H, W, words) or (N, words); None when `dense` must be used
    channels: int
    dense: np.ndarray = None
    values: tuple = (-1.0, 1.0)  # the float values of bit 1 and bit 0

    @property
    def shape(self):
        """The tensor's shape in the model's layout (NCHW / NC)."""
        if self.dense is not None:
            return self.dense.shape
        if self.words.ndim == 4:
            n, h, w, _ = self.words.shape
            return (n, self.channels, h, w)
        return (self.words.shape[0], self.channels)

    def to_float(self, dtype=np.float32):
        if self.dense is not None:
            return self.dense
        v = unpack(self.words, self.channels, np.float32)  # +-1: bit 1 -> -1
        minus, plus = self.values
        if (minus, plus) != (-1.0, 1.0):
            v = np.where(v < 0, np.float32(minus), np.float32(plus))
        if v.ndim == 4:
            v = np.ascontiguousarray(v.transpose(0, 3, 1, 2))
        return v.astype(dtype, copy=False)
