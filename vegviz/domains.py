"""Domains: a window of the NLDAS-2 lattice, the basin inside it, periods and a title.

A :class:`Domain` is one small value. The study's Upper Colorado (``ucrb``) is the first
built-in instance, ``conus`` the whole NLDAS-2 land domain, ``gunnison`` a second real
basin defined by its USGS gauge. Users add their own by an outlet point, a bounding box or a
polygon file (``vegviz domain add``); they are kept in ``domains.yaml`` in the data directory
(:func:`vegviz.paths.cache_dir`), next to the user catalog, and used by name everywhere
(``--domain NAME``, ``virtual_NAME`` catalog entries, the dashboards).

This module needs only numpy and the standard library until a domain is built from an
outlet (the DEM) or a polygon (shapely).
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import grid as _grid
from .evaluation.periods import PERIODS as STUDY_PERIODS

__all__ = ["Basin", "Domain", "DomainError", "get", "names", "virtual_entry", "all_domains", "add", "remove",
           "from_outlet", "from_bbox", "from_polygon", "of_dataset", "user_file", "BUILTIN"]

USER_FILE = "domains.yaml"
#: Cells of margin around a delineated catchment or a polygon (the basin's edge cells get
#: their neighbours, so convolutions see a little of the surroundings).
MARGIN_CELLS = 1


def check_name(name: str) -> str:
    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", name):
        raise DomainError(f"domain name {name!r}: use lower-case letters, digits and underscores, starting "
                          "with a letter, at most 40 characters (e.g. 'rio_grande'). Fix: pass another name")
    return name


class DomainError(ValueError):
    """A domain that cannot be defined or found; the message names the problem and the fix."""


@dataclass(frozen=True)
class Basin:
    """Which cells of a domain's window are the basin (trained on and scored).

    ``kind`` is "outlet" (the catchment of ``outlet`` = (lat, lon), delineated on the DEM),
    "polygon" (the cells mostly inside the polygon in the GeoJSON file ``polygon``) or
    "window" (every land cell). ``gauge`` and ``gauge_area_km2`` name a stream gauge at the
    outlet and its published drainage area, to check the delineation against.
    """

    kind: str = "window"
    outlet: tuple[float, float] | None = None
    polygon: str | None = None
    gauge: str | None = None
    gauge_area_km2: float | None = None

    def __post_init__(self):
        if self.kind not in ("outlet", "polygon", "window"):
            raise DomainError(f"basin kind {self.kind!r}: use 'outlet', 'polygon' or 'window'")
        if (self.kind == "outlet") != (self.outlet is not None):
            raise DomainError("an 'outlet' basin needs outlet=(lat, lon), and only it")
        if (self.kind == "polygon") != (self.polygon is not None):
            raise DomainError("a 'polygon' basin needs polygon=PATH, and only it")
        if self.outlet is not None:
            object.__setattr__(self, "outlet", (float(self.outlet[0]), float(self.outlet[1])))

    def describe(self) -> str:
        if self.kind == "outlet":
            g = f" ({self.gauge})" if self.gauge else ""
            return f"catchment of {self.outlet[0]:.4f} N, {self.outlet[1]:.4f} E{g}"
        if self.kind == "polygon":
            return f"cells mostly inside {Path(self.polygon).name}"
        return "every land cell of the window"


@dataclass(frozen=True)
class Domain:
    """A named window of the NLDAS-2 grid with its basin, periods and title."""

    name: str
    grid: _grid.Grid
    basin: Basin = field(default_factory=Basin)
    title: str = ""
    periods: dict = field(default_factory=lambda: {k: tuple(v) for k, v in STUDY_PERIODS.items()})
    builtin: bool = False

    def __post_init__(self):
        check_name(self.name)
        _grid.Grid.slices_in(self.grid, _grid.NLDAS)  # a window of the NLDAS-2 lattice, or ValueError
        if not self.title:
            object.__setattr__(self, "title", self.name.replace("_", " ").title())

    # ------------------------------------------------------------------ facts
    @property
    def shape(self) -> tuple[int, int]:
        return self.grid.shape

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """(west, east, south, north) outer edges, degrees."""
        return self.grid.extent

    def describe(self) -> str:
        w, e, s, n = self.extent
        return (f"{self.name}: {self.title}; {self.grid.nlat} x {self.grid.nlon} cells "
                f"({s:.4f}..{n:.4f} N, {w:.4f}..{e:.4f} E); basin: {self.basin.describe()}")

    # ------------------------------------------------------------------ (de)serialising
    def to_dict(self) -> dict:
        b = {k: v for k, v in asdict(self.basin).items() if v is not None}
        if "outlet" in b:
            b["outlet"] = list(b["outlet"])
        return {
            "title": self.title,
            "window": {"lat0": float(self.grid.lat0), "lon0": float(self.grid.lon0),
                       "nlat": int(self.grid.nlat), "nlon": int(self.grid.nlon)},
            "basin": b,
            "periods": {k: list(v) for k, v in self.periods.items()},
        }

    @classmethod
    def from_dict(cls, name: str, d: dict, builtin: bool = False) -> "Domain":
        w = d["window"]
        grid = _grid.Grid(float(w["lat0"]), float(w["lon0"]), int(w["nlat"]), int(w["nlon"]),
                          name=f"{name} window of the NLDAS-2 1/8 degree grid")
        basin = Basin(**{k: (tuple(v) if k == "outlet" else v) for k, v in (d.get("basin") or {}).items()})
        periods = {k: tuple(v) for k, v in (d.get("periods") or STUDY_PERIODS).items()}
        return cls(name, grid, basin, d.get("title", ""), periods, builtin)

    @property
    def key(self) -> str:
        """A short hash of the definition (and a polygon file's content): caches depend on it."""
        d = self.to_dict()
        d.pop("title")
        h = hashlib.sha256(json.dumps(d, sort_keys=True).encode())
        if self.basin.polygon:
            h.update(Path(self.basin.polygon).read_bytes())
        return h.hexdigest()[:10]


# ---------------------------------------------------------------------------- built-ins

#: USGS gauge 09380000, Colorado River at Lees Ferry, AZ: 111,800 mi2 (USGS NWIS).
LEES_FERRY = (36.865, -111.588)
MI2 = 2.589988110336  # km2 per square mile
#: USGS gauge 09152500, Gunnison River near Grand Junction, CO (38.9833 N, 108.4506 W): 7,928 mi2 (USGS NWIS).
GUNNISON_GJ = (38.9833, -108.4506)

BUILTIN: dict[str, Domain] = {
    "ucrb": Domain(
        "ucrb", _grid.UCRB,
        Basin("outlet", outlet=LEES_FERRY, gauge="USGS 09380000 Colorado River at Lees Ferry, AZ",
              gauge_area_km2=111_800 * MI2),
        "Upper Colorado River Basin", builtin=True),
    "conus": Domain(
        "conus", _grid.NLDAS, Basin("window"),
        "Conterminous United States (NLDAS-2 land domain)", builtin=True),
    "gunnison": Domain(
        "gunnison", _grid.Grid(37.6875, -108.9375, 14, 24, name="gunnison window of the NLDAS-2 1/8 degree grid"),
        Basin("outlet", outlet=GUNNISON_GJ, gauge="USGS 09152500 Gunnison River near Grand Junction, CO",
              gauge_area_km2=7_928 * MI2),
        "Gunnison River Basin above Grand Junction, Colorado", builtin=True),
}


# ---------------------------------------------------------------------------- the registry

def user_file(data_dir=None) -> Path:
    from .paths import cache_dir

    return cache_dir(data_dir) / USER_FILE


def _user_domains(data_dir=None) -> dict[str, Domain]:
    import yaml

    path = user_file(data_dir)
    if not path.exists():
        return {}
    doc = yaml.safe_load(path.read_text()) or {}
    out = {}
    for name, d in (doc.get("domains") or {}).items():
        try:
            out[name] = Domain.from_dict(name, d)
        except (KeyError, TypeError, ValueError) as e:
            raise DomainError(f"{path}: domain {name!r} is malformed ({e}). Fix: remove it with "
                              f"`vegviz domain remove {name}` and add it again") from None
    return out


def all_domains(data_dir=None) -> dict[str, Domain]:
    """Built-in and user domains by name (built-ins first)."""
    return {**BUILTIN, **_user_domains(data_dir)}


def names(data_dir=None) -> list[str]:
    return list(all_domains(data_dir))


def get(name, data_dir=None) -> Domain:
    """The domain called ``name`` (a Domain passes through)."""
    if isinstance(name, Domain):
        return name
    doms = all_domains(data_dir)
    if name not in doms:
        raise DomainError(f"unknown domain {name!r}; known: {', '.join(doms)}. Fix: pick one of those, or add "
                          f"it with `vegviz domain add {name} --outlet LAT,LON | --bbox W,S,E,N | --polygon FILE`")
    return doms[name]


def virtual_entry(domain, variant: str = "full") -> str:
    """The catalog entry of ``domain``'s virtual basin: ``virtual_D`` (1981-2016) or ``virtual_D_small`` (1998-2005).

    ``domain``: a Domain or the name of one (unknown names get :class:`DomainError`)."""
    if variant not in ("full", "small"):
        raise ValueError(f"unknown virtual basin variant {variant!r}. Fix: use 'full' or 'small'")
    return f"virtual_{get(domain).name}" + ("_small" if variant == "small" else "")


def add(domain: Domain, data_dir=None, *, replace_existing: bool = False) -> Path:
    """Register a user domain in ``domains.yaml`` (atomically); returns the file."""
    import yaml

    from .io import write_atomic

    check_name(domain.name)
    if domain.name in BUILTIN:
        raise DomainError(f"domain {domain.name!r} is built in. Fix: choose another name")
    path = user_file(data_dir)
    doc = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    doms = doc.setdefault("domains", {})
    if domain.name in doms and not replace_existing:
        raise DomainError(f"domain {domain.name!r} exists already ({path}). Fix: choose another name, or "
                          f"`vegviz domain remove {domain.name}` first")
    doms[domain.name] = domain.to_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, yaml.safe_dump(doc, sort_keys=False).encode())


