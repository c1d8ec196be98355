"""`python -m xnorinfer ...`: the same as the `xnorinfer` console script."""
import sys

from .cli import main

sys.exit(main())
