"""The dashboards' download buttons and the forcing under a clicked cell's series, on the shared tiny experiment.

Each button's file is made as a browser's press would make it (the FileDownload's callback),
then opened with pandas or xarray and compared with what the view shows.
"""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import panel as pn
import pytest
import xarray as xr
from bokeh.models import Plot

from vegviz.dashboards import LaiMaps, Skill, TimeSeries
from vegviz.dashboards.exports import file_name, predictions_subset
from vegviz.evaluation import cell_series, series_frame

MODELS = ["convlstm", "convlstm_physics", "lstm"]


@pytest.fixture(scope="module")
def runs_dir(tiny_experiment):
    return tiny_experiment.path.parent


def buttons(component) -> dict:
    pn.panel(component).get_root()
    return {b.label: b for b in component.downloads()}


def open_nc(data: bytes, folder) -> xr.Dataset:
    """A downloaded NetCDF file, saved and opened as a user would."""
    path = folder / "download.nc"
    path.write_bytes(data)
    with xr.open_dataset(path, engine="netcdf4") as ds:
        return ds.load()


def press(button) -> tuple[str, bytes]:
    data = button.callback()
    return button.filename, data.getvalue()


def test_skill_table_and_scores_hold_what_the_tab_shows(runs_dir, tmp_path):
    s = Skill()
    b = buttons(s)
    name, data = press(b["Table CSV"])
    assert name == "tiny_skill_test.csv"
    table = pd.read_csv(io.BytesIO(data), index_col=0)
    shown = s.table()
    assert list(table.index) == list(shown.index) and list(table.columns) == list(shown.columns)
    np.testing.assert_allclose(table["median NSE"].to_numpy(), shown["median NSE"].to_numpy(), rtol=1e-12)
    s.period = "validation"  # the file follows the chosen period
    name, data = press(b["Table CSV"])
    assert name == "tiny_skill_validation.csv"
    assert np.allclose(pd.read_csv(io.BytesIO(data), index_col=0)["median NSE"], s.table()["median NSE"])
    s.vegetation = "Open shrublands"
    name, data = press(b["Scores NetCDF"])
    assert name == "tiny_scores_validation_nse_Open-shrublands.nc"
    scores = open_nc(data, tmp_path)
    shown = s.shown_scores()
    assert set(MODELS) <= set(scores["model"].values.tolist())
    np.testing.assert_array_equal(np.isfinite(scores["nse"].values), np.isfinite(shown["nse"].values))
    np.testing.assert_allclose(scores["nse"].values, shown["nse"].values, rtol=1e-6, equal_nan=True)


def test_a_cells_csv_holds_its_lai_and_forcing(runs_dir):
    t = TimeSeries()
    b = buttons(t)
    lat, lon = float(t._lat[10]), float(t._lon[40])
    t.tap_stream.event(x=lon, y=lat)
    name, data = press(b["Cell CSV"])
    assert name == f"tiny_cell_{lat:.4f}".rstrip("0") + "-N_" + f"{-lon:.4f}".rstrip("0") + "-W_test.csv"
    df = pd.read_csv(io.BytesIO(data), index_col="date", parse_dates=True)
    start, end = t.period_dates()
    assert df.index[0] == pd.Timestamp(start) and df.index[-1] == pd.Timestamp(end)
    obs, pred = t.observations, t.predictions
    at = dict(lat=lat, lon=lon, time=slice(start, end))
    np.testing.assert_allclose(df["lstm (m2 m-2)"], pred["lstm"].sel(at).values, rtol=1e-6)
    np.testing.assert_allclose(df["precip (mm day-1)"], obs["precip"].sel(at).values, rtol=1e-6)
    np.testing.assert_allclose(df["tair (degC)"], obs["tair"].sel(at).values, rtol=1e-6)
    sat = df["satellite (m2 m-2)"]
    assert sat.notna().sum() == int(obs["lai"].sel(at).notnull().sum()) > 0  # composites only, NaN between
    assert {"vpd (kPa)", "swdown (W m-2)", "process (m2 m-2)"} <= set(df.columns)


