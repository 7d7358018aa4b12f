"""Notebooks run top to bottom (on the small virtual basin), in a real Jupyter kernel."""
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
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
