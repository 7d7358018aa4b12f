"""Notebooks run top to bottom (on the small virtual basin), in a real Jupyter kernel."""
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from marks import slow_except

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


#: 02 trains three models (~90 s) and 04 prepares a real-data archive (~110 s); their paths are
#: covered by the CLI, prepare and dashboard tests
HEAVY = {"02_train_models.ipynb", "04_real_data.ipynb"}
NAMES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


@pytest.mark.parametrize("name", slow_except(NAMES, set(NAMES) - HEAVY))
def test_notebook_executes(name, small_basin, monkeypatch):
    monkeypatch.setenv("VEGVIZ_VARIANT", "small")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    # every code cell produced something a reader can see (no silent no-op cells at the end)
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert last.outputs, "the last cell should display a result"


@pytest.mark.slow
def test_the_tour_runs_on_a_user_domain(monkeypatch):
    """A user's basin (a few cells by --bbox, as `vegviz domain add tour_box --bbox ...`) toured like the UCRB:
    the notebook takes its static fields, virtual basin and titles from VEGVIZ_DOMAIN."""
    import json

    from vegviz import domains

    dom = domains.from_bbox("tour_box", -108.3, 38.5, -107.5, 39.0, title="Tour box near Grand Junction")
    domains.add(dom, replace_existing=True)  # in the test data directory, where the kernel looks too
    try:
        monkeypatch.setenv("VEGVIZ_VARIANT", "small")
        monkeypatch.setenv("VEGVIZ_DOMAIN", dom.name)
        nb = nbformat.read(NOTEBOOKS / "01_data_tour.ipynb", as_version=4)
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        assert not [o for o in outputs if o.get("output_type") == "error"]
        text = json.dumps(outputs)
        assert dom.title in text and "Upper Colorado" not in text
    finally:
        domains.remove(dom.name)


ROOT = NOTEBOOKS.parent
SAVED = sorted(p.relative_to(ROOT).as_posix() for d in ("notebooks", "dashboards") for p in (ROOT / d).glob("*.ipynb"))


@pytest.mark.parametrize("name", SAVED)
def test_saved_notebook_carries_no_outputs(name):
    """Stale outputs (text reprs of plots, old numbers, megabytes of inline JavaScript) never reach the repository:
    strip them before committing (JupyterLab: Edit > Clear Outputs of All Cells, then save)."""
    nb = nbformat.read(ROOT / name, as_version=4)
    stale = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not stale, f"{name}: cells {stale} carry outputs or execution counts; clear them and save"


def test_notebook_setup_loads_resources_inline_and_draws_holoviews(tmp_path):
    """In a real kernel: vegviz.notebook.setup() publishes Bokeh and Panel inline (no CDN script), says so when a
    CDN load came first, and a HoloViews object returned by a cell is drawn (a live view), not printed as text."""
    import json

    cells = ["import holoviews as hv\nhv.extension('bokeh')",  # what `import hvplot.xarray` did before setup
             "import vegviz.notebook\nvegviz.notebook.setup()",
             "hv.Curve([1, 3, 2]) * hv.Curve([2, 1, 3])"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    cdn, setup, plot = (json.dumps(c.outputs) for c in nb.cells)
    assert "https://cdn.bokeh.org/bokeh/release/bokeh-" in cdn  # the default: scripts from the internet
    assert "cdn.bokeh.org" not in setup and "cdn.holoviz.org/panel" not in setup
    assert "Bokeh/Panel resources were already loaded from the internet" in setup and "restart the kernel" in setup
    keys = {k for o in nb.cells[2].outputs for k in o.get("data", {})}
    # a live view with its HTML (text/plain, the `:Overlay ...` repr, is only the fallback of the bundle)
    assert {"application/vnd.holoviews_exec.v0+json", "text/html"} <= keys, plot[:500]
