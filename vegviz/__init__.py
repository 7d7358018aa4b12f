"""vegviz: climate-driven, spatially distributed deep learning of daily vegetation dynamics."""
from importlib.metadata import PackageNotFoundError, version as _version

from .contract import ContractError, validate
from .grid import UCRB, Grid

try:
    __version__ = _version("vegviz")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"



def open_catalog(path=None):
    """Open the vegviz intake catalog (catalogs/vegviz.yaml) from any working directory."""
    from .catalog import open_catalog as _open

    return _open(path)


def open_dataset(name: str = "virtual_ucrb", **params):
    """A catalog entry as a (lazy) xarray Dataset, e.g. ``open_dataset("virtual_ucrb", seed=1)``."""
    cat = open_catalog()
    if name not in cat:
        raise KeyError(f"no catalog entry {name!r}; entries: {', '.join(cat)}")
    return (cat[name](**params) if params else cat[name]).to_dask()


__all__ = ["ContractError", "Grid", "UCRB", "open_catalog", "open_dataset", "validate", "__version__"]
