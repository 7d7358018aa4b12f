"""Domains as values: built-ins, the user registry, bbox windows, and static fields per domain."""
import numpy as np
import pytest
import xarray as xr

from vegviz import domains as D
from vegviz import grid as G
from vegviz.data.static import missing_sources

needs_sources = pytest.mark.skipif(bool(missing_sources()), reason="; ".join(missing_sources()) or "ok")


def test_builtins_are_values_on_the_nldas_lattice():
    assert D.get("ucrb").grid == G.UCRB and D.get("conus").grid == G.NLDAS
    for d in D.BUILTIN.values():
        rows, cols = d.grid.slices_in(G.NLDAS)
        assert np.allclose(G.NLDAS.lat[rows], d.grid.lat) and np.allclose(G.NLDAS.lon[cols], d.grid.lon)
        assert D.Domain.from_dict(d.name, d.to_dict(), builtin=True) == d
    assert D.get("ucrb").basin.outlet == D.LEES_FERRY


def test_bbox_domain_snaps_to_cell_centres():
    d = D.from_bbox("box", -106.5, 39.0, -104.5, 41.0)
    assert d.grid.lat[0] >= 39.0 and d.grid.lat[-1] <= 41.0 and d.grid.lat[0] - 0.125 < 39.0
    assert d.grid.lon[0] >= -106.5 and d.grid.lon[-1] <= -104.5
    assert d.grid.shape == (16, 16) and d.basin.kind == "window"


@pytest.mark.parametrize("args, match", [
    ((-130.0, 39.0, -125.5, 41.0), "outside the NLDAS-2 domain"),
    ((-106.0, 39.0, -107.0, 41.0), "is empty"),
    ((-106.0, 39.0, -105.95, 39.05), "at least 2 x 2"),
])
def test_bad_boxes_are_refused(args, match):
    with pytest.raises(D.DomainError, match=match):
        D.from_bbox("box", *args)


def test_registry_add_get_remove(tmp_path):
    d = D.from_bbox("front_range", -106.5, 39.0, -104.5, 41.0, title="Front Range")
    D.add(d, tmp_path)
    assert D.get("front_range", tmp_path) == d and "front_range" in D.names(tmp_path)
    with pytest.raises(D.DomainError, match="exists already"):
        D.add(d, tmp_path)
    with pytest.raises(D.DomainError, match="built in"):
        D.add(D.from_bbox("ucrb", -106.5, 39.0, -104.5, 41.0), tmp_path)
    D.remove("front_range", tmp_path)
    with pytest.raises(D.DomainError, match="unknown domain 'front_range'.*vegviz domain add"):
        D.get("front_range", tmp_path)
    with pytest.raises(D.DomainError, match="lower-case"):
        D.from_bbox("Bad Name", -106.5, 39.0, -104.5, 41.0)


def test_key_follows_the_definition_not_the_title():
    a = D.from_bbox("a", -106.5, 39.0, -104.5, 41.0, title="one")
    b = D.from_bbox("a", -106.5, 39.0, -104.5, 41.0, title="two")
    c = D.from_bbox("a", -106.5, 39.0, -104.0, 41.0)
    assert a.key == b.key != c.key


def test_of_dataset_finds_the_domain():
    g = D.get("gunnison").grid
    ds = xr.Dataset(coords=g.coords(), attrs={"domain": "gunnison"})
    assert D.of_dataset(ds).name == "gunnison"
    assert D.of_dataset(xr.Dataset(coords=G.UCRB.coords())).name == "ucrb"
    window = G.Grid(40.0625, -100.0625, 3, 4)
    assert D.of_dataset(xr.Dataset(coords=window.coords())).grid == window


@needs_sources
def test_gunnison_from_its_gauge_matches_the_builtin_and_usgs():
    d = D.get("gunnison")
    again = D.from_outlet("gunnison_again", *d.basin.outlet, gauge_area_km2=d.basin.gauge_area_km2)
    assert again.grid.shape == d.grid.shape and again.grid.lat0 == d.grid.lat0 and again.grid.lon0 == d.grid.lon0
    from vegviz.data.static import static_for

    st = static_for("gunnison")
    area = float((st["cell_area"] * st["mask"]).sum()) / 1e6
    # 5' DEM on a 21,000 km2 basin: +3.7 % measured (USGS 09152500: 7,928 mi2)
    assert area == pytest.approx(d.basin.gauge_area_km2, rel=0.06)
    assert st.attrs["domain"] == "gunnison" and st["mask"].dtype == np.int8


@needs_sources
def test_static_fields_are_cached_and_rebuilt_when_the_domain_changes(tmp_path, monkeypatch):
    from vegviz.data import static as S

    d = D.from_bbox("tiny", -106.5, 39.0, -106.0, 39.5)
    D.add(d, tmp_path)
    first = S.static_for("tiny", tmp_path)
    files = list((tmp_path / "static").glob("tiny-*.nc"))
    assert len(files) == 1 and int(first["mask"].sum()) > 0
    calls = []
    monkeypatch.setattr(S, "build_static", lambda dom: calls.append(dom) or first)
    S.static_for("tiny", tmp_path)
    assert not calls  # read from the cache
    D.remove("tiny", tmp_path)
    D.add(D.from_bbox("tiny", -106.5, 39.0, -105.9, 39.5), tmp_path)
    monkeypatch.undo()
    second = S.static_for("tiny", tmp_path)
    assert second.sizes["lon"] == first.sizes["lon"] + 1
    assert [f.name for f in (tmp_path / "static").glob("tiny-*.nc")] != [f.name for f in files]
    assert len(list((tmp_path / "static").glob("tiny-*.nc"))) == 1  # the old one is gone


@needs_sources
def test_conus_static_fields_are_a_land_surface():
    from vegviz.contract import cf_attrs
    from vegviz.data.static import LOWEST_LAND_M, static_for

    st = static_for("conus")
    assert st.sizes == {"lat": 224, "lon": 464, **{k: v for k, v in st.sizes.items() if k not in ("lat", "lon")}}
    elev = st["elevation"].values
    assert elev.min() >= LOWEST_LAND_M and elev.max() < 4400  # ETOPO5's sea floor is -5,600 m here
    assert (elev[st["landcover"].values == 0] >= 0).all()  # water surfaces, not floors
    assert cf_attrs("elevation")["units"] == st["elevation"].attrs["units"]
    assert 70_000 < int(st["mask"].sum()) < 80_439  # land cells; NLDAS-2 forcing has 80,439
