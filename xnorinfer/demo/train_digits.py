#!/usr/bin/env python3
"""Train a small binary neural network on scikit-learn's handwritten digits and export it to ONNX.

Run from the repository root with a Python that has the frameworks (not the project's venv):

    python3 -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch==2.13.0 onnx onnxscript onnxruntime scikit-learn numpy
    /tmp/torchenv/bin/python xnorinfer/demo/train_digits.py

Data: sklearn.datasets.load_digits (1797 8x8 grey-level images, 10 classes, shipped inside
scikit-learn: no download), split with train_test_split(test_size=400, random_state=0, stratify=y)
into 1397 training and 400 held-out images. Pixels (0..16) are scaled as (x / 16 - MEAN) / STD.

The network (what is binary is marked):

    float   Conv2d 1->32 3x3 pad 1 (no bias), BatchNorm2d, sign (STE)              8x8
    BINARY  Conv2d 32->32 3x3 pad 1: ±1 weights (sign of latent float weights in forward) on ±1
            activations, zero padding; MaxPool 2, BatchNorm2d, sign (STE)          4x4
    BINARY  Conv2d 32->64 3x3 pad 1, ±1 weights on ±1 activations; MaxPool 2,
            BatchNorm2d, sign (STE)                                                2x2
    BINARY  Linear 256->64, ±1 weights on ±1 activations; BatchNorm1d, sign (STE)
    float   Linear 64->10 (with bias) -> logits

Every sign is a custom autograd.Function: forward where(x >= 0, +1, -1) (so 0 -> +1, the
convention of xnorinfer's packing), backward the straight-through estimator g * 1{|x| <= 1}.
Binary layers keep latent float weights, clipped to [-1, 1] after each step (BinaryNet), and
binarize them with torch.sign in forward, so the exported graph holds the latent weights and a
Sign node on each. The three binary layers do 98% of the 0.92 M multiply-accumulates per image.

Outputs (next to this script):
    digits_bnn.onnx   TorchScript export (dynamo=False, opset 17), input "image" [batch,1,8,8],
                      output "logits" [batch,10]
    digits_test.npz   images float32 (400,1,8,8) normalized as above, labels int64 (400,),
                      torch_logits float32 (400,10) from the PyTorch model, accuracy float64 scalar
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
ONNX_PATH = HERE / "digits_bnn.onnx"
NPZ_PATH = HERE / "digits_test.npz"
SEED = 0
EPOCHS = 120
BATCH = 64
LR = 5e-3


class SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x >= 0, 1.0, -1.0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


class WeightSignSTE(torch.autograd.Function):
    """torch.sign of the latent weights in forward (exported as ONNX Sign on the weight initializer);
    backward passes the gradient straight through to the latent weights (torch.sign alone has zero
    gradient, so latent weights behind a bare torch.sign would never train)."""

    @staticmethod
    def forward(ctx, w):
        return torch.sign(w)

    @staticmethod
    def backward(ctx, grad):
        return grad


class Sign(nn.Module):
    def forward(self, x):
        return SignSTE.apply(x)


class BinaryConv2d(nn.Conv2d):
    def forward(self, x):
        return F.conv2d(x, WeightSignSTE.apply(self.weight), self.bias, self.stride, self.padding,
                        self.dilation, self.groups)


class BinaryLinear(nn.Linear):
    def forward(self, x):
        return F.linear(x, WeightSignSTE.apply(self.weight), self.bias)


class DigitsBNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(1, 32, 3, padding=1, bias=False)      # float
        self.bn0 = nn.BatchNorm2d(32)
        self.act0 = Sign()
        self.conv1 = BinaryConv2d(32, 32, 3, padding=1, bias=False)  # binary
        self.pool1 = nn.MaxPool2d(2)
        self.bn1 = nn.BatchNorm2d(32)
        self.act1 = Sign()
        self.conv2 = BinaryConv2d(32, 64, 3, padding=1, bias=False)  # binary
        self.pool2 = nn.MaxPool2d(2)
        self.bn2 = nn.BatchNorm2d(64)
        self.act2 = Sign()
        self.flatten = nn.Flatten()
        self.fc1 = BinaryLinear(64 * 2 * 2, 64, bias=False)          # binary
        self.bn3 = nn.BatchNorm1d(64)
        self.act3 = Sign()
        self.fc_out = nn.Linear(64, 10)                               # float

    def forward(self, x):
        x = self.act0(self.bn0(self.conv0(x)))
        x = self.act1(self.bn1(self.pool1(self.conv1(x))))
        x = self.act2(self.bn2(self.pool2(self.conv2(x))))
        x = self.act3(self.bn3(self.fc1(self.flatten(x))))
        return self.fc_out(x)

    def binary_layers(self):
        return [self.conv1, self.conv2, self.fc1]


def load_data():
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=400, random_state=SEED, stratify=y)
    mean, std = float(x_tr.mean()), float(x_tr.std())
    return (x_tr - mean) / std, y_tr, (x_te - mean) / std, y_te, mean, std


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x))
    return float((logits.argmax(1).numpy() == y).mean()), logits.numpy()


def train(model, x_tr, y_tr):
    g = torch.Generator().manual_seed(SEED)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, EPOCHS)
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(xt), generator=g)
        total = 0.0
        for i in range(0, len(xt), BATCH):
            idx = perm[i:i + BATCH]
            if len(idx) < 2:
                continue
            loss = F.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():                      # BinaryNet: keep latent weights in [-1, 1]
                for layer in model.binary_layers():
                    layer.weight.clamp_(-1, 1)
            total += loss.item() * len(idx)
        sched.step()
        if (epoch + 1) % 20 == 0:
            acc, _ = accuracy(model, x_tr, y_tr)
            print(f"epoch {epoch + 1:3d}  loss {total / len(xt):.4f}  train acc {acc:.4f}")


def sign_margins(model, x):
    """min |value| reaching each sign on x: how far the held-out set is from a tie."""
    seen = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out, n=n: seen.__setitem__(n, inp[0].detach()))
             for n, m in model.named_modules() if isinstance(m, Sign)]
    model.eval()
    with torch.no_grad():
        model(torch.from_numpy(x))
    for h in hooks:
        h.remove()
    return {n: (float(v.abs().min()), int((v.abs() < 1e-5).flatten(1).any(1).sum())) for n, v in seen.items()}


def main():
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    x_tr, y_tr, x_te, y_te, mean, std = load_data()
    print(f"train {len(x_tr)}  held-out {len(x_te)}  normalization (x/16 - {mean:.6f}) / {std:.6f}")
    model = DigitsBNN()
    train(model, x_tr, y_tr)
    for layer in model.binary_layers():
        assert (layer.weight != 0).all(), "a latent weight is exactly 0: sign would make it ternary"
    train_acc, _ = accuracy(model, x_tr, y_tr)
    test_acc, logits = accuracy(model, x_te, y_te)
    print(f"train accuracy {train_acc:.4f}  held-out accuracy {test_acc:.4f} ({int(round(test_acc * 400))}/400)")
    for name, (low, n_images) in sign_margins(model, x_te).items():
        print(f"  {name}: min |value reaching the sign| on held-out {low:.3g}; "
              f"images with a value within 1e-5 of 0 there: {n_images}")

    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.from_numpy(x_te[:4]),), str(ONNX_PATH), dynamo=False, opset_version=17,
                          input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    m = onnx.load(str(ONNX_PATH))
    m.doc_string = (f"BNN on sklearn digits (8x8). Input: pixels/16 normalized as (x/16 - {mean:.6f}) / {std:.6f}, "
                    f"NCHW [batch,1,8,8]. Float conv0, binary conv1, conv2, fc1 (Sign of latent weights), "
                    f"float fc_out. Activation sign: where(x >= 0, 1, -1). Held-out accuracy {test_acc:.4f}. "
                    f"Made by xnorinfer/demo/train_digits.py")
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, str(ONNX_PATH))
    ops = [n.op_type for n in m.graph.node]
    inits = {i.name for i in m.graph.initializer}
    weight_signs = [n.input[0] for n in m.graph.node if n.op_type == "Sign" and n.input[0] in inits]
    assert sorted(weight_signs) == ["conv1.weight", "conv2.weight", "fc1.weight"], weight_signs
    print("ONNX ops:", " ".join(ops))

    np.savez(NPZ_PATH, images=x_te.astype(np.float32), labels=y_te.astype(np.int64),
             torch_logits=logits.astype(np.float32), accuracy=np.float64(test_acc))

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(ONNX_PATH), so, providers=["CPUExecutionProvider"])
    ort_logits = sess.run(None, {"image": x_te.astype(np.float32)})[0]
    print(f"onnxruntime (optimizations off): max |logits diff| {np.abs(ort_logits - logits).max():.3g}, "
          f"same argmax on {(ort_logits.argmax(1) == logits.argmax(1)).sum()}/400, "
          f"accuracy {(ort_logits.argmax(1) == y_te).mean():.4f}")
    print(f"wrote {ONNX_PATH.relative_to(Path.cwd()) if ONNX_PATH.is_relative_to(Path.cwd()) else ONNX_PATH} "
          f"({ONNX_PATH.stat().st_size / 1024:.1f} KiB) and {NPZ_PATH.name} ({NPZ_PATH.stat().st_size / 1024:.1f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
