"""Planning and downloading NLDAS-2 hourly granules from NASA GES DISC with earthaccess.

The plan (:func:`plan_granules`) is pure arithmetic on dates, so it works offline: one
granule per UTC hour, named as GES DISC names them, under
``https://hydro1.gesdisc.eosdis.nasa.gov/data/NLDAS/<collection>/<YYYY>/<DOY>/``.
:func:`fetch` searches NASA's CMR through earthaccess (short name ``NLDAS_FORA0125_H``,
version "2.0" for NetCDF or "002" for GRIB, the period and the grid's bounding box) and
downloads the granules not already in ``out_dir``.

The bounding box only selects granules (every NLDAS-2 granule covers all of CONUS);
earthaccess downloads whole files (~1.7 MB each, 8760 a year). Server-side spatial
subsetting of NLDAS-2 exists at GES DISC (OPeNDAP and the subsetting services its README
lists), but earthaccess 0.17 has no subsetting call, so it is not used here; the files
are cropped locally by coordinates when they are read.
"""
from __future__ import annotations

import netrc
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ...grid import UCRB, Grid
from .files import PRODUCT, NldasError, granule_name

EDL_HOST = "urs.earthdata.nasa.gov"
BASE_URL = "https://hydro1.gesdisc.eosdis.nasa.gov/data/NLDAS"
COLLECTIONS = {"020": ("NLDAS_FORA0125_H.2.0", "2.0"), "002": ("NLDAS_FORA0125_H.002", "002")}
FIRST_HOUR = pd.Timestamp("1979-01-01T13:00")  # the archive starts with the file stamped 13:00 UTC
LOGIN_HELP = (
    "Earthdata login needed to download NLDAS-2. Either set EARTHDATA_USERNAME and EARTHDATA_PASSWORD "
    "(or EARTHDATA_TOKEN) in the environment, or add a line "
    f"'machine {EDL_HOST} login YOUR_USER password YOUR_PASSWORD' to ~/.netrc (chmod 600). "
    "An account is free at https://urs.earthdata.nasa.gov (authorise the 'NASA GESDISC DATA ARCHIVE' "
    "application in your profile)"
)


class CredentialsMissing(NldasError):
    """No Earthdata login in the environment or ~/.netrc."""


@dataclass(frozen=True)
class PlannedGranule:
    time: pd.Timestamp  # file-name stamp, UTC
    name: str
    url: str

    @property
    def day(self) -> pd.Timestamp:
        return self.time.normalize()


def _version(version: str) -> str:
    v = {"2.0": "020", "20": "020", "020": "020", "2": "002", "002": "002"}.get(str(version))
    if v is None:
        raise NldasError(f"unknown NLDAS-2 version {version!r}; use '2.0' (NetCDF, current) or '002' (GRIB)")
    return v


def bbox(grid: Grid = UCRB) -> tuple[float, float, float, float]:
    """(west, south, east, north) outer edges of ``grid``, earthaccess's bounding_box order."""
    w, e, s, n = grid.extent
    return (w, s, e, n)


def plan_granules(start, end, grid: Grid = UCRB, version: str = "2.0") -> list[PlannedGranule]:
    """The hourly granules (name, URL, time) that make the UTC days ``start``..``end`` (inclusive).

    ``grid`` is accepted for symmetry with :func:`fetch` (every granule covers CONUS; the
    grid must lie inside the NLDAS-2 domain).
    """
    v = _version(version)
    t0, t1 = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if t1 < t0:
        raise NldasError(f"end {t1:%Y-%m-%d} is before start {t0:%Y-%m-%d}")
    w, s, e, n = bbox(grid)
    if w < -125.0 or e > -67.0 or s < 25.0 or n > 53.0:
        raise NldasError(f"grid {grid.name} ({w}, {s}, {e}, {n}) reaches outside the NLDAS-2 domain "
                         "(125-67 W, 25-53 N)")
    hours = pd.date_range(t0, t1 + pd.Timedelta(hours=23), freq="h")
    if hours[0] < FIRST_HOUR:
        raise NldasError(f"NLDAS-2 starts at {FIRST_HOUR:%Y-%m-%d %H:%M} UTC; the first whole UTC day is "
                         "1979-01-02. Fix: start on or after 1979-01-02")
    collection = COLLECTIONS[v][0]
    return [PlannedGranule(t, granule_name(t, v), f"{BASE_URL}/{collection}/{t:%Y}/{t.day_of_year:03d}/"
                           f"{granule_name(t, v)}") for t in hours]


def earthdata_credentials() -> str | None:
    """'environment' or 'netrc' when an Earthdata login is configured there, else None (never prompts)."""
    if os.environ.get("EARTHDATA_TOKEN") or (os.environ.get("EARTHDATA_USERNAME")
                                              and os.environ.get("EARTHDATA_PASSWORD")):
        return "environment"
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    try:
        if netrc.netrc(str(path)).authenticators(EDL_HOST):
            return "netrc"
    except (OSError, netrc.NetrcParseError):
        pass
    return None


def fetch(start, end, out_dir, grid: Grid = UCRB, version: str = "2.0", *, threads: int = 4) -> list[Path]:
    """Download the hourly granules of ``start``..``end`` (UTC days) into ``out_dir``; returns all their paths.

    Files already in ``out_dir`` are kept. Without Earthdata credentials it raises
    :class:`CredentialsMissing` at once, saying how to log in (nothing is prompted).
    """
    plan = plan_granules(start, end, grid, version)
    out = Path(out_dir).expanduser()
    todo = [p for p in plan if not (out / p.name).is_file()]
    if not todo:
        return [out / p.name for p in plan]
    strategy = earthdata_credentials()
    if strategy is None:
        raise CredentialsMissing(LOGIN_HELP)
    import earthaccess

    auth = earthaccess.login(strategy=strategy)
    if not getattr(auth, "authenticated", False):
        raise CredentialsMissing(f"Earthdata login with the {strategy} credentials failed. {LOGIN_HELP}")
    short, cmr_version = PRODUCT, COLLECTIONS[_version(version)][1]
    results = earthaccess.search_data(
        short_name=short, version=cmr_version, bounding_box=bbox(grid),
        temporal=(f"{todo[0].time:%Y-%m-%dT%H:%M:%S}", f"{todo[-1].time:%Y-%m-%dT%H:%M:%S}"),
    )
    wanted = {p.name for p in todo}
    chosen = [r for r in results if _granule_file(r) in wanted]
    missing = wanted - {_granule_file(r) for r in chosen}
    out.mkdir(parents=True, exist_ok=True)
    if chosen:
        earthaccess.download(chosen, str(out), threads=threads, show_progress=False)
    still = sorted(n for n in wanted if not (out / n).is_file())
    if still:
        raise NldasError(f"{len(still)} of {len(plan)} granules are not in {out} after the download "
                         f"(e.g. {still[0]}; {len(missing)} were not found by the CMR search). Fix: rerun "
                         "`vegviz fetch nldas` (it keeps what is there) or check the period")
    return [out / p.name for p in plan]


def _granule_file(result) -> str:
    try:
        return Path(result.data_links()[0]).name
    except (IndexError, AttributeError, TypeError):
        return ""
