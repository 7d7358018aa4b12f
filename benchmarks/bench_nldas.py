"""Benchmark the NLDAS-2 daily aggregation on full-CONUS-size NetCDF 2.0 files.

Writes ``--days`` x 24 hourly files of the full NLDAS-2 grid (464 x 224, the 11 File A
variables, zlib level 1, fill -9999 off the land mask), derived from the real GRIB file
with a diurnal cycle, into a temporary folder (not timed). Then, on one core
(dask's single-threaded scheduler, so the numbers are per core):

* vegviz: ``nldas_daily(folder, UCRB).compute()`` (read 5 variables, crop to the 63 x 54
  study grid, aggregate 6 daily variables);
* reference: plain xarray on the same files, ``open_dataset`` + ``isel`` to the same window
  + ``load`` of the same 5 variables, then daily mean of Tair (reading only, less work);
* GRIB 002: ``read_granule`` of the real GRIB file, repeated (reading and cropping only).

Prints hourly files per second per core, the ratio to the reference and the estimated
single-core time for the 1981-2016 archive (36 years x 8760 hourly files).

    python benchmarks/bench_nldas.py               # 2 days = 48 files
    python benchmarks/bench_nldas.py --days 4
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from vegviz.data import nldas
from vegviz.grid import NLDAS, UCRB

GRIB = Path(os.environ.get("VEGVIZ_NLDAS_GRIB", "/work/shared/data/nldas/NLDAS_FORA0125_H.A20171024.1500.002.grb"))
ARCHIVE_FILES = 36 * 8760


def write_conus_files(folder: Path, days: int) -> list[Path]:
    import netCDF4

    base = nldas.read_granule(GRIB, NLDAS, tuple(nldas.FIELDS))
    paths = []
    for d in range(days):
        for h in range(24):
            t = pd.Timestamp("2017-10-23") + pd.Timedelta(days=d, hours=h)
            phase = np.float32(np.cos(2 * np.pi * (h - 22) / 24))
            vals = dict(base)
            vals["Tair"] = base["Tair"] + 6 * phase
            vals["SWdown"] = base["SWdown"] * max(phase, 0)
            vals["Rainf"] = base["PotEvap"].clip(0) * (h % 3 == 0)
            path = folder / nldas.granule_name(t, "020")
            with netCDF4.Dataset(path, "w") as nc:
                nc.createDimension("time", None)
                nc.createDimension("lat", NLDAS.nlat)
                nc.createDimension("lon", NLDAS.nlon)
                tv = nc.createVariable("time", "f8", ("time",))
                tv.units, tv[:] = f"hours since {t:%Y-%m-%d %H:%M:%S}", [0.0]
                for c, v, u in (("lat", NLDAS.lat, "degrees_north"), ("lon", NLDAS.lon, "degrees_east")):
                    x = nc.createVariable(c, "f4", (c,))
                    x.units, x[:] = u, v
                for k, a in vals.items():
                    x = nc.createVariable(k, "f4", ("time", "lat", "lon"), zlib=True, complevel=1,
                                          fill_value=np.float32(-9999.0), chunksizes=(1, NLDAS.nlat, NLDAS.nlon))
                    x.units = nldas.FIELDS[k].units
                    x[0] = np.where(np.isnan(a), -9999.0, a)
            paths.append(path)
    return paths


def reference(paths) -> float:
    """Plain xarray: open each file, cut the same window, load the 5 variables; daily mean of Tair."""
    lat = slice(UCRB.lat[0] - 1e-3, UCRB.lat[-1] + 1e-3)
    lon = slice(UCRB.lon[0] - 1e-3, UCRB.lon[-1] + 1e-3)
    hours = []
    for p in paths:
        with xr.open_dataset(p, engine="netcdf4") as ds:
            hours.append(ds[list(nldas.REQUIRED)].sel(lat=lat, lon=lon).load())
    ds = xr.concat(hours, "time")
    return float(ds.Tair.resample(time="1D").mean().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--grib-repeats", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-nldas-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        paths = write_conus_files(folder, args.days)
        n = len(paths)
        size = sum(p.stat().st_size for p in paths) / n / 1e6
        print(f"wrote {n} full-CONUS NetCDF 2.0 files ({size:.1f} MB each) in {time.perf_counter() - t0:.1f} s")

        reference(paths[:2])  # warm imports and caches
        t0 = time.perf_counter()
        daily = nldas.nldas_daily(folder, UCRB).compute(scheduler="single-threaded")
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        reference(paths)
        t_ref = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(args.grib_repeats):
            nldas.read_granule(GRIB, UCRB)
        t_grib = (time.perf_counter() - t0) / args.grib_repeats
        assert np.isfinite(daily.tair).all()

    rate, rate_ref = n / t_ours, n / t_ref
    print(f"vegviz nldas_daily (NetCDF 2.0 -> 6 daily variables on UCRB): {t_ours:.2f} s, "
          f"{rate:.0f} hourly files/s per core")
    print(f"reference xarray open+sel+load (5 variables, no aggregation):  {t_ref:.2f} s, "
          f"{rate_ref:.0f} hourly files/s per core")
    print(f"ratio vegviz / reference speed: {rate / rate_ref:.2f}")
    print(f"GRIB 002 read_granule (real file, crop to UCRB): {1 / t_grib:.0f} files/s per core")
    for name, r in (("NetCDF 2.0", rate), ("GRIB 002 (reading only)", 1 / t_grib)):
        hours = ARCHIVE_FILES / r / 3600
        print(f"1981-2016 archive ({ARCHIVE_FILES} files), {name}: {hours:.1f} core-hours "
              f"({hours / os.cpu_count():.1f} h on this machine's {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
