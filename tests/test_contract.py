"""The data contract: a valid Dataset passes, every kind of bad input names variable, problem and fix."""
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from vegviz import grid
from vegviz.contract import VARIABLES, ContractError, cf_attrs, validate


def test_valid_dataset_passes(contract_ds):
    assert validate(contract_ds) is contract_ds


def test_valid_dask_dataset_passes_without_loading(contract_ds):
    lazy = contract_ds.chunk({"time": 10})
    validate(lazy)
    assert lazy["precip"].chunks is not None  # still lazy afterwards


def test_every_contract_variable_has_cf_attributes():
    for name, spec in VARIABLES.items():
        attrs = cf_attrs(name)
        assert attrs["units"] == spec.units and attrs["long_name"]


def _raises(ds, *fragments, **kw):
    with pytest.raises(ContractError) as err:
        validate(ds, **kw)
    msg = str(err.value)
    for f in fragments:
        assert f in msg, msg
    assert "Fix:" in msg
    return msg


def test_missing_variable(contract_ds):
    _raises(contract_ds.drop_vars("tmin"), "tmin", "missing")


def test_missing_humidity(contract_ds):
    _raises(contract_ds.drop_vars("vpd"), "vpd/qair")


def test_wrong_dim_order(contract_ds):
    ds = contract_ds.copy()
    ds["tair"] = ds["tair"].transpose("lat", "lon", "time")
    _raises(ds, "tair", "order", "transpose")


def test_wrong_dims(contract_ds):
    ds = contract_ds.copy()
    ds["swdown"] = ds["swdown"].isel(lat=0)
    _raises(ds, "swdown", "dims")


def test_kelvin_temperature_names_the_conversion(contract_ds):
    ds = contract_ds.copy()
    ds["tair"] = (ds["tair"] + 273.15).assign_attrs(units="K", long_name="t")
    _raises(ds, "tair", "'K'", "subtract 273.15")


def test_unknown_units(contract_ds):
    ds = contract_ds.copy()
    ds["precip"].attrs["units"] = "furlongs"
    _raises(ds, "precip", "furlongs", "mm day-1")


def test_missing_units(contract_ds):
    ds = contract_ds.copy()
    del ds["vpd"].attrs["units"]
    _raises(ds, "vpd", "units None")


def test_duplicated_time(contract_ds):
    ds = xr.concat([contract_ds.isel(time=slice(0, 5)), contract_ds.isel(time=slice(4, 10))], "time", data_vars="minimal")
    _raises(ds, "time", "duplicated", "drop_duplicates")


def test_non_daily_time(contract_ds):
    ds = contract_ds.isel(time=slice(0, None, 2))
    _raises(ds, "time", "daily", "resample")


def test_subdaily_time(contract_ds):
    ds = contract_ds.assign_coords(time=pd.date_range("2000-01-01", periods=contract_ds.sizes["time"], freq="1h"))
    _raises(ds, "time", "00:00")


def test_unsorted_time(contract_ds):
    _raises(contract_ds.isel(time=slice(None, None, -1)), "time", "increasing", "sortby")


def test_numeric_time(contract_ds):
    ds = contract_ds.assign_coords(time=np.arange(contract_ds.sizes["time"]))
    _raises(ds, "time", "datetime64")


def test_descending_latitude(contract_ds):
    _raises(contract_ds.isel(lat=slice(None, None, -1)), "lat", "ascending", "sortby")


def test_off_grid_coordinates(contract_ds):
    ds = contract_ds.assign_coords(lon=contract_ds.lon + 0.05)
    _raises(ds, "lat/lon", "regrid")


def test_wrong_window(contract_ds):
    _raises(contract_ds.isel(lat=slice(1, None)), "lat/lon", "63 x 54", grid=grid.UCRB)
    _raises(contract_ds.isel(lat=slice(1, None)), "lat/lon", "63 x 54", grid="ucrb")  # a domain by name


def test_any_domain_window_is_accepted_by_default_and_checked_by_name(contract_ds):
    from vegviz import domains

    gun = domains.get("gunnison")
    rows, cols = gun.grid.slices_in(grid.UCRB)  # the Gunnison window lies inside the UCRB's
    sub = contract_ds.isel(lat=rows, lon=cols)
    assert validate(sub) is sub  # no silent UCRB window
    assert validate(sub, grid="gunnison") is sub and validate(sub, grid=gun) is sub
    _raises(contract_ds, "lat/lon", "14 x 24", grid="gunnison")


def test_other_nldas_window_accepted_with_grid_none(contract_ds):
    validate(contract_ds.isel(lat=slice(5, 20), lon=slice(3, 30)), grid=None)
    with pytest.raises(ContractError, match="NLDAS-2"):
        validate(contract_ds.assign_coords(lat=contract_ds.lat + 0.01), grid=None)


def test_all_nan_field(contract_ds):
    ds = contract_ds.copy()
    ds["lai"] = xr.full_like(ds["lai"], np.nan)
    _raises(ds, "lai", "all NaN")


def test_out_of_range_values_suggest_fill_values(contract_ds):
    ds = contract_ds.copy()
    ds["lai"] = ds["lai"].where(ds["lai"].isnull(), 250.0)  # a typical unscaled/fill value
    _raises(ds, "lai", "outside the plausible range")


def test_nan_forcing_inside_mask(contract_ds):
    ds = contract_ds.copy()
    i, j = np.argwhere(ds["mask"].values == 1)[0]
    ds["precip"][3, i, j] = np.nan
    _raises(ds, "precip", "inside the mask")


def test_nan_forcing_outside_mask_is_fine(contract_ds):
    ds = contract_ds.copy()
    ds["mask"][:] = 0
    ds["mask"][10, 10] = 1
    ds["precip"][3, 0, 0] = np.nan
    validate(ds)


def test_mask_must_select_cells(contract_ds):
    ds = contract_ds.copy()
    ds["mask"][:] = 0
    _raises(ds, "mask", "selects no cell")


def test_mask_must_be_binary(contract_ds):
    ds = contract_ds.copy()
    ds["mask"] = ds["mask"].astype(float) * 2
    _raises(ds, "mask", "0/1")


def test_landcover_must_be_integer(contract_ds):
    ds = contract_ds.copy()
    ds["landcover"] = ds["landcover"].astype(float)
    _raises(ds, "landcover", "integer")


def test_missing_provenance(contract_ds):
    ds = contract_ds.copy()
    del ds.attrs["synthetic"]
    _raises(ds, "attrs", "synthetic")


def test_missing_coordinate(contract_ds):
    _raises(contract_ds.rename(lat="latitude"), "lat", "missing", "rename")


def test_not_a_dataset(contract_ds):
    _raises(contract_ds["tair"], "xarray.Dataset")


def test_missing_long_name(contract_ds):
    ds = contract_ds.copy()
    del ds["tmin"].attrs["long_name"]
    _raises(ds, "tmin", "long_name")


def test_the_fixture_is_on_the_study_grid(contract_ds):
    assert grid.UCRB.matches(contract_ds.lat, contract_ds.lon)
