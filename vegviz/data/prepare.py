"""Build the model-ready Dataset from the real archives (``vegviz prepare``).

::

    from vegviz.data.prepare import prepare_real
    ds = prepare_real("downloads/nldas", "downloads/globmap", out="ucrb_real.zarr", name="ucrb_real")
    ds = prepare_real("downloads/nldas", "downloads/globmap", out="gunnison.zarr", domain="gunnison")

The data set lives on a domain (:mod:`vegviz.domains`, default the study's ``ucrb``): on its
whole grid, or on a window of it (``grid``). Its static fields, basin mask included, are the
domain's (:func:`vegviz.data.static.static_for`), cut to the window; a window is never given
static fields of its own, because a bare window has no basin: to use one that lies outside
every domain, define it first (``vegviz domain add NAME --bbox W,S,E,N``, every land cell is
then the basin), or take it as a window of ``conus``.

Steps, each reusing its module:

1. NLDAS-2 hourly files -> daily forcings (:func:`vegviz.data.nldas.write_daily_zarr`), built
   in a work folder next to ``out``; this is the long step, out of core and restartable:
   rerunning after an interruption continues with the first unfinished block;
2. GLOBMAP LAI V3 composites -> ``lai`` on the same days (:func:`vegviz.data.globmap.globmap_lai`),
   NaN between composites (``daily_lai=True`` adds ``lai_daily``); that composites fall in the
   NLDAS period, and that the first of them reads, is checked before step 1, in seconds;
3. static fields: ``elevation``, ``mask`` (and ``cell_area``) of the domain
   (:func:`vegviz.data.static.static_for`: the committed file for ``ucrb``, built once from
   MCD12C1 and the registered ETOPO5 and cached for any other domain), cut to the grid;
   ``landcover`` from ``landcover`` (an MCD12C1 or MCD12Q1 file of any year, majority class
   by :func:`vegviz.data.landcover.landcover_on_grid`) or the domain's MCD12C1 2019;
4. ``lai_process`` (:func:`vegviz.physics.add_lai_process`), calibrated on the training period;
5. the contract check (:func:`vegviz.contract.validate`), then one write to a temporary
   store renamed to ``out``: ``out`` is either absent or complete, never half-written;
6. an entry ``name`` in the user catalog (:func:`vegviz.catalog.register`) with the
   train/validation/test split and the domain, so ``vegviz train --data name`` and the
   dashboards use it. The data set's attributes name the domain too (``domain``,
   ``domain_title``; ``domain_window`` when it is a window of the domain's grid).

The split: the study's (1981-2001 / 2002-2008 / 2009-2016) when the data cover 1981-2016;
otherwise the first 60 % of the days for training, the next 20 % for validation and the
last 20 % for testing.
"""
from __future__ import annotations

import shutil
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import xarray as xr

from .. import grid as _grid
from ..contract import ContractError, cf_attrs, validate
from .static import STATIC

__all__ = ["PrepareError", "prepare_real", "same_window", "split_periods", "static_on_grid", "work_dir"]

MARKER = "vegviz_prepared"  # a store attribute: written last, so a store without it is not ours or not done


class PrepareError(ValueError):
    """A problem with the inputs of ``vegviz prepare``; the message names it and the fix."""


def work_dir(out) -> Path:
    """Where the restartable intermediate (the daily forcing store) of ``out`` is kept."""
    out = Path(out).expanduser()
    return out.parent / f".{out.name}.work"


def split_periods(time: pd.DatetimeIndex) -> dict[str, list[str]]:
    """The train/validation/test split for data covering ``time`` (see the module docstring)."""
    from ..evaluation import PERIODS

    first, last = time[0], time[-1]
    if first <= pd.Timestamp(PERIODS["train"][0]) and last >= pd.Timestamp(PERIODS["test"][1]):
        return {k: list(v) for k, v in PERIODS.items()}
    n = len(time)
    a, b = int(round(0.6 * n)), int(round(0.8 * n))
    if a < 1 or b <= a or b >= n:
        raise PrepareError(f"{n} days are too few to split into training, validation and test periods. "
                           "Fix: prepare a longer period (months at least)")
    day = lambda i: f"{time[i]:%Y-%m-%d}"  # noqa: E731
    return {"train": [day(0), day(a - 1)], "validation": [day(a), day(b - 1)], "test": [day(b), day(n - 1)]}


def same_window(a: _grid.Grid, b: _grid.Grid) -> bool:
    """Whether two grids are the same cells (their names aside)."""
    import numpy as np

    return a.shape == b.shape and np.allclose(a.lat, b.lat, atol=1e-6) and np.allclose(a.lon, b.lon, atol=1e-6)


