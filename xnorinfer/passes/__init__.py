"""Graph passes: pure functions Graph -> Graph."""
from .fold import eliminate_dead_nodes, fold_constants

__all__ = ["fold_constants", "eliminate_dead_nodes"]
