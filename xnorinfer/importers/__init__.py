"""Importers: model files -> xnorinfer.ir.Graph (ONNX, LCE / TFLite flatbuffers, and our own planned .xnor)."""
import os

from . import xnor
from .onnx import import_onnx
from .tflite import import_tflite, is_tflite

__all__ = ["load", "import_onnx", "import_tflite", "is_tflite", "xnor"]


def load(source):
    """(graph, planned) for a model file (path or bytes): a .xnor file holds a graph already planned
    (the passes ran when it was written); ONNX and TFLite graphs are as their files state them."""
    if isinstance(source, (str, os.PathLike)) and not os.path.exists(source):
        raise FileNotFoundError(f"no such model file: {source}")
    if xnor.is_xnor(source):
        return xnor.load(source), True
    if is_tflite(source):
        return import_tflite(source), False
    return import_onnx(source), False
