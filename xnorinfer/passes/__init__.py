"""Graph passes: pure functions Graph -> Graph, run in the order pipeline.py gives."""
from .fold import eliminate_dead_nodes, fold_constants
from .pipeline import binarize_layers, plan, prepare

__all__ = ["fold_constants", "eliminate_dead_nodes", "prepare", "binarize_layers", "plan"]
