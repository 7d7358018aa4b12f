"""The API reference builds from the docstrings (Sphinx autodoc/autosummary), as ``make docs`` does."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs" / "api"


@pytest.mark.slow  # 2-3 minutes of Sphinx on two cores: `make test-all` and `make docs` run it
def test_api_reference_builds_with_every_public_module(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(DOCS, src, ignore=shutil.ignore_patterns("_build", "generated"))  # autosummary writes there
    out = tmp_path / "html"
    run = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "html", str(src), str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    # every warning is a docstring that renders wrong (a field list swallowing prose, an ambiguous link)
    warnings = [line for line in run.stderr.splitlines() if "WARNING" in line or "ERROR" in line]
    assert not warnings, "\n".join(warnings)
    pages = {p.name for p in (out / "generated").glob("*.html")}
    for module in ("vegviz.data.prepare", "vegviz.training", "vegviz.dashboards.maps", "vegviz.contract",
                   "vegviz.evaluation", "vegviz.data.nldas"):
        assert f"{module}.html" in pages, module
    prepare = (out / "generated" / "vegviz.data.prepare.html").read_text()
    assert "prepare_real" in prepare and ":func:" not in prepare  # roles became links, not literal text
    assert 'href="vegviz.data.nldas.html' in prepare or "vegviz.data.nldas.write_daily_zarr" in prepare
