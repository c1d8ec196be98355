#!/usr/bin/env python3
"""Write the digits demo's held-out test set as raw files the C example reads without any parsing:
images.f32 (float32 little-endian, 400 x 1 x 8 x 8, C order) and labels.u8 (one byte per image).

Usage: python export_digits.py [OUT_DIR]   (default: the current directory)"""
import os
import sys

import numpy as np

import xnorinfer.demo

out = sys.argv[1] if len(sys.argv) > 1 else "."
data = np.load(os.path.join(os.path.dirname(xnorinfer.demo.__file__), "digits_test.npz"))
images = np.ascontiguousarray(data["images"], dtype="<f4")
labels = data["labels"].astype(np.uint8)
assert images.shape[0] == labels.shape[0] and labels.max() < 10
os.makedirs(out, exist_ok=True)
images.tofile(os.path.join(out, "images.f32"))
labels.tofile(os.path.join(out, "labels.u8"))
print(f"{out}/images.f32: {images.shape[0]} images of {images.shape[1:]} float32; {out}/labels.u8: {labels.shape[0]} labels")
