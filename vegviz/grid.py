"""The study grid: a window of the NLDAS-2 1/8-degree grid, and regridding onto it.

NLDAS-2 cell centres lie at ``25.0625 + k/8`` N and ``-124.9375 + k/8`` E
(464 x 224 cells; Xia et al. 2012, doi:10.1029/2011JD016048). The Upper Colorado
River Basin window of the reference study is 63 latitudes x 54 longitudes,
35.6875...43.4375 N, -112.3125...-105.6875 E (cell centres, ascending).

Regridding is exact area-weighted overlap: the overlap of every source cell with
every target cell is separable in latitude (in sin(lat), i.e. true area on the
sphere) and longitude, so a whole raster is remapped with two small matrix
products. That handles finer and coarser sources alike, with NaN-aware weights.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import xarray as xr

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG), used for cell areas

NLDAS_RES = 0.125
NLDAS_LAT0 = 25.0625  # southernmost NLDAS-2 cell centre
NLDAS_LON0 = -124.9375  # westernmost NLDAS-2 cell centre
NLDAS_NLAT = 224
NLDAS_NLON = 464


@dataclass(frozen=True)
class Grid:
    """A regular lat/lon grid of cell centres, ascending in both directions."""

    lat0: float
    lon0: float
    nlat: int
    nlon: int
    res: float = NLDAS_RES
    name: str = field(default="grid", compare=False)  # a label: grids on the same cells are equal

    @cached_property
    def lat(self) -> np.ndarray:
        return self.lat0 + self.res * np.arange(self.nlat)

    @cached_property
    def lon(self) -> np.ndarray:
        return self.lon0 + self.res * np.arange(self.nlon)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.nlat, self.nlon)

    @property
    def lat_bounds(self) -> np.ndarray:
        """(nlat, 2) southern and northern edge of each row."""
        return np.stack([self.lat - self.res / 2, self.lat + self.res / 2], axis=1)

    @property
    def lon_bounds(self) -> np.ndarray:
        """(nlon, 2) western and eastern edge of each column."""
        return np.stack([self.lon - self.res / 2, self.lon + self.res / 2], axis=1)

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """(west, east, south, north) outer edges."""
        return (
            float(self.lon[0] - self.res / 2),
            float(self.lon[-1] + self.res / 2),
            float(self.lat[0] - self.res / 2),
            float(self.lat[-1] + self.res / 2),
        )

    def cell_area(self) -> xr.DataArray:
        """Area of each cell on a sphere of radius EARTH_RADIUS_M, in m2."""
        lb = np.deg2rad(self.lat_bounds)
        band = EARTH_RADIUS_M**2 * (np.sin(lb[:, 1]) - np.sin(lb[:, 0])) * np.deg2rad(self.res)
        area = np.repeat(band[:, None], self.nlon, axis=1)
        return xr.DataArray(
            area,
            dims=("lat", "lon"),
            coords=self.coords(),
            name="cell_area",
            attrs={"units": "m2", "long_name": "grid cell area", "standard_name": "cell_area"},
        )

    def coords(self) -> dict[str, xr.DataArray]:
        lat = xr.DataArray(
            self.lat,
            dims="lat",
            attrs={
                "units": "degrees_north",
                "standard_name": "latitude",
                "long_name": "latitude of cell centre",
                "axis": "Y",
            },
        )
        lon = xr.DataArray(
            self.lon,
            dims="lon",
            attrs={
                "units": "degrees_east",
                "standard_name": "longitude",
                "long_name": "longitude of cell centre",
                "axis": "X",
            },
        )
        return {"lat": lat, "lon": lon}

    def template(self) -> xr.Dataset:
        """An empty Dataset carrying this grid's coordinates and CF attributes."""
        return xr.Dataset(coords=self.coords(), attrs={"grid": self.name})

    def matches(self, lat, lon, atol: float = 1e-6) -> bool:
        lat = np.asarray(lat, dtype=float)
        lon = np.asarray(lon, dtype=float)
        return (
            lat.shape == self.lat.shape
            and lon.shape == self.lon.shape
            and np.allclose(lat, self.lat, atol=atol, rtol=0)
            and np.allclose(lon, self.lon, atol=atol, rtol=0)
        )

    def slices_in(self, parent: "Grid") -> tuple[slice, slice]:
        """(rows, columns) of this grid inside ``parent``, a grid on the same lattice."""
        i = (self.lat0 - parent.lat0) / parent.res
        j = (self.lon0 - parent.lon0) / parent.res
        ii, jj = int(round(i)), int(round(j))
        if (abs(i - ii) > 1e-6 or abs(j - jj) > 1e-6 or self.res != parent.res or ii < 0 or jj < 0
                or ii + self.nlat > parent.nlat or jj + self.nlon > parent.nlon):
            raise ValueError(f"{self.name} is not a window of {parent.name}")
        return slice(ii, ii + self.nlat), slice(jj, jj + self.nlon)

    def index_of(self, lat: float, lon: float) -> tuple[int, int]:
        """(row, column) of the cell that contains a point; ValueError outside."""
        i = int(np.floor((lat - (self.lat0 - self.res / 2)) / self.res))
        j = int(np.floor((lon - (self.lon0 - self.res / 2)) / self.res))
        if not (0 <= i < self.nlat and 0 <= j < self.nlon):
            raise ValueError(
                f"point ({lat}, {lon}) lies outside {self.name} "
                f"(lat {self.extent[2]}..{self.extent[3]}, lon {self.extent[0]}..{self.extent[1]})"
            )
        return i, j


