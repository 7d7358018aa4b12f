"""PNG and SVG files of the study's panels (vegviz.figure_files), drawn offline by matplotlib from the Bokeh-styled
panels, and the experiment's --figures formats."""
from __future__ import annotations

import io
import re

import matplotlib.image as mpimg

import pytest

from vegviz import cli
from vegviz.dashboards import sources
from vegviz.evaluation import cell_timeseries, nse_boxplots, nse_map_and_density
from vegviz.evaluation.panels import MODEL_COLORS
from vegviz.experiment import figure_formats
from vegviz.figure_files import figure_bytes, save_figure

from conftest import TINY


@pytest.fixture(scope="module")
def tiny(tiny_experiment):
    pred = tiny_experiment.predictions
    return tiny_experiment, pred, sources.observations_for(pred)


def svg_text(data: bytes) -> str:
    """The text elements of an SVG file (matplotlib writes them as <text> with svg.fonttype 'none')."""
    return " ".join(re.findall(r"<text[^>]*>([^<]*)</text>", data.decode()))


def test_a_cells_series_keeps_its_colours_title_and_legend(tiny):
    _, pred, obs = tiny
    lat, lon = float(obs.lat[10]), float(obs.lon[40])
    el = cell_timeseries(pred, obs, lat, lon, period=("2005-01-01", "2005-12-31"))
    svg = figure_bytes(el, "svg")
    text = svg_text(svg)
    assert f"cell {lat:.4f}°N, {-lon:.4f}°W" in text and "LAI (m2 m-2)" in text
    for m in ("convlstm", "convlstm_physics", "lstm", "satellite composites"):
        assert m in text
    for m in ("convlstm", "convlstm_physics", "lstm", "satellite"):  # the page's colours, not matplotlib's cycle
        assert MODEL_COLORS[m] in svg.decode().lower(), m
    assert "stroke-dasharray" in svg.decode()  # the process model's dashed line


def test_maps_have_degree_ticks_and_the_pages_colour_range(tiny):
    exp, pred, obs = tiny
    scores = exp.scores("test")
    el = nse_map_and_density(scores, "convlstm")
    text = svg_text(figure_bytes(el, "svg"))
    assert re.search(r"\b1\d\d°W\b", text) and re.search(r"\b[34]\d°N\b", text), text[:400]
    assert "NSE" in text and "density" in text
    png = figure_bytes(el, "png", dpi=80)
    img = mpimg.imread(io.BytesIO(png))
    assert img.ndim == 3 and img.shape[1] > 2 * img.shape[0] > 200  # a map next to a density: wider than high
    rgb = img[..., :3].reshape(-1, 3)
    # coloured cells, not a blank frame (drawn: about 4 % of the pixels; an empty frame has none)
    assert (rgb.std(axis=1) > 0.1).mean() > 0.01


def test_boxes_take_their_models_colours(tiny):
    exp, _pred, obs = tiny
    el = nse_boxplots(exp.scores("test"), obs["landcover"], exp.models)
    svg = figure_bytes(el, "svg").decode().lower()
    for m in exp.models:
        assert MODEL_COLORS[m] in svg, m
    text = svg_text(svg.encode())
    assert "Open shrublands" in figure_bytes(el, "svg").decode() and "convlstm" in text


def test_bad_format_names_the_choices_and_writes_nothing(tiny, tmp_path):
    _, pred, obs = tiny
    el = cell_timeseries(pred, obs, float(obs.lat[10]), float(obs.lon[40]), period=("2005-01-01", "2005-03-31"))
    with pytest.raises(ValueError, match="png, svg"):
        save_figure(el, tmp_path / "fig.bmp")
    assert list(tmp_path.iterdir()) == []
    assert save_figure(el, tmp_path / "fig.png").stat().st_size > 1000
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]  # no partial file left beside it


def test_experiment_figure_formats(tmp_path, capsys):
    assert figure_formats(True) == ("html", "png", "svg") and figure_formats(False) == ()
    assert figure_formats("SVG, png") == ("svg", "png")
    with pytest.raises(ValueError, match="unknown figure format.*bmp.*html, png, svg"):
        figure_formats("png,bmp")
    # a bad --figures stops the command before anything is trained
    code = cli.main(["experiment", "--data", "virtual_ucrb_small", "--name", "nofig", "--runs-dir", str(tmp_path),
                     "--figures", "bmp", *TINY])
    assert code != 0 and "bmp" in capsys.readouterr().err
    assert not (tmp_path / "nofig").exists()
