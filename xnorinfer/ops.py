"""`xnorinfer.ops`, the name the layer API had before it moved to `xnorinfer.layers`: an alias."""
from .layers import *  # noqa: F401,F403
from .layers import __all__  # noqa: F401