#: The NLDAS-2 1/8-degree grid over CONUS.
NLDAS = Grid(NLDAS_LAT0, NLDAS_LON0, NLDAS_NLAT, NLDAS_NLON, name="NLDAS-2 1/8 degree")

#: The reference study's Upper Colorado River Basin window of the NLDAS-2 grid.
UCRB = Grid(35.6875, -112.3125, 63, 54, name="UCRB window of the NLDAS-2 1/8 degree grid")


def on_nldas_lattice(values, atol: float = 1e-4) -> bool:
    """True when every value sits on an NLDAS-2 cell centre (k/8 + 1/16)."""
    v = (np.asarray(values, dtype=float) - NLDAS_RES / 2) / NLDAS_RES
    return bool(np.all(np.abs(v - np.round(v)) < atol / NLDAS_RES))


def nldas_window(lat, lon, name: str = "NLDAS-2 window") -> Grid:
    """The Grid of contiguous NLDAS-2 cells given by ascending centre coordinates."""
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    if not (on_nldas_lattice(lat) and on_nldas_lattice(lon)):
        raise ValueError("coordinates are not NLDAS-2 cell centres (k/8 + 1/16 degrees)")
    g = Grid(float(lat[0]), float(lon[0]), lat.size, lon.size, name=name)
    if not g.matches(lat, lon):
        raise ValueError("coordinates are not a contiguous ascending NLDAS-2 window")
    return g


# --------------------------------------------------------------------------- regridding

def _edges_from_centres(c: np.ndarray) -> np.ndarray:
    step = np.diff(c)
    if c.size < 2 or not np.allclose(step, step[0], rtol=1e-4, atol=1e-9):
        raise ValueError("source coordinates must be regularly spaced (a regular lat/lon raster)")
    d = step[0]
    return np.concatenate([c - d / 2, [c[-1] + d / 2]])


def _overlap(src_edges: np.ndarray, dst_edges: np.ndarray, transform=None) -> np.ndarray:
    """(n_dst, n_src) overlap length of 1D intervals, optionally in a transformed measure."""
    lo = np.maximum(dst_edges[:-1, None], src_edges[None, :-1])
    hi = np.minimum(dst_edges[1:, None], src_edges[None, 1:])
    hi = np.maximum(hi, lo)
    if transform is not None:
        return transform(hi) - transform(lo)
    return hi - lo


def _sin_deg(x):
    return np.sin(np.deg2rad(x))


def _wrap_lon(lon: np.ndarray, target_centre: float) -> np.ndarray:
    return (lon - target_centre + 180.0) % 360.0 - 180.0 + target_centre


