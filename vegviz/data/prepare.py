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
   NLDAS period, and that the first of them reads, is checked before step 1, in seconds. Lazy:
   each time chunk of the output reads its own composites when it is written (step 4);
3. static fields: ``elevation``, ``mask`` (and ``cell_area``) of the domain
   (:func:`vegviz.data.static.static_for`: the committed file for ``ucrb``, built once from
   MCD12C1 and the registered ETOPO5 and cached for any other domain), cut to the grid;
   ``landcover`` from ``landcover`` (an MCD12C1 or MCD12Q1 file of any year, majority class
   by :func:`vegviz.data.landcover.landcover_on_grid`) or the domain's MCD12C1 2019;
4. the forcings (read lazily from the daily store of step 1), ``lai`` and the static fields are
   written into a temporary store beside ``out``, one time chunk at a time;
5. ``lai_process`` (:func:`vegviz.physics.iter_lai_process`, calibrated on the training period)
   is added to it out of core, one time chunk at a time with the running windows carried over
   (:func:`vegviz.data.virtual.store.append_lai_process`, as for the virtual basin); then the
   contract check (:func:`vegviz.contract.validate`) of the whole store, and the store is
   marked finished and renamed to ``out``: ``out`` is either absent or complete, never
   half-written;
6. an entry ``name`` in the user catalog (:func:`vegviz.catalog.register`) with the
   train/validation/test split and the domain, so ``vegviz train --data name`` and the
   dashboards use it. The data set's attributes name the domain too (``domain``,
   ``domain_title``; ``domain_window`` when it is a window of the domain's grid).

Memory: nothing holds the whole period. The store has the layout of the virtual basin's
(:func:`vegviz.data.virtual.store.chunk_shape`: a year of days by the domain, tiled in
patches of at most ``TILE`` x ``TILE`` cells), and steps 4 and 5 hold about one time chunk
of the domain's variables at a time, so peak memory does not grow with the number of years
(benchmarks/bench_prepare.py).