def remove(name: str, data_dir=None) -> None:
    import yaml

    from .io import write_atomic

    if name in BUILTIN:
        raise DomainError(f"domain {name!r} is built in and cannot be removed")
    path = user_file(data_dir)
    doc = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    if name not in (doc.get("domains") or {}):
        raise DomainError(f"no user domain {name!r} in {path}. Fix: `vegviz domain list` shows the names")
    polygon = doc["domains"][name].get("basin", {}).get("polygon")
    del doc["domains"][name]
    write_atomic(path, yaml.safe_dump(doc, sort_keys=False).encode())
    if polygon and Path(polygon).parent == polygon_dir(data_dir):
        Path(polygon).unlink(missing_ok=True)


def polygon_dir(data_dir=None) -> Path:
    from .paths import cache_dir

    return cache_dir(data_dir) / "domains"


# ---------------------------------------------------------------------------- builders

def _check_inside_nldas(lat: float, lon: float, what: str) -> None:
    w, e, s, n = _grid.NLDAS.extent
    if not (s <= lat <= n and w <= lon <= e):
        raise DomainError(f"{what} ({lat}, {lon}) lies outside the NLDAS-2 domain ({s}..{n} N, {w}..{e} E). "
                          "Fix: give latitude first and longitude negative west of Greenwich, e.g. 36.865,-111.588")