def _prepare_source(da: xr.DataArray, lat: str, lon: str, grid: Grid) -> xr.DataArray:
    if lat not in da.dims or lon not in da.dims:
        raise ValueError(
            f"source raster needs dimensions {lat!r} and {lon!r}; it has {da.dims}. "
            "Pass lat=/lon= with the names your file uses."
        )
    da = da.assign_coords({lon: _wrap_lon(da[lon].values.astype(float), float(grid.lon.mean()))})
    da = da.sortby(lat).sortby(lon)
    # Only the source rows/columns that can touch the target (plus one cell margin).
    w, e, s, n = grid.extent
    la, lo = da[lat].values, da[lon].values
    dlat = abs(la[1] - la[0]) if la.size > 1 else grid.res
    dlon = abs(lo[1] - lo[0]) if lo.size > 1 else grid.res
    da = da.isel(
        {
            lat: (la >= s - dlat) & (la <= n + dlat),
            lon: (lo >= w - dlon) & (lo <= e + dlon),
        }
    )
    if da.sizes[lat] == 0 or da.sizes[lon] == 0:
        raise ValueError(f"source raster does not overlap {grid.name} ({grid.extent})")
    return da.transpose(..., lat, lon)


def _weights(da: xr.DataArray, lat: str, lon: str, grid: Grid):
    src_lat_e = _edges_from_centres(da[lat].values.astype(float))
    src_lon_e = _edges_from_centres(da[lon].values.astype(float))
    dst_lat_e = np.append(grid.lat_bounds[:, 0], grid.lat_bounds[-1, 1])
    dst_lon_e = np.append(grid.lon_bounds[:, 0], grid.lon_bounds[-1, 1])
    wlat = _overlap(src_lat_e, dst_lat_e, _sin_deg)  # proportional to true area
    wlon = _overlap(src_lon_e, dst_lon_e)
    covered = np.outer(wlat.sum(1), wlon.sum(1))
    full = np.outer(_sin_deg(dst_lat_e[1:]) - _sin_deg(dst_lat_e[:-1]), np.diff(dst_lon_e))
    if np.any(covered < 0.999 * full):
        raise ValueError(f"source raster does not cover all of {grid.name}; extend the source")
    return wlat, wlon


def regrid_mean(da: xr.DataArray, grid: Grid = UCRB, *, lat: str = "lat", lon: str = "lon") -> xr.DataArray:
    """Area-weighted mean of a continuous regular lat/lon raster on ``grid``.

    NaN source cells carry no weight; a target cell with no valid overlap is NaN.
    Leading dimensions (e.g. time) are kept.
    """
    da = _prepare_source(da, lat, lon, grid)
    wlat, wlon = _weights(da, lat, lon, grid)
    x = da.values.astype(float)
    valid = np.isfinite(x)
    num = np.einsum("ia,...ab,jb->...ij", wlat, np.where(valid, x, 0.0), wlon, optimize=True)
    den = np.einsum("ia,...ab,jb->...ij", wlat, valid.astype(float), wlon, optimize=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / den, np.nan)
    dims = tuple(d for d in da.dims if d not in (lat, lon)) + ("lat", "lon")
    coords = {d: da[d] for d in dims[:-2] if d in da.coords}
    coords.update(grid.coords())
    return xr.DataArray(out, dims=dims, coords=coords, name=da.name, attrs=dict(da.attrs))


def regrid_classes(
    da: xr.DataArray,
    classes,
    grid: Grid = UCRB,
    *,
    lat: str = "lat",
    lon: str = "lon",
    nodata=None,
    class_dim: str = "lc_class",
) -> xr.Dataset:
    """Area fractions of every class and the majority class of a categorical raster.

    Returns a Dataset with ``fraction`` (class_dim, lat, lon), the fraction of the
    valid (non-``nodata``) area in each class, and ``majority`` (lat, lon), the
    class with the largest area (ties go to the lower code).
    """
    classes = np.asarray(list(classes))
    da = _prepare_source(da, lat, lon, grid)
    if da.ndim != 2:
        raise ValueError("regrid_classes takes a 2D (lat, lon) raster")
    wlat, wlon = _weights(da, lat, lon, grid)
    x = da.values
    valid = np.ones(x.shape, bool) if nodata is None else x != nodata
    area = wlat @ valid.astype(float) @ wlon.T
    frac = np.stack([wlat @ ((x == c) & valid).astype(float) @ wlon.T for c in classes])
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(area > 0, frac / area, np.nan)
    majority = classes[np.argmax(np.nan_to_num(frac, nan=-1.0), axis=0)]
    coords = grid.coords()
    return xr.Dataset(
        {
            "fraction": xr.DataArray(frac, dims=(class_dim, "lat", "lon"), coords={class_dim: classes, **coords}),
            "majority": xr.DataArray(majority, dims=("lat", "lon"), coords=coords),
        }
    )
