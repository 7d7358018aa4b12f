"""vegviz: climate-driven, spatially distributed deep learning of daily vegetation dynamics."""
from importlib.metadata import PackageNotFoundError, version as _version

from .contract import ContractError, validate
from .grid import UCRB, Grid

try:
    __version__ = _version("vegviz")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = ["ContractError", "Grid", "UCRB", "validate", "__version__"]