def window_around(west: float, south: float, east: float, north: float, margin: int = MARGIN_CELLS,
                  name: str = "window") -> _grid.Grid:
    """The NLDAS-2 window of the cells touching [west, east] x [south, north], plus ``margin`` cells."""
    res = _grid.NLDAS_RES
    i0 = int(np.floor((south - (_grid.NLDAS_LAT0 - res / 2)) / res)) - margin
    i1 = int(np.ceil((north - (_grid.NLDAS_LAT0 - res / 2)) / res)) + margin
    j0 = int(np.floor((west - (_grid.NLDAS_LON0 - res / 2)) / res)) - margin
    j1 = int(np.ceil((east - (_grid.NLDAS_LON0 - res / 2)) / res)) + margin
    i0, j0 = max(i0, 0), max(j0, 0)
    i1, j1 = min(i1, _grid.NLDAS_NLAT), min(j1, _grid.NLDAS_NLON)
    return _grid.Grid(float(_grid.NLDAS.lat[i0]), float(_grid.NLDAS.lon[j0]), i1 - i0, j1 - j0,
                      name=f"{name} window of the NLDAS-2 1/8 degree grid")


def from_bbox(name: str, west: float, south: float, east: float, north: float, *, title: str = "") -> Domain:
    """A domain of the cells whose centres lie in the box; the basin is every land cell."""
    check_name(name)
    if not (west < east and south < north):
        raise DomainError(f"bbox {west},{south},{east},{north} is empty. Fix: give it as W,S,E,N with W < E and S < N")
    for lat, lon in ((south, west), (north, east)):
        _check_inside_nldas(lat, lon, "bbox corner")
    res = _grid.NLDAS_RES
    lat = _grid.NLDAS.lat[(_grid.NLDAS.lat >= south) & (_grid.NLDAS.lat <= north)]
    lon = _grid.NLDAS.lon[(_grid.NLDAS.lon >= west) & (_grid.NLDAS.lon <= east)]
    if lat.size < 2 or lon.size < 2:
        raise DomainError(f"bbox {west},{south},{east},{north} holds {lat.size} x {lon.size} cell centres; a domain "
                          f"needs at least 2 x 2 (cells are {res} degrees). Fix: widen the box")
    grid = _grid.Grid(float(lat[0]), float(lon[0]), lat.size, lon.size,
                      name=f"{name} window of the NLDAS-2 1/8 degree grid")
    return Domain(name, grid, Basin("window"), title)


