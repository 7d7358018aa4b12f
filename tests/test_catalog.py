"""The intake catalog: opens under intake 2.x from anywhere, entries read as Datasets."""
import os
from pathlib import Path

import intake
import numpy as np
import pytest
import xarray as xr

import vegviz
import vegviz.catalog as vcat
from vegviz.training import Config

REPO = Path(__file__).resolve().parent.parent
#: the virtual basins of the built-in domains, in catalog order
VIRTUAL = [f"virtual_{d}{suffix}" for d in ("ucrb", "conus", "gunnison") for suffix in ("", "_small")]


def test_plain_intake_opens_the_catalog():
    cat = intake.open_catalog(str(REPO / "catalogs" / "vegviz.yaml"))
    assert {"virtual_ucrb", "virtual_ucrb_small", "static"} <= set(cat)


def test_open_catalog_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cat = vcat.open_catalog()
    ds = cat.static.read()
    assert isinstance(ds, xr.Dataset)
    assert ds.sizes["lat"] == 63 and ds.sizes["lon"] == 54
    assert {"landcover", "elevation", "mask", "landcover_fraction"} <= set(ds.data_vars)


def test_static_entry_uses_netcdf4_engine():
    entry = vcat.open_catalog()._entries["static"].describe()
    assert entry["args"]["xarray_kwargs"]["engine"] == "netcdf4"


def test_catalog_env_override_and_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv(vcat.CATALOG_ENV, str(tmp_path / "nope.yaml"))
    with pytest.raises(FileNotFoundError, match="VEGVIZ_CATALOG"):
        vcat.open_catalog()


def test_entries_carry_plot_defaults_and_plot_renders():
    import holoviews as hv

    cat = vcat.open_catalog()
    for name in cat:
        if name not in ("runs", "scenarios", "projections"):  # nested catalogs of results, plotted by the dashboards
            assert vcat.metadata(cat[name]).get("plots"), name
    fig = hv.render(vcat.plot(cat.static, "elevation"))
    assert fig.title.text.startswith("Elevation")
    with pytest.raises(KeyError, match="choose one of"):
        vcat.plot(cat.static, "nope")


def test_virtual_basin_entry_builds_on_first_read_and_is_lazy(small_basin):
    cat = vcat.open_catalog()
    src = cat.virtual_ucrb_small
    ds = src.to_dask()
    assert ds["precip"].chunks is not None, "large entries must open lazily (dask)"
    assert int(ds.attrs["synthetic"]) == 1
    xr.testing.assert_identical(ds[["tair"]].isel(time=slice(0, 3)).load(),
                                small_basin[["tair"]].isel(time=slice(0, 3)).load())


def test_virtual_basin_entry_builds_when_cache_is_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("VEGVIZ_DATA_DIR", str(tmp_path))
    assert not any(tmp_path.iterdir())
    from vegviz.data.virtual import VARIANTS

    # a one-year variant keeps this quick; the catalog's own entries use the same source class
    monkeypatch.setitem(VARIANTS, "tiny", ("2000-01-01", "2000-12-31"))
    ds = vcat.VirtualBasinSource(variant="tiny").to_dask()
    assert ds.sizes["time"] == 366
    assert any(p.suffix == ".zarr" for p in tmp_path.iterdir())


def test_top_level_helpers(small_basin, tmp_path, monkeypatch):
    import vegviz

    monkeypatch.chdir(tmp_path)
    assert "static" in vegviz.open_catalog()
    ds = vegviz.open_dataset("virtual_ucrb_small")
    assert ds.sizes["time"] == small_basin.sizes["time"]
    with pytest.raises(KeyError, match="entries"):
        vegviz.open_dataset("nope")


