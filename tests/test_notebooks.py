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