def static_on_grid(grid: _grid.Grid, landcover=None, product: str = "MCD12C1", domain="ucrb") -> xr.Dataset:
    """``landcover``, ``elevation``, ``mask`` and ``cell_area`` on ``grid``, a window of ``domain``'s grid.

    The fields are the domain's (:func:`vegviz.data.static.static_for`) cut to the window, so
    the mask is the domain's basin inside it. A grid outside the domain's is refused.
    """
    from .. import domains as _domains
    from .static import SourceMissing, static_fields, static_for

    try:
        dom = _domains.get(domain)
    except _domains.DomainError as e:
        raise PrepareError(str(e)) from None
    try:
        static = static_for(dom)
    except SourceMissing as e:
        raise PrepareError(f"{e}\nFix: install what is named above, or prepare the study's domain (ucrb), whose "
                           "static fields are committed") from None
    lat, lon = static["lat"].values, static["lon"].values
    try:
        sub = static.sel(lat=grid.lat, lon=grid.lon, method="nearest", tolerance=1e-4)
    except KeyError:
        w, e, s, n = grid.extent
        raise PrepareError(
            f"the grid {grid.name} (lat {grid.lat[0]}..{grid.lat[-1]}, lon {grid.lon[0]}..{grid.lon[-1]}) is not "
            f"inside the grid of domain {dom.name!r} ({dom.title}: lat {lat[0]}..{lat[-1]}, lon {lon[0]}..{lon[-1]}), "
            "where its elevation and basin mask are. Fix: choose a window inside it, pass --domain with a domain "
            f"that holds the window (conus holds them all; every land cell is its basin), or define one for it: "
            f"`vegviz domain add NAME --bbox {w:g},{s:g},{e:g},{n:g}`, then `vegviz prepare --domain NAME`") from None
    # the grid's own coordinates, so that the merge with the forcing aligns exactly
    out = static_fields(sub).assign_coords(lat=("lat", grid.lat, sub["lat"].attrs),
                                           lon=("lon", grid.lon, sub["lon"].attrs))
    out["cell_area"] = (("lat", "lon"), sub["cell_area"].values,
                        {k: v for k, v in sub["cell_area"].attrs.items() if k in ("source", "comment", "units",
                                                                                   "long_name")})
    if landcover is not None:
        from .landcover import landcover_on_grid

        lc = landcover_on_grid(landcover, grid, product=product)["landcover"]
        out["landcover"] = (("lat", "lon"), lc.values, {**lc.attrs, **cf_attrs("landcover")})
    return out


def _sample_note(first) -> str | None:
    """The note of a sample archive (:mod:`vegviz.data.samples`) when the forcing files, whose first
    granule is ``first``, are one."""
    if first.version != "020":
        return None
    import netCDF4
    from xarray.backends.locks import HDF5_LOCK

    with HDF5_LOCK, netCDF4.Dataset(first.path) as nc:
        title = str(getattr(nc, "title", ""))
    return title if "SAMPLE" in title else None


def _globmap_in_period(globmap, grid: _grid.Grid, start, end, granules) -> list:
    """The GLOBMAP composites dated within the days the NLDAS ``granules`` will give; PrepareError if none.

    Only file names are parsed (dates, cadence), plus the first composite read and regridded
    (seconds): a wrong product, a broken first file or files that miss the grid fail here.
    """
    from . import globmap as _globmap

    first = pd.Timestamp(start).normalize() if start is not None else granules[0].day
    last = pd.Timestamp(end).normalize() if end is not None else granules[-1].day
    try:
        comps = _globmap.composites(_globmap.find_files(globmap))
    except _globmap.GlobmapError as e:
        raise PrepareError(f"--globmap {_describe(globmap)}: {e}") from e
    inside = [c for c in comps if first <= c.date <= last]
    if not inside:
        raise PrepareError(f"no GLOBMAP composite falls in {first:%Y-%m-%d}..{last:%Y-%m-%d}, the period of the "
                           f"NLDAS files (the GLOBMAP files cover {comps[0].date:%Y-%m-%d}..{comps[-1].date:%Y-%m-%d})"
                           ". Fix: add the GLOBMAP files of that period")
    _globmap.globmap_lai([inside[0].path], grid)  # raises GlobmapError naming the file
    return inside


def _describe(path) -> str:
    if isinstance(path, (list, tuple)):
        return f"{len(path)} files"
    return str(Path(path).expanduser())