The split: the study's (1981-2001 / 2002-2008 / 2009-2016) when the data cover 1981-2016;
otherwise the first 60 % of the days for training, the next 20 % for validation and the
last 20 % for testing.
"""
from __future__ import annotations

import shutil
import time
import uuid
import warnings
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import xarray as xr

from .. import grid as _grid
from ..contract import ContractError, cf_attrs, validate
from .static import STATIC

__all__ = ["PrepareError", "prepare_real", "same_window", "split_periods", "static_on_grid", "work_dir"]

MARKER = "vegviz_prepared"  # a store attribute: written last, so a store without it is not ours or not done
DIMS = ("time", "lat", "lon")


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
    from .virtual import store as _vstore

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
    forcing = _nldas.open_daily_zarr(store)  # lazy (dask): read a time chunk at a time in step 4
    days = pd.DatetimeIndex(forcing["time"].values)

    # 2. satellite LAI on the same days, lazy: a time chunk of the output reads its own composites
    log(f"[3/5] GLOBMAP LAI V3 -> lai on {days[0]:%Y-%m-%d}..{days[-1]:%Y-%m-%d} ({len(composites)} composites, "
        "read chunk by chunk while writing)")
    lai = _globmap.globmap_lai([c.path for c in composites], grid, start=days[0], end=days[-1], daily=daily_lai,
                               time_chunk=_vstore.CHUNK_DAYS)
    if not lai.indexes["time"].equals(days):  # pragma: no cover - both are the gap-free days of the period
        lai = lai.reindex(time=days)

    ds = xr.merge([forcing, lai, static], combine_attrs="override")  # variables keep theirs
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

    # 4.-5. write a time chunk at a time, add lai_process (calibrated on the training period only) out of core,
    # check, then rename into place
    with _building(out, overwrite) as tmp:
        n = -(-days.size // _vstore.CHUNK_DAYS)
        log(f"[4/5] writing forcings, lai and static fields to {tmp.name} beside {out.name}, {n} time chunk(s) of "
            f"{_vstore.CHUNK_DAYS} days")
        if not _write_fields(ds, tmp, log):  # composites there, but only fill values
            raise PrepareError(f"the {len(composites)} GLOBMAP composites in {days[0]:%Y-%m-%d}..{days[-1]:%Y-%m-%d} "
                               f"have no valid LAI on the grid {grid.name} (fill values only). Fix: check that the "
                               "GLOBMAP files are the original ones and cover the grid")
        log(f"[5/5] lai_process (GSI model), calibrated on the training period {periods['train'][0]}.."
            f"{periods['train'][1]}, a time chunk at a time; contract check; {out}")
        _vstore.append_lai_process(tmp, slice(*periods["train"]))
        with xr.open_zarr(tmp, consolidated=False) as stored:
            try:
                validate(stored, grid=dom.grid if whole else None,
                         require=("precip", "tair", "tmin", "swdown", "lai", "lai_process", *STATIC))
            except ContractError as e:
                raise PrepareError(f"the assembled data set breaks the contract: {e}") from e
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
    return xr.open_zarr(out, consolidated=True)


@contextmanager
def _building(out: Path, overwrite: bool):
    """A temporary store beside ``out`` to fill; on success it is marked finished and renamed to ``out``.

    On any error (or interruption) the temporary store is removed, so ``out`` is never
    half-written; temporary stores left by a killed run are removed first.
    """
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    for stale in out.parent.glob(f".{out.name}.tmp-*"):  # left by a killed run: never complete
        shutil.rmtree(stale, ignore_errors=True)
    try:
        yield tmp
        import zarr

        zarr.open_group(str(tmp), mode="r+").attrs[MARKER] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with warnings.catch_warnings():
            # zarr warns that consolidated metadata is not (yet) in the v3 spec; xarray reads it.
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
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


def _write_fields(ds: xr.Dataset, tmp: Path, log) -> int:
    """Write ``ds`` (lazy) into the new store ``tmp`` a time chunk at a time; return the days with any ``lai``.

    The layout is the virtual basin's (:func:`vegviz.data.virtual.store.chunk_shape`, same
    compressor): the static fields and the metadata first, then each time chunk of the
    (time, lat, lon) variables is computed (the forcings' chunks and the GLOBMAP composites
    of those days are read once) and written whole, in a background thread while the next
    one is computed (:class:`vegviz.data.virtual.store._ChunkWriter`): about two time chunks
    of the domain's variables are in memory, whatever the length of the period.
    """
    import dask
    import dask.array as dsa
    import numpy as np
    import zarr

    from .virtual import store as _vstore

    dynamic = [v for v in ds.data_vars if set(ds[v].dims) == set(DIMS)]
    nt, nlat, nlon = (ds.sizes[d] for d in DIMS)
    chunks = _vstore.chunk_shape(nlat, nlon)
    step = chunks[0]
    template = ds.drop_vars(dynamic)
    for v in template.variables.values():
        v.encoding = {}
    for v in dynamic:
        template[v] = (DIMS, dsa.zeros((nt, nlat, nlon), chunks=chunks, dtype=ds[v].dtype), ds[v].attrs)
    encoding = {v: _vstore._encoding(chunks) for v in dynamic}
    encoding["time"] = {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian", "dtype": "int32"}
    # compute=False writes the coordinates, the static fields and all metadata, no (time, lat, lon) data
    template.to_zarr(tmp, mode="w-", compute=False, consolidated=False, zarr_format=3, encoding=encoding)
    group = zarr.open_group(str(tmp), mode="r+")
    observed = 0
    n = -(-nt // step)
    with _vstore._ChunkWriter({v: group[v] for v in dynamic}, step) as writer:
        for k, a in enumerate(range(0, nt, step)):
            b = min(a + step, nt)
            part = ds[dynamic].isel(time=slice(a, b)).transpose(*DIMS)
            # lai and lai_daily come from one task per chunk (its composites read once): computed together; the
            # forcings one at a time, so that a variable's pieces and its assembled chunk are all that is extra
            together = [v for v in ("lai", "lai_daily") if v in dynamic]
            values = dict(zip(together, dask.compute(*(part[v].data for v in together))))
            for v in dynamic:
                if v not in values:
                    values[v] = part[v].values
            del part
            observed += int(np.isfinite(values["lai"]).any(axis=(1, 2)).sum())
            writer.add(values)
            log(f"      time chunk {k + 1}/{n}: days {a + 1}..{b} of {nt}")
    return observed