def test_registered_store_opens_like_a_builtin_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("VEGVIZ_DATA_DIR", str(tmp_path / "data"))
    store = tmp_path / "real.zarr"
    xr.Dataset({"lai": ("time", np.arange(3.0))}).to_zarr(store, zarr_format=2)
    periods = {"train": ["1990-01-01", "1999-12-31"], "validation": ["2000-01-01", "2002-12-31"],
               "test": ["2003-01-01", "2005-12-31"]}
    path = vcat.register("ucrb_real", store, description="real data",
                         metadata={"model_ready": True, "synthetic": False, "periods": periods})
    assert path == tmp_path / "data" / "catalog.yaml"
    cat = vegviz.open_catalog()
    assert {"virtual_ucrb", "static", "runs", "ucrb_real"} <= set(cat)
    assert cat.static.read()["landcover"].shape == (63, 54)  # the built-in entries still resolve their paths
    np.testing.assert_array_equal(vcat.open_data("ucrb_real")["lai"].values, [0.0, 1.0, 2.0])
    assert Config.for_data("ucrb_real").periods.test == ("2003-01-01", "2005-12-31")
    from vegviz.dashboards.sources import data_choices

    assert "ucrb_real" in data_choices()
    # registering again replaces the entry, keeping the others
    vcat.register("other", store, description="again")
    vcat.register("ucrb_real", store, description="replaced", metadata={"model_ready": False})
    cat = vegviz.open_catalog()
    assert "other" in cat and "ucrb_real" not in data_choices()


@pytest.mark.parametrize("name, message", [("static", "built-in entry"), ("1bad", "letters, digits"),
                                           ("a/b", "letters, digits")])
def test_register_refuses_bad_names_and_writes_nothing(tmp_path, monkeypatch, name, message):
    monkeypatch.setenv("VEGVIZ_DATA_DIR", str(tmp_path))
    with pytest.raises(ValueError, match=message):
        vcat.register(name, tmp_path / "x.zarr", description="")
    assert not (tmp_path / "catalog.yaml").exists()


def test_only_model_ready_entries_are_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cat = vegviz.open_catalog()
    assert {"runs", "static"} <= set(cat)
    assert vcat.model_ready(cat) == VIRTUAL  # told apart without opening them
    with pytest.raises(FileNotFoundError, match=rf"data sets: {', '.join(VIRTUAL)}\. Fix") as e:
        vcat.open_data("NOPE")
    assert "runs" not in str(e.value) and "static" not in str(e.value)
    # the other entries are refused by what they are and what to use instead, not a NotImplementedError
    # or a missing-variable error with a wrong fix
    with pytest.raises(ValueError, match=r"'runs' is not a model-ready data set: it lists trained runs.*"
                                         r"vegviz evaluate NAME.*Fix: pass a data set \(virtual_ucrb, "):
        vcat.open_data("runs")
    with pytest.raises(ValueError, match=r"'static' is not a model-ready data set: it holds the static "
                                         r"fields alone.*open_catalog\(\)\[\"static\"\]\.read\(\)"):
        vcat.open_data("static")


def test_cli_refuses_non_data_entries_with_exit_2(tmp_path, monkeypatch, capsys):
    from vegviz import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VEGVIZ_RUNS_DIR", str(tmp_path / "runs"))
    for argv in (["info", "runs"], ["info", "static"], ["train", "--data", "runs", "--run-dir", "r"],
                 ["train", "--data", "static", "--run-dir", "r"]):
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert f"'{argv[-1] if argv[0] == 'info' else argv[2]}' is not a model-ready data set" in err, err
        assert "Traceback" not in err and "precip" not in err
    assert not (tmp_path / "r").exists()  # refused before a run folder is made
    assert cli.main(["info", "NOPE"]) == 2
    assert f"data sets: {', '.join(VIRTUAL)}." in capsys.readouterr().err


def test_user_entries_count_as_data_only_when_marked_model_ready(tmp_path, monkeypatch):
    monkeypatch.setenv("VEGVIZ_DATA_DIR", str(tmp_path / "data"))
    store = tmp_path / "s.zarr"
    xr.Dataset({"lai": ("time", np.arange(3.0))}).to_zarr(store, zarr_format=2)
    vcat.register("ready", store, description="", metadata={"model_ready": True})
    vcat.register("unmarked", store, description="")
    assert vcat.model_ready() == [*VIRTUAL, "ready"]
    np.testing.assert_array_equal(vcat.open_data("ready")["lai"].values, [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="'unmarked' is not a model-ready data set: its metadata does not say "
                                         "model_ready: true"):
        vcat.open_data("unmarked")