def test_forcing_is_drawn_under_the_cells_lai_on_a_linked_time_axis(runs_dir):
    t = TimeSeries()
    root = pn.panel(t).get_root()
    lat, lon = t.lat, t.lon
    s = cell_series(t.predictions, t.observations, lat, lon, period=t.period_dates())
    assert [v for v in s.data_vars if s[v].attrs["kind"] == "forcing"] == ["precip", "tair", "tmin", "vpd", "swdown"]
    figs = [f for f in root.select({"type": Plot})]
    labels = {f.yaxis[0].axis_label: f for f in figs if f.yaxis and f.yaxis[0].axis_label}
    for label in ("LAI (m2 m-2)", "P (mm day-1)", "T (degC)", "VPD (kPa)", "SWdown (W m-2)"):
        assert label in labels, sorted(labels)
    cell_title = next(f for f in figs if f.title is not None and (f.title.text or "").startswith("cell "))
    ranges = {labels[k].x_range.id for k in ("P (mm day-1)", "T (degC)", "VPD (kPa)", "SWdown (W m-2)")}
    assert ranges == {cell_title.x_range.id}  # zooming one zooms them all
    # the drawn precipitation is the cell's
    forcing = t.forcing_element()
    p = next(iter(forcing)).dimension_values(1)
    np.testing.assert_allclose(p, s["precip"].values, rtol=1e-6)
    # a data set with specific humidity instead of VPD shows that
    s2 = cell_series(t.predictions, t.observations.drop_vars("vpd"), lat, lon, period=t.period_dates())
    assert "qair" in s2 and "vpd" not in s2
    assert list(series_frame(s2).columns)[-3:] == ["tmin (degC)", "qair (kg kg-1)", "swdown (W m-2)"]


def test_the_views_predictions_follow_period_window_and_models(runs_dir, tmp_path):
    m = LaiMaps()
    b = buttons(m)
    lat, lon = m._lat, m._lon
    m.range_stream.event(x_range=(float(lon[10]), float(lon[30])), y_range=(float(lat[5]), float(lat[20])))
    m.export_models = ["convlstm", "lstm"]
    name, data = press(b["View NetCDF"])
    start, end = m.series_period()
    assert name == f"tiny_predictions_{start}..{end}.nc"
    ds = open_nc(data, tmp_path)
    assert set(ds.data_vars) >= {"convlstm", "lstm", "lai", "mask", "landcover"} and "convlstm_physics" not in ds
    assert float(ds.lon.min()) >= lon[10] and float(ds.lon.max()) <= lon[30] and ds.sizes["lon"] == 21
    assert float(ds.lat.min()) >= lat[5] and float(ds.lat.max()) <= lat[20] and ds.sizes["lat"] == 16
    assert str(ds.time.values[0])[:10] == start and str(ds.time.values[-1])[:10] == end
    np.testing.assert_allclose(ds["lstm"].values, m.predictions["lstm"].sel(
        time=slice(start, end), lat=ds.lat, lon=ds.lon).values, rtol=1e-6, equal_nan=True)
    assert ds.attrs["models"] == "convlstm,lstm" and ds["lstm"].attrs.get("units") == "m2 m-2"
    # no cell clicked yet: the cell's button says why, and the page goes on
    name, data = press(b["Cell CSV"])
    assert b["Cell CSV"].label.endswith("failed") and "no cell chosen" in b["Cell CSV"].description
    m.cell = (float(lat[10]), float(lon[40]))
    name, data = press(b["Cell CSV"])
    assert b["Cell CSV"].label == "Cell CSV" and name.endswith(".csv") and len(pd.read_csv(io.BytesIO(data))) > 300


def test_figures_download_as_png_and_svg(runs_dir):
    t = TimeSeries()
    b = buttons(t)
    name, data = press(b["Cell PNG"])
    assert name.endswith(".png") and data[:8] == b"\x89PNG\r\n\x1a\n"
    name, data = press(b["Region SVG"])
    assert name == "tiny_Open-shrublands_test.svg" and b"Open shrublands" in data and b"<svg" in data
    m = LaiMaps()
    name, data = press(buttons(m)["Maps SVG"])
    assert name == file_name("tiny", m.model, m.date) + ".svg" and f"{m.model} LAI {m.date}".encode() in data


def test_an_empty_region_is_refused_with_a_fix(runs_dir, tiny_experiment):
    pred = tiny_experiment.predictions
    from vegviz.dashboards import sources

    obs = sources.observations_for(pred)
    with pytest.raises(ValueError, match="hold no data.*Fix: zoom out"):
        predictions_subset(pred, obs, ["lstm"], ("2005-01-01", "2005-12-31"), lon=(-80.0, -79.0))
    with pytest.raises(ValueError, match="no model chosen"):
        predictions_subset(pred, obs, [], ("2005-01-01", "2005-12-31"))
