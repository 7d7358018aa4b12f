"""The UNEP aridity index and classes."""
import numpy as np
import pytest
import xarray as xr

from vegviz.evaluation import aridity_class, aridity_index
from vegviz.physics import potential_evapotranspiration


def test_index_is_precip_over_pet_in_the_period(contract_ds):
    period = ("2000-01-05", "2000-01-30")
    ai = aridity_index(contract_ds, period)
    sub = contract_ds.sel(time=slice(*period))
    pet = potential_evapotranspiration(sub).sum("time").values.astype(float)
    expected = sub["precip"].sum("time").values.astype(float) / pet
    expected[contract_ds["mask"].values == 0] = np.nan
    # float32 sums of <= 26 terms: relative error below 26 * 2**-24 each, so 1e-5 is generous
    np.testing.assert_allclose(ai.values, expected, rtol=1e-5)
    assert np.isnan(ai.values[contract_ds["mask"].values == 0]).all()


def test_classes_follow_unep_limits():
    index = xr.DataArray([0.01, 0.05, 0.1, 0.2, 0.49, 0.5, 0.64, 0.65, 3.0, np.nan], dims="cell")
    assert list(aridity_class(index).values) == [
        "hyper-arid", "arid", "arid", "semi-arid", "semi-arid", "dry sub-humid", "dry sub-humid",
        "humid", "humid", ""]


def test_missing_forcing_is_named(contract_ds):
    with pytest.raises(ValueError, match=r"needs \['precip'\].*Fix"):
        aridity_index(contract_ds.drop_vars("precip"), ("2000-01-01", "2000-01-10"))