def from_outlet(name: str, lat: float, lon: float, *, title: str = "", gauge: str | None = None,
                gauge_area_km2: float | None = None) -> Domain:
    """A domain around the catchment of the outlet (lat, lon), delineated on the registered DEM.

    ``gauge_area_km2``, the published drainage area of a gauge at the outlet, picks the
    stream of that size when the point lies near a confluence.
    """
    from .data.basin import catchment_of

    check_name(name)
    _check_inside_nldas(lat, lon, "outlet")
    catch = catchment_of((lat, lon), gauge_area_km2)
    inside = catch["catchment"].values.astype(bool)
    la, lo = catch["lat"].values, catch["lon"].values
    rows, cols = np.flatnonzero(inside.any(1)), np.flatnonzero(inside.any(0))
    dlat, dlon = float(np.diff(la).mean()), float(np.diff(lo).mean())
    grid = window_around(lo[cols[0]] - dlon / 2, la[rows[0]] - dlat / 2, lo[cols[-1]] + dlon / 2,
                         la[rows[-1]] + dlat / 2, name=name)
    if grid.nlat < 2 or grid.nlon < 2:
        raise DomainError(f"the catchment of ({lat}, {lon}) is smaller than a grid cell. Fix: move the outlet "
                          "onto the main stream, or use --bbox")
    return Domain(name, grid, Basin("outlet", outlet=(lat, lon), gauge=gauge, gauge_area_km2=gauge_area_km2), title)


def from_polygon(name: str, path, *, title: str = "", data_dir=None, copy: bool = True) -> Domain:
    """A domain around a polygon (GeoJSON or shapefile, WGS84/NAD83 lon/lat); the basin is the cells mostly inside.

    With ``copy`` the polygon is saved as GeoJSON in the data directory, so the domain
    stays usable when the original file moves.
    """
    from .geometry import read_polygon, write_geojson

    check_name(name)
    geom = read_polygon(path)
    w, s, e, n = geom.bounds
    for la, lo in ((s, w), (n, e)):
        _check_inside_nldas(la, lo, f"polygon {Path(path).name} corner")
    grid = window_around(w, s, e, n, name=name)
    from .data.basin import MASK_THRESHOLD
    from .geometry import polygon_fraction

    frac = polygon_fraction(geom, grid)
    if not (frac >= MASK_THRESHOLD).any():
        raise DomainError(f"polygon {path} covers no grid cell by half or more (largest share {frac.max():.2f} of a "
                          f"{_grid.NLDAS_RES} degree cell). Fix: use a larger polygon, or --bbox around it")
    stored = Path(path).expanduser().resolve()
    if copy:
        stored = polygon_dir(data_dir) / f"{name}.geojson"
        write_geojson(geom, stored)
    return Domain(name, grid, Basin("polygon", polygon=str(stored)), title)


# ---------------------------------------------------------------------------- datasets

def of_dataset(ds) -> Domain:
    """The domain a Dataset lives on: its ``domain`` attribute, else the built-in whose window it
    matches, else an unnamed window domain from its coordinates."""
    name = ds.attrs.get("domain") if hasattr(ds, "attrs") else None
    doms = all_domains()
    if isinstance(name, str) and name in doms and doms[name].grid.matches(ds["lat"], ds["lon"]):
        return doms[name]
    for d in doms.values():
        if d.grid.matches(ds["lat"], ds["lon"]):
            return d
    grid = _grid.nldas_window(ds["lat"].values, ds["lon"].values, name="window of the NLDAS-2 1/8 degree grid")
    return Domain("window", grid, Basin("window"), ds.attrs.get("domain_title") or "NLDAS-2 window")
