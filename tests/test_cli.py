"""The command line on the small virtual basin, and its errors."""
from pathlib import Path

import pytest

from vegviz import cli
from vegviz.data import static as static_mod


def test_info_prints_summary_and_realism(small_basin, capsys):
    assert cli.main(["info", "virtual_ucrb_small", "--realism"]) == 0
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out and "1998-01-01 .. 2005-12-31" in out
    assert "wet-day frequency, mountains > 3000 m" in out
    assert "1886 of 3402 cells inside" in out and "112.3125 W..105.6875 W" in out


def test_realism_table_has_plausible_values(small_basin):
    from vegviz.data.virtual.diagnostics import realism

    table = realism(small_basin).set_index("quantity")["value"]
    assert 150 < table["annual precipitation, valleys < 1500 m (mm)"] < 350
    assert 700 < table["annual precipitation, mountains > 3000 m (mm)"] < 1300
    assert 0.25 <= table["wet-day frequency, mountains > 3000 m"] <= 0.45
    assert (table["Jul-Sep share of precipitation, south < 38.5 N"]
            > table["Jul-Sep share of precipitation, north > 41 N"])
    assert 6 <= table["month of basin-mean peak LAI"] <= 8
    assert table["mean annual peak LAI, Savannas"] > table["mean annual peak LAI, Grasslands"] \
        > table["mean annual peak LAI, Open shrublands"] > table["mean annual peak LAI, Barren"]


def test_demo_writes_overview_figure(small_basin, tmp_path, capsys):
    assert cli.main(["demo", "--variant", "small", "--out", str(tmp_path)]) == 0
    png = tmp_path / "overview.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000
    assert "next:" in capsys.readouterr().out


def test_version(capsys):
    import vegviz

    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"vegviz {vegviz.__version__}"


def test_info_unknown_dataset_is_a_clear_error(capsys):
    assert cli.main(["info", "no_such_entry"]) == 2
    assert "neither an existing Zarr/NetCDF path nor an entry" in capsys.readouterr().err


def test_a_plain_folder_does_not_hide_a_catalog_entry(tmp_path, monkeypatch, small_basin, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "virtual_ucrb_small").mkdir()  # e.g. an archive folder named like the entry
    assert cli.main(["info", "virtual_ucrb_small"]) == 0
    (tmp_path / "data").mkdir()
    assert cli.main(["info", "data"]) == 2
    assert "not a Zarr store" in capsys.readouterr().err


def test_info_on_a_store_that_breaks_the_contract(tmp_path, capsys, contract_ds):
    bad = contract_ds.copy()
    bad["tair"] = (bad["tair"] + 273.15).assign_attrs(units="K", long_name="air temperature")
    path = tmp_path / "bad.nc"
    bad.to_netcdf(path)
    assert cli.main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert "tair" in err and "subtract 273.15" in err


def test_build_static_without_sources_says_what_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(static_mod, "ETOPO5_PATH", Path(tmp_path / "missing.cdf"))
    assert cli.main(["build-static", "--out", str(tmp_path / "out.nc")]) == 2
    err = capsys.readouterr().err
    assert "ferret-datasets" in err
    assert not (tmp_path / "out.nc").exists()


@pytest.mark.skipif(bool(static_mod.missing_sources()), reason="; ".join(static_mod.missing_sources()) or "ok")
def test_build_static_reproduces_the_committed_file(tmp_path):
    import numpy as np

    out = tmp_path / "static.nc"
    assert cli.main(["build-static", "--out", str(out)]) == 0
    new, old = static_mod.load_static(out), static_mod.load_static()
    # The committed file may come from another CPU. Its float fields are sums of non-negative float64
    # terms (BLAS order per CPU: relative differences ~1e-13) rounded to float32 once, so machines differ
    # by at most one float32 step (2^-23 = 1.2e-7 relative); a shifted or rescaled source is far bigger.
    for v in ("landcover", "landcover_fraction", "elevation", "mask", "basin_fraction"):
        np.testing.assert_allclose(new[v].values, old[v].values, rtol=1e-6, err_msg=v)


def test_experiment_config_brings_its_models_unless_overridden(tmp_path):
    import yaml

    from vegviz.cli import _config, build_parser

    exp = tmp_path / "experiment.yaml"
    exp.write_text(yaml.safe_dump({"name": "e", "models": ["lstm", "convlstm"],
                                   "config": {"data": "virtual_ucrb_small", "max_epochs": 2}}))
    args = build_parser().parse_args(["experiment", "--config", str(exp)])
    assert _config(args).max_epochs == 2 and args.models == "lstm,convlstm"
    args = build_parser().parse_args(["experiment", "--config", str(exp), "--models", "lstm"])
    _config(args)
    assert args.models == "lstm"


def test_a_date_that_is_not_a_day_names_its_option(tmp_path, capsys):
    assert cli.main(["fetch", "nldas", "--start", "2003-13-01", "--end", "2003-12-31", "--out", str(tmp_path),
                     "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "--start '2003-13-01' is not a day YYYY-MM-DD" in err and "Fix:" in err
    assert cli.main(["sample-archive", str(tmp_path / "a"), "--start", "1 April"]) == 2
    assert not (tmp_path / "a").exists()


def test_serve_on_a_port_in_use_says_so_before_starting(capsys):
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert cli.main(["serve", "--port", str(port)]) == 2  # no exec: the check comes first
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_a_preset_is_the_base_that_options_override():
    """--preset quick: the small basin of the domain, 8 filters, 90-day windows, 3 epochs; later options win;
    --preset study: the study's Config defaults on the full virtual basin."""
    from vegviz import cli
    from vegviz.training import Config

    parser = cli.build_parser()
    quick = cli._config(parser.parse_args(["train", "--preset", "quick"]))
    assert (quick.data, quick.hparams.filters, quick.window, quick.max_epochs) == ("virtual_ucrb_small", 8, 90, 3)
    mixed = cli._config(parser.parse_args(["train", "--preset", "quick", "--domain", "gunnison", "--epochs", "5",
                                           "--set", "window=120"]))
    assert (mixed.data, mixed.window, mixed.max_epochs, mixed.hparams.filters) == ("virtual_gunnison_small", 120, 5, 8)
    study = cli._config(parser.parse_args(["experiment", "--preset", "study"]))
    assert (study.data, study.window, study.max_epochs) == ("virtual_ucrb", Config.window, Config.max_epochs)
    assert study.hparams.filters == Config().hparams.filters