def prepare_real(nldas, globmap, out, *, landcover=None, landcover_product: str = "MCD12C1",
                 grid: _grid.Grid | None = None, domain=None, start=None, end=None, name: str | None = None,
                 daily_lai: bool = False, allow_missing_hours: int = 0, overwrite: bool = False,
                 log=print) -> xr.Dataset:
    """Build, check and write the model-ready Dataset of the real archives; register it as ``name``.

    ``nldas``/``globmap``: folders (searched recursively) or lists of files. ``out``: the
    Zarr store to write (refused if it exists, unless ``overwrite``). ``domain``: a
    :class:`vegviz.domains.Domain` or its name (default ``ucrb``); ``grid``: a window of its
    grid (default the whole grid). ``name``: the catalog entry (default: ``out``'s stem;
    ``False`` registers nothing). Returns the written Dataset, opened lazily from ``out``.
    """
    from .. import domains as _domains
    from . import globmap as _globmap
    from . import nldas as _nldas

    try:
        dom = _domains.get("ucrb" if domain is None else domain)
    except _domains.DomainError as e:
        raise PrepareError(str(e)) from None
    grid = dom.grid if grid is None else grid
    whole = same_window(grid, dom.grid)

    out = Path(out).expanduser()
    if out.suffix != ".zarr":
        raise PrepareError(f"--out {out}: the model-ready data set is a Zarr store; name it *.zarr")
    if out.exists() and not overwrite:
        raise PrepareError(f"{out} exists. Fix: choose another --out, or pass --overwrite to replace it")
    if name is None:
        name = out.stem.replace("-", "_").replace(".", "_")
    if name and name[0].isdigit():
        name = "data_" + name
    if name:
        from ..catalog import check_name

        check_name(name)  # before hours of work, not after
    for what, src in (("--nldas", nldas), ("--globmap", globmap)):
        if not isinstance(src, (list, tuple)) and not Path(src).expanduser().exists():
            raise PrepareError(f"{what} {src}: no such folder. Fix: pass the folder with the downloaded files")
    t0 = time.perf_counter()
    # static fields first: cheap (the domain's are built once, then cached), and they refuse a grid outside
    # the domain, or a window without basin cells, before any work
    where = "committed" if dom.name == "ucrb" else "from MCD12C1 and ETOPO5, cached in the data directory"
    log(f"[1/5] static fields of domain {dom.name!r} ({dom.title}"
        + ("" if whole else f", window {grid.nlat} x {grid.nlon}") + f"): elevation and basin mask ({where}), land "
        "cover " + (f"from {landcover} ({landcover_product})" if landcover else "MCD12C1 2019 (with them)"))
    static = static_on_grid(grid, landcover, landcover_product, domain=dom)
    if not int(static["mask"].sum()):
        raise PrepareError(f"no cell of the grid {grid.name} lies in the basin of domain {dom.name!r} "
                           f"({dom.basin.describe()}), so nothing could be trained on or scored. Fix: choose a window "
                           "over the basin, or a domain whose basin covers the window (`vegviz domain show "
                           f"{dom.name}` shows its extent)")
    # each folder is walked once: the later steps get the file lists
    granules = _nldas.find_granules(nldas, start, end)
    # GLOBMAP is checked before the NLDAS step (hours on the real archive), so bad input fails in seconds
    composites = _globmap_in_period(globmap, grid, start, end, granules)
    log(f"      GLOBMAP: {len(composites)} composites in the NLDAS period, the first one read as a check")

    log(f"[2/5] NLDAS-2 -> daily forcings in {work_dir(out) / 'forcing.zarr'} (resumes an interrupted build)")
    work = work_dir(out)
    work.mkdir(parents=True, exist_ok=True)
    try:
        store = _nldas.write_daily_zarr([g.path for g in granules], work / "forcing.zarr", grid, start, end,
                                        allow_missing_hours=allow_missing_hours,
                                        progress=lambda done, total: log(f"      block {done}/{total}"))
    except BaseException:
        if not any(work.iterdir()):  # nothing to resume from: leave no trace
            work.rmdir()
        raise
    forcing = _nldas.open_daily_zarr(store)
    days = pd.DatetimeIndex(forcing["time"].values)

    # 2. satellite LAI on the same days
    log(f"[3/5] GLOBMAP LAI V3 -> lai on {days[0]:%Y-%m-%d}..{days[-1]:%Y-%m-%d}")
    lai = _globmap.globmap_lai([c.path for c in composites], grid, start=days[0], end=days[-1], daily=daily_lai)
    lai = lai.reindex(time=days)
    if int(lai["lai"].notnull().any(("lat", "lon")).sum()) == 0:  # composites there, but only fill values
        raise PrepareError(f"the {len(composites)} GLOBMAP composites in {days[0]:%Y-%m-%d}..{days[-1]:%Y-%m-%d} have "
                           f"no valid LAI on the grid {grid.name} (fill values only). Fix: check that the GLOBMAP "
                           "files are the original ones and cover the grid")

    ds = xr.merge([forcing.load(), lai, static], combine_attrs="override")  # variables keep theirs
    periods = split_periods(days)
    sample = _sample_note(granules[0])  # a sample archive is labelled synthetic, like the virtual basin
    static_src = ("vegviz/data/files/ucrb_static.nc" if dom.name == "ucrb" else
                  f"static fields of domain {dom.name!r}, vegviz.data.static.static_for")
    window = "" if whole else (f"lat {grid.lat[0]:.4f}..{grid.lat[-1]:.4f}, lon {grid.lon[0]:.4f}..{grid.lon[-1]:.4f} "
                               f"({grid.nlat} x {grid.nlon} cells of the {dom.name} grid)")
    ds.attrs = {
        "title": f"vegviz model-ready data set from NLDAS-2, GLOBMAP LAI V3 and MODIS land cover: {dom.title}"
                 + (f" ({grid.name})" if not whole else "")
                 + (" - SAMPLE archive, not observations" if sample else ""),
        "synthetic": int(bool(sample)),
        "domain": dom.name,
        "domain_title": dom.title if whole else f"{dom.title}, window {grid.nlat} x {grid.nlon}",
        **({"domain_window": window} if window else {}),
        "source": "; ".join([
            f"forcing: NLDAS-2 primary forcing File A version {forcing.attrs.get('nldas_version', '?')} "
            f"({_describe(nldas)}), {forcing.attrs.get('day_boundary', 'UTC days')}",
            f"lai: GLOBMAP LAI V3 ({_describe(globmap)}), {lai['lai'].attrs.get('comment', '')}".rstrip(", "),
            "landcover: " + (f"{landcover_product} {_describe(landcover)}" if landcover else
                             f"MODIS MCD12C1 2019 IGBP majority ({static_src})"),
            f"elevation, mask: {static_src} (ETOPO5 registered to NLDAS-2; basin: {dom.basin.describe()})",
        ]),
        "history": f"{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ} vegviz prepare",
        "periods": str(periods),
    }

    # 4. process-based LAI, calibrated on the training period only
    log(f"[4/5] lai_process (GSI model), calibrated on the training period {periods['train'][0]}.."
        f"{periods['train'][1]}")
    from ..physics import add_lai_process

    ds = add_lai_process(ds, calibration=slice(*periods["train"]))

    # 5. check, write atomically, register
    try:
        validate(ds, grid=dom.grid if whole else None,
                 require=("precip", "tair", "tmin", "swdown", "lai", "lai_process", *STATIC))
    except ContractError as e:
        raise PrepareError(f"the assembled data set breaks the contract: {e}") from e
    log(f"[5/5] writing {out}")
    _write_store(ds, out, overwrite)
    if name:
        from ..catalog import register

        path = register(name, out, description=f"{ds.attrs['title']}, {days[0]:%Y-%m-%d}..{days[-1]:%Y-%m-%d}",
                        metadata={"synthetic": bool(sample), "model_ready": True, "periods": periods,
                                  "domain": dom.name, "domain_title": ds.attrs["domain_title"],
                                  **({"domain_window": window} if window else {}),
                                  "grid": grid.name, "prepared": ds.attrs["history"]})
        log(f"registered as {name!r} in {path}: vegviz train --data {name}")
    shutil.rmtree(work, ignore_errors=True)
    log(f"done in {(time.perf_counter() - t0) / 60:.1f} min")
    return xr.open_zarr(out)


def _write_store(ds: xr.Dataset, out: Path, overwrite: bool) -> None:
    """Write to a temporary store beside ``out``, mark it finished, then rename it into place."""
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    for stale in out.parent.glob(f".{out.name}.tmp-*"):  # left by a killed run: never complete
        shutil.rmtree(stale, ignore_errors=True)
    ds = ds.chunk({"time": 365, "lat": -1, "lon": -1})
    for v in ds.variables.values():
        v.encoding = {}
    try:
        ds.to_zarr(tmp, mode="w", consolidated=True, zarr_format=2)
        import zarr

        root = zarr.open_group(str(tmp), mode="r+")
        root.attrs[MARKER] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        zarr.consolidate_metadata(str(tmp))
        if out.exists():
            if not overwrite:
                raise PrepareError(f"{out} appeared while preparing. Fix: choose another --out")
            old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
