"""``python -m vegviz``: the command line, as a module (torchrun and many schedulers start modules)."""
import sys

from .cli import main

sys.exit(main())
