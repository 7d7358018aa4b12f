"""A user's own basin, defined three ways (outlet, box, polygon), through the whole pipeline.

Each is added with ``vegviz domain add``, trains a tiny model with ``vegviz train --domain``
on its small virtual basin, and is browsed in the LAI-map, skill and time-series dashboards,
whose titles and extents must be the domain's. (The tour notebook on a user domain is in
test_notebooks.py; the dashboards and an experiment on the built-in ``gunnison`` in
test_dashboards.py.)
"""
import json
import re

import numpy as np
import pytest

from vegviz import cli, domains
from vegviz.data.static import missing_sources, static_for as domains_static

from marks import slow_except

pytestmark = pytest.mark.skipif(bool(missing_sources()), reason="; ".join(missing_sources()) or "ok")

TINY = ["--epochs", "1", "--set", "hparams.filters=4", "--set", "window=60", "--set", "burn_in=30",
        "--set", "chunk=30", "--set", "batch_size=4", "--set", "stride=60", "--set", "num_threads=1"]


def _polygon(tmp_path):
    # a quadrilateral over the Uncompahgre Plateau, about 6 x 7 cells, in RFC 7946 GeoJSON (lon/lat)
    ring = [[-108.6, 38.2], [-107.9, 38.25], [-107.85, 38.85], [-108.55, 38.8], [-108.6, 38.2]]
    path = tmp_path / "plateau.geojson"
    path.write_text(json.dumps({"type": "Feature", "properties": {"name": "plateau"},
                                "geometry": {"type": "Polygon", "coordinates": [ring]}}))
    return path


KINDS = {
    # Rio Grande near Del Norte, CO (USGS 08220000, 1,320 mi2): a small catchment of about 24 cells
    "outlet": lambda tmp: ["--outlet", "37.6892,-106.4642", "--area", "3419"],
    "bbox": lambda tmp: ["--bbox", "-107.9,39.3,-107.1,39.9"],
    "polygon": lambda tmp: ["--polygon", str(_polygon(tmp))],
}


# the default run trains one user domain (an outlet); the bbox and polygon ones train the same way
@pytest.mark.parametrize("kind", slow_except(sorted(KINDS), {"outlet"}))
def test_a_user_domain_trains_and_shows_in_the_dashboards(kind, tmp_path, monkeypatch, capsys):
    from vegviz.dashboards import LaiMaps, Skill, TimeSeries

    name = f"user_{kind}"
    runs = tmp_path / "runs"
    monkeypatch.setenv("VEGVIZ_RUNS_DIR", str(runs))
    title = f"My {kind} basin"
    assert cli.main(["domain", "add", name, *KINDS[kind](tmp_path), "--title", title]) == 0
    try:
        dom = domains.get(name)
        assert dom.basin.kind == ("window" if kind == "bbox" else kind) and dom.title == title
        out = capsys.readouterr().out
        cells = int(re.search(r"(\d+) basin cells", out).group(1))
        assert 0 < cells <= dom.grid.nlat * dom.grid.nlon

        assert cli.main(["train", "--domain", name, "--name", name, "--no-progress", *TINY]) == 0
        run_dir = runs / name
        import xarray as xr

        with xr.open_dataset(run_dir / "predictions.nc") as pred:
            assert dom.grid.matches(pred.lat, pred.lon) and list(pred.data_vars) == ["convlstm"]
            assert pred.attrs.get("domain", name) == name
            lai = pred["convlstm"].isel(time=slice(-60, None)).values
            mask = domains_static(name)["mask"].values.astype(bool)
            assert np.isfinite(lai[:, mask]).all()

        for cls in (LaiMaps, Skill, TimeSeries):
            c = cls()
            c.result = name
            assert c.ready, (cls.__name__, c.error)
            assert c.domain.name == name and c.title == title
            assert c.extent == pytest.approx(dom.extent)
            assert title in c.header_text() and "Upper Colorado" not in c.header_text()
    finally:
        domains.remove(name)
